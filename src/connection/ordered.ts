/**
 * Outgoing data messages in send order while some of them are still being compressed on the
 * thread pool: a frame that is ready waits behind one that is not, and nothing is written
 * until everything before it is. Exists only while a connection has an async frame pending;
 * a connection that compresses synchronously (or not at all) writes straight to its socket.
 */
import type { Duplex } from 'node:stream';
import type { Frame } from '../protocol/framer.js';

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
    const item: Item = { frame: frame instanceof Promise ? null : frame, estimate };
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

  /** Drops everything waiting (the connection failed or closed). */
  clear(): void {
    this.items = [];
    this.bytes = 0;
  }

  private pump(cork: boolean): void {
    const items = this.items;
    if (items.length === 0 || (items[0] as Item).frame === null) return;
    const s = this.owner.socket;
    // From a thread-pool callback nothing else corks: write what is ready in one go.
    if (cork) s.cork();
    while (items.length > 0 && (items[0] as Item).frame !== null) {
      const item = items.shift() as Item;
      this.bytes -= item.estimate;
      this.owner.writeAccepted(item.frame as Frame);
    }
    if (cork) s.uncork();
    if (items.length === 0) this.owner.orderedEmpty();
  }
}
