/**
 * Synchronous driving of a persistent zlib stream, for permessage-deflate's context takeover
 * (RFC 7692 §7.2.1–§7.2.2). Node 20 has no public synchronous API for a zlib stream that
 * outlives one call: `_processChunk` without a callback closes the handle when it returns
 * (research/wave2.md §1.5.1). `stream._handle.writeSync(...)` with `stream._writeState` is what
 * Node's own `processChunkSync` does minus the close, so a stream driven that way keeps its LZ77
 * window between messages. It is private API: {@link privateSyncAvailable} feature-detects it
 * once (shape and a round trip) and the codec falls back to the public "dictionary" engine when
 * it is missing or misbehaves.
 */
import type { DeflateRaw, InflateRaw } from 'node:zlib';
// Not an ES module import (src/builtins.ts says why).
const zlib = process.getBuiltinModule('node:zlib');

/** The shape of Node's zlib binding object that we use (node/lib/zlib.js `processChunkSync`). */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  onerror: ((this: ZlibHandle, message: string, errno: number) => void) | undefined;
}

/** A zlib stream seen through its private fields. */
interface PrivateZlib {
  readonly _handle: ZlibHandle | null;
  readonly _writeState: Uint32Array;
}

export type ZlibStream = InflateRaw | DeflateRaw;

/** A zlib stream plus the last error its handle reported during a synchronous write. */
export interface SyncStream {
  readonly stream: ZlibStream;
  /** Set by the handle's error hook (a zlib data error); the stream is destroyed by then. */
  error: string | undefined;
}

/** A stream whose private handle we drive synchronously, or null when the shape is not there. */
export function wrapSync(stream: ZlibStream): SyncStream | null {
  const p = stream as unknown as PrivateZlib;
  const h = p._handle;
  if (h === null || typeof h !== 'object' || typeof h.writeSync !== 'function' || typeof h.onerror !== 'function') return null;
  if (!(p._writeState instanceof Uint32Array) || p._writeState.length !== 2) return null;
  const s: SyncStream = { stream, error: undefined };
  const original = h.onerror;
  // Node's handler destroys the stream with the error; we keep the message for the caller. The
  // 'error' event that follows on the next tick is swallowed by the listener below.
  h.onerror = function onerror(this: ZlibHandle, message: string, errno: number): void {
    s.error = message;
    original.call(this, message, errno);
  };
  stream.on('error', ignore);
  return s;
}

function ignore(): void {}

/**
 * The one output buffer every synchronous write uses (the codec is synchronous there, so one per
 * process is enough); output is copied out of it, so no per-stream output buffer is ever touched.
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024);

/** Where a synchronous run stopped. */
export interface DriveResult {
  /**
   * 'done': every input consumed and all output taken; 'limit': output passed `limit` before
   * that (input remains at `index`/`offset`, and `produced` counts what was emitted);
   * 'error': zlib reported bad data (see {@link SyncStream.error}; the stream is dead); 'end':
   * an inflate stream reached its final block (BFINAL, RFC 7692 §7.2.3.4) and takes no more
   * input: the output so far is the whole message, and the stream must be replaced.
   */
  status: 'done' | 'limit' | 'error' | 'end';
  produced: number;
  index: number;
  offset: number;
}

/**
 * Feeds `inputs[index..]` (from `offset` in the first) through the stream with `flush`, handing
 * each piece of output to `onOutput` as a view of a shared scratch buffer (copy it before the next
 * call). Stops as soon as more than `limit` bytes came out: zlib is never asked for more than
 * `limit + 1 - produced` bytes per call, so the work done past the limit is at most one byte.
 */
export function drive(
  s: SyncStream,
  inputs: readonly Uint8Array[],
  index: number,
  offset: number,
  flush: number,
  limit: number,
  onOutput: (view: Buffer) => void,
): DriveResult {
  const p = s.stream as unknown as PrivateZlib;
  const state = p._writeState;
  let produced = 0;
  for (; index < inputs.length; index++, offset = 0) {
    const input = inputs[index] as Uint8Array;
    let inOff = offset;
    let availIn = input.length - offset;
    for (;;) {
      const handle = p._handle;
      if (handle === null) return { status: 'error', produced, index, offset: inOff };
      const room = limit - produced + 1;
      const availOut = room < SCRATCH.length ? room : SCRATCH.length;
      handle.writeSync(flush, input, inOff, availIn, SCRATCH, 0, availOut);
      if (s.error !== undefined || p._handle === null) return { status: 'error', produced, index, offset: inOff };
      const outLeft = state[0] as number;
      const inLeft = state[1] as number;
      inOff += availIn - inLeft;
      availIn = inLeft;
      const have = availOut - outLeft;
      if (have > 0) {
        produced += have;
        onOutput(SCRATCH.subarray(0, have));
      }
      if (produced > limit) return { status: 'limit', produced, index, offset: inOff };
      // Output space left over means zlib took all the input it could use (node processChunkSync);
      // input left over as well means it will take no more: the end of the DEFLATE stream.
      if (outLeft !== 0) {
        if (inLeft > 0) return { status: 'end', produced, index, offset: inOff };
        break;
      }
    }
  }
  return { status: 'done', produced, index, offset: 0 };
}

/**
 * Most zlib jobs on the thread pool at once, process-wide; later ones wait their turn. Many
 * concurrent zlib jobs fragment memory badly on Linux (ws #1202: 90 MB at 5 concurrent jobs vs
 * 2.9 GB unbounded, nodejs/node #15301); ws bounds them at 10. 4 is libuv's default pool size,
 * so more would only queue inside libuv while holding their zlib memory.
 */
export const MAX_ASYNC_JOBS = 4;
let asyncRunning = 0;
const asyncWaiting: (() => void)[] = [];

function releaseSlot(): void {
  const next = asyncWaiting.shift();
  if (next !== undefined) next();
  else asyncRunning--;
}

/** Async zlib jobs running and waiting now (for tests and stats). */
export function asyncJobs(): { running: number; waiting: number } {
  return { running: asyncRunning, waiting: asyncWaiting.length };
}

/**
 * Runs the remaining input through the stream on the thread pool (write + flush, as ws does),
 * counting output against `limit` while it arrives: past it, the stream is destroyed and the
 * result is 'limit' (at most one stream chunk, `chunkSize` = 16 KiB, is held past the limit).
 * At most {@link MAX_ASYNC_JOBS} run at once.
 */
export function driveAsync(
  stream: ZlibStream,
  inputs: readonly Uint8Array[],
  limit: number,
  onOutput: (chunk: Buffer) => void,
): Promise<{ status: 'done' | 'limit' | 'error' | 'end'; produced: number; error?: string }> {
  if (asyncRunning < MAX_ASYNC_JOBS) {
    asyncRunning++;
    return driveNow(stream, inputs, limit, onOutput).finally(releaseSlot);
  }
  return new Promise<void>((resolve) => asyncWaiting.push(resolve)).then(() =>
    driveNow(stream, inputs, limit, onOutput).finally(releaseSlot),
  );
}

function driveNow(
  stream: ZlibStream,
  inputs: readonly Uint8Array[],
  limit: number,
  onOutput: (chunk: Buffer) => void,
): Promise<{ status: 'done' | 'limit' | 'error' | 'end'; produced: number; error?: string }> {
  return new Promise((resolve) => {
    if (stream.destroyed) {
      resolve({ status: 'error', produced: 0, error: 'the zlib stream was closed' });
      return;
    }
    let produced = 0;
    let settled = false;
    const finish = (status: 'done' | 'limit' | 'error' | 'end', error?: string): void => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('error', onError);
      resolve(error === undefined ? { status, produced } : { status, produced, error });
    };
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      produced += chunk.length;
      if (produced > limit) {
        finish('limit');
        stream.destroy();
        return;
      }
      onOutput(chunk);
    };
    const onError = (err: Error): void => finish('error', err.message);
    stream.on('data', onData);
    stream.on('error', onError);
    // zlib stops taking input at the end of a DEFLATE stream (BFINAL): fewer bytes written than given.
    const before = stream.bytesWritten;
    let given = 0;
    for (const input of inputs) {
      if (input.length === 0) continue;
      given += input.length;
      stream.write(input);
    }
    stream.flush(zlib.constants.Z_SYNC_FLUSH, () => finish(stream.bytesWritten - before < given ? 'end' : 'done'));
  });
}

let detected: boolean | undefined;

/**
 * Whether the private synchronous path works on this Node: the shape is there and a
 * context-takeover round trip of two messages through it matches the public API. Checked once.
 */
export function privateSyncAvailable(): boolean {
  if (detected !== undefined) return detected;
  detected = false;
  try {
    const d = wrapSync(zlib.createDeflateRaw({ windowBits: 15 }));
    const i = wrapSync(zlib.createInflateRaw({ windowBits: 15 }));
    if (d === null || i === null) return false;
    const flush = zlib.constants.Z_SYNC_FLUSH;
    const m = Buffer.from('{"probe":"permessage-deflate","n":1}');
    let ok = true;
    for (let k = 0; k < 2 && ok; k++) {
      const c: Buffer[] = [];
      const r1 = drive(d, [m], 0, 0, flush, 1 << 20, (v) => c.push(Buffer.from(v)));
      const compressed = Buffer.concat(c);
      const tail = compressed.subarray(compressed.length - 4);
      const o: Buffer[] = [];
      const r2 = drive(i, [compressed], 0, 0, flush, 1 << 20, (v) => o.push(Buffer.from(v)));
      ok = r1.status === 'done' && r2.status === 'done' && tail.equals(TRAILER) && Buffer.concat(o).equals(m);
    }
    d.stream.close();
    i.stream.close();
    detected = ok;
  } catch {
    detected = false;
  }
  return detected;
}

/** The bytes a sync flush ends with, stripped by the sender and appended by the receiver (RFC 7692 §7.2.1, §7.2.2). */
export const TRAILER: Buffer = Buffer.from([0x00, 0x00, 0xff, 0xff]);
