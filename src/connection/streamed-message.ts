/**
 * A data message received as a stream (a route that overrides `onStream`): its payload comes
 * out piece by piece as the frames arrive, and reading it slower than the peer sends pauses the
 * socket (stream-in.ts), so a message of any size costs a bounded amount of memory.
 */
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeText } from '../protocol/utf8.js';
// Not an ES module import (src/builtins.ts says why).
const stream = process.getBuiltinModule('node:stream');

/** Reading pauses once this many payload bytes of a streamed message wait unread… */
export const STREAM_HIGH_WATER_BYTES: number = 1 << 20;
/** …and resumes once they are down to this many. */
export const STREAM_LOW_WATER_BYTES: number = 256 << 10;
/**
 * What a waiting piece counts toward the marks beyond its bytes: the `Buffer` object and its
 * slot (and the TCP chunk it keeps alive). Without it, a peer sending 1-byte fragments would make
 * an unread message hold ~100 times its payload before reading pauses.
 */
const PIECE_COST = 256;

/** What a streamed message tells its connection. @internal */
export interface StreamedMessageOwner {
  /** The consumer took bytes: reading may resume. */
  streamPulled(message: StreamedMessage): void;
  /** The consumer is done with it: read to the end (`early` false) or released before that. */
  streamFinished(message: StreamedMessage, early: boolean): void;
  /** `text()`/`bytes()` collected more than `maxPayload`: fail the connection with 1009. */
  streamTooBig(message: StreamedMessage, limit: number): void;
}

interface Waiter {
  resolve(result: IteratorResult<Buffer, undefined>): void;
  reject(error: Error): void;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * One incoming data message as an async iterable of `Buffer`s, handed to `Behavior.onStream`:
 *
 * ```ts
 * override async onStream(message: StreamedMessage) {
 *   for await (const chunk of message) hash.update(chunk);
 * }
 * ```
 *
 * Each chunk is payload as it arrived: a frame's payload, or the part of it one TCP read
 * brought (inflated, when the message was compressed). Text is UTF-8 checked as it arrives, so a
 * bad byte fails the connection (1007) at once; a code point may still be split between two
 * chunks (decode with `new TextDecoder().decode(chunk, { stream: true })`, or collect with
 * {@link StreamedMessage.text}). Read it one way only: iterate it, or take
 * {@link StreamedMessage.readable}, or collect it with `text()`/`bytes()`; and start before
 * `onStream` returns (or its promise settles), or the message is dropped as not wanted.
 *
 * - Leaving the loop before the end (`break`, `return`) closes the connection with 1008: the
 *   rest of the message cannot be skipped without reading it. An exception thrown out of
 *   `onStream` closes it with 1011, as any hook failure.
 * - If the connection ends before the message does (the peer closed or went away, a protocol
 *   error, `close()`), the iterator rejects with a `ProtocolError`: `code` is the violation's
 *   (`'WS_INVALID_UTF8'`, `'WS_MESSAGE_TOO_BIG'`…) or `'WS_STREAM_INTERRUPTED'`, and `closeCode`
 *   the connection's close code.
 */
export class StreamedMessage implements AsyncIterable<Buffer> {
  /** Whether this is a text message (its chunks are UTF-8 bytes). */
  readonly isText: boolean;
  /** Payload bytes received so far (after inflating, for a compressed message). */
  bytesReceived = 0;
  private readonly owner: StreamedMessageOwner;
  /** The route's `maxPayload`: what `text()`/`bytes()` may collect. */
  private readonly maxCollect: number;
  private queue: Buffer[] = [];
  private head = 0;
  /** Bytes received and not yet taken by the consumer. */
  private queued = 0;
  /** What the waiting pieces cost: their bytes plus {@link PIECE_COST} each. */
  private weight = 0;
  private waiter: Waiter | null = null;
  /** The last byte has arrived. */
  private ended = false;
  /** Why the message will never be complete, once it will not. */
  private error: Error | null = null;
  /** The consumer is done with it (read to the end, or released). */
  private finished = false;
  /** Someone started reading it (iterator, `readable()`, `text()`/`bytes()`). */
  private taken = false;

  /** @internal */
  constructor(owner: StreamedMessageOwner, isText: boolean, maxCollect: number) {
    this.owner = owner;
    this.isText = isText;
    this.maxCollect = maxCollect;
  }

  /** Payload bytes received and not yet read by the consumer. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Whether the whole message has arrived (it may not all be read yet). */
  get complete(): boolean {
    return this.ended;
  }

  /** @internal What the unread pieces cost in memory, for the high/low-water marks. */
  get queuedCost(): number {
    return this.weight;
  }

  /** @internal Whether anyone started reading it. */
  get isTaken(): boolean {
    return this.taken;
  }

  /**
   * @internal Nobody took it before its `onStream` returned: it is dropped, what is still to
   * come of it is read and thrown away, and the next message is handed out.
   */
  discard(): void {
    if (this.finished || this.taken) return;
    this.taken = true;
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.weight = 0;
    this.finish(false);
  }

  /** The iterator over the message's chunks. Throws if the message is already being read. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    this.take('iterate');
    return this.iterator();
  }

  /**
   * The message as a Node `Readable` of bytes, for `pipeline(message.readable(), file)`.
   * Destroying it before the end counts as leaving early (1008).
   */
  readable(): Readable {
    this.take('readable()');
    return stream.Readable.from(this.iterator(), { objectMode: false });
  }

  /** Collects the whole message as a string. More than the route's `maxPayload` closes the connection with 1009 and rejects. */
  async text(): Promise<string> {
    const bytes = await this.collect('text()');
    return this.isText ? decodeText(bytes) : bytes.toString('utf8');
  }

  /** Collects the whole message as one `Buffer`, bounded like {@link StreamedMessage.text}. */
  bytes(): Promise<Buffer> {
    return this.collect('bytes()');
  }

  private async collect(name: string): Promise<Buffer> {
    this.take(name);
    const pieces: Buffer[] = [];
    let total = 0;
    const it = this.iterator();
    for (;;) {
      const r = await it.next();
      if (r.done === true) break;
      total += r.value.length;
      if (total > this.maxCollect) {
        this.owner.streamTooBig(this, this.maxCollect);
        await it.return?.();
        throw new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `${name} collects at most maxPayload (${this.maxCollect} bytes); read a larger message chunk by chunk`);
      }
      pieces.push(r.value);
    }
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, total);
  }

  private take(how: string): void {
    if (this.taken) throw new Error(`this message is already being read; read a streamed message once (${how})`);
    this.taken = true;
  }

  private iterator(): AsyncIterableIterator<Buffer> {
    const it: AsyncIterableIterator<Buffer> = {
      next: () => this.next(),
      return: () => this.release(),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  private next(): Promise<IteratorResult<Buffer, undefined>> {
    if (this.finished) return this.error !== null && !this.ended ? Promise.reject(this.error) : Promise.resolve(DONE);
    if (this.waiter !== null) return Promise.reject(new Error('next() called again before the previous call settled'));
    if (this.queued > 0 || this.head < this.queue.length) return Promise.resolve({ done: false, value: this.shift() });
    if (this.ended) {
      this.finish(false);
      return Promise.resolve(DONE);
    }
    if (this.error !== null) {
      this.finish(false);
      return Promise.reject(this.error);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private shift(): Buffer {
    const data = this.queue[this.head] as Buffer;
    this.queue[this.head] = EMPTY;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    this.queued -= data.length;
    this.weight -= data.length + PIECE_COST;
    this.owner.streamPulled(this);
    return data;
  }

  private release(): Promise<IteratorResult<Buffer, undefined>> {
    if (!this.finished) {
      this.queue = [];
      this.head = 0;
      this.queued = 0;
      this.weight = 0;
      this.finish(!this.ended);
    }
    return Promise.resolve(DONE);
  }

  private finish(early: boolean): void {
    this.finished = true;
    this.owner.streamFinished(this, early);
  }

  /** @internal payload bytes arrived. */
  push(data: Buffer): void {
    if (this.finished || data.length === 0) return;
    this.bytesReceived += data.length;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve({ done: false, value: data });
      return;
    }
    this.queue.push(data);
    this.queued += data.length;
    this.weight += data.length + PIECE_COST;
  }

  /** @internal the last byte arrived. */
  end(): void {
    this.ended = true;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      this.finish(false);
      w.resolve(DONE);
    }
  }

  /** @internal the message will never be complete: the consumer sees `error` once it has read what arrived. */
  abort(error: Error): void {
    if (this.ended || this.error !== null) return;
    this.error = error;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      this.finished = true;
      w.reject(error);
    }
  }

  /** @internal whether the consumer is done with it. */
  get released(): boolean {
    return this.finished;
  }
}

const EMPTY: Buffer = Buffer.alloc(0);
