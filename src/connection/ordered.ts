/**
 * Outgoing data messages in send order while some of them are still being compressed on the
 * thread pool: a frame that is ready waits behind one that is not, and nothing is written
 * until everything before it is. Exists only while a connection has an async frame pending;
 * a connection that compresses synchronously (or not at all) writes straight to its socket.
 */
import type { Duplex } from 'node:stream';
import type { ProtocolError } from '../protocol/errors.js';
import type { Frame } from '../protocol/framer.js';
import { type OutgoingStream, streamInterrupted } from './stream-out.js';

/** What the queue writes through: the connection. */
export interface OrderedOwner {
  readonly socket: Duplex;
  /** Writes a data frame accepted earlier (it passed the backpressure check when it was sent). */
  writeAccepted(frame: Frame): void;
  /** The queue is empty again (a close frame held behind it may go now). */
  orderedEmpty(): void;
  /** Compressing a message failed (a bug or an exhausted machine): fail the connection. */
  orderedFailed(error: unknown): void;
}

interface Item {
  frame: Frame | null;
  /** Bytes counted toward the backlog while waiting: the uncompressed length. */
  readonly estimate: number;
  /** A message sent from a source (stream-out.ts): it writes its own frames once at the head, and leaves when done. */
  readonly stream: OutgoingStream | null;
}

export class OrderedOutput {
  private readonly owner: OrderedOwner;
  private items: Item[] = [];
  /** Bytes waiting here (uncompressed lengths), counted toward `maxBackpressure`. */
  bytes = 0;

  constructor(owner: OrderedOwner) {
    this.owner = owner;
  }

  /** Messages waiting. */
  get length(): number {
    return this.items.length;
  }

  /** Queues a frame (or one being made) behind the others; writes what is ready at the head. */
  push(frame: Frame | Promise<Frame>, estimate: number): void {
    const item: Item = { frame: frame instanceof Promise ? null : frame, estimate, stream: null };
    this.items.push(item);
    this.bytes += estimate;
    if (frame instanceof Promise) {
      frame.then(
        (f) => {
          item.frame = f;
          this.pump(true);
        },
        (error: unknown) => this.owner.orderedFailed(error),
      );
    } else if (this.items.length === 1) {
      this.pump(false);
    }
  }

  /** Queues a message sent from a source; it starts once everything before it is written. */
  pushStream(stream: OutgoingStream): void {
    this.items.push({ frame: null, estimate: 0, stream });
    if (this.items.length === 1) this.pump(false);
  }

  /** A stream finished (or gave up): what waited behind it goes now. */
  streamDone(stream: OutgoingStream): void {
    const head = this.items[0];
    if (head !== undefined && head.stream === stream) this.pump(true);
  }

  /**
   * Our close frame is due: the first stream and everything after it can never be sent (a
   * message cut off, or one after it); the streams are cancelled. What is before the
   * first stream (messages being compressed) still goes, ahead of the close frame. The streams
   * are rejected with `WS_STREAM_INTERRUPTED` (`code`).
   */
  cutAtStream(code: number, why: string): void {
    const items = this.items;
    const at = items.findIndex((item) => item.stream !== null);
    if (at < 0) return;
    const error = streamInterrupted(code, why);
    const cut = items.splice(at);
    for (const item of cut) {
      this.bytes -= item.estimate;
      item.stream?.cancel(error);
    }
  }

  /** Drops everything waiting (the connection failed or closed); streams are cancelled with `error`. */
  clear(error: ProtocolError): void {
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    for (const item of items) item.stream?.cancel(error);
  }

  private pump(cork: boolean): void {
    const items = this.items;
    const s = this.owner.socket;
    // From a thread-pool callback nothing else corks: write what is ready in one go.
    if (cork) s.cork();
    while (items.length > 0) {
      const head = items[0] as Item;
      const stream = head.stream;
      if (stream !== null) {
        if (!stream.started) stream.start();
        if (!stream.finished) break;
        items.shift();
        continue;
      }
      if (head.frame === null) break;
      items.shift();
      this.bytes -= head.estimate;
      this.owner.writeAccepted(head.frame);
    }
    if (cork) s.uncork();
    if (items.length === 0 && this.items === items) this.owner.orderedEmpty();
  }
}
