// permessage-deflate (RFC 7692) for the load generator, on node:zlib only (never wsmount's code:
// the generator checks the server, so it must not share its codec).
//
// - the offer a browser sends, and the parsing of the server's answer;
// - a synchronous inflater that keeps its LZ77 window between messages (needed when the server
//   keeps its compression context, as ws does by default), driven through the zlib handle's
//   writeSync like Node's own zlib *Sync functions do, minus the close at the end; a public
//   fallback (inflateRawSync with the last 32 KiB of plaintext as dictionary) if that is missing;
// - the client's outgoing messages, compressed ahead of time with context takeover the way a
//   browser compresses them (see sendCycle).

import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { OP, clientFrame } from './wsclient.mjs';

/** What Chrome, Edge and undici send (Firefox and Safari send the bare `permessage-deflate`). */
export const BROWSER_OFFER = 'permessage-deflate; client_max_window_bits';

export const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const { Z_SYNC_FLUSH } = zlib.constants;

/**
 * The server's Sec-WebSocket-Extensions answer to BROWSER_OFFER: exactly one permessage-deflate
 * element with valid parameters. Throws with the reason otherwise.
 */
export function parseAgreement(value) {
  if (value === null || value === undefined || value === '') throw new Error('the server did not accept permessage-deflate (no Sec-WebSocket-Extensions in the 101)');
  const elements = value.split(',');
  if (elements.length !== 1) throw new Error(`the server answered several extensions: ${value}`);
  const [name, ...params] = elements[0].split(';').map((s) => s.trim());
  if (name !== 'permessage-deflate') throw new Error(`the server answered an extension that was not offered: ${value}`);
  const a = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, header: value };
  const seen = new Set();
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim());
    if (seen.has(k)) throw new Error(`duplicate ${k} in the server's answer: ${value}`);
    seen.add(k);
    const bits = () => {
      const n = Number(v?.replace(/^"|"$/g, ''));
      if (!Number.isInteger(n) || n < 8 || n > 15) throw new Error(`bad ${k} in the server's answer: ${value}`);
      return n;
    };
    if (k === 'server_no_context_takeover' && v === undefined) a.serverNoContextTakeover = true;
    else if (k === 'client_no_context_takeover' && v === undefined) a.clientNoContextTakeover = true;
    else if (k === 'server_max_window_bits') a.serverMaxWindowBits = bits();
    else if (k === 'client_max_window_bits') a.clientMaxWindowBits = bits();
    else throw new Error(`unexpected parameter ${p} in the server's answer: ${value}`);
  }
  return a;
}

// ---- synchronous zlib --------------------------------------------------------------------------

const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024);

/** A persistent zlib stream driven synchronously, or null if this Node lacks the private shape. */
function syncStream(z) {
  const h = z._handle;
  const state = z._writeState;
  if (h === null || typeof h !== 'object' || typeof h.writeSync !== 'function' || !(state instanceof Uint32Array)) return null;
  const s = { z, error: null };
  // zlib reports bad data through this hook during writeSync; keep it, the caller fails.
  h.onerror = (message, errno) => {
    s.error = new Error(`zlib: ${message} (errno ${errno})`);
  };
  z.on('error', () => {});
  return s;
}

/** Runs `input` through the stream with Z_SYNC_FLUSH; pushes copies of the output to `out`. */
function run(s, input, out) {
  const h = s.z._handle;
  const state = s.z._writeState;
  let inOff = 0;
  let availIn = input.length;
  for (;;) {
    h.writeSync(Z_SYNC_FLUSH, input, inOff, availIn, SCRATCH, 0, SCRATCH.length);
    if (s.error !== null) throw s.error;
    const outLeft = state[0];
    const inLeft = state[1];
    const have = SCRATCH.length - outLeft;
    if (have > 0) out.push(Buffer.from(SCRATCH.subarray(0, have)));
    inOff += availIn - inLeft;
    availIn = inLeft;
    if (outLeft !== 0) return;
  }
}

let privateOk;
function privateSync() {
  if (privateOk === undefined) {
    try {
      const d = new SyncInflater(15, true);
      const m = Buffer.from('{"probe":1,"probe2":1}');
      const c = zlib.deflateRawSync(m, { finishFlush: Z_SYNC_FLUSH });
      privateOk = d.inflate([c.subarray(0, c.length - 4)]).equals(m) && d.inflate([c.subarray(0, c.length - 4)]).equals(m);
      d.close();
    } catch {
      privateOk = false;
    }
  }
  return privateOk;
}

/**
 * Inflates the messages of one connection, in order, keeping the window between them (RFC 7692
 * §7.2.2 with context takeover). `inflate(parts)` takes a message's compressed payload (without
 * the 00 00 ff ff tail) as a list of fragments.
 */
export class SyncInflater {
  constructor(windowBits = 15, forcePrivate = false) {
    this.windowBits = windowBits;
    this.s = forcePrivate || privateSync() ? syncStream(zlib.createInflateRaw({ windowBits })) : null;
    if (forcePrivate && this.s === null) throw new Error('no private zlib handle');
    this.history = this.s === null ? Buffer.alloc(0) : null;
  }

  inflate(parts) {
    if (this.s !== null) {
      const out = [];
      for (const p of parts) run(this.s, p, out);
      run(this.s, TRAILER, out);
      return out.length === 1 ? out[0] : Buffer.concat(out);
    }
    // Public fallback: the previous plaintext as the dictionary stands in for the window.
    const input = Buffer.concat([...parts, TRAILER]);
    const opts = { windowBits: this.windowBits, finishFlush: Z_SYNC_FLUSH };
    if (this.history.length > 0) opts.dictionary = this.history;
    const plain = zlib.inflateRawSync(input, opts);
    const keep = 1 << 15;
    this.history = plain.length >= keep ? plain.subarray(plain.length - keep) : Buffer.concat([this.history, plain]).subarray(-keep);
    return plain;
  }

  close() {
    this.s?.z.close();
    this.s = null;
  }
}

/** One message inflated on its own (the server reset its context, or it is the first message). */
export function inflateOnce(parts) {
  return zlib.inflateRawSync(parts.length === 1 ? Buffer.concat([parts[0], TRAILER]) : Buffer.concat([...parts, TRAILER]), { finishFlush: Z_SYNC_FLUSH });
}

// ---- the client's outgoing messages ---------------------------------------------------------------

/**
 * The frames a client sends, compressed ahead of time so that compressing costs the generator
 * nothing during a measurement (the server's work is the same: it inflates real deflate data).
 *
 * With context takeover (the client was not told client_no_context_takeover), a browser's
 * compressor keeps its window, so message n may refer back into messages before it. To send an
 * endless stream of such messages from a fixed buffer, the corpus (K messages) is compressed
 * twice through one deflate stream: pass 1 ("primer", sent once per connection first) and pass 2,
 * which then repeats forever. Pass 2's first message refers back only into the 32 KiB before it,
 * which is the end of the corpus either way: the receiver's window holds the same bytes at every
 * repetition, so every repetition decodes to the same plaintext. The server's inflater therefore
 * sees exactly what a browser sending this corpus in a loop would send.
 *
 * Message s of a connection (s = 0, 1, …) is frame `pos(s)` of `buf`: frames are laid out
 * pass 1, pass 2, pass 2 so that any run of up to K consecutive messages is one slice.
 */
export function sendCycle(corpus, agreement, { opcode = OP.TEXT, level = 6, memLevel = 8 } = {}) {
  const K = corpus.length;
  const windowBits = Math.max(9, agreement.clientMaxWindowBits); // zlib cannot do 8; 9 is what Node and browsers use
  const compressed = [];
  if (agreement.clientNoContextTakeover) {
    for (const m of corpus) compressed.push(deflateAlone(m, { windowBits, level, memLevel }));
    compressed.push(...compressed);
  } else {
    const s = syncStream(zlib.createDeflateRaw({ windowBits, level, memLevel }));
    if (s === null) throw new Error('sendCycle: this Node has no private zlib handle (needed to compress with context takeover ahead of time)');
    for (let pass = 0; pass < 2; pass++) {
      for (const m of corpus) {
        const out = [];
        run(s, m, out);
        const c = Buffer.concat(out);
        if (!c.subarray(c.length - 4).equals(TRAILER)) throw new Error('sendCycle: deflate output does not end in 00 00 ff ff');
        compressed.push(c.subarray(0, c.length - 4));
      }
    }
    s.z.close();
  }
  const frames = compressed.map((c) => clientFrame(opcode | 0x40, c)); // RSV1: compressed (RFC 7692 §6)
  const layout = [...frames, ...frames.slice(K)];
  const offsets = new Array(layout.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < layout.length; i++) offsets[i + 1] = offsets[i] + layout[i].length;
  const buf = Buffer.concat(layout);
  const wire = compressed.slice(K).reduce((s, c) => s + c.length, 0);
  const plain = corpus.reduce((s, m) => s + m.length, 0);
  return {
    K,
    buf,
    offsets,
    /** compressed / plain over one repetition (pass 2) */
    ratio: wire / plain,
    pos: (s) => (s < K ? s : K + ((s - K) % K)),
    /** the bytes of messages s … s+k-1 (k ≤ K) */
    slice(s, k) {
      const p = this.pos(s);
      return buf.subarray(offsets[p], offsets[p + k]);
    },
  };
}

/** One message compressed on its own, tail stripped. */
export function deflateAlone(m, { windowBits = 15, level = 6, memLevel = 8 } = {}) {
  const c = zlib.deflateRawSync(m, { finishFlush: Z_SYNC_FLUSH, windowBits: Math.max(9, windowBits), level, memLevel });
  return c.subarray(0, c.length - 4);
}
