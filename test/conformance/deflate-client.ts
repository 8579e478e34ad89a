/**
 * The client side of permessage-deflate (RFC 7692) for the conformance suite, on top of the
 * independent raw client (test/helpers/raw.ts): offers, a strict reading of the server's answer,
 * compression of what we send and decompression of what the server sends.
 *
 * Written with node:zlib only and never with anything from src/ (src/extensions holds the
 * server's codec), so a codec bug cannot hide behind a matching bug in the test. It also keeps
 * away from the techniques the server uses (the private synchronous zlib handle, inflating with a
 * dictionary): each direction here is one ordinary zlib stream, written and flushed per message,
 * and reset per message under no context takeover.
 *
 * Behaviour follows the Autobahn TestSuite's client (autobahn-python compress_deflate.py):
 * - offers are written as `PerMessageDeflateOffer.get_extension_string()` writes them;
 * - the answer is parsed like `PerMessageDeflateResponse.parse()`: only the four parameters, each
 *   at most once, window values 9..15 only, the two no_context_takeover flags without a value;
 * - what the client then does follows the answer alone (`PerMessageDeflate.create_from_response_accept`):
 *   it compresses every message it sends, resets its compressor per message only when the answer
 *   says client_no_context_takeover, uses client_max_window_bits from the answer (else 15), and
 *   inflates with server_max_window_bits from the answer (else 15), resetting per message when
 *   the answer says server_no_context_takeover.
 * On top of Autobahn it checks the answer against the offers (RFC 7692 §7.1; {@link matchOffer}),
 * every server frame's RSV bits (§6.1), and, with `audit`, every LZ77 distance the server used
 * against the window and context rules it agreed to (deflate-audit.ts).
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { RawClient, type RawFrame, closePayload } from '../helpers/raw.js';
import { DeflateAuditError, auditDeflate } from './deflate-audit.js';

export const OPCODE = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;
/** RSV1 in the raw client's 3-bit `rsv` (RSV1 = 4, RSV2 = 2, RSV3 = 1). */
export const RSV1 = 4;
/** RFC 7692 §7.2.1: what a sync flush ends with, stripped by the sender, appended by the receiver. */
export const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// ---- offers -----------------------------------------------------------------------------------

/** One permessage-deflate offer, in Autobahn's `PerMessageDeflateOffer` terms. */
export interface DeflateOffer {
  /** `client_no_context_takeover` (Autobahn `acceptNoContextTakeover`). */
  clientNoContextTakeover?: boolean;
  /** `client_max_window_bits`, bare (true) or with a value (Autobahn `acceptMaxWindowBits`). */
  clientMaxWindowBits?: boolean | number;
  /** `server_no_context_takeover` (Autobahn `requestNoContextTakeover`). */
  serverNoContextTakeover?: boolean;
  /** `server_max_window_bits=N` (Autobahn `requestMaxWindowBits`; 0 or absent: not sent). */
  serverMaxWindowBits?: number;
}

/** Autobahn's default `PerMessageDeflateOffer()`: the offer of cases 12.* and 13.1. */
export const DEFAULT_OFFER: DeflateOffer = Object.freeze({ clientNoContextTakeover: true, clientMaxWindowBits: true });

/** One offer as Autobahn writes it (`get_extension_string`): fixed parameter order. */
export function formatOffer(o: DeflateOffer): string {
  let s = 'permessage-deflate';
  if (o.clientNoContextTakeover === true) s += '; client_no_context_takeover';
  if (o.clientMaxWindowBits === true) s += '; client_max_window_bits';
  else if (typeof o.clientMaxWindowBits === 'number') s += `; client_max_window_bits=${o.clientMaxWindowBits}`;
  if (o.serverNoContextTakeover === true) s += '; server_no_context_takeover';
  if (o.serverMaxWindowBits !== undefined && o.serverMaxWindowBits !== 0) s += `; server_max_window_bits=${o.serverMaxWindowBits}`;
  return s;
}

/** The `Sec-WebSocket-Extensions` value for several offers, in order of preference (RFC 7692 §5). */
export function formatOffers(offers: readonly DeflateOffer[]): string {
  return offers.map(formatOffer).join(', ');
}

// ---- the answer ---------------------------------------------------------------------------------

/** What the server's `Sec-WebSocket-Extensions` answer agreed to (0 = parameter absent). */
export interface DeflateAgreement {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
  /** The header value as received. */
  header: string;
}

/** The server's answer breaks RFC 6455 §9.1 / RFC 7692, or Autobahn's client would refuse it. */
export class DeflateNegotiationError extends Error {}

const TCHAR = new Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
const isToken = (s: string): boolean => s.length > 0 && [...s].every((ch) => TCHAR.has(ch));

/**
 * Splits an extensions header into elements of [name, params] by RFC 6455 §9.1 (token names,
 * token or quoted-string values, optional whitespace around separators). Throws on anything else.
 * Parameter values are unquoted; a parameter without a value is `true`.
 */
export function parseExtensionsHeader(value: string): { name: string; params: [string, string | true][] }[] {
  const out: { name: string; params: [string, string | true][] }[] = [];
  let i = 0;
  const n = value.length;
  const ows = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const token = (what: string): string => {
    const start = i;
    while (i < n && TCHAR.has(value[i] as string)) i++;
    if (i === start) throw new DeflateNegotiationError(`Sec-WebSocket-Extensions ${JSON.stringify(value)}: expected ${what} at ${start}`);
    return value.slice(start, i);
  };
  for (;;) {
    ows();
    const name = token('an extension name');
    const params: [string, string | true][] = [];
    ows();
    while (value[i] === ';') {
      i++;
      ows();
      const p = token('a parameter name');
      ows();
      let v: string | true = true;
      if (value[i] === '=') {
        i++;
        ows();
        if (value[i] === '"') {
          i++;
          let q = '';
          for (;;) {
            if (i >= n) throw new DeflateNegotiationError(`Sec-WebSocket-Extensions ${JSON.stringify(value)}: unterminated quoted string`);
            const ch = value[i++] as string;
            if (ch === '"') break;
            if (ch === '\\') {
              if (i >= n) throw new DeflateNegotiationError(`Sec-WebSocket-Extensions ${JSON.stringify(value)}: unterminated quoted string`);
              q += value[i++] as string;
            } else q += ch;
          }
          // RFC 6455 §9.1: a quoted value must be a token once unquoted.
          if (!isToken(q)) throw new DeflateNegotiationError(`Sec-WebSocket-Extensions ${JSON.stringify(value)}: quoted value ${JSON.stringify(q)} is not a token`);
          v = q;
        } else v = token('a parameter value');
        ows();
      }
      params.push([p, v]);
    }
    out.push({ name, params });
    if (i >= n) return out;
    if (value[i] !== ',') throw new DeflateNegotiationError(`Sec-WebSocket-Extensions ${JSON.stringify(value)}: unexpected ${JSON.stringify(value[i])} at ${i}`);
    i++;
  }
}

/** RFC 7692 §7.1.2: a window value is a decimal integer without leading zeroes; Autobahn takes 9..15. */
function windowValue(name: string, v: string | true): number {
  if (v === true || !/^[1-9][0-9]?$/.test(v)) throw new DeflateNegotiationError(`${name} needs a value of 9..15, got ${v === true ? 'none' : JSON.stringify(v)}`);
  const bits = Number(v);
  if (bits < 9 || bits > 15) throw new DeflateNegotiationError(`${name}=${bits}: Autobahn's client accepts only 9..15 (PerMessageDeflateResponse.parse)`);
  return bits;
}

/**
 * Reads the server's `Sec-WebSocket-Extensions` answer: null when it declined (no header), else
 * what it agreed to. Throws a {@link DeflateNegotiationError} for an answer a strict client must
 * fail the connection on: an empty value, an extension we did not offer (RFC 6455 §4.1), two
 * permessage-deflate elements, or anything `PerMessageDeflateResponse.parse` rejects.
 */
export function parseDeflateResponse(header: string | undefined): DeflateAgreement | null {
  if (header === undefined) return null;
  if (header.trim() === '') throw new DeflateNegotiationError('empty Sec-WebSocket-Extensions header (RFC 6455 §9.1 needs at least one extension)');
  const elements = parseExtensionsHeader(header);
  for (const e of elements) {
    if (e.name.toLowerCase() !== 'permessage-deflate') throw new DeflateNegotiationError(`the server answered extension ${JSON.stringify(e.name)}, which was not offered (RFC 6455 §4.1)`);
  }
  if (elements.length > 1) throw new DeflateNegotiationError(`the server accepted permessage-deflate ${elements.length} times: ${JSON.stringify(header)}`);
  const a: DeflateAgreement = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 0, clientMaxWindowBits: 0, header };
  const seen = new Set<string>();
  for (const [name, v] of (elements[0] as { params: [string, string | true][] }).params) {
    if (seen.has(name)) throw new DeflateNegotiationError(`parameter ${name} appears twice`);
    seen.add(name);
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      if (v !== true) throw new DeflateNegotiationError(`${name} takes no value, got ${JSON.stringify(v)}`);
      if (name === 'server_no_context_takeover') a.serverNoContextTakeover = true;
      else a.clientNoContextTakeover = true;
    } else if (name === 'server_max_window_bits') a.serverMaxWindowBits = windowValue(name, v);
    else if (name === 'client_max_window_bits') a.clientMaxWindowBits = windowValue(name, v);
    else throw new DeflateNegotiationError(`unknown parameter ${JSON.stringify(name)}`);
  }
  return a;
}

/**
 * Why `a` is not a valid answer to offer `o` (RFC 7692 §7.1), or an empty list if it is:
 * server_no_context_takeover offered ⇒ answered (§7.1.1.1); server_max_window_bits=N offered ⇒
 * answered with a value ≤ N (§7.1.2.1); client_max_window_bits answered ⇒ offered, and ≤ the
 * offered value if it had one (§7.1.2.2). The server may add server_no_context_takeover,
 * client_no_context_takeover and server_max_window_bits unasked.
 */
export function offerViolations(a: DeflateAgreement, o: DeflateOffer): string[] {
  const v: string[] = [];
  if (o.serverNoContextTakeover === true && !a.serverNoContextTakeover) v.push('server_no_context_takeover was offered but not answered (RFC 7692 §7.1.1.1)');
  const smwb = o.serverMaxWindowBits ?? 0;
  if (smwb !== 0) {
    if (a.serverMaxWindowBits === 0) v.push(`server_max_window_bits=${smwb} was offered but not answered (RFC 7692 §7.1.2.1)`);
    else if (a.serverMaxWindowBits > smwb) v.push(`server_max_window_bits=${a.serverMaxWindowBits} answered above the offered ${smwb} (RFC 7692 §7.1.2.1)`);
  }
  if (a.clientMaxWindowBits !== 0) {
    if (o.clientMaxWindowBits === undefined || o.clientMaxWindowBits === false) v.push('client_max_window_bits answered but not offered (RFC 7692 §7.1.2.2)');
    else if (typeof o.clientMaxWindowBits === 'number' && a.clientMaxWindowBits > o.clientMaxWindowBits) {
      v.push(`client_max_window_bits=${a.clientMaxWindowBits} answered above the offered ${o.clientMaxWindowBits} (RFC 7692 §7.1.2.2)`);
    }
  }
  return v;
}

/** The index of the first offer `a` validly answers; throws with every offer's violations if none. */
export function matchOffer(a: DeflateAgreement, offers: readonly DeflateOffer[]): number {
  const why: string[] = [];
  for (let i = 0; i < offers.length; i++) {
    const v = offerViolations(a, offers[i] as DeflateOffer);
    if (v.length === 0) return i;
    why.push(`offer ${i + 1} (${formatOffer(offers[i] as DeflateOffer)}): ${v.join('; ')}`);
  }
  throw new DeflateNegotiationError(`the answer ${JSON.stringify(a.header)} fits none of the offers: ${why.join(' | ')}`);
}

// ---- compression, one zlib stream per direction ----------------------------------------------------

/** Runs `write` against a zlib stream and collects what it outputs until the flush completes. */
function throughStream(stream: zlib.DeflateRaw | zlib.InflateRaw, write: () => void, maxOutput: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxOutput && !failed) {
        failed = true;
        cleanup();
        reject(new Error(`inflated past ${maxOutput} bytes`));
        stream.destroy();
        return;
      }
      chunks.push(chunk);
    };
    const onError = (err: Error): void => {
      if (failed) return;
      failed = true;
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.on('error', onError);
    write();
    stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      if (failed) return;
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    });
  });
}

/** The client's compressor (RFC 7692 §7.2.1). */
export class MessageDeflater {
  private readonly stream: zlib.DeflateRaw;
  constructor(
    windowBits: number,
    private readonly noContextTakeover: boolean,
    level: number = zlib.constants.Z_DEFAULT_COMPRESSION,
    memLevel = 8,
  ) {
    // zlib ≥ 1.2.9 refuses raw deflate with an 8-bit window; 9 stays inside any window of 2^8
    // bytes because zlib never reaches further back than 2^9 − 262 = 250 bytes.
    this.stream = zlib.createDeflateRaw({ windowBits: Math.max(9, windowBits), level, memLevel, chunkSize: 64 * 1024 });
  }

  /** Compresses one message: sync flush, then the 00 00 ff ff tail stripped. */
  async compress(message: Buffer): Promise<Buffer> {
    // §7.2.3.6: the empty message is a single 00 (a sync flush with no input after another one
    // produces nothing at all).
    if (message.length === 0) return Buffer.from([0x00]);
    const out = await throughStream(this.stream, () => this.stream.write(message), Infinity);
    if (out.length < 4 || !out.subarray(out.length - 4).equals(TAIL)) throw new Error(`zlib sync flush did not end in 00 00 ff ff: ${out.subarray(-8).toString('hex')}`);
    if (this.noContextTakeover) this.stream.reset();
    return out.subarray(0, out.length - 4);
  }

  close(): void {
    this.stream.close();
  }
}

/** The client's decompressor (RFC 7692 §7.2.2). */
export class MessageInflater {
  private readonly stream: zlib.InflateRaw;
  constructor(
    windowBits: number,
    private readonly noContextTakeover: boolean,
    private readonly maxOutput = 64 * 1024 * 1024,
  ) {
    this.stream = zlib.createInflateRaw({ windowBits, chunkSize: 64 * 1024 });
  }

  /** Inflates one message's payload (all fragments joined) with the tail appended. */
  async inflate(payload: Buffer): Promise<Buffer> {
    const out = await throughStream(
      this.stream,
      () => {
        this.stream.write(payload);
        this.stream.write(TAIL);
      },
      this.maxOutput,
    );
    if (this.noContextTakeover) this.stream.reset();
    return out;
  }

  close(): void {
    this.stream.close();
  }
}

// ---- frames -------------------------------------------------------------------------------------------

let keyPool = Buffer.alloc(0);
let keyOffset = 0;
/** 4 random mask bytes (RFC 6455 §5.3), from a pool refilled 16 KiB at a time. */
function maskKey(): Buffer {
  if (keyOffset + 4 > keyPool.length) {
    keyPool = randomBytes(16 * 1024);
    keyOffset = 0;
  }
  keyOffset += 4;
  return keyPool.subarray(keyOffset - 4, keyOffset);
}

/** One masked client frame with any RSV bits; masks 32 bits at a time (large payloads are common here). */
export function clientFrame(opcode: number, payload: Buffer, fin: boolean, rsv = 0): Buffer {
  const n = payload.length;
  const headLen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headLen + 4 + n);
  out[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  const key = maskKey();
  key.copy(out, headLen);
  payload.copy(out, headLen + 4);
  const body = out.subarray(headLen + 4);
  // Byte-wise up to a 4-aligned address, then whole words with the key rotated to match, then the tail.
  let i = 0;
  const lead = Math.min(n, (4 - (body.byteOffset & 3)) & 3);
  for (; i < lead; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  const words = (n - i) >>> 2;
  if (words > 0) {
    const rotated = Uint8Array.of(key[i & 3] as number, key[(i + 1) & 3] as number, key[(i + 2) & 3] as number, key[(i + 3) & 3] as number);
    const w = new Uint32Array(rotated.buffer)[0] as number;
    const view = new Uint32Array(body.buffer, body.byteOffset + i, words);
    for (let j = 0; j < words; j++) view[j] = (view[j] as number) ^ w;
    i += words << 2;
  }
  for (; i < n; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  return out;
}

/**
 * The frames of one message: the first carries the opcode and `rsv`, continuations carry RSV 0
 * (RFC 7692 §6.1: RSV1 on the first frame only); `fragmentSize` > 0 splits the payload (for a
 * compressed message: the compressed bytes, as Autobahn's auto-fragmentation does).
 */
export function messageFrames(opcode: number, payload: Buffer, rsv: number, fragmentSize = 0): Buffer {
  if (fragmentSize <= 0 || payload.length <= fragmentSize) return clientFrame(opcode, payload, true, rsv);
  const frames: Buffer[] = [];
  for (let off = 0; off < payload.length; off += fragmentSize) {
    const end = Math.min(off + fragmentSize, payload.length);
    frames.push(clientFrame(off === 0 ? opcode : OPCODE.CONT, payload.subarray(off, end), end === payload.length, off === 0 ? rsv : 0));
  }
  return Buffer.concat(frames);
}

// ---- the client -----------------------------------------------------------------------------------------

/** A message from the server, decompressed. */
export interface Message {
  opcode: number;
  payload: Buffer;
  /** Whether it came compressed (RSV1 on its first frame). */
  compressed: boolean;
  /** Bytes of payload on the wire (compressed size when compressed). */
  wireLength: number;
  frames: number;
}

export interface DeflateClientOptions {
  /** zlib level for what the client compresses (Autobahn: zlib's default, 6). */
  level?: number;
  memLevel?: number;
  /** Walk every compressed message from the server and check its LZ77 distances (deflate-audit.ts). */
  audit?: boolean;
  /** Send the offer but compress nothing (a client may always send uncompressed). */
  neverCompress?: boolean;
}

/** The server broke a framing rule the client must fail the connection for. */
export class ServerFrameError extends Error {}

export class DeflateClient {
  readonly stats = {
    /** Messages received compressed and uncompressed. */
    compressedIn: 0,
    plainIn: 0,
    /** Compressed messages from the server that referred back into an earlier one (with `audit`). */
    takeoverIn: 0,
    wireBytesIn: 0,
    bytesIn: 0,
    compressedOut: 0,
    wireBytesOut: 0,
    bytesOut: 0,
  };
  private readonly deflater: MessageDeflater | null;
  private readonly inflater: MessageInflater | null;
  /** Plaintext bytes of the server's compressed messages so far (what its window can hold). */
  private history = 0;

  private constructor(
    readonly raw: RawClient,
    /** What the server agreed to; null when it declined compression. */
    readonly agreement: DeflateAgreement | null,
    private readonly options: DeflateClientOptions,
  ) {
    if (agreement === null) {
      this.deflater = null;
      this.inflater = null;
      return;
    }
    this.deflater = new MessageDeflater(agreement.clientMaxWindowBits || 15, agreement.clientNoContextTakeover, options.level, options.memLevel);
    this.inflater = new MessageInflater(agreement.serverMaxWindowBits || 15, agreement.serverNoContextTakeover);
  }

  /**
   * Opens a WebSocket to `path` with `offers` (a list, or a raw header value) and reads the
   * answer strictly. With a list, the answer must fit one of the offers (RFC 7692 §7.1).
   * `openRaw` opens the raw client: an HTTP/1.1 upgrade by default, or the conformance
   * harness's `connectRaw` (HTTP/1.1 or an RFC 8441 stream, whichever the run is over).
   */
  static async connect(
    port: number,
    path: string,
    offers: readonly DeflateOffer[] | string,
    options: DeflateClientOptions = {},
    extraHeaders: Record<string, string> = {},
    openRaw: (port: number, path: string, headers: Record<string, string>) => Promise<RawClient> = (p, at, h) => RawClient.connect(p, at, h),
  ): Promise<DeflateClient> {
    const header = typeof offers === 'string' ? offers : formatOffers(offers);
    const raw = await openRaw(port, path, { ...extraHeaders, 'Sec-WebSocket-Extensions': header });
    try {
      const agreement = parseDeflateResponse(raw.headers['sec-websocket-extensions']);
      if (agreement !== null && typeof offers !== 'string') matchOffer(agreement, offers);
      return new DeflateClient(raw, agreement, options);
    } catch (err) {
      raw.destroy();
      throw err;
    }
  }

  get compressing(): boolean {
    return this.deflater !== null && this.options.neverCompress !== true;
  }

  /**
   * The wire bytes of one message: compressed (RSV1 on the first frame) when compression was
   * agreed and `compress` is not false, split into frames of `fragmentSize` bytes if > 0. Call in
   * send order: under context takeover each message builds on the one before.
   */
  async encode(opcode: number, payload: Buffer, options: { compress?: boolean; fragmentSize?: number } = {}): Promise<Buffer> {
    const compress = this.compressing && options.compress !== false;
    const body = compress ? await (this.deflater as MessageDeflater).compress(payload) : payload;
    this.stats.bytesOut += payload.length;
    this.stats.wireBytesOut += body.length;
    if (compress) this.stats.compressedOut++;
    return messageFrames(opcode, body, compress ? RSV1 : 0, options.fragmentSize ?? 0);
  }

  /** Compresses (see {@link encode}) and writes one message. */
  async send(opcode: number, payload: Buffer | string, options: { compress?: boolean; fragmentSize?: number } = {}): Promise<void> {
    this.raw.sendRaw(await this.encode(opcode, typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload, options));
  }

  /**
   * The next message from the server, decompressed. Pings are answered and pongs skipped on the
   * way; a close frame comes back as a message with opcode 8. Throws a {@link ServerFrameError}
   * when the server breaks RFC 6455 §5 or RFC 7692 §6.1 framing, or sends what does not inflate.
   */
  async nextMessage(timeout = 5000): Promise<Message> {
    const deadline = Date.now() + timeout;
    const parts: Buffer[] = [];
    let first: RawFrame | undefined;
    let wire = 0;
    for (;;) {
      const f = await this.raw.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.masked) throw new ServerFrameError('the server masked a frame (RFC 6455 §5.1)');
      if ((f.rsv & 3) !== 0) throw new ServerFrameError(`the server set RSV2/RSV3 (rsv=${f.rsv}) with no extension that defines them (RFC 6455 §5.2)`);
      if (f.opcode >= 0x8) {
        if (f.rsv !== 0) throw new ServerFrameError(`the server set RSV1 on a control frame 0x${f.opcode.toString(16)} (RFC 7692 §6.1)`);
        if (!f.fin) throw new ServerFrameError('the server fragmented a control frame (RFC 6455 §5.5)');
        if (f.opcode === OPCODE.PING) {
          this.raw.sendRaw(clientFrame(OPCODE.PONG, f.payload, true));
          continue;
        }
        if (f.opcode === OPCODE.PONG) continue;
        if (f.opcode === OPCODE.CLOSE) return { opcode: OPCODE.CLOSE, payload: f.payload, compressed: false, wireLength: f.payload.length, frames: 1 };
        throw new ServerFrameError(`the server sent reserved opcode 0x${f.opcode.toString(16)}`);
      }
      if (first === undefined) {
        if (f.opcode === OPCODE.CONT) throw new ServerFrameError('the server sent a continuation with no message open (RFC 6455 §5.4)');
        if (f.opcode !== OPCODE.TEXT && f.opcode !== OPCODE.BINARY) throw new ServerFrameError(`the server sent reserved opcode 0x${f.opcode.toString(16)}`);
        if (f.rsv === RSV1 && this.agreement === null) throw new ServerFrameError('the server set RSV1 but compression was not negotiated (RFC 6455 §5.2)');
        first = f;
      } else {
        if (f.opcode !== OPCODE.CONT) throw new ServerFrameError(`the server started a new message (0x${f.opcode.toString(16)}) inside a fragmented one (RFC 6455 §5.4)`);
        if (f.rsv !== 0) throw new ServerFrameError('the server set RSV1 on a continuation frame (RFC 7692 §6.1)');
      }
      parts.push(f.payload);
      wire += f.payload.length;
      if (f.fin) break;
    }
    const joined = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, wire);
    const compressed = first.rsv === RSV1;
    let payload = joined;
    if (compressed) {
      if (joined.length === 0) {
        throw new ServerFrameError('the server sent an empty payload with RSV1: not a DEFLATE encoding (RFC 7692 §7.2.3.6: the empty message compresses to 00)');
      }
      const a = this.agreement as DeflateAgreement;
      const windowBits = a.serverMaxWindowBits || 15;
      let audited = -1;
      if (this.options.audit === true) {
        try {
          const audit = auditDeflate(joined, { windowBits, history: a.serverNoContextTakeover ? 0 : this.history });
          audited = audit.length;
          this.history += audited;
          if (audit.usedHistory) this.stats.takeoverIn++;
        } catch (err) {
          if (err instanceof DeflateAuditError) {
            throw new ServerFrameError(
              `the server's compressed message ${this.stats.compressedIn + 1} breaks the agreement ${JSON.stringify(a.header)}: ${err.message}`,
            );
          }
          throw err;
        }
      }
      try {
        payload = await (this.inflater as MessageInflater).inflate(joined);
      } catch (err) {
        throw new ServerFrameError(`the server's compressed message ${this.stats.compressedIn + 1} does not inflate with window bits ${windowBits}: ${(err as Error).message}`);
      }
      if (audited >= 0 && audited !== payload.length) throw new Error(`deflate-audit counted ${audited} bytes where zlib inflated ${payload.length}: a bug in the test`);
      this.stats.compressedIn++;
    } else this.stats.plainIn++;
    this.stats.wireBytesIn += wire;
    this.stats.bytesIn += payload.length;
    return { opcode: first.opcode, payload, compressed, wireLength: wire, frames: parts.length };
  }

  /**
   * Reads messages until the server's close frame, then waits for TCP close. Returns the close
   * code (undefined for an empty close), the reason and the messages that came first.
   */
  async expectClose(timeout = 5000): Promise<{ code: number | undefined; reason: string; before: Message[]; tcpClosed: boolean }> {
    const deadline = Date.now() + timeout;
    const before: Message[] = [];
    for (;;) {
      const m = await this.nextMessage(Math.max(1, deadline - Date.now()));
      if (m.opcode !== OPCODE.CLOSE) {
        before.push(m);
        continue;
      }
      const code = m.payload.length >= 2 ? m.payload.readUInt16BE(0) : undefined;
      const reason = m.payload.subarray(2).toString('utf8');
      const tcpClosed = await this.raw.waitClosed(Math.max(1, deadline - Date.now()));
      this.release();
      return { code, reason, before, tcpClosed };
    }
  }

  /** Sends a close frame, then reads as {@link expectClose}. */
  close(code = 1000, reason = '', timeout = 5000): ReturnType<DeflateClient['expectClose']> {
    this.raw.sendRaw(clientFrame(OPCODE.CLOSE, closePayload(code, reason), true));
    return this.expectClose(timeout);
  }

  /** Frees the zlib streams (close() and expectClose() do it). */
  release(): void {
    this.deflater?.close();
    this.inflater?.close();
  }

  destroy(): void {
    this.raw.destroy();
    this.release();
  }
}
