/**
 * A DEFLATE (RFC 1951) walker for the conformance suite: it reads a compressed permessage-deflate
 * payload block by block and symbol by symbol, without producing output, to check what zlib's
 * inflater does not check — how far back each LZ77 reference reaches.
 *
 * Why: RFC 7692 §7.1.2.1 lets the client cap the server's window (`server_max_window_bits=N`:
 * no reference further back than 2^N bytes) and §7.1.1.1 lets it forbid context takeover
 * (`server_no_context_takeover`: no reference into an earlier message). Inflating with zlib and a
 * window of 2^N does not prove either: zlib serves a reference from its output buffer without
 * looking at the window size whenever the bytes are still there, so a server that compresses with
 * a 32 KiB window can inflate fine with a 512-byte one. This walker sees every distance.
 *
 * Written from RFC 1951 alone, independent of zlib and of src/.
 */

/** What one payload contained. */
export interface DeflateAudit {
  /** Bytes the payload inflates to (literals + match lengths + stored bytes). */
  length: number;
  /** The longest back-reference distance used (0 if none). */
  maxDistance: number;
  /** Blocks of each type: stored, fixed Huffman, dynamic Huffman. */
  blocks: { stored: number; fixed: number; dynamic: number };
  /** Whether a block with BFINAL = 1 ended the data (the appended tail is then ignored). */
  final: boolean;
  /** Whether some back-reference reached into `history` (an earlier message: context takeover). */
  usedHistory: boolean;
}

export interface AuditLimits {
  /** The LZ77 window the sender may use, as log2 bytes (RFC 7692 §7.1.2: 8..15). */
  windowBits: number;
  /**
   * Bytes the receiver's window already holds from earlier compressed messages of this direction
   * (0 under no context takeover, and for the first message).
   */
  history: number;
}

/** A payload that breaks RFC 1951 or the negotiated limits; the message says which rule. */
export class DeflateAuditError extends Error {}

const TAIL = [0x00, 0x00, 0xff, 0xff];

// RFC 1951 §3.2.5: lengths 257..285 and distances 0..29 (base, extra bits).
const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
  24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
// RFC 1951 §3.2.7: the order of the code length code lengths.
const CLEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** A canonical Huffman code as a lookup table indexed by the next `bits` input bits (LSB first). */
interface Table {
  /** symbol << 4 | code length; 0 = no code (incomplete code). */
  entries: Int32Array;
  bits: number;
}

/** RFC 1951 §3.2.2: builds the canonical code for `lengths` (0 = symbol unused). */
function buildTable(lengths: ArrayLike<number>, what: string): Table {
  let maxLen = 0;
  const count = new Array<number>(16).fill(0);
  for (let s = 0; s < lengths.length; s++) {
    const l = lengths[s] as number;
    if (l > 0) {
      count[l] = (count[l] as number) + 1;
      if (l > maxLen) maxLen = l;
    }
  }
  // Over-subscribed codes are invalid; incomplete ones are allowed (e.g. one distance code).
  let left = 1;
  for (let l = 1; l <= 15; l++) {
    left = left * 2 - (count[l] as number);
    if (left < 0) throw new DeflateAuditError(`${what}: over-subscribed Huffman code`);
  }
  const bits = Math.max(maxLen, 1);
  const entries = new Int32Array(1 << bits);
  const next = new Array<number>(16).fill(0);
  let code = 0;
  for (let l = 1; l <= 15; l++) {
    code = (code + (count[l - 1] as number)) << 1;
    next[l] = code;
  }
  for (let s = 0; s < lengths.length; s++) {
    const l = lengths[s] as number;
    if (l === 0) continue;
    const c = next[l] as number;
    next[l] = c + 1;
    // Huffman codes are packed most significant bit first: reverse to index by LSB-first bits.
    let r = 0;
    for (let i = 0; i < l; i++) r |= ((c >> i) & 1) << (l - 1 - i);
    for (let i = r; i < entries.length; i += 1 << l) entries[i] = (s << 4) | l;
  }
  return { entries, bits };
}

const FIXED_LIT = buildTable(
  Array.from({ length: 288 }, (_, s) => (s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8)),
  'fixed literal/length code',
);
const FIXED_DIST = buildTable(new Array<number>(30).fill(5), 'fixed distance code');

/** LSB-first bit reader over the payload followed by the 4-byte tail. */
class Bits {
  readonly bytes: Uint8Array;
  pos = 0;
  buf = 0;
  cnt = 0;
  constructor(payload: Uint8Array) {
    this.bytes = new Uint8Array(payload.length + 4);
    this.bytes.set(payload);
    this.bytes.set(TAIL, payload.length);
  }

  /** Loads whole bytes while they fit in 32 bits. */
  refill(): void {
    const bytes = this.bytes;
    while (this.cnt <= 24 && this.pos < bytes.length) {
      this.buf = (this.buf | ((bytes[this.pos++] as number) << this.cnt)) >>> 0;
      this.cnt += 8;
    }
  }

  read(n: number): number {
    if (n === 0) return 0;
    if (this.cnt < n) {
      this.refill();
      if (this.cnt < n) throw new DeflateAuditError('compressed data ends inside a block (after the 00 00 ff ff tail)');
    }
    const v = this.buf & ((1 << n) - 1);
    this.buf >>>= n;
    this.cnt -= n;
    return v;
  }

  /** Decodes one symbol of `t`. */
  decode(t: Table, what: string): number {
    // A short code near the end is fine: only what the code uses must exist.
    if (this.cnt < t.bits) this.refill();
    const e = t.entries[this.buf & ((1 << t.bits) - 1)] as number;
    const len = e & 15;
    if (len === 0) throw new DeflateAuditError(`${what}: bit pattern with no code`);
    if (len > this.cnt) throw new DeflateAuditError('compressed data ends inside a block (after the 00 00 ff ff tail)');
    this.buf >>>= len;
    this.cnt -= len;
    return e >> 4;
  }

  align(): void {
    const drop = this.cnt & 7;
    this.buf >>>= drop;
    this.cnt -= drop;
  }

  /** Skips `n` whole bytes (after align()). */
  skip(n: number): void {
    // Whole bytes still in the bit buffer first.
    while (n > 0 && this.cnt >= 8) {
      this.buf >>>= 8;
      this.cnt -= 8;
      n--;
    }
    if (this.pos + n > this.bytes.length) throw new DeflateAuditError('stored block runs past the end of the data');
    this.pos += n;
  }

  atEnd(): boolean {
    return this.cnt === 0 && this.pos === this.bytes.length;
  }
}

const ENDS_INSIDE = 'compressed data ends inside a block (after the 00 00 ff ff tail)';

/**
 * The symbols of one Huffman block up to its end-of-block code (RFC 1951 §3.2.5), checking each
 * distance. The hot loop of the walker, with the reader's state in locals.
 */
function huffmanBlock(r: Bits, lit: Table, dist: Table, limits: AuditLimits, out: DeflateAudit): void {
  const window = 2 ** limits.windowBits;
  const bytes = r.bytes;
  const end = bytes.length;
  const litEntries = lit.entries;
  const litMask = (1 << lit.bits) - 1;
  const distEntries = dist.entries;
  const distMask = (1 << dist.bits) - 1;
  let { pos, buf, cnt } = r;
  let length = out.length;
  let maxDistance = out.maxDistance;
  for (;;) {
    if (cnt < 15) {
      while (cnt <= 24 && pos < end) {
        buf = (buf | ((bytes[pos++] as number) << cnt)) >>> 0;
        cnt += 8;
      }
    }
    const e = litEntries[buf & litMask] as number;
    const len = e & 15;
    if (len === 0) throw new DeflateAuditError('literal/length: bit pattern with no code');
    if (len > cnt) throw new DeflateAuditError(ENDS_INSIDE);
    buf >>>= len;
    cnt -= len;
    const sym = e >> 4;
    if (sym < 256) {
      length++;
      continue;
    }
    if (sym === 256) break;
    const li = sym - 257;
    if (li >= 29) throw new DeflateAuditError(`invalid length symbol ${sym}`);
    // Extra bits (≤ 5), then a distance code (≤ 15) and its extra bits (≤ 13): refill before each.
    while (cnt <= 24 && pos < end) {
      buf = (buf | ((bytes[pos++] as number) << cnt)) >>> 0;
      cnt += 8;
    }
    const lx = LEN_EXTRA[li] as number;
    if (lx > cnt) throw new DeflateAuditError(ENDS_INSIDE);
    const matchLength = (LEN_BASE[li] as number) + (buf & ((1 << lx) - 1));
    buf >>>= lx;
    cnt -= lx;
    while (cnt <= 24 && pos < end) {
      buf = (buf | ((bytes[pos++] as number) << cnt)) >>> 0;
      cnt += 8;
    }
    const de = distEntries[buf & distMask] as number;
    const dl = de & 15;
    if (dl === 0) throw new DeflateAuditError('distance: bit pattern with no code');
    if (dl > cnt) throw new DeflateAuditError(ENDS_INSIDE);
    buf >>>= dl;
    cnt -= dl;
    const di = de >> 4;
    if (di >= 30) throw new DeflateAuditError(`invalid distance symbol ${di}`);
    while (cnt <= 24 && pos < end) {
      buf = (buf | ((bytes[pos++] as number) << cnt)) >>> 0;
      cnt += 8;
    }
    const dx = DIST_EXTRA[di] as number;
    if (dx > cnt) throw new DeflateAuditError(ENDS_INSIDE);
    const d = (DIST_BASE[di] as number) + (buf & ((1 << dx) - 1));
    buf >>>= dx;
    cnt -= dx;
    if (d > window) {
      throw new DeflateAuditError(`a back-reference reaches ${d} bytes back, beyond the ${window}-byte window (window bits ${limits.windowBits}) at output byte ${length}`);
    }
    if (d > length + limits.history) {
      throw new DeflateAuditError(
        limits.history === 0
          ? `a back-reference reaches ${d} bytes back at output byte ${length} of the message: into an earlier message (no context takeover) or before the start`
          : `a back-reference reaches ${d} bytes back at output byte ${length}, before anything the receiver holds (${limits.history} bytes of history)`,
      );
    }
    if (d > maxDistance) maxDistance = d;
    if (d > length) out.usedHistory = true;
    length += matchLength;
  }
  r.pos = pos;
  r.buf = buf;
  r.cnt = cnt;
  out.length = length;
  out.maxDistance = maxDistance;
}

/**
 * Walks `payload` (a permessage-deflate payload: the 00 00 ff ff tail already stripped, as on the
 * wire) with the tail appended (RFC 7692 §7.2.2), and checks every back-reference against the
 * window (2^windowBits) and against what the receiver holds (`history` + bytes of this message so
 * far). Throws a {@link DeflateAuditError} naming the first violation.
 *
 * The data must end at a block boundary once the tail is appended (§7.2.1: the sender stripped
 * the tail of a sync flush), or in a block with BFINAL set (§7.2.3.1 lets the sender end that
 * way; the tail is then ignored).
 */
export function auditDeflate(payload: Uint8Array, limits: AuditLimits): DeflateAudit {
  const r = new Bits(payload);
  const out: DeflateAudit = { length: 0, maxDistance: 0, blocks: { stored: 0, fixed: 0, dynamic: 0 }, final: false, usedHistory: false };
  for (;;) {
    const bfinal = r.read(1);
    const btype = r.read(2);
    if (btype === 0) {
      // RFC 1951 §3.2.4: stored block.
      r.align();
      const len = r.read(16);
      const nlen = r.read(16);
      if ((len ^ 0xffff) !== nlen) throw new DeflateAuditError(`stored block: LEN ${len} and NLEN ${nlen} do not match`);
      r.skip(len);
      out.length += len;
      out.blocks.stored++;
      // The tail completes an empty stored block: the message ends at a byte boundary after one.
      if (bfinal === 0 && r.atEnd()) return out;
    } else if (btype === 1 || btype === 2) {
      let lit = FIXED_LIT;
      let dist = FIXED_DIST;
      if (btype === 2) {
        // RFC 1951 §3.2.7: dynamic Huffman codes.
        const hlit = r.read(5) + 257;
        const hdist = r.read(5) + 1;
        const hclen = r.read(4) + 4;
        if (hlit > 286 || hdist > 30) throw new DeflateAuditError(`dynamic block: ${hlit} literal/length or ${hdist} distance codes`);
        const clen = new Array<number>(19).fill(0);
        for (let i = 0; i < hclen; i++) clen[CLEN_ORDER[i] as number] = r.read(3);
        const clTable = buildTable(clen, 'code length code');
        const lengths = new Array<number>(hlit + hdist).fill(0);
        for (let i = 0; i < hlit + hdist; ) {
          const sym = r.decode(clTable, 'code length code');
          if (sym < 16) lengths[i++] = sym;
          else {
            let repeat: number;
            let value = 0;
            if (sym === 16) {
              if (i === 0) throw new DeflateAuditError('dynamic block: repeat of a previous length with none before');
              value = lengths[i - 1] as number;
              repeat = 3 + r.read(2);
            } else if (sym === 17) repeat = 3 + r.read(3);
            else repeat = 11 + r.read(7);
            if (i + repeat > hlit + hdist) throw new DeflateAuditError('dynamic block: code lengths overflow');
            while (repeat-- > 0) lengths[i++] = value;
          }
        }
        if (lengths[256] === 0) throw new DeflateAuditError('dynamic block: no end-of-block code');
        lit = buildTable(lengths.slice(0, hlit), 'literal/length code');
        dist = buildTable(lengths.slice(hlit), 'distance code');
        out.blocks.dynamic++;
      } else out.blocks.fixed++;
      huffmanBlock(r, lit, dist, limits, out);
    } else throw new DeflateAuditError('block type 3 (reserved)');
    if (bfinal === 1) {
      out.final = true;
      return out;
    }
    // Huffman blocks are not byte-aligned: the next block header follows at once.
  }
}
