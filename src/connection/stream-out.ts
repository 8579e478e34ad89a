/**
 * Sending one message from a source of chunks (`Behavior.sendStream`): a fragmented message
 * (RFC 6455 §5.4) written as the source produces it. While it runs it is the head of the
 * connection's ordered queue (ordered.ts), so every other data message sent meanwhile waits
 * behind it (§5.4: fragments of different messages must not interleave); control frames are
 * written straight to the socket and so go out between fragments (§5.5).
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { type BinaryData, type Frame, type FrameOptions, encodeFrame, toBuffer } from '../protocol/framer.js';
import { Utf8Validator } from '../protocol/utf8.js';

/** A chunk a streamed message is made of: text, or bytes. */
export type StreamChunk = string | BinaryData;

/**
 * Where a streamed message comes from: an async or sync iterable of chunks (a Node `Readable` is
 * one), or a web `ReadableStream`.
 */
export type StreamSource = AsyncIterable<StreamChunk> | Iterable<StreamChunk> | ReadableStreamLike;

/** The part of a web `ReadableStream` that `sendStream` uses. */
export interface ReadableStreamLike {
  getReader(): {
    read(): Promise<{ done: true; value?: unknown } | { done: false; value: StreamChunk }>;
    cancel(reason?: unknown): Promise<void>;
  };
}

/** Options for `sendStream`. */
export interface SendStreamOptions {
  /** Send a text message (chunks must form valid UTF-8). Default: text if the first chunk is a string, else binary. */
  text?: boolean;
  /** Largest frame payload in bytes; larger chunks are split. Default {@link STREAM_FRAGMENT_SIZE}. */
  fragmentSize?: number;
  /** Aborting it stops the message: the promise rejects with the signal's reason and the connection closes with 1011. */
  signal?: AbortSignal;
}

/**
 * Default largest frame of a streamed message: 1 MiB. A chunk up to it goes out as one frame
 * (no copy); larger ones are split. Measured (bench `streaming`, 256 MiB from 1 MiB chunks):
 * 16 KiB frames 1,424 MB/s, 64 KiB 1,333, 256 KiB 1,827, 1 MiB 2,035. A control frame waits
 * behind at most one such frame (under a millisecond at these rates).
 */
export const STREAM_FRAGMENT_SIZE: number = 1024 * 1024;

/** Bytes a stream writes without a wait before it lets the event loop turn (other sockets, timers). */
const BYTES_PER_SLICE = 1 << 20;

/**
 * Frames are written under one cork until this many bytes wait in the socket (or the tick ends),
 * then go out together and the stream waits for 'drain'. Writing and waiting frame by frame (each
 * 64 KiB frame is over a socket's 16 KiB high-water mark) cost about 40% of the throughput here.
 */
const WRITE_BATCH_BYTES = 1 << 20;

function uncorkLater(stream: OutgoingStream): void {
  stream.flush();
}

/** What a stream writes through: its connection (sender.ts), or the test client. @internal */
export interface StreamOwner {
  /** Whether the connection still takes data frames (open, no close frame sent). */
  readonly streamWritable: boolean;
  /** The byte stream the frames go to: corked while a batch of frames is written. */
  readonly streamSocket: Duplex;
  /** Writes one frame of the message (the stream decides when to wait for 'drain'). */
  writeStreamFrame(frame: Frame): void;
  /** Resolves once the socket drained (true) or the connection is gone (false). */
  streamDrain(): Promise<boolean>;
  /** The message is complete (its last frame is with the socket) or gave up: the queue goes on. */
  streamSettled(stream: OutgoingStream): void;
  /** The message broke off after its first frame: close the connection with `code`. */
  streamBroken(code: number, reason: string, error: unknown): void;
  /** Mask every frame with a fresh key (a client's, RFC 6455 §5.3; wsmount/testing). Default: unmasked, as a server sends. */
  readonly masksFrames?: boolean;
}

interface ChunkIterator {
  next(): Promise<IteratorResult<StreamChunk>> | IteratorResult<StreamChunk>;
  release(): void;
}

/** One message being sent from a source. @internal */
export class OutgoingStream {
  private readonly owner: StreamOwner;
  private readonly source: StreamSource;
  private readonly text: boolean | undefined;
  private readonly fragmentSize: number;
  private readonly signal: AbortSignal | undefined;
  private readonly resolve: (sent: number) => void;
  private readonly reject: (error: unknown) => void;
  private iterator: ChunkIterator | null = null;
  started = false;
  /** Done: sent, failed or cancelled. */
  finished = false;
  /** Its first frame is out: stopping now leaves half a message, so the connection closes. */
  private begun = false;
  /** The socket is corked by this stream (a batch of frames is being written). */
  private corked = false;
  private readonly onAbortBound: () => void;
  /** Frame options of a fragment, and of the final frame. */
  private readonly fragment: FrameOptions;
  private readonly final: FrameOptions | undefined;

  constructor(owner: StreamOwner, source: StreamSource, options: SendStreamOptions | undefined, resolve: (sent: number) => void, reject: (error: unknown) => void) {
    this.owner = owner;
    this.source = source;
    this.text = options?.text;
    this.fragmentSize = options?.fragmentSize ?? STREAM_FRAGMENT_SIZE;
    this.signal = options?.signal;
    this.resolve = resolve;
    this.reject = reject;
    this.onAbortBound = () => this.aborted();
    this.fragment = owner.masksFrames === true ? MASKED_FRAGMENT : FRAGMENT;
    this.final = owner.masksFrames === true ? MASKED : undefined;
    this.signal?.addEventListener('abort', this.onAbortBound, { once: true });
  }

  /** Its turn has come (the head of the ordered queue). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.finished) return;
    // From a microtask: the ordered queue calls this while it walks its items.
    queueMicrotask(() => {
      // Cancelled in the same tick (close() right after sendStream()): never pulled (release() ran).
      if (this.finished) return;
      this.run().then(undefined, (error: unknown) => this.broke(error, 'message source failed'));
    });
  }

  /** The connection is closing or gone: stop, release the source, reject with `error`. */
  cancel(error: ProtocolError): void {
    if (this.finished) return;
    this.settle();
    this.release();
    this.reject(error);
  }

  private aborted(): void {
    if (this.finished) return;
    this.broke((this.signal as AbortSignal).reason, 'message aborted');
  }

  /** The source failed, was aborted, or was not valid: reject, release, close if half sent. */
  private broke(error: unknown, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    // Half sent: the close frame goes first, and what was queued behind is dropped with it.
    if (this.begun) this.owner.streamBroken(CloseCode.InternalError, reason, error);
    this.settle();
    this.release();
    this.reject(error);
  }

  /**
   * Writes a frame into the current batch (corking the socket for it, uncorked at the end of the
   * tick at the latest); returns whether the stream may go on without waiting for 'drain'.
   */
  private write(frame: Frame): boolean {
    const s = this.owner.streamSocket;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(uncorkLater, this);
    }
    this.owner.writeStreamFrame(frame);
    if (s.writableLength < WRITE_BATCH_BYTES) return true;
    this.flush();
    return !s.writableNeedDrain;
  }

  /** @internal Ends the current batch: the frames corked so far go out. */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.owner.streamSocket.uncork();
  }

  private settle(): void {
    this.flush();
    this.finished = true;
    this.signal?.removeEventListener('abort', this.onAbortBound);
    this.owner.streamSettled(this);
  }

  private release(): void {
    const it = this.iterator;
    this.iterator = null;
    if (it === null) {
      // Never pulled: a Readable or ReadableStream we were given is still ours to release.
      const r = this.source as { destroy?: () => void; cancel?: () => Promise<void>; locked?: boolean };
      if (typeof r.destroy === 'function') r.destroy();
      else if (typeof r.cancel === 'function' && r.locked !== true) void r.cancel().then(undefined, ignore);
      return;
    }
    try {
      it.release();
    } catch {
      // A source that fails to release itself changes nothing here.
    }
  }

  private async run(): Promise<void> {
    if (this.signal?.aborted === true) {
      this.aborted();
      return;
    }
    const it = (this.iterator = iterate(this.source));
    const o = this.owner;
    const size = this.fragmentSize;
    let opcode: number = this.text === true ? Opcode.Text : Opcode.Binary;
    let utf8: Utf8Validator | null = this.text === true ? new Utf8Validator() : null;
    /** A high surrogate that ended the last string chunk, joined to the next one. */
    let surrogate = '';
    let sent = 0;
    let slice = 0;
    let first = true;
    for (;;) {
      const r = await it.next();
      if (this.finished) return;
      if (r.done === true) break;
      const value = r.value;
      if (first && this.text === undefined && typeof value === 'string') {
        opcode = Opcode.Text;
        utf8 = new Utf8Validator();
      }
      let bytes: Buffer;
      if (typeof value === 'string') {
        let text = value;
        if (utf8 !== null) {
          // A character split between two string chunks (a surrogate pair) is joined.
          text = surrogate + text;
          surrogate = '';
          const last = text.charCodeAt(text.length - 1);
          if (last >= 0xd800 && last <= 0xdbff) {
            surrogate = text.slice(-1);
            text = text.slice(0, -1);
          }
        }
        bytes = Buffer.from(text, 'utf8');
      } else if (isBinary(value)) {
        if (surrogate !== '') {
          this.broke(new TypeError('sendStream(): a text message\'s string chunk ends in half a character (a lone surrogate) and bytes follow'), 'message source failed');
          return;
        }
        bytes = toBuffer(value);
      } else {
        this.broke(new TypeError(`sendStream(): chunks are strings, Buffers, ArrayBuffers or typed arrays, not ${value === null ? 'null' : typeof value}`), 'message source failed');
        return;
      }
      // RFC 6455 §8.1: the message as a whole must be UTF-8, also where strings and bytes meet.
      if (utf8 !== null && !utf8.write(bytes)) {
        this.broke(new TypeError('sendStream(): a text message\'s chunks are not valid UTF-8'), 'message source failed');
        return;
      }
      for (let at = 0; at < bytes.length; at += size) {
        const piece = at === 0 && bytes.length <= size ? bytes : bytes.subarray(at, at + size);
        if (!o.streamWritable) return;
        const free = this.write(encodeFrame(first ? opcode : Opcode.Continuation, piece, this.fragment));
        first = false;
        this.begun = true;
        sent += piece.length;
        slice += piece.length;
        if (!free) {
          slice = 0;
          if (!(await o.streamDrain()) || this.finished) return;
        } else if (slice >= BYTES_PER_SLICE) {
          slice = 0;
          await nextTurn();
          if (this.finished) return;
        }
      }
    }
    if (surrogate !== '' || (utf8 !== null && !utf8.end())) {
      this.broke(new TypeError('sendStream(): a text message ends inside a character (a lone surrogate or a cut UTF-8 sequence)'), 'message source failed');
      return;
    }
    if (!o.streamWritable) return;
    // The final frame: an empty continuation (or, for an empty source, the whole empty message).
    o.writeStreamFrame(encodeFrame(first ? opcode : Opcode.Continuation, EMPTY, this.final));
    this.flush();
    this.iterator = null;
    this.settle();
    this.resolve(sent);
  }
}

const FRAGMENT: FrameOptions = Object.freeze({ fin: false });
const MASKED_FRAGMENT: FrameOptions = Object.freeze({ fin: false, mask: true });
const MASKED: FrameOptions = Object.freeze({ mask: true });
const EMPTY = Buffer.alloc(0);

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isBinary(value: unknown): value is BinaryData {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** One way to pull chunks from any source, and to let go of it early. */
function iterate(source: StreamSource): ChunkIterator {
  const s = source as Partial<ReadableStreamLike> & Partial<AsyncIterable<StreamChunk>> & Partial<Iterable<StreamChunk>>;
  if (typeof source === 'string') throw new TypeError('sendStream(): a string is a whole message: send it with sendText(), or give sendStream() an iterable of strings');
  // A web ReadableStream through its reader: cancel() also ends a read that is pending (its async
  // iterator's return() would wait for that read).
  if (typeof s.getReader === 'function') {
    const reader = (s as ReadableStreamLike).getReader();
    return {
      next: () => reader.read() as Promise<IteratorResult<StreamChunk>>,
      release: () => void reader.cancel().then(undefined, ignore),
    };
  }
  if (typeof s[Symbol.asyncIterator] === 'function') {
    const it = (s as AsyncIterable<StreamChunk>)[Symbol.asyncIterator]();
    // A Node Readable is destroyed outright: its iterator's return() would wait for a pending
    // read, which a stalled source never completes.
    const destroy = (source as { destroy?: unknown }).destroy;
    if (typeof destroy === 'function') return { next: () => it.next(), release: () => void destroy.call(source) };
    return { next: () => it.next(), release: () => void it.return?.()?.then(undefined, ignore) };
  }
  if (typeof s[Symbol.iterator] === 'function') {
    const it = (s as Iterable<StreamChunk>)[Symbol.iterator]();
    return { next: () => it.next(), release: () => void it.return?.() };
  }
  throw new TypeError('sendStream(): the source is an async iterable, an iterable, a Readable or a ReadableStream');
}

function ignore(): void {}

/** The error a stream's promise rejects with when its connection closes first. @internal */
export function streamInterrupted(code: number, why: string): ProtocolError {
  return new ProtocolError('WS_STREAM_INTERRUPTED', code, `the message stream was interrupted: ${why}`);
}
