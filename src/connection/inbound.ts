import type { Buffer } from 'node:buffer';
import { ReadyState } from '../behavior.js';
import { decodeText } from '../protocol/utf8.js';
import type { Dispatcher } from './dispatch.js';


/**
 * Incoming messages wait in a queue when the code taking them is slower than the peer: the
 * `Behavior.messages()` iterator, or hooks whose promises have not settled yet. Reading the
 * socket pauses once the queued messages reach this many (or {@link MESSAGES_HIGH_WATER_BYTES},
 * whichever comes first). The queue can exceed it by the messages of the one TCP chunk being
 * parsed when the mark was reached.
 */
export const MESSAGES_HIGH_WATER_COUNT = 16;
/** Reading pauses once the queued messages hold this many payload bytes. */
export const MESSAGES_HIGH_WATER_BYTES: number = 1 << 20;
/** A paused socket resumes once the queue is down to at most this many messages… */
export const MESSAGES_LOW_WATER_COUNT = 4;
/** …and at most this many payload bytes. */
export const MESSAGES_LOW_WATER_BYTES: number = 256 << 10;

/**
 * What `Behavior.messages()` returns: an async iterator of incoming data messages (a `string`
 * for text, a `Buffer` for binary), with the size of its queue for monitoring.
 */
export interface MessageStream extends AsyncIterableIterator<string | Buffer> {
  /** Messages received and not yet taken by the consumer. */
  readonly queued: number;
  /** Payload bytes of those messages. */
  readonly queuedBytes: number;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** A FIFO of received data messages and their payload bytes. */
export class Inbound {
  items: Buffer[] = [];
  kinds: boolean[] = [];
  head = 0;
  bytes = 0;
  /** Whether the message `shift()` returned last is text. */
  lastText = false;

  get length(): number {
    return this.items.length - this.head;
  }

  push(data: Buffer, isText: boolean): void {
    this.items.push(data);
    this.kinds.push(isText);
    this.bytes += data.length;
  }

  shift(): Buffer {
    const data = this.items[this.head] as Buffer;
    this.lastText = this.kinds[this.head] as boolean;
    this.head++;
    this.bytes -= data.length;
    if (this.head === this.items.length) this.clear();
    return data;
  }

  clear(): void {
    this.items = [];
    this.kinds = [];
    this.head = 0;
    this.bytes = 0;
  }
}

/**
 * The queue behind `Behavior.messages()`: the connection pushes data messages into it while it is
 * the connection's `inbox`; the connection pauses the socket above the high-water mark.
 */
export class MessageQueue implements MessageStream {
  private readonly connection: Dispatcher | null;
  /** @internal */
  readonly inbound: Inbound = new Inbound();
  private waiters: ((result: IteratorResult<string | Buffer, undefined>) => void)[] = [];
  /** The connection closed: hand out what is queued, then `done`. */
  private ended = false;
  /** `return()` was called: `done` at once. */
  private released = false;

  constructor(connection: Dispatcher | null) {
    this.connection = connection;
    if (connection === null) this.ended = true;
  }

  get queued(): number {
    return this.inbound.length;
  }

  get queuedBytes(): number {
    return this.inbound.bytes;
  }

  /** @internal nothing more will ever come out of this iterator. */
  get finished(): boolean {
    return this.released || (this.ended && this.inbound.length === 0);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal a data message from the peer. */
  push(data: Buffer, isText: boolean): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ done: false, value: isText ? decodeText(data) : data });
      return;
    }
    this.inbound.push(data, isText);
    this.connection?.queueGrew();
  }

  /** @internal the connection is closed: pending `next()` calls get `done`; queued messages are still handed out. */
  end(): void {
    this.ended = true;
    if (this.inbound.length === 0) this.settleWaiters();
  }

  private settleWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(DONE);
  }

  next(): Promise<IteratorResult<string | Buffer, undefined>> {
    if (this.released) return Promise.resolve(DONE);
    const q = this.inbound;
    if (q.length > 0) {
      const data = q.shift();
      const isText = q.lastText;
      this.connection?.queueShrank();
      return Promise.resolve({ done: false, value: isText ? decodeText(data) : data });
    }
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Releases the iterator (`break` out of `for await` calls this): later messages go back to
   * `onText`/`onBinary`, and so do the ones still queued, in order, before this returns.
   */
  return(): Promise<IteratorResult<string | Buffer, undefined>> {
    if (this.released) return Promise.resolve(DONE);
    this.released = true;
    this.settleWaiters();
    const q = this.inbound;
    const c = this.connection;
    if (c !== null) {
      if (c.inbox === this) c.inbox = null;
      while (q.length > 0 && c.state !== ReadyState.CLOSED) {
        const data = q.shift();
        c.dispatch(data, q.lastText);
      }
      c.queueShrank();
    }
    q.clear();
    return Promise.resolve(DONE);
  }
}
