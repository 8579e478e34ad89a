/**
 * The sending half of permessage-deflate (RFC 7692 §7.2.1): compress with a sync flush and strip
 * the trailing `00 00 ff ff`. {@link PerMessageDeflater} is one connection's compressor (context
 * takeover unless `server_no_context_takeover`); {@link deflateOnce} compresses a message once for
 * any number of no-context-takeover connections (broadcast, publish).
 */
import { InOrder } from './in-order.js';
import type { DeflateRaw } from 'node:zlib';
import { type CodecOptions, DEFAULT_MAX_SYNC_DEFLATE, type DeflateEngine, resolveEngine } from './inflate.js';
import type { PerMessageDeflateAgreement, WindowBits } from './negotiate.js';
import { drive, driveAsync, type SyncStream, TRAILER, wrapSync } from './zlib-sync.js';
// Not an ES module import (src/builtins.ts says why).
const zlib = process.getBuiltinModule('node:zlib');

/** How a message is compressed. */
export interface DeflateParams {
  /** The negotiated `server_max_window_bits`; 8 is compressed with 9 (zlib ≥ 1.2.9 cannot do 8; 9's distances ≤ 250 fit 256). */
  readonly windowBits: WindowBits;
  /** zlib level 0..9 (default 6, zlib's default; -1 means the same). */
  readonly level?: number;
  /** zlib memLevel 1..9 (default 8). */
  readonly memLevel?: number;
}

const SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;

interface ZlibParams {
  windowBits: number;
  level: number;
  memLevel: number;
}

function zlibParams(p: DeflateParams): ZlibParams {
  return { windowBits: Math.max(9, p.windowBits), level: p.level ?? 6, memLevel: p.memLevel ?? 8 };
}

/** RFC 7692 §7.2.1: a sync-flushed message ends with 00 00 ff ff; drop it. */
function strip(compressed: Buffer): Buffer {
  const n = compressed.length;
  if (n >= 4 && compressed[n - 4] === 0 && compressed[n - 3] === 0 && compressed[n - 2] === 0xff && compressed[n - 1] === 0xff) {
    return compressed.subarray(0, n - 4);
  }
  // Not expected from zlib with Z_SYNC_FLUSH; sending it whole is still a valid message (§7.2.1).
  return compressed;
}

/** Runs one message through a sync stream and returns the stripped output (the stream keeps its state). */
function deflateSync(s: SyncStream, message: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let produced = 0;
  const r = drive(s, [message], 0, 0, SYNC_FLUSH, Number.MAX_SAFE_INTEGER, (v) => {
    pieces.push(Buffer.from(v));
    produced += v.length;
  });
  if (r.status !== 'done') throw new Error(`permessage-deflate: deflate failed (${s.error ?? r.status})`);
  return strip(pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, produced));
}

async function deflateAsync(stream: DeflateRaw, message: Buffer): Promise<Buffer> {
  const pieces: Buffer[] = [];
  const r = await driveAsync(stream, [message], Number.MAX_SAFE_INTEGER, (c) => pieces.push(c));
  if (r.status !== 'done') throw new Error(`permessage-deflate: deflate failed (${r.error ?? r.status})`);
  return strip(Buffer.concat(pieces, r.produced));
}

/** Process-wide deflate streams for no-context-takeover output, one per parameter set, reset after each message. */
const sharedDeflaters = new Map<string, SyncStream>();

function sharedDeflater(p: ZlibParams): SyncStream | null {
  const key = `${p.windowBits}:${p.level}:${p.memLevel}`;
  let s = sharedDeflaters.get(key);
  if (s === undefined || s.error !== undefined || s.stream.destroyed) {
    const created = wrapSync(zlib.createDeflateRaw(p));
    if (created === null) return null;
    s = created;
    sharedDeflaters.set(key, s);
  }
  return s;
}

/**
 * Compresses one message with a fresh context, to send the same payload to many connections
 * (broadcast, publish): valid ONLY toward connections that agreed `server_no_context_takeover`.
 * Toward a context-takeover connection the peer's window would gain bytes that connection's own
 * deflater never saw, and its later messages would decode wrong (research/wave2.md §1.3).
 *
 * Synchronous up to `maxSyncInput` bytes (a process-wide stream per parameter set, reset after
 * each message: no allocation per call; or `deflateRawSync` with the 'dictionary' engine), on
 * the thread pool above it (returns a Promise).
 */
export function deflateOnce(message: Buffer, params: DeflateParams, options: CodecOptions = {}): Buffer | Promise<Buffer> {
  const p = zlibParams(params);
  if (message.length > (options.maxSyncInput ?? DEFAULT_MAX_SYNC_DEFLATE)) {
    const stream = zlib.createDeflateRaw(p);
    // One-shot: its native state (~256 KiB at window 15) goes now, not at garbage collection.
    return deflateAsync(stream, message).finally(() => stream.close());
  }
  const s = resolveEngine(options.engine) === 'handle' ? sharedDeflater(p) : null;
  if (s === null) return strip(zlib.deflateRawSync(message, { ...p, finishFlush: SYNC_FLUSH }));
  const out = deflateSync(s, message);
  s.stream.reset();
  return out;
}

/**
 * One connection's compressor. Under context takeover it keeps a deflate stream (created on the
 * first message: ~80-230 KiB RSS once used, research/wave2.md §1.5; `release(true)` frees it
 * when the connection closes) or, with the 'dictionary' engine, the last 2^windowBits bytes sent.
 * With `server_no_context_takeover` it holds nothing and uses {@link deflateOnce}.
 */
export class PerMessageDeflater {
  readonly takeover: boolean;
  readonly engine: DeflateEngine;
  private readonly params: ZlibParams;
  private readonly publicParams: DeflateParams;
  private readonly options: CodecOptions;
  private readonly maxSyncInput: number;
  private own: SyncStream | null = null;
  private history: Buffer | null = null;
  private readonly queue = new InOrder<Buffer>();

  constructor(
    agreement: Pick<PerMessageDeflateAgreement, 'serverNoContextTakeover' | 'serverMaxWindowBits'>,
    options: CodecOptions & { readonly level?: number; readonly memLevel?: number } = {},
  ) {
    this.takeover = !agreement.serverNoContextTakeover;
    this.engine = resolveEngine(options.engine);
    this.publicParams = {
      windowBits: agreement.serverMaxWindowBits,
      ...(options.level === undefined ? {} : { level: options.level }),
      ...(options.memLevel === undefined ? {} : { memLevel: options.memLevel }),
    };
    this.params = zlibParams(this.publicParams);
    this.options = { engine: this.engine, ...(options.maxSyncInput === undefined ? {} : { maxSyncInput: options.maxSyncInput }) };
    this.maxSyncInput = options.maxSyncInput ?? DEFAULT_MAX_SYNC_DEFLATE;
  }

  /** Whether this deflater holds per-connection state now. */
  get allocated(): boolean {
    return this.own !== null || this.history !== null;
  }

  /** Whether a message is being compressed on the thread pool (later calls return Promises). */
  get busy(): boolean {
    return this.queue.busy;
  }

  /**
   * Compresses one message into the payload of a frame with RSV1 set (trailer stripped,
   * RFC 7692 §7.2.1). A Buffer when done synchronously (message ≤ `maxSyncInput` and nothing
   * queued), else a Promise; results come in call order either way (the caller sends them in the
   * order it called). The empty message compresses to a single `00` byte (§7.2.3.6).
   */
  deflate(message: Buffer): Buffer | Promise<Buffer> {
    return this.queue.run(() => this.deflateNow(message));
  }

  /**
   * Frees the per-connection state. Under context takeover the next message then starts from an
   * empty window, which the peer cannot know about, so only with `force` (the connection is
   * closing). Returns whether the state is gone.
   */
  release(force = false): boolean {
    if (this.queue.busy) {
      // A job is on the thread pool: free the state once it (and any behind it) settled.
      if (force) this.queue.whenIdle(() => this.release(true));
      return false;
    }
    if (this.takeover && !force && this.allocated) return false;
    this.own?.stream.close();
    this.own = null;
    this.history = null;
    return true;
  }


  private deflateNow(message: Buffer): Buffer | Promise<Buffer> {
    // RFC 7692 §7.2.3.6: an empty stored block. Not from zlib: a second sync flush with no input
    // in between produces nothing (Z_BUF_ERROR), and an empty payload would leave the peer's
    // inflater inside an unfinished block. Output stays byte-aligned, so the window is unaffected.
    if (message.length === 0) return Buffer.from([0x00]);
    if (!this.takeover) return deflateOnce(message, this.publicParams, this.options);
    if (this.engine === 'dictionary') return this.deflateDictionary(message);
    if (this.own === null) {
      const s = wrapSync(zlib.createDeflateRaw(this.params));
      if (s === null) throw new Error('permessage-deflate: the private zlib handle vanished');
      this.own = s;
    }
    if (message.length <= this.maxSyncInput) return deflateSync(this.own, message);
    return deflateAsync(this.own.stream as DeflateRaw, message);
  }

  /** 'dictionary' engine: a one-shot deflate primed with the last window of what was sent. */
  private deflateDictionary(message: Buffer): Buffer | Promise<Buffer> {
    const options = { ...this.params, finishFlush: SYNC_FLUSH, ...(this.history === null ? {} : { dictionary: this.history }) };
    this.remember(message);
    if (message.length <= this.maxSyncInput) return strip(zlib.deflateRawSync(message, options));
    return new Promise((resolve, reject) => {
      zlib.deflateRaw(message, options, (err, out) => (err === null ? resolve(strip(out)) : reject(err)));
    });
  }

  /** The peer's window after `message`: its last 2^negotiated bits bytes (256 for 8, not 512). */
  private remember(message: Buffer): void {
    const window = 1 << this.publicParams.windowBits;
    const old = this.history ?? Buffer.alloc(0);
    const keep = Math.min(old.length, Math.max(0, window - message.length));
    const take = Math.min(message.length, window);
    const next = Buffer.allocUnsafe(keep + take);
    old.copy(next, 0, old.length - keep);
    message.copy(next, keep, message.length - take);
    this.history = next;
  }
}

export { TRAILER };
