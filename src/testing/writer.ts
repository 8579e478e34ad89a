import type { Duplex } from 'node:stream';
import type { Frame } from '../protocol/framer.js';
import { writeFrameTo } from '../connection/write.js';

/** Ends the socket once everything before it is written. */
const END: unique symbol = Symbol('end');

type Item = Frame | Promise<Frame> | typeof END;

/**
 * Writes a test client's frames in the order they were given, even when some are still being
 * compressed on the thread pool (a Promise): later frames, control frames and the end of the
 * socket wait behind them. While nothing is pending a frame is written at once.
 */
export class OrderedWriter {
  readonly #socket: Duplex;
  readonly #onError: (error: unknown) => void;
  readonly #queue: Item[] = [];
  /** The frame at the head of the queue is a Promise being waited for. */
  #waiting = false;

  /** `onError` is told when a pending frame fails (a compression error); the frame is dropped. */
  constructor(socket: Duplex, onError: (error: unknown) => void) {
    this.#socket = socket;
    this.#onError = onError;
  }

  /** Frames queued behind one still being compressed. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Writes `frame` now or after the frames before it. `false` if the socket is no longer writable. */
  write(frame: Frame | Promise<Frame>): boolean {
    if (!this.#socket.writable) {
      if (frame instanceof Promise) frame.catch(() => {}); // nobody will write it
      return false;
    }
    if (this.#queue.length === 0 && !(frame instanceof Promise)) {
      this.#writeNow(frame);
      return true;
    }
    this.#queue.push(frame);
    this.#drain();
    return true;
  }

  /** Ends the socket's writable side (a FIN) once everything queued is written. */
  end(): void {
    if (this.#queue.length === 0) this.#socket.end();
    else this.#queue.push(END);
  }

  #drain(): void {
    const queue = this.#queue;
    while (queue.length > 0 && !this.#waiting) {
      const head = queue[0] as Item;
      if (head instanceof Promise) {
        this.#waiting = true;
        head.then(
          (frame) => {
            queue[0] = frame;
          },
          (error: unknown) => {
            queue.shift();
            this.#onError(error);
          },
        ).finally(() => {
          this.#waiting = false;
          this.#drain();
        });
        return;
      }
      queue.shift();
      if (head === END) this.#socket.end();
      else this.#writeNow(head);
    }
  }

  #writeNow(frame: Frame): void {
    const s = this.#socket;
    if (!s.writable) return;
    writeFrameTo(s, frame);
  }
}
