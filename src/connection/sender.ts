import { Buffer } from 'node:buffer';
import { type BinaryData, ReadyState } from '../behavior.js';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from '../protocol/constants.js';
import { COPY_THRESHOLD, type Frame, encodeFrame, encodeText, frameLength, toBuffer, writeHeader } from '../protocol/framer.js';
import { type BackpressureMessage, channels } from '../diagnostics.js';
import { arena, arenaTake, endRunOf, enlist, hasRun, inBatch, joinFrames } from './batch.js';
import { OrderedOutput } from './ordered.js';
import { ConnectionState } from './state.js';
import { backlogBytes, writeFrameTo } from './write.js';
import type { OutgoingMessage } from './outgoing.js';
import { BYTES_PER_TURN, currentTurn, queueDrainNotice, takeSyncDrain, turnNow } from './turns.js';
import type { HookName, SendStatus } from './types.js';
import { F_DRAIN_NOTICE_DUE, F_DRAIN_OWED, F_PONG_IN_FLIGHT } from './flags.js';

/** @internal */
export const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The sending side of a connection (on its state, state.ts; below ordered-sender.ts,
 * dispatch.ts, stream-in.ts and connection.ts, whose `Connection` is the one class
 * instantiated): data frames under the route's backpressure policy, each connection's share of
 * a turn (turns.ts), the `drained()` waiters and `onDrain` notices, and the control frames we
 * write — pings, pongs (at most one queued at a time) and the close frame. A base class rather
 * than an object of its own, so a send costs no extra hop and a connection no extra allocation.
 */
export abstract class Sender extends ConnectionState {
  /** A pong has been written and not yet handed to the kernel (its write callback is due). */
  private get pongInFlight(): boolean {
    return (this.flags & F_PONG_IN_FLIGHT) !== 0;
  }
  private set pongInFlight(on: boolean) {
    this.flags = on ? this.flags | F_PONG_IN_FLIGHT : this.flags & ~F_PONG_IN_FLIGHT;
  }
  /** Made for the first ping a peer sends (browsers send none; some clients ping every few seconds). */
  private pongWrittenBound: (() => void) | null = null;
  protected get drainWaiters(): ((drained: boolean) => void)[] | null {
    return this.extras === null ? null : this.extras.drainWaiters;
  }
  protected set drainWaiters(value: ((drained: boolean) => void)[] | null) {
    if (value !== null || this.extras !== null) this.extra().drainWaiters = value;
  }
  /** A drain notice is queued (turns.ts): it will tell the drain waiters and `onDrain`. */
  private get drainNoticeDue(): boolean {
    return (this.flags & F_DRAIN_NOTICE_DUE) !== 0;
  }
  private set drainNoticeDue(on: boolean) {
    this.flags = on ? this.flags | F_DRAIN_NOTICE_DUE : this.flags & ~F_DRAIN_NOTICE_DUE;
  }
  /** The socket emitted 'drain', or a send said 'queued' for fairness, since `onDrain` last ran. */
  protected get drainOwed(): boolean {
    return (this.flags & F_DRAIN_OWED) !== 0;
  }
  protected set drainOwed(on: boolean) {
    this.flags = on ? this.flags | F_DRAIN_OWED : this.flags & ~F_DRAIN_OWED;
  }
  /** The turn `turnBytes` counts (turns.ts), and the bytes sent in it. */
  private turn = 0;
  private turnBytes = 0;

  /** Starts the closing handshake (RFC 6455 §7.1.2). Throws RangeError on a code that may not be sent. */
  abstract close(code: number | undefined, reason: string): void;

  /** A hook threw: log it, tell `onError`, close with 1011 (dispatch.ts). */
  abstract hookFailed(error: unknown, hook: HookName): void;

  /** Catches a rejected promise returned by `onDrain` (dispatch.ts). */
  abstract watch(result: unknown): void;

  /** Fails the connection (RFC 6455 §7.1.7) with `code` (connection.ts). */
  abstract fail(code: number, reason: string): void;

  // ---- sending ------------------------------------------------------------------------------

  /** Writes an already framed data message, under the route's backpressure policy. */
  writeFrame(frame: Frame): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const length = frameLength(frame);
    if (this.wouldPassLimit(length)) return this.overBackpressure(length);
    return this.writeNow(frame, length);
  }

  /**
   * A small message sent during a batch with nothing ordered ahead of it: framed straight into
   * the batch arena (batch.ts), after this connection's previous frame when nothing else was
   * framed in between, and held with the batch's other frames for its one write.
   */
  private sendSmall(opcode: number, payload: Buffer | string, length: number): SendStatus {
    const size = (length < 126 ? 2 : 4) + length;
    if (this.wouldPassLimit(size)) return this.overBackpressure(size);
    // Holding nothing yet: enlisted for the batch's end, once.
    if (this.out === null && !hasRun(this)) enlist(this);
    const at = arenaTake(this, size);
    const a = arena;
    const start = writeHeader(a, at, opcode, length, true, 0, null);
    if (typeof payload === 'string') a.write(payload, start, length, 'utf8');
    else a.set(payload, start);
    this.outBytes += size;
    const s = this.socket;
    const flushed = s.writableLength + this.outBytes < s.writableHighWaterMark || this.flushOut();
    return this.sent(size, flushed);
  }

  /** @internal Puts this connection's arena run (batch.ts) in the list (`out`), where frames held otherwise follow it. */
  takeRun(view: Buffer): void {
    const out = this.out;
    if (out === null) this.out = [view];
    else out.push(view);
  }

  /** Writes a data frame that passed the backpressure check. */
  private writeNow(frame: Frame, length: number): SendStatus {
    const s = this.socket;
    let flushed: boolean;
    if (inBatch() && Buffer.isBuffer(frame)) {
      // A small frame (framer.ts copies payloads up to COPY_THRESHOLD next to their header): kept
      // for the batch's one write, unless that takes the socket to its high-water mark: then
      // written now, with those before it, so that 'queued' always comes with a 'drain' to come.
      endRunOf(this);
      const out = this.out;
      if (out === null) {
        this.out = [frame];
        enlist(this);
      } else {
        out.push(frame);
      }
      this.outBytes += length;
      flushed = s.writableLength + this.outBytes < s.writableHighWaterMark || this.flushOut();
    } else {
      if (this.outBytes !== 0) this.flushOut();
      flushed = writeFrameTo(s, frame);
    }
    return this.sent(length, flushed);
  }

  /** Counts a data frame given to the socket or held for it; its send status. */
  private sent(length: number, flushed: boolean): SendStatus {
    const counters = this.counters;
    counters.messagesOut++;
    counters.bytesOut += length;
    this.active = true;
    const spent = this.spendTurn(length);
    if (!flushed) return 'queued';
    // This connection has had its share of the turn: 'queued', and told to go on next turn.
    if (spent) {
      this.drainOwed = true;
      this.scheduleDrainNotice();
      return 'queued';
    }
    return 'sent';
  }

  /** Counts `length` toward this turn's bytes; true once they pass BYTES_PER_TURN. */
  private spendTurn(length: number): boolean {
    const turn = currentTurn();
    if (turn !== this.turn) {
      this.turn = turn;
      this.turnBytes = 0;
    }
    this.turnBytes += length;
    return this.turnBytes > BYTES_PER_TURN;
  }

  /** Whether this connection has sent more than its share in the turn still running. */
  private turnSpent(): boolean {
    return this.turn === turnNow() && this.turnBytes > BYTES_PER_TURN;
  }

  /**
   * Whether writing `length` more bytes would take the backlog past `maxBackpressure` (over
   * HTTP/2, the backlog less the write Node is still framing: {@link backlogBytes}).
   */
  private wouldPassLimit(length: number): boolean {
    const s = this.socket;
    const max = this.limits.maxBackpressure;
    const held = s.writableLength + this.outBytes;
    // A message larger than the limit still goes out on an empty backlog.
    return held > 0 && held + length > max && backlogBytes(s) + this.outBytes + length > max && this.stillOver(length);
  }

  /**
   * @internal Gives the frames held for the batch to the socket, as one buffer in one write;
   * returns what that write returned (true when nothing was held). Called when the batch ends
   * and before any other write, so that frames leave in the order they were sent.
   */
  flushOut(): boolean {
    endRunOf(this);
    const out = this.out;
    if (out === null) return true;
    const bytes = this.outBytes;
    this.out = null;
    this.outBytes = 0;
    const s = this.socket;
    // A destroyed socket drops what was written to it; so do we.
    if (s.destroyed) return false;
    return s.write(out.length === 1 ? (out[0] as Buffer) : joinFrames(out, bytes));
  }

  /**
   * Inside a hook the socket is corked, so a burst counts as backlog before any byte reached the
   * kernel. Hand the corked bytes to the kernel (uncork, then cork again as deep) before deciding
   * the peer is slow.
   */
  private stillOver(length: number): boolean {
    const s = this.socket;
    this.flushOut();
    const depth = s.writableCorked;
    if (depth > 0) {
      for (let i = 0; i < depth; i++) s.uncork();
      for (let i = 0; i < depth; i++) s.cork();
    }
    return s.writableLength > 0 && backlogBytes(s) + length > this.limits.maxBackpressure;
  }

  private overBackpressure(length: number): SendStatus {
    this.counters.backpressureDrops++;
    if (channels.backpressure.hasSubscribers) {
      const limits = this.limits;
      const message: BackpressureMessage = {
        client: this.behavior,
        action: limits.dropOnBackpressure ? 'drop' : 'close',
        bytes: length,
        bufferedAmount: this.bufferedAmount,
        maxBackpressure: limits.maxBackpressure,
      };
      channels.backpressure.publish(message);
    }
    if (this.limits.dropOnBackpressure) {
      this.owner.log.debug(
        `wsmount: dropped a ${length}-byte message to connection ${this.behavior.id}: ${this.bufferedAmount} bytes are waiting (maxBackpressure ${this.limits.maxBackpressure})`,
      );
      return 'dropped';
    }
    this.counters.backpressureCloses++;
    this.owner.log.warn(
      `wsmount: closing slow consumer ${this.behavior.id} with 1008: ${this.bufferedAmount} bytes are waiting and a ${length}-byte message would pass maxBackpressure ${this.limits.maxBackpressure}`,
    );
    this.close(CloseCode.PolicyViolation, 'slow consumer');
    return 'dropped';
  }

  sendText(text: string): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const d = this.deflate;
    // At most 3 bytes per UTF-16 unit: a string this short is under the threshold whatever it holds.
    if (d !== null && text.length * 3 >= d.threshold) {
      const bytes = Buffer.from(text, 'utf8');
      if (!d.compresses(bytes.length)) return this.writeData(encodeFrame(Opcode.Text, bytes));
      // Checked before compressing: a message dropped after it entered a context-takeover
      // compressor's window would corrupt every later one (the peer never sees it).
      if (this.overLimit(bytes.length)) return this.overBackpressure(bytes.length);
      return this.writeCompressed(d.frame(Opcode.Text, bytes), bytes.length);
    }
    // At most 3 bytes per UTF-16 unit: a string this short fits a small frame whatever it holds.
    if (text.length * 3 <= COPY_THRESHOLD && this.ordered === null && inBatch()) return this.sendSmall(Opcode.Text, text, Buffer.byteLength(text));
    return this.writeData(encodeText(text));
  }

  sendBinary(data: BinaryData): SendStatus {
    return this.sendBytes(toBuffer(data), Opcode.Binary);
  }

  /**
   * @internal Sends `bytes` as one message of `opcode`: binary, or text whose bytes the caller has
   * checked to be UTF-8 (the ws face's `send(buffer, { binary: false })`, compat/socket.ts).
   */
  sendBytes(bytes: Buffer, opcode: typeof Opcode.Text | typeof Opcode.Binary): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const d = this.deflate;
    if (d === null || !d.compresses(bytes.length)) {
      const length = bytes.length;
      if (length <= COPY_THRESHOLD && this.ordered === null && inBatch()) return this.sendSmall(opcode, bytes, length);
      return this.writeData(encodeFrame(opcode, bytes));
    }
    if (this.overLimit(bytes.length)) return this.overBackpressure(bytes.length);
    return this.writeCompressed(d.frame(opcode, bytes), bytes.length);
  }

  /**
   * @internal Writes a message going to many connections (broadcast, publish): the frame shared
   * by all, or with compression the one compressed once for every connection that resets its
   * context (session.ts), or this connection's own.
   */
  writeMessage(message: OutgoingMessage): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const d = this.deflate;
    if (d === null || !d.compresses(message.length)) return this.writeData(message.frame);
    if (this.overLimit(message.length)) return this.overBackpressure(message.length);
    return this.writeCompressed(d.frameShared(message), message.length);
  }

  /** An uncompressed data frame: straight out, or behind the frames still being compressed. */
  private writeData(frame: Frame): SendStatus {
    if (this.ordered === null) return this.writeFrame(frame);
    const length = frameLength(frame);
    if (this.overLimit(length)) return this.overBackpressure(length);
    return this.enqueue(frame, length);
  }

  /** A compressed frame, or the promise of one (a large message on the thread pool); the backpressure check was done. */
  private writeCompressed(frame: Frame | Promise<Frame>, length: number): SendStatus {
    if (this.ordered === null && !(frame instanceof Promise)) return this.writeNow(frame, frameLength(frame));
    return this.enqueue(frame, length);
  }

  /**
   * Whether `length` more bytes would take the backlog past `maxBackpressure`: the socket's, plus
   * what waits behind a message being compressed on the thread pool (counted uncompressed).
   */
  private overLimit(length: number): boolean {
    const queued = this.ordered === null ? 0 : this.ordered.bytes;
    if (queued === 0) return this.wouldPassLimit(length);
    return queued + backlogBytes(this.socket) + this.outBytes + length > this.limits.maxBackpressure;
  }

  /**
   * Queues a frame behind those being compressed (ordered.ts). The message is not with the
   * socket yet: 'queued', and `onDrain`/`drained()` tell when the queue has gone out.
   */
  private enqueue(frame: Frame | Promise<Frame>, length: number): SendStatus {
    // Only called with a frame ahead still being compressed, or this one being compressed: it waits.
    (this.ordered ??= new OrderedOutput(this)).push(frame, length);
    this.active = true;
    this.drainOwed = true;
    return 'queued';
  }

  /** @internal A streamed message waits for the socket's next 'drain' (ordered-sender.ts). */
  protected get streamDrainWaiter(): ((drained: boolean) => void) | null {
    return this.extras === null ? null : this.extras.streamDrainWaiter;
  }
  protected set streamDrainWaiter(value: ((drained: boolean) => void) | null) {
    if (value !== null || this.extras !== null) this.extra().streamDrainWaiter = value;
  }


  // ---- what the ordered queue calls (ordered.ts), in ordered-sender.ts --------------------------

  /** @internal OrderedOwner: a frame from the ordered queue, written now, in order. */
  abstract writeAccepted(frame: Frame): void;
  /** @internal OrderedOwner: the ordered queue emptied. */
  abstract orderedEmpty(): void;
  /** @internal OrderedOwner: compressing failed. */
  abstract orderedFailed(error: unknown): void;

  ping(data?: string | BinaryData): SendStatus {
    return this.sendControl(Opcode.Ping, data);
  }

  /** @internal An unsolicited pong (RFC 6455 §5.5.3), for the ws face's `pong()`. */
  pong(data?: string | BinaryData): SendStatus {
    return this.sendControl(Opcode.Pong, data);
  }

  private sendControl(opcode: typeof Opcode.Ping | typeof Opcode.Pong, data: string | BinaryData | undefined): SendStatus {
    const payload = data === undefined ? EMPTY : typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
    // RFC 6455 §5.5: control frames carry at most 125 bytes.
    if (payload.length > MAX_CONTROL_PAYLOAD) throw new RangeError(`a ${opcode === Opcode.Ping ? 'ping' : 'pong'} payload is at most 125 bytes`);
    if (this.state !== ReadyState.OPEN) return 'dropped';
    // Pings sent by the app count toward the backlog like data: a ping loop to a peer that does
    // not read is bounded by maxBackpressure and its policy.
    const frame = encodeFrame(opcode, payload) as Buffer;
    if (this.wouldPassLimit(frame.length)) return this.overBackpressure(frame.length);
    return this.writeControl(frame) ? 'sent' : 'queued';
  }

  // ---- drain ----------------------------------------------------------------------------------

  /**
   * Resolves `true` once the socket has flushed its backlog and this connection may send again,
   * or `false` if the connection closes first. A send loop resumed by it cannot starve the event
   * loop (turns.ts): past its share of a turn, a connection is told in a later one.
   */
  drained(): Promise<boolean> {
    if (this.state === ReadyState.CLOSED || this.socket.destroyed) return Promise.resolve(false);
    const backedUp = this.socket.writableNeedDrain || this.ordered !== null;
    if (!backedUp && !this.drainNoticeDue && !this.turnSpent() && takeSyncDrain()) return Promise.resolve(true);
    return new Promise((resolve) => {
      (this.drainWaiters ??= []).push(resolve);
      if (!backedUp) this.scheduleDrainNotice();
    });
  }

  /** @internal The socket emitted 'drain': tell now, or from a coming check phase (turns.ts). */
  socketDrained(): void {
    const streamWaiter = this.streamDrainWaiter;
    if (streamWaiter !== null) {
      this.streamDrainWaiter = null;
      streamWaiter(true);
    }
    this.drainOwed = true;
    if (!this.drainNoticeDue && !this.turnSpent() && takeSyncDrain()) this.noticeDrain();
    else this.scheduleDrainNotice();
  }

  /** Queues one drain notice for a coming check phase. */
  protected scheduleDrainNotice(): void {
    if (this.drainNoticeDue) return;
    this.drainNoticeDue = true;
    queueDrainNotice(this);
  }

  /** @internal Tells the `drained()` waiters and, after a 'drain' or a 'queued' send, `onDrain`. */
  noticeDrain(): void {
    this.drainNoticeDue = false;
    if (this.socket.destroyed) {
      // Gone before its 'close' was handled: nothing was drained.
      this.settleDrain(false);
      return;
    }
    // Backed up again meanwhile (another send): the next 'drain' (or the ordered queue emptying) tells.
    if (this.socket.writableNeedDrain || this.ordered !== null) return;
    this.settleDrain(true);
    if (!this.drainOwed) return;
    this.drainOwed = false;
    if (this.state !== ReadyState.OPEN) return;
    try {
      const result = this.behavior.onDrain();
      if (result !== undefined) this.watch(result);
    } catch (error) {
      this.hookFailed(error, 'onDrain');
    }
  }

  /** @internal */
  protected settleDrain(drained: boolean): void {
    const streamWaiter = this.streamDrainWaiter;
    if (streamWaiter !== null) {
      this.streamDrainWaiter = null;
      streamWaiter(drained);
    }
    const waiters = this.drainWaiters;
    if (waiters === null) return;
    this.drainWaiters = null;
    for (const resolve of waiters) resolve(drained);
  }

  // ---- control frames -------------------------------------------------------------------------

  /** @internal */
  protected sendClose(payload: Buffer): void {
    if (this.closeSent) return;
    this.closeSent = true;
    const held = this.heldPong;
    if (held !== null) {
      // RFC 6455 §5.5.2: a ping received before our close is still answered, ahead of it; and
      // reading goes on, to see the peer's close frame and FIN.
      this.heldPong = null;
      if (this.socket.writable) this.writeControl(encodeFrame(Opcode.Pong, held));
      if (this.mayRead()) this.socket.resume();
    }
    // A message being streamed stops here; those queued behind it are never sent (stream-out.ts).
    const ordered = this.ordered;
    if (ordered !== null) {
      ordered.cutAtStream(payload.length >= 2 ? payload.readUInt16BE(0) : CloseCode.NoStatus, 'the connection is closing');
      if (ordered.length === 0 && this.ordered === ordered) this.ordered = null;
    }
    // Messages sent before close() that are still being compressed go first (ordered.ts).
    if (this.ordered !== null && this.ordered.length > 0) {
      this.closeHeld = payload;
      return;
    }
    if (this.socket.writable) this.writeControl(encodeFrame(Opcode.Close, payload));
  }

  /**
   * @internal Writes a control frame (at most 131 bytes). What bounds them: one pong at a time is
   * in the socket's queue (`writePong`), a close frame goes once, heartbeat pings once per
   * interval, and the app's `ping()` is under `maxBackpressure`.
   */
  protected writeControl(frame: Frame): boolean {
    // Control payloads (≤ 125 bytes) are always framed into one buffer.
    const bytes = frame as Buffer;
    this.counters.bytesOut += bytes.length;
    if (this.outBytes !== 0) this.flushOut();
    return this.socket.write(bytes);
  }

  /**
   * @internal Answers a ping: at once, unless the socket is backed up (the peer is not keeping up
   * with what we send) while a pong is still in its queue: then once that pong is out, so that a
   * peer that pings and does not read finds at most one pong queued for it.
   */
  protected answerPing(data: Buffer): void {
    if (!this.pongInFlight || !this.socket.writableNeedDrain) {
      this.writePong(data);
      return;
    }
    if (this.mayRead()) this.socket.pause();
    this.heldPong = Buffer.from(data);
  }

  private writePong(payload: Buffer): void {
    const frame = encodeFrame(Opcode.Pong, payload) as Buffer;
    this.counters.bytesOut += frame.length;
    this.pongInFlight = true;
    if (this.outBytes !== 0) this.flushOut();
    this.socket.write(frame, (this.pongWrittenBound ??= this.pongWritten.bind(this)));
  }

  /** The pong in flight reached the kernel (or the socket is gone): answer the held ping, read again. */
  private pongWritten(): void {
    this.pongInFlight = false;
    const held = this.heldPong;
    if (held === null) return;
    this.heldPong = null;
    if (this.state === ReadyState.CLOSED || this.closeSent || !this.socket.writable) return;
    this.writePong(held);
    if (this.mayRead()) this.socket.resume();
  }
}
