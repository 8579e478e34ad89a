/**
 * The client side of permessage-deflate (RFC 7692) for the deflate-* reliability tests, built on
 * node:zlib and the raw client only — never on src/extensions — so the tests check the server's
 * codec instead of mirroring it: the offers browsers send, one-shot and context-takeover
 * compression of what we send, inflating what the server sends, compressed frames split into
 * fragments (RSV1 on the first only, §6.1), and zip bombs built without deflating anything big.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { RawClient, type RawFrame, encodeClientFrame } from '../helpers/raw.js';

/** RFC 7692 §7.2.1: a sync-flushed DEFLATE message ends with these; the sender strips them. */
export const TRAILER: Buffer = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;

/** Chrome's offer: the client keeps its context (the server needs an inflate window per connection). */
export const OFFER_TAKEOVER = 'permessage-deflate; client_max_window_bits';
/** An offer with client_no_context_takeover (the server may use one shared inflater). */
export const OFFER_NO_TAKEOVER = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';

/** A raw client whose handshake offered `offer`; throws unless the 101 accepted permessage-deflate. */
export async function connectDeflate(port: number, path: string, offer: string = OFFER_TAKEOVER): Promise<RawClient> {
  const client = await RawClient.connect(port, path, { 'Sec-WebSocket-Extensions': offer });
  const agreed = client.headers['sec-websocket-extensions'] ?? '';
  if (!agreed.startsWith('permessage-deflate')) {
    client.destroy();
    throw new Error(`permessage-deflate was not agreed (Sec-WebSocket-Extensions: ${JSON.stringify(agreed)})`);
  }
  return client;
}

/** Compresses one message with a fresh context, trailer stripped (§7.2.1). */
export function compress(data: Buffer | string, options: zlib.ZlibOptions = {}): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { ...options, finishFlush: SYNC_FLUSH });
  if (!out.subarray(out.length - 4).equals(TRAILER)) throw new Error('zlib did not end the message with 00 00 ff ff');
  return out.subarray(0, out.length - 4);
}

/**
 * A client compressor with context takeover: one zlib stream, a sync flush per message, so
 * later messages refer back into earlier ones (what browsers send). Async (zlib streams are).
 */
export class StreamDeflater {
  private readonly stream = zlib.createDeflateRaw({ windowBits: 15 });
  private pieces: Buffer[] = [];

  constructor() {
    this.stream.on('data', (chunk: Buffer) => this.pieces.push(chunk));
  }

  async compress(data: Buffer | string): Promise<Buffer> {
    this.stream.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    await new Promise<void>((resolve) => this.stream.flush(SYNC_FLUSH, () => resolve()));
    const out = Buffer.concat(this.pieces);
    this.pieces = [];
    if (!out.subarray(out.length - 4).equals(TRAILER)) throw new Error('zlib did not end the message with 00 00 ff ff');
    return out.subarray(0, out.length - 4);
  }

  close(): void {
    this.stream.close();
  }
}

/**
 * Inflates what the server sends. With `takeover` (the server kept its context) it carries the
 * last 32 KiB of plaintext as the next message's dictionary (research/wave2.md §1.5.4).
 */
export class ClientInflater {
  private history: Buffer | null = null;

  constructor(private readonly takeover = false) {}

  inflate(payload: Buffer): Buffer {
    const dictionary = this.takeover && this.history !== null ? { dictionary: this.history } : {};
    const out = zlib.inflateRawSync(Buffer.concat([payload, TRAILER]), { finishFlush: SYNC_FLUSH, windowBits: 15, ...dictionary });
    if (this.takeover) {
      const all = this.history === null ? out : Buffer.concat([this.history, out]);
      this.history = Buffer.from(all.subarray(Math.max(0, all.length - 32 * 1024)));
    }
    return out;
  }
}

/** A data message from the server (fragments joined), inflated when it came compressed. */
export interface Message {
  opcode: number;
  data: Buffer;
  compressed: boolean;
}

/**
 * Reads frames until the next whole data message; control frames met on the way go to
 * `control` (in order). Throws on a close frame or a protocol slip (RSV1 on a continuation).
 */
export async function nextMessage(client: RawClient, options: { timeout?: number; inflater?: ClientInflater; control?: RawFrame[] } = {}): Promise<Message> {
  const deadline = Date.now() + (options.timeout ?? 5000);
  const inflater = options.inflater ?? new ClientInflater();
  const parts: Buffer[] = [];
  let first: RawFrame | null = null;
  for (;;) {
    const f = await client.nextFrame(Math.max(1, deadline - Date.now()));
    if (f.opcode === 0x8) throw new Error(`close frame (${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'no code'} ${f.payload.subarray(2).toString()}) instead of a message`);
    if (f.opcode >= 0x8) {
      if (f.rsv !== 0) throw new Error(`control frame with RSV ${f.rsv}`);
      options.control?.push(f);
      continue;
    }
    if (first === null) {
      if (f.opcode === 0x0) throw new Error('continuation frame with no message started');
      first = f;
    } else if (f.opcode !== 0x0 || f.rsv !== 0) {
      throw new Error(`expected a continuation without RSV bits, got opcode ${f.opcode} rsv ${f.rsv}`);
    }
    parts.push(f.payload);
    if (!f.fin) continue;
    const payload = Buffer.concat(parts);
    const compressed = first.rsv === 4;
    if (first.rsv !== 0 && !compressed) throw new Error(`RSV ${first.rsv} on a data frame`);
    return { opcode: first.opcode, data: compressed ? inflater.inflate(payload) : payload, compressed };
  }
}

/**
 * The frames (masked, concatenated) of one message whose payload `payload` is split at `cuts`
 * (ascending offsets inside it): RSV1 on the first frame only when `rsv1`, FIN on the last.
 */
export function fragmentedFrames(opcode: number, payload: Buffer, cuts: readonly number[], rsv1 = true): Buffer {
  const bounds = [0, ...cuts, payload.length];
  const frames: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const piece = payload.subarray(bounds[i] as number, bounds[i + 1] as number);
    const last = i + 2 === bounds.length;
    frames.push(encodeClientFrame(i === 0 ? opcode : 0x0, piece, { fin: last, rsv: i === 0 && rsv1 ? 4 : 0 }));
  }
  return Buffer.concat(frames);
}

/** `n - 1` cut points that split `length` bytes into `n` pieces of about equal size. */
export function evenCuts(length: number, n: number): number[] {
  return Array.from({ length: n - 1 }, (_, i) => Math.floor(((i + 1) * length) / n));
}

/** One compressed message as a single frame (RSV1). */
export function compressedFrame(opcode: number, compressed: Buffer): Buffer {
  return encodeClientFrame(opcode, compressed, { rsv: 4 });
}

/**
 * A zip bomb: a compressed message of about `mib` KiB that inflates to `mib` MiB of zeros.
 * DEFLATE's best ratio is ~1032:1, so a gigabyte takes about a megabyte. Built without deflating
 * anything big: the sync-flushed one-shot compression of 1 MiB of zeros (1,037 bytes here) ends
 * byte-aligned and refers to nothing before it, so N copies of it are one valid stream of N MiB
 * of zeros (the last copy's trailer stripped, §7.2.1).
 */
export function bomb(mib: number): { payload: Buffer; inflated: number } {
  const unit = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: SYNC_FLUSH });
  if (!unit.subarray(unit.length - 4).equals(TRAILER)) throw new Error('bomb construction failed');
  const payload = Buffer.allocUnsafe(unit.length * mib);
  for (let i = 0; i < mib; i++) unit.copy(payload, i * unit.length);
  return { payload: payload.subarray(0, payload.length - 4), inflated: mib * (1 << 20) };
}

/**
 * Bytes that compress to about half (hex digits from a seeded LCG), so a message's compressed
 * size is predictable: above the thread-pool cut-offs when the message is, and never tiny.
 */
export function halfCompressible(seed: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = HEX[x >>> 28] as number;
  }
  return b;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
