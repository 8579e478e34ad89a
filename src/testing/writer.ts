import type { Duplex } from 'node:stream';
import type { ProtocolError } from '../protocol/errors.js';
import type { Frame } from '../protocol/framer.js';
import { writeFrameTo } from '../connection/write.js';
import { OutgoingStream, type SendStreamOptions, type StreamOwner, type StreamSource } from '../connection/stream-out.js';

/** Ends the socket once everything before it is written. */
const END: unique symbol = Symbol('end');

type Item = Frame | Promise<Frame> | OutgoingStream | typeof END;

/** What the writer asks of its client. @internal */
export interface WriterOwner {
  /** A pending frame failed (a compression error): the frame is dropped. */
  writeFailed(error: unknown): void;
  /** Whether data frames may still go out: open, no close frame sent. */
  dataWritable(): boolean;
  /** A streamed message broke off after its first frame (its source failed, or was aborted): close with `code`. */
  streamBroken(code: number, reason: string, error: unknown): void;
}

/**
 * Writes a test client's frames in the order they were given, even when some are still being
 * compressed on the thread pool (a Promise) or are a message streamed from a source
 * (stream-out.ts, the server's own code, here masking its frames as a client must): later data
 * frames and the end of the socket wait behind them. Control frames go out between a streamed
 * message's fragments (RFC 6455 §5.4, §5.5). While nothing is pending a frame is written at once.
 * @internal
 */
export class OrderedWriter implements StreamOwner {
  /** @internal StreamOwner: a client masks every frame, with a fresh key each (RFC 6455 §5.3). */
  readonly masksFrames = true;
  readonly #socket: Duplex;
  readonly #owner: WriterOwner;
  readonly #queue: Item[] = [];
  /** The frame at the head of the queue is a Promise being waited for. */
  #waiting = false;

  constructor(socket: Duplex, owner: WriterOwner) {
    this.#socket = socket;
    this.#owner = owner;
  }

  /** Frames (and streamed messages) queued behind one still being compressed or streamed. */
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

  /**
   * Writes a control frame: like {@link write}, except that it does not wait for a streamed
   * message (nor for what is queued behind one) but goes out between two of its fragments.
   */
  writeControl(frame: Frame): boolean {
    const at = this.#queue.findIndex(isStream);
    if (at < 0 || !this.#socket.writable) return this.write(frame);
    if (at === 0) this.#writeNow(frame);
    else this.#queue.splice(at, 0, frame);
    return true;
  }

  /** Queues a message streamed from `source`; it starts once everything before it is written. */
  stream(source: StreamSource, options: SendStreamOptions, resolve: (sent: number) => void, reject: (error: unknown) => void): void {
    this.#queue.push(new OutgoingStream(this, source, options, resolve, reject));
    this.#drain();
  }

  /**
   * The connection is closing: the first streamed message and everything queued after it can
   * never be sent (RFC 6455 §5.4: only a close frame may follow half a message); the streams
   * reject with `error`. What is before it (messages being compressed) still goes.
   */
  cut(error: ProtocolError): void {
    const at = this.#queue.findIndex(isStream);
    if (at < 0) return;
    for (const item of this.#queue.splice(at)) {
      if (item instanceof OutgoingStream) item.cancel(error);
      else if (item instanceof Promise) item.catch(() => {});
    }
  }

  /** Ends the socket's writable side (a FIN) once everything queued is written. */
  end(): void {
    if (this.#queue.length === 0) this.#socket.end();
    else this.#queue.push(END);
  }

  // ---- StreamOwner: what a streamed message writes through ------------------------------------

  /** @internal */
  get streamSocket(): Duplex {
    return this.#socket;
  }

  /** @internal */
  get streamWritable(): boolean {
    return this.#owner.dataWritable() && this.#socket.writable;
  }

  /** @internal */
  writeStreamFrame(frame: Frame): void {
    writeFrameTo(this.#socket, frame);
  }

  /** @internal Resolves on the socket's 'drain' (true) or its close (false). */
  streamDrain(): Promise<boolean> {
    const s = this.#socket;
    if (s.destroyed) return Promise.resolve(false);
    if (!s.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (drained: boolean): void => {
        s.off('drain', onDrain);
        s.off('close', onClose);
        resolve(drained);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }

  /** @internal */
  streamSettled(stream: OutgoingStream): void {
    if (this.#queue[0] !== stream) return;
    this.#queue.shift();
    this.#drain();
  }

  /** @internal */
  streamBroken(code: number, reason: string, error: unknown): void {
    this.#owner.streamBroken(code, reason, error);
  }

  // ---- internals ------------------------------------------------------------------------------

  #drain(): void {
    const queue = this.#queue;
    while (queue.length > 0 && !this.#waiting) {
      const head = queue[0] as Item;
      if (head instanceof OutgoingStream) {
        // It writes its own frames, and leaves the queue when done (streamSettled).
        if (!head.started) head.start();
        if (!head.finished) return;
        queue.shift();
        continue;
      }
      if (head instanceof Promise) {
        this.#waiting = true;
        head.then(
          (frame) => {
            if (queue[0] === head) queue[0] = frame;
          },
          (error: unknown) => {
            if (queue[0] === head) queue.shift();
            this.#owner.writeFailed(error);
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

function isStream(item: Item): item is OutgoingStream {
  return item instanceof OutgoingStream;
}
