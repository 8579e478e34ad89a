import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { ReadyState } from '../behavior.js';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { type Frame, encodeFrame, frameLength } from '../protocol/framer.js';
import { OrderedOutput } from './ordered.js';
import { Sender } from './sender.js';
import { OutgoingStream, type SendStreamOptions, type StreamSource, streamInterrupted } from './stream-out.js';
import { writeFrameTo } from './write.js';

/**
 * The sending side's two queues that keep frames in order (above sender.ts, below dispatch.ts):
 * messages sent from a source of chunks (`sendStream`, stream-out.ts: this class is their
 * StreamOwner) and the frames held behind a message being compressed on the thread pool or
 * streamed (ordered.ts: their OrderedOwner), with the close frame and TCP end held behind
 * them. A layer of the connection's class chain, as the sender is, so that a connection stays
 * one object.
 */
// A StreamOwner and an OrderedOwner by shape: `implements` would name internal types in the published types.
export abstract class OrderedSender extends Sender {
  /** Sends one message from a source of chunks: see `Behavior.sendStream`. */
  sendStream(source: StreamSource, options?: SendStreamOptions): Promise<number> {
    const size = options?.fragmentSize;
    if (size !== undefined && !(Number.isInteger(size) && size > 0)) {
      return Promise.reject(new RangeError(`sendStream(): fragmentSize is a positive integer number of bytes, not ${String(size)}`));
    }
    if (this.state !== ReadyState.OPEN || this.closeSent) {
      return Promise.reject(streamInterrupted(CloseCode.Abnormal, `connection ${this.behavior.id} is not open`));
    }
    if (options?.signal?.aborted === true) return Promise.reject(options.signal.reason);
    return new Promise<number>((resolve, reject) => {
      (this.ordered ??= new OrderedOutput(this)).pushStream(new OutgoingStream(this, source, options, resolve, reject));
      this.active = true;
    });
  }

  /** @internal StreamOwner */
  get streamSocket(): Duplex {
    return this.socket;
  }

  /** @internal StreamOwner */
  get streamWritable(): boolean {
    return this.state === ReadyState.OPEN && !this.closeSent && this.socket.writable;
  }

  /** @internal StreamOwner: one frame of a streamed message. */
  writeStreamFrame(frame: Frame): void {
    if (this.outBytes !== 0) this.flushOut();
    writeFrameTo(this.socket, frame);
    const counters = this.counters;
    counters.bytesOut += frameLength(frame);
    this.active = true;
    // The message counts once, with its last frame.
    if ((((Buffer.isBuffer(frame) ? frame : frame[0])[0] as number) & 0x80) !== 0) counters.messagesOut++;
  }

  /** @internal StreamOwner: resolves on the socket's next 'drain' (true) or its close (false). */
  streamDrain(): Promise<boolean> {
    if (this.state === ReadyState.CLOSED || this.socket.destroyed) return Promise.resolve(false);
    if (!this.socket.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.streamDrainWaiter = resolve;
    });
  }

  /** @internal StreamOwner */
  streamSettled(stream: OutgoingStream): void {
    this.ordered?.streamDone(stream);
  }

  /** @internal StreamOwner: a message broke off half sent: the connection closes. */
  streamBroken(code: number, reason: string, error: unknown): void {
    if (this.state !== ReadyState.OPEN) return;
    this.owner.log.warn(`wsmount: a message streamed to connection ${this.behavior.id} broke off (${reason}); closing it with ${code}`, error);
    this.close(code, reason);
  }

  /** @internal A frame from the ordered queue, accepted when it was sent: written now, in order. */
  writeAccepted(frame: Frame): void {
    const s = this.socket;
    if (this.state === ReadyState.CLOSED || (this.closeSent && this.closeHeld === null) || !s.writable) return;
    if (this.outBytes !== 0) this.flushOut();
    writeFrameTo(s, frame);
    const counters = this.counters;
    counters.messagesOut++;
    counters.bytesOut += frameLength(frame);
  }

  /**
   * @internal The ordered queue emptied: frames go straight out again; a held close frame goes
   * now (and the TCP end held behind it); the drain waiters and `onDrain` hear of it.
   */
  orderedEmpty(): void {
    this.ordered = null;
    if (this.closeHeld !== null) {
      this.writeHeldClose();
      return;
    }
    if (this.drainWaiters !== null || this.drainOwed) {
      if (!this.socket.writableNeedDrain) this.scheduleDrainNotice();
    }
  }

  /** Writes the close frame held behind the ordered queue, then the TCP end held behind it. */
  private writeHeldClose(): void {
    const held = this.closeHeld;
    this.closeHeld = null;
    if (held === null || this.state === ReadyState.CLOSED || !this.socket.writable) return;
    this.writeControl(encodeFrame(Opcode.Close, held));
    if (this.endHeld) {
      this.endHeld = false;
      this.socket.end();
    }
  }

  /** @internal Compressing failed: nothing after it can be sent in order. */
  orderedFailed(error: unknown): void {
    if (this.state === ReadyState.CLOSED) return;
    this.owner.log.error(`wsmount: compressing a message for connection ${this.behavior.id} failed; closing it with 1011`, error);
    this.dropOrdered();
    this.fail(CloseCode.InternalError, 'internal error');
  }

  /**
   * @internal Forgets the frames waiting to be compressed (the connection is failing, the peer
   * closed, or the socket is gone); a close frame held behind them goes now, if it still can.
   */
  protected dropOrdered(code: number = CloseCode.Abnormal, why = 'the connection closed'): void {
    const ordered = this.ordered;
    if (ordered === null) return;
    this.ordered = null;
    ordered.clear(streamInterrupted(code, why));
    this.writeHeldClose();
  }
}
