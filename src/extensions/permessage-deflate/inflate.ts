/**
 * The receiving half of permessage-deflate (RFC 7692 §7.2.2): one {@link PerMessageInflater} per
 * connection turns the payloads of one compressed message back into its bytes, with the peer's
 * LZ77 window kept between messages unless `client_no_context_takeover` was agreed, and with the
 * message size limit enforced while inflating (zip bombs).
 */
import { InOrder } from './in-order.js';
import type { PerMessageDeflateAgreement } from './negotiate.js';
import { drive, driveAsync, privateSyncAvailable, type SyncStream, TRAILER, wrapSync } from './zlib-sync.js';
// Not an ES module import (src/builtins.ts says why).
const zlib = process.getBuiltinModule('node:zlib');

/** What inflating one message gave. */
export type InflateResult =
  | { readonly kind: 'ok'; readonly data: Buffer }
  /**
   * The message inflates to more than `maxBytes`: close with 1009 (RFC 6455 §7.4.1). Decided while
   * inflating; see {@link PerMessageInflater.inflate} for how much is allocated at most.
   */
  | { readonly kind: 'too-big'; readonly limit: number }
  /**
   * Not a valid DEFLATE stream (zlib's message in `reason`). RFC 7692 §7.2.2 names no close code;
   * close with 1007 (RFC 6455 §7.4.1, "data … not consistent with the type of the message") as ws
   * does (`inflateOnError` sets 1007); python-websockets closes with 1002 (ProtocolError
   * "decompression failed"). Either is a failure of the connection (RFC 6455 §7.1.7).
   */
  | { readonly kind: 'invalid'; readonly reason: string };

/** How an inflater or deflater runs zlib. */
export type DeflateEngine =
  /** Persistent zlib streams driven synchronously through Node's private handle (feature-detected). */
  | 'handle'
  /** Public API only: one-shot `*RawSync` calls, context takeover via `dictionary` = the last window of plaintext. */
  | 'dictionary';

/** Tuning shared by the inflater and the deflater. */
export interface CodecOptions {
  /** 'auto' (default): 'handle' when {@link privateSyncAvailable}, else 'dictionary'. */
  readonly engine?: DeflateEngine | 'auto';
  /**
   * Inflate: a message whose compressed payloads total more than this goes to the thread pool
   * (async); default {@link DEFAULT_MAX_SYNC_INPUT}. Deflate: a message longer than this does;
   * default {@link DEFAULT_MAX_SYNC_DEFLATE}.
   */
  readonly maxSyncInput?: number;
  /**
   * Inflating synchronously stops after this many output bytes and finishes on the thread pool,
   * so a small input that inflates to a lot never blocks the loop for long; default
   * {@link DEFAULT_MAX_SYNC_OUTPUT}.
   */
  readonly maxSyncOutput?: number;
}

/**
 * Compressed bytes above which a message is inflated on the thread pool. Measured here (Node
 * 20.20, handle engine): inflating 64 KiB of compressed JSON-like text (~256-400 KiB out) takes
 * ~60-350 µs, and maxSyncOutput caps it anyway.
 */
export const DEFAULT_MAX_SYNC_INPUT: number = 64 * 1024;
/**
 * Message bytes above which a message is deflated on the thread pool. Deflate is the slow half:
 * level 6 took ~100 µs for 16 KiB of text but 1.3 ms for 32 KiB and 2.2-2.5 ms for 64 KiB.
 */
export const DEFAULT_MAX_SYNC_DEFLATE: number = 16 * 1024;
/** Output bytes after which a synchronous inflate hands the rest to the thread pool. */
export const DEFAULT_MAX_SYNC_OUTPUT: number = 256 * 1024;

export function resolveEngine(engine: DeflateEngine | 'auto' | undefined): DeflateEngine {
  if (engine === 'handle' || engine === 'dictionary') return engine;
  return privateSyncAvailable() ? 'handle' : 'dictionary';
}

const SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;

/** The largest window any peer may use; the shared inflaters use it. */
const SHARED_WINDOW = 15;

/**
 * For `client_no_context_takeover`: one inflate stream per process, reset after every message
 * (uWS's SHARED_DECOMPRESSOR), so such connections hold no zlib state at all. Only synchronous
 * runs use it; the async path uses a one-shot stream.
 */
let shared: SyncStream | null = null;

function sharedInflater(): SyncStream | null {
  if (shared === null || shared.error !== undefined || shared.stream.destroyed) {
    shared = wrapSync(zlib.createInflateRaw({ windowBits: SHARED_WINDOW }));
  }
  return shared;
}

/** Copies the collected pieces into one Buffer of exactly `total` bytes. */
function join(pieces: Buffer[], total: number): Buffer {
  if (pieces.length === 1 && (pieces[0] as Buffer).length === total) return pieces[0] as Buffer;
  return Buffer.concat(pieces, total);
}

/**
 * Inflates the messages of one connection, in order.
 *
 * Per-connection state is allocated lazily on the first compressed message, and only under
 * context takeover (the 'handle' engine's inflate stream, ~33 KiB RSS at window 15 once used;
 * the 'dictionary' engine's plaintext history, ≤ 2^windowBits bytes). With
 * `client_no_context_takeover` the inflater holds nothing between messages.
 */
export class PerMessageInflater {
  /** Whether the peer's window persists between messages (no `client_no_context_takeover`). */
  readonly takeover: boolean;
  /** The inflate window: the negotiated `client_max_window_bits` (inflate accepts 8; deflate does not). */
  readonly windowBits: number;
  readonly engine: DeflateEngine;
  private readonly maxSyncInput: number;
  private readonly maxSyncOutput: number;
  /** 'handle' engine under takeover: this connection's stream, created on first use. */
  private own: SyncStream | null = null;
  /** 'dictionary' engine under takeover: the last ≤ 2^windowBits bytes of inflated plaintext. */
  private history: Buffer | null = null;
  /**
   * 'handle' engine: the peer ended its DEFLATE stream (BFINAL, RFC 7692 §7.2.3.4); the next
   * stream starts from this message's plaintext (its last 2^windowBits bytes) as the window, so
   * a back-reference within it decodes and one past it fails (1007), never decodes wrong.
   */
  private seed: Buffer | null = null;
  private readonly queue = new InOrder<InflateResult>();

  constructor(agreement: Pick<PerMessageDeflateAgreement, 'clientNoContextTakeover' | 'clientMaxWindowBits'>, options: CodecOptions = {}) {
    this.takeover = !agreement.clientNoContextTakeover;
    this.windowBits = agreement.clientMaxWindowBits;
    this.engine = resolveEngine(options.engine);
    this.maxSyncInput = options.maxSyncInput ?? DEFAULT_MAX_SYNC_INPUT;
    this.maxSyncOutput = options.maxSyncOutput ?? DEFAULT_MAX_SYNC_OUTPUT;
  }

  /** Whether this inflater holds per-connection state now. */
  get allocated(): boolean {
    return this.own !== null || this.history !== null || this.seed !== null;
  }

  /** Whether a message is being inflated on the thread pool (later calls return Promises). */
  get busy(): boolean {
    return this.queue.busy;
  }

  /**
   * Inflates one compressed message: `payloads` are its frames' payloads in order (RSV1 was set
   * on the first frame, RFC 7692 §6.1); the trailer `00 00 ff ff` is appended here (§7.2.2).
   *
   * Returns the result synchronously when the compressed size is ≤ `maxSyncInput` and the output
   * stays ≤ `maxSyncOutput` and nothing is queued; otherwise a Promise, settled in call order
   * (a call made while an earlier one is pending is queued behind it, so the messages of one
   * connection come out in order whatever path each took — the caller must still deliver them in
   * the order it called).
   *
   * Zip bombs: the output is counted while inflating. Synchronously, zlib never produces more
   * than `maxBytes + 1` bytes and nothing past `maxBytes` is copied out of a shared 64 KiB
   * scratch buffer; on the thread pool, at most one 16 KiB stream chunk past `maxBytes` exists
   * before the stream is destroyed. After 'too-big' or 'invalid' the context is gone: close the
   * connection (a later call starts from an empty window).
   *
   * An empty payload list (or empty payloads) is the empty message and leaves the window as is:
   * appending the trailer to nothing would leave zlib inside an unfinished stored block.
   */
  inflate(payloads: readonly Buffer[], maxBytes: number): InflateResult | Promise<InflateResult> {
    return this.queue.run(() => this.inflateNow(payloads, maxBytes));
  }

  /**
   * Frees the per-connection zlib state. Under context takeover that forgets the peer's window,
   * so it is only done when `force` is set (the connection is closing) or there is nothing to lose
   * (no takeover). Returns whether the state is gone. Never call while {@link busy}.
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
    this.seed = null;
    return true;
  }


  private inflateNow(payloads: readonly Buffer[], maxBytes: number): InflateResult | Promise<InflateResult> {
    let size = 0;
    for (const p of payloads) size += p.length;
    if (size === 0) return { kind: 'ok', data: Buffer.alloc(0) };
    const inputs = [...payloads, TRAILER];
    if (this.engine === 'dictionary') return this.inflateDictionary(inputs, size, maxBytes);
    if (!this.takeover) return this.inflateShared(inputs, size, maxBytes);
    return this.inflateOwn(inputs, size, maxBytes);
  }

  /** 'handle' engine, context takeover: this connection's persistent stream. */
  private inflateOwn(inputs: Buffer[], size: number, maxBytes: number): InflateResult | Promise<InflateResult> {
    if (this.own === null) {
      const seed = this.seed;
      this.seed = null;
      const s = wrapSync(zlib.createInflateRaw(seed === null ? { windowBits: this.windowBits } : { windowBits: this.windowBits, dictionary: seed }));
      if (s === null) throw new Error('permessage-deflate: the private zlib handle vanished');
      this.own = s;
    }
    const s = this.own;
    const pieces: Buffer[] = [];
    let index = 0;
    let offset = 0;
    let produced = 0;
    if (size <= this.maxSyncInput) {
      const limit = Math.min(maxBytes, this.maxSyncOutput);
      const r = drive(s, inputs, 0, 0, SYNC_FLUSH, limit, (v) => {
        if (produced + v.length <= maxBytes) pieces.push(Buffer.from(v));
        produced += v.length;
      });
      if (r.status === 'error') return this.fail(s.error ?? 'invalid deflate data');
      if (r.status === 'done') return { kind: 'ok', data: join(pieces, produced) };
      if (r.status === 'end') return this.ended(join(pieces, produced));
      if (produced > maxBytes) return this.tooBig(maxBytes);
      // Past the synchronous budget: the rest goes to the thread pool on the same stream.
      index = r.index;
      offset = r.offset;
    }
    const rest = inputs.slice(index);
    if (offset > 0) rest[0] = (rest[0] as Buffer).subarray(offset);
    return driveAsync(s.stream, rest, maxBytes - produced, (c) => pieces.push(c)).then((r) => {
      if (r.status === 'limit') return this.tooBig(maxBytes);
      if (r.status === 'error') return this.fail(r.error ?? 'invalid deflate data');
      const data = join(pieces, produced + r.produced);
      return r.status === 'end' ? this.ended(data) : { kind: 'ok', data };
    });
  }

  /** 'handle' engine, no context takeover: the process-wide stream, reset after each message. */
  private inflateShared(inputs: Buffer[], size: number, maxBytes: number): InflateResult | Promise<InflateResult> {
    const s = size <= this.maxSyncInput ? sharedInflater() : null;
    if (s !== null) {
      const pieces: Buffer[] = [];
      let produced = 0;
      const r = drive(s, inputs, 0, 0, SYNC_FLUSH, Math.min(maxBytes, this.maxSyncOutput), (v) => {
        if (produced + v.length <= maxBytes) pieces.push(Buffer.from(v));
        produced += v.length;
      });
      if (r.status === 'error') return { kind: 'invalid', reason: s.error ?? 'invalid deflate data' };
      s.stream.reset();
      if (r.status === 'done') return { kind: 'ok', data: join(pieces, produced) };
      if (produced > maxBytes) return { kind: 'too-big', limit: maxBytes };
      // Over the synchronous budget: redo it on the thread pool (the wasted work is ≤ maxSyncOutput).
    }
    return this.oneShotAsync(inputs, maxBytes, undefined);
  }

  /** A fresh stream on the thread pool, optionally primed with a dictionary (the window so far). */
  private oneShotAsync(inputs: Buffer[], maxBytes: number, dictionary: Buffer | undefined): Promise<InflateResult> {
    const windowBits = this.takeover ? this.windowBits : SHARED_WINDOW;
    const stream = zlib.createInflateRaw(dictionary === undefined ? { windowBits } : { windowBits, dictionary });
    const pieces: Buffer[] = [];
    return driveAsync(stream, inputs, maxBytes, (c) => pieces.push(c)).then((r): InflateResult => {
      stream.close();
      if (r.status === 'limit') return { kind: 'too-big', limit: maxBytes };
      if (r.status === 'error') return { kind: 'invalid', reason: r.error ?? 'invalid deflate data' };
      const data = join(pieces, r.produced);
      if (this.takeover) this.remember(data);
      return { kind: 'ok', data };
    });
  }

  /** 'dictionary' engine: public one-shot calls, the window carried as plaintext history. */
  private inflateDictionary(inputs: Buffer[], size: number, maxBytes: number): InflateResult | Promise<InflateResult> {
    const dictionary = this.takeover && this.history !== null ? this.history : undefined;
    if (size <= this.maxSyncInput) {
      const budget = Math.min(maxBytes, this.maxSyncOutput);
      const windowBits = this.takeover ? this.windowBits : SHARED_WINDOW;
      try {
        const data = zlib.inflateRawSync(Buffer.concat(inputs), {
          windowBits,
          finishFlush: SYNC_FLUSH,
          maxOutputLength: budget,
          ...(dictionary === undefined ? {} : { dictionary }),
        });
        if (this.takeover) this.remember(data);
        return { kind: 'ok', data };
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'ERR_BUFFER_TOO_LARGE') return this.fail(e.message);
        if (budget >= maxBytes) return this.fail(null, maxBytes);
        // Over the synchronous budget but maybe within maxBytes: redo it on the thread pool.
      }
    }
    return this.oneShotAsync(inputs, maxBytes, dictionary);
  }

  /** Keeps the last 2^windowBits bytes of plaintext (the peer's window) after `data`. */
  private remember(data: Buffer): void {
    const window = 1 << this.windowBits;
    if (data.length >= window) {
      this.history = Buffer.from(data.subarray(data.length - window));
      return;
    }
    const old = this.history ?? Buffer.alloc(0);
    const keep = Math.min(old.length, window - data.length);
    const next = Buffer.allocUnsafe(keep + data.length);
    old.copy(next, 0, old.length - keep);
    data.copy(next, keep);
    this.history = next;
  }

  /** The message ended its DEFLATE stream: a new stream, seeded with the window, takes the next one. */
  private ended(data: Buffer): InflateResult {
    this.own?.stream.close();
    this.own = null;
    const window = 1 << this.windowBits;
    this.seed = data.length === 0 ? null : Buffer.from(data.length > window ? data.subarray(data.length - window) : data);
    return { kind: 'ok', data };
  }

  private tooBig(maxBytes: number): InflateResult {
    this.drop();
    return { kind: 'too-big', limit: maxBytes };
  }

  private fail(reason: string | null, maxBytes = 0): InflateResult {
    this.drop();
    return reason === null ? { kind: 'too-big', limit: maxBytes } : { kind: 'invalid', reason };
  }

  /** The window is unusable after a failure: forget it. */
  private drop(): void {
    if (this.own !== null && !this.own.stream.destroyed) this.own.stream.destroy();
    this.own = null;
    this.history = null;
    this.seed = null;
  }
}
