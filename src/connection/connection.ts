import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Behavior, type BinaryData, ReadyState } from '../behavior.js';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from '../protocol/constants.js';
import type { ProtocolError } from '../protocol/errors.js';
import { type Frame, encodeClosePayload, encodeFrame, encodeText, frameLength, toBuffer } from '../protocol/framer.js';
import { FrameParser, type ParserSink } from '../protocol/parser.js';
import { decodeText } from '../protocol/utf8.js';
import type { Counters } from '../stats.js';
import { beginBatch, flushBatch, holdForBatch, inBatch } from './batch.js';
import { Inbound, MESSAGES_HIGH_WATER_BYTES, MESSAGES_HIGH_WATER_COUNT, MESSAGES_LOW_WATER_BYTES, MESSAGES_LOW_WATER_COUNT, type MessageStream, MessageQueue } from './inbound.js';
import { BYTES_PER_TURN, currentTurn, queueDrainNotice, takeSyncDrain, turnNow } from './turns.js';
import { type ConnectionLimits, type ConnectionOwner, type SendStatus, timerDelay } from './types.js';
const kConnection: unique symbol = Symbol('wsmount.connection');

type Client = Behavior;

/** The hooks a failure is reported for. */
export type HookName = 'onOpen' | 'onText' | 'onRawText' | 'onBinary' | 'onDrain' | 'onPing' | 'onPong';

const baseOnRawText = Behavior.prototype.onRawText;
type SocketWithConnection = Duplex & { [kConnection]?: Connection };

const EMPTY = Buffer.alloc(0);

// ---- socket listeners: module-level, `this` is the socket -----------------------------------

function onData(this: SocketWithConnection, chunk: Buffer): void {
  const c = this[kConnection];
  if (c === undefined) return;
  c.counters.bytesIn += chunk.length;
  // Everything sent while this chunk is handled (echoes, replies, pongs, messages to other
  // sockets) goes out in one write per socket.
  this.cork();
  if (inBatch()) {
    c.parser.push(chunk); // a chunk handled inside another's (an in-memory peer): its batch flushes
  } else {
    beginBatch();
    try {
      c.parser.push(chunk);
    } finally {
      flushBatch();
    }
  }
  this.uncork();
}

function onEnd(this: SocketWithConnection): void {
  this[kConnection]?.peerEnded();
}

function onClose(this: SocketWithConnection): void {
  this[kConnection]?.socketClosed();
}

function onError(this: SocketWithConnection, error: Error): void {
  this[kConnection]?.socketError(error);
}

function onDrain(this: SocketWithConnection): void {
  this[kConnection]?.socketDrained();
}

function closeTimedOut(connection: Connection): void {
  connection.closeTimer = null;
  connection.socket.destroy();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * One WebSocket connection over one Duplex (a net.Socket, a TLS socket, an in-memory pair):
 * message dispatch to the behavior, the close handshake, writes and their backpressure, the
 * heartbeat and the per-connection limits. The only code that touches the socket after the
 * handshake.
 */
export class Connection implements ParserSink {
  readonly socket: Duplex;
  readonly behavior: Client;
  readonly parser: FrameParser;
  /** @internal the handler's counters. */
  readonly counters: Counters;
  state: ReadyState = ReadyState.OPEN;
  /** @internal the route this connection belongs to (the handler's record). */
  route: unknown = null;
  /** @internal the topics it is subscribed to (pubsub/topics.ts), once it has subscribed to one. */
  topics: Set<string> | null = null;
  /** @internal */
  closeTimer: NodeJS.Timeout | null = null;
  /** @internal the active `messages()` iterator, which takes data messages instead of the hooks. */
  inbox: MessageQueue | null = null;
  /** @internal reading is paused because queued incoming messages are over the high-water mark. */
  readPaused = false;
  /** A pong has been written and not yet handed to the kernel (its write callback is due). */
  private pongInFlight = false;
  /**
   * A ping came while a pong was in flight: only the latest is answered (RFC 6455 §5.5.3), with
   * this payload, once that pong is out; reading is paused meanwhile, so a peer that pings and
   * does not read fills its TCP window instead of our memory.
   */
  private heldPong: Buffer | null = null;
  private pongWrittenBound: (() => void) | null = null;

  private readonly owner: ConnectionOwner;
  private readonly limits: ConnectionLimits;
  private closeSent = false;
  /** What `onClose` will report; 1006 until a close frame arrives or we fail the connection. */
  private closeCode: number = CloseCode.Abnormal;
  private closeReason = '';
  /** A promise returned by `onOpen`, `onText` or `onBinary` has not settled yet: later messages wait in `backlog`. */
  private busy = false;
  private backlog: Inbound | null = null;
  /** The socket closed while `busy`: `onClose` runs once the last hook settles. */
  private closePending = false;
  /** A hook failed: the connection is closing with 1011 and no more data messages are delivered. */
  private hookBroken = false;
  private hookDoneBound: (() => void) | null = null;
  private hookRejectedBound: ((error: unknown) => void) | null = null;
  private drainRejectedBound: ((error: unknown) => void) | null = null;
  /** The hook whose promise is pending while `busy`. */
  private pendingHook: HookName = 'onOpen';
  /** The behavior overrides `onRawText`: text goes there as bytes, not to `onText`. */
  private readonly rawText: boolean;
  private drainWaiters: ((drained: boolean) => void)[] | null = null;
  /** A drain notice is queued (turns.ts): it will tell the drain waiters and `onDrain`. */
  private drainNoticeDue = false;
  /** The socket emitted 'drain', or a send said 'queued' for fairness, since `onDrain` last ran. */
  private drainOwed = false;
  /** The turn `turnBytes` counts (turns.ts), and the bytes sent in it. */
  private turn = 0;
  private turnBytes = 0;

  // Heartbeat and idle time (performance.now() milliseconds), updated by the handler's sweep.
  /** A data message went either way since the last sweep. */
  private active = false;
  private lastActive: number;
  /** When the last heartbeat ping was sent (or the connection opened). */
  private lastPing: number;
  private awaitingPong = false;
  /** @internal the last heartbeat round trip in ms, or -1. */
  latency = -1;
  // Rate limit: a token bucket.
  private tokens: number;
  private refilledAt: number;

  /** @internal */
  constructor(socket: Duplex, behavior: Client, owner: ConnectionOwner, limits: ConnectionLimits) {
    this.socket = socket;
    this.behavior = behavior;
    this.owner = owner;
    this.counters = owner.counters;
    this.limits = limits;
    this.rawText = behavior.onRawText !== baseOnRawText;
    this.parser = new FrameParser(this, {
      expectMasked: true,
      maxPayload: limits.maxPayload,
      maxFragments: limits.maxFragments,
    });
    const now = performance.now();
    this.lastActive = now;
    this.lastPing = now;
    this.tokens = limits.rateCapacity;
    this.refilledAt = now;
  }

  /** Starts reading: `early` holds bytes that arrived with or before the upgrade. */
  start(early: readonly Buffer[]): void {
    const s = this.socket as SocketWithConnection;
    s[kConnection] = this;
    s.on('end', onEnd);
    s.on('close', onClose);
    s.on('error', onError);
    s.on('drain', onDrain);
    for (const chunk of early) {
      this.counters.bytesIn += chunk.length;
      this.parser.push(chunk);
    }
    if (s.destroyed) {
      // The peer left before we started listening; 'close' has been emitted already.
      if (this.state !== ReadyState.CLOSED) this.socketClosed();
      return;
    }
    s.on('data', onData);
  }

  /**
   * Bytes accepted by `send*()` and not yet handed to the kernel. wsmount keeps no queue of its
   * own (every accepted frame goes straight to the socket), so this is the socket's
   * `writableLength`, corked bytes included.
   */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Writes an already framed data message, under the route's backpressure policy. */
  writeFrame(frame: Frame): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const s = this.socket;
    const length = frameLength(frame);
    if (this.wouldPassLimit(length)) return this.overBackpressure(length);
    holdForBatch(s);
    let flushed: boolean;
    if (Buffer.isBuffer(frame)) {
      flushed = s.write(frame);
    } else {
      s.cork();
      s.write(frame[0]);
      flushed = s.write(frame[1]);
      s.uncork();
    }
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

  /** Whether writing `length` more bytes would take the backlog past `maxBackpressure`. */
  private wouldPassLimit(length: number): boolean {
    const s = this.socket;
    // A message larger than the limit still goes out on an empty backlog.
    return s.writableLength > 0 && s.writableLength + length > this.limits.maxBackpressure && this.stillOver(length);
  }

  /**
   * Inside a hook the socket is corked, so a burst counts as backlog before any byte reached the
   * kernel. Hand the corked bytes to the kernel (uncork, then cork again as deep) before deciding
   * the peer is slow.
   */
  private stillOver(length: number): boolean {
    const s = this.socket;
    const depth = s.writableCorked;
    if (depth > 0) {
      for (let i = 0; i < depth; i++) s.uncork();
      for (let i = 0; i < depth; i++) s.cork();
    }
    return s.writableLength > 0 && s.writableLength + length > this.limits.maxBackpressure;
  }

  private overBackpressure(length: number): SendStatus {
    this.counters.backpressureDrops++;
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
    return this.writeFrame(encodeText(text));
  }

  sendBinary(data: BinaryData): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    return this.writeFrame(encodeFrame(Opcode.Binary, toBuffer(data)));
  }

  ping(data?: string | BinaryData): SendStatus {
    const payload = data === undefined ? EMPTY : typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
    // RFC 6455 §5.5: control frames carry at most 125 bytes.
    if (payload.length > MAX_CONTROL_PAYLOAD) throw new RangeError('a ping payload is at most 125 bytes');
    if (this.state !== ReadyState.OPEN) return 'dropped';
    // Pings sent by the app count toward the backlog like data: a ping loop to a peer that does
    // not read is bounded by maxBackpressure and its policy.
    const frame = encodeFrame(Opcode.Ping, payload) as Buffer;
    if (this.wouldPassLimit(frame.length)) return this.overBackpressure(frame.length);
    return this.writeControl(frame) ? 'sent' : 'queued';
  }

  /**
   * Resolves `true` once the socket has flushed its backlog and this connection may send again,
   * or `false` if the connection closes first. A send loop resumed by it cannot starve the event
   * loop (turns.ts): past its share of a turn, a connection is told in a later one.
   */
  drained(): Promise<boolean> {
    if (this.state === ReadyState.CLOSED || this.socket.destroyed) return Promise.resolve(false);
    const backedUp = this.socket.writableNeedDrain;
    if (!backedUp && !this.drainNoticeDue && !this.turnSpent() && takeSyncDrain()) return Promise.resolve(true);
    return new Promise((resolve) => {
      (this.drainWaiters ??= []).push(resolve);
      if (!backedUp) this.scheduleDrainNotice();
    });
  }

  /** @internal The socket emitted 'drain': tell now, or from a coming check phase (turns.ts). */
  socketDrained(): void {
    this.drainOwed = true;
    if (!this.drainNoticeDue && !this.turnSpent() && takeSyncDrain()) this.noticeDrain();
    else this.scheduleDrainNotice();
  }

  /** Queues one drain notice for a coming check phase. */
  private scheduleDrainNotice(): void {
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
    // Backed up again meanwhile (another send): the next 'drain' tells.
    if (this.socket.writableNeedDrain) return;
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

  private settleDrain(drained: boolean): void {
    const waiters = this.drainWaiters;
    if (waiters === null) return;
    this.drainWaiters = null;
    for (const resolve of waiters) resolve(drained);
  }

  /** Starts the closing handshake (RFC 6455 §7.1.2). Throws RangeError on a code that may not be sent. */
  close(code: number, reason: string): void {
    const payload = encodeClosePayload(code, reason);
    if (this.state !== ReadyState.OPEN) return;
    this.state = ReadyState.CLOSING;
    // Read on, so the peer's close frame is seen even behind a paused queue.
    this.resumeReading();
    this.sendClose(payload);
    this.armCloseTimer();
  }

  /** Destroys the socket with no closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  private sendClose(payload: Buffer): void {
    if (this.closeSent) return;
    this.closeSent = true;
    const held = this.heldPong;
    if (held !== null) {
      // RFC 6455 §5.5.2: a ping received before our close is still answered, ahead of it; and
      // reading goes on, to see the peer's close frame and FIN.
      this.heldPong = null;
      if (this.socket.writable) this.writeControl(encodeFrame(Opcode.Pong, held));
      if (!this.readPaused) this.socket.resume();
    }
    if (this.socket.writable) this.writeControl(encodeFrame(Opcode.Close, payload));
  }

  /**
   * Writes a control frame (at most 131 bytes). What bounds them: one pong at a time is in the
   * socket's queue (`writePong`), a close frame goes once, heartbeat pings once per interval, and
   * the app's `ping()` is under `maxBackpressure`.
   */
  private writeControl(frame: Frame): boolean {
    // Control payloads (≤ 125 bytes) are always framed into one buffer.
    const bytes = frame as Buffer;
    this.counters.bytesOut += bytes.length;
    return this.socket.write(bytes);
  }

  private armCloseTimer(): void {
    if (this.closeTimer === null && !this.socket.destroyed) {
      this.closeTimer = setTimeout(closeTimedOut, timerDelay(this.limits.closeTimeout), this);
      this.closeTimer.unref();
    }
  }

  /** Fails the connection (RFC 6455 §7.1.7): close frame with `code`, then close TCP. */
  fail(code: number, reason: string): void {
    if (this.state === ReadyState.CLOSED) return;
    this.parser.stop();
    if (!this.closeSent) {
      this.closeCode = code;
      this.closeReason = reason;
      this.sendClose(encodeClosePayload(code, truncateReason(reason)));
    }
    this.state = ReadyState.CLOSING;
    this.resumeReading();
    this.socket.end();
    this.armCloseTimer();
  }

  // ---- heartbeat, idle time -------------------------------------------------------------------

  /**
   * @internal Called by the handler's sweep timer: sends the heartbeat ping when one is due,
   * terminates a peer that left the last one unanswered for `pongTimeout`, closes an idle
   * connection.
   */
  sweep(now: number): void {
    if (this.state !== ReadyState.OPEN) return;
    const limits = this.limits;
    if (this.active) {
      this.active = false;
      this.lastActive = now;
    }
    if (limits.idleTimeout > 0 && now - this.lastActive >= limits.idleTimeout) {
      this.counters.idleCloses++;
      this.owner.log.info(`wsmount: closing connection ${this.behavior.id} with 1001: no message either way for ${limits.idleTimeout} ms`);
      this.close(CloseCode.GoingAway, 'idle timeout');
      return;
    }
    if (limits.pingInterval <= 0) return;
    if (this.readPaused) {
      // We stopped reading (a slow consumer of ours): the pong could not be seen. Not the peer's
      // fault. (Reading paused behind a held pong is: the heartbeat goes on.)
      this.awaitingPong = false;
      this.lastPing = now;
      return;
    }
    if (this.awaitingPong) {
      if (now - this.lastPing >= limits.pongTimeout) {
        this.counters.pongTimeouts++;
        this.owner.log.info(`wsmount: terminating connection ${this.behavior.id}: no pong within ${limits.pongTimeout} ms`);
        this.socket.destroy();
      }
    } else if (now - this.lastPing >= limits.pingInterval) {
      this.lastPing = now;
      this.awaitingPong = true;
      this.counters.pingsSent++;
      this.writeControl(encodeFrame(Opcode.Ping, EMPTY));
    }
  }

  // ---- receiving ------------------------------------------------------------------------------

  /**
   * Starts `Behavior.messages()`: see there. Throws if an iterator is already active. After the
   * connection closed, returns an iterator that is already done. Messages waiting behind a
   * pending hook move into the iterator, in order.
   */
  messages(): MessageStream {
    if (this.inbox !== null && !this.inbox.finished) {
      throw new Error(
        `messages() is already active on connection ${this.behavior.id}: only one iterator at a time (break out of the first one to release it)`,
      );
    }
    if (this.state === ReadyState.CLOSED && (this.backlog === null || this.backlog.length === 0)) {
      this.inbox = null;
      return new MessageQueue(null);
    }
    const queue = new MessageQueue(this);
    this.inbox = queue;
    const backlog = this.backlog;
    if (backlog !== null) {
      while (backlog.length > 0) {
        const data = backlog.shift();
        queue.inbound.push(data, backlog.lastText);
      }
    }
    if (this.state === ReadyState.CLOSED) queue.end();
    return queue;
  }

  /** @internal queued incoming messages grew: pause reading above the high-water mark. */
  queueGrew(): void {
    if (this.readPaused || this.state !== ReadyState.OPEN) return;
    if (this.waitingCount() >= MESSAGES_HIGH_WATER_COUNT || this.waitingBytes() >= MESSAGES_HIGH_WATER_BYTES) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  /** @internal queued incoming messages shrank: resume reading below the low-water mark. */
  queueShrank(): void {
    if (this.readPaused && this.waitingCount() <= MESSAGES_LOW_WATER_COUNT && this.waitingBytes() <= MESSAGES_LOW_WATER_BYTES) {
      this.resumeReading();
    }
  }

  /** Messages waiting for the `messages()` iterator or behind a pending hook. */
  private waitingCount(): number {
    return (this.inbox?.inbound.length ?? 0) + (this.backlog?.length ?? 0);
  }

  /** Their payload bytes. */
  private waitingBytes(): number {
    return (this.inbox?.inbound.bytes ?? 0) + (this.backlog?.bytes ?? 0);
  }

  private resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    if (this.heldPong === null) this.socket.resume();
  }

  /**
   * Answers a ping: at once, unless the socket is backed up (the peer is not keeping up with what
   * we send) while a pong is still in its queue: then once that pong is out, so that a peer that
   * pings and does not read finds at most one pong queued for it.
   */
  private answerPing(data: Buffer): void {
    if (!this.pongInFlight || !this.socket.writableNeedDrain) {
      this.writePong(data);
      return;
    }
    if (this.heldPong === null && !this.readPaused) this.socket.pause();
    this.heldPong = Buffer.from(data);
  }

  private writePong(payload: Buffer): void {
    const frame = encodeFrame(Opcode.Pong, payload) as Buffer;
    this.counters.bytesOut += frame.length;
    this.pongInFlight = true;
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
    if (!this.readPaused) this.socket.resume();
  }

  onMessage(data: Buffer, isText: boolean): void {
    if (this.state === ReadyState.CLOSED) return;
    this.counters.messagesIn++;
    this.active = true;
    if (this.limits.rateCapacity > 0 && !this.takeToken()) return;
    this.dispatch(data, isText);
  }

  /** @internal hands a data message to the iterator, the backlog, or the hook. */
  dispatch(data: Buffer, isText: boolean): void {
    if (this.hookBroken) return;
    const inbox = this.inbox;
    if (inbox !== null) {
      inbox.push(data, isText);
    } else if (this.busy) {
      (this.backlog ??= new Inbound()).push(data, isText);
      this.queueGrew();
    } else {
      this.deliver(data, isText);
    }
  }

  private deliver(data: Buffer, isText: boolean): void {
    const b = this.behavior;
    const hook: HookName = isText ? (this.rawText ? 'onRawText' : 'onText') : 'onBinary';
    try {
      this.track(isText ? (this.rawText ? b.onRawText(data) : b.onText(decodeText(data))) : b.onBinary(data), hook);
    } catch (error) {
      this.hookFailed(error, hook);
    }
  }

  /**
   * @internal A hook that orders later messages (`onOpen`, `onText`, `onRawText`, `onBinary`)
   * returned `result`: while it is a pending promise, messages wait in the backlog.
   */
  track(result: unknown, hook: HookName): void {
    if (result === undefined || !isThenable(result)) return;
    this.busy = true;
    this.pendingHook = hook;
    result.then(
      (this.hookDoneBound ??= this.hookDone.bind(this)),
      (this.hookRejectedBound ??= this.hookRejected.bind(this)),
    );
  }

  /** The pending hook settled: deliver what waited, in order, until one is pending again. */
  private hookDone(): void {
    this.busy = false;
    const backlog = this.backlog;
    if (backlog !== null && backlog.length > 0) {
      const s = this.socket;
      const corked = s.writable;
      if (corked) s.cork();
      while (backlog.length > 0 && !this.busy) {
        const data = backlog.shift();
        const isText = backlog.lastText;
        if (this.inbox !== null) this.inbox.push(data, isText);
        else this.deliver(data, isText);
      }
      if (corked) s.uncork();
      this.queueShrank();
    }
    if (!this.busy && this.closePending) this.reportClose();
  }

  private hookRejected(error: unknown): void {
    this.busy = false;
    this.hookFailed(error, this.pendingHook);
    if (this.closePending) this.reportClose();
  }

  /** Takes a token from the rate limit's bucket, or fails the connection with 1008. */
  private takeToken(): boolean {
    const limits = this.limits;
    const now = performance.now();
    this.tokens = Math.min(limits.rateCapacity, this.tokens + (now - this.refilledAt) * limits.rateRefill);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.counters.rateLimitCloses++;
    this.owner.log.warn(`wsmount: closing connection ${this.behavior.id} with 1008: over the message rate limit`);
    this.fail(CloseCode.PolicyViolation, 'message rate limit exceeded');
    return false;
  }

  onPing(data: Buffer): void {
    if (this.limits.rateCapacity > 0 && !this.takeToken()) return;
    // RFC 6455 §5.5.2–5.5.3: answer with a pong carrying the same payload.
    if (!this.closeSent && this.socket.writable) this.answerPing(data);
    try {
      this.behavior.onPing(data);
    } catch (error) {
      this.hookFailed(error, 'onPing');
    }
  }

  onPong(data: Buffer): void {
    if (this.awaitingPong) {
      // Any pong answers the heartbeat (RFC 6455 §5.5.3 allows a peer to answer only the latest ping).
      this.awaitingPong = false;
      this.latency = performance.now() - this.lastPing;
    }
    try {
      this.behavior.onPong(data);
    } catch (error) {
      this.hookFailed(error, 'onPong');
    }
  }

  onCloseFrame(code: number, reason: string): void {
    this.closeCode = code;
    this.closeReason = reason;
    // RFC 6455 §5.5.1: echo the status code (and reason); an empty close gets an empty close.
    if (!this.closeSent) this.sendClose(code === CloseCode.NoStatus ? EMPTY : encodeClosePayload(code, reason));
    this.state = ReadyState.CLOSING;
    // RFC 6455 §7.1.1: the server closes the TCP connection first.
    this.socket.end();
    this.armCloseTimer();
  }

  onProtocolError(error: ProtocolError): void {
    this.owner.log.info(`wsmount: closing connection ${this.behavior.id} with ${error.closeCode} (${error.code}): ${error.message}`);
    try {
      this.behavior.onError(error);
    } catch (hookError) {
      this.owner.log.error(`wsmount: ${this.behavior.route} onError threw (connection ${this.behavior.id})`, hookError);
    }
    this.fail(error.closeCode, error.message);
  }

  // ---- socket events --------------------------------------------------------------------------

  /** @internal the peer half-closed TCP. */
  peerEnded(): void {
    this.parser.stop();
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING;
    this.socket.end();
  }

  /** @internal */
  socketError(error: Error): void {
    this.owner.log.debug(`wsmount: socket error on connection ${this.behavior.id}`, error);
  }

  /**
   * @internal The socket is gone: leave the handler's sets at once; `onClose` runs now, or once
   * a pending hook has settled and the messages waiting behind it are delivered.
   */
  socketClosed(): void {
    if (this.state === ReadyState.CLOSED) return;
    this.state = ReadyState.CLOSED;
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    this.parser.stop();
    this.readPaused = false;
    this.heldPong = null;
    this.settleDrain(false);
    // The messages() iterator hands out what it holds, then ends; it stays the inbox (a second
    // messages() still throws) until released.
    this.inbox?.end();
    this.owner.connectionClosed(this, this.closeCode);
    if (this.busy) this.closePending = true;
    else this.reportClose();
  }

  private reportClose(): void {
    this.closePending = false;
    try {
      this.behavior.onClose(this.closeCode, this.closeReason);
    } catch (error) {
      this.owner.log.error(`wsmount: ${this.behavior.route} onClose threw (connection ${this.behavior.id})`, error);
    }
  }

  // ---- hook failures --------------------------------------------------------------------------

  /** Catches a rejected promise returned by `onDrain`, the hook that does not order messages. */
  watch(result: unknown): void {
    if (isThenable(result)) result.then(undefined, (this.drainRejectedBound ??= (error: unknown) => this.hookFailed(error, 'onDrain')));
  }

  /**
   * A hook threw: log it, tell `onError`, close with 1011, and drop the messages still waiting
   * for the hooks and any that arrive while closing. One bad handler never takes the process down.
   */
  hookFailed(error: unknown, hook: HookName): void {
    const err = error instanceof Error ? error : new Error(String(error));
    const b = this.behavior;
    this.owner.log.error(`wsmount: ${b.route} ${hook} threw (connection ${b.id}; closing it with 1011)`, err);
    try {
      b.onError(err);
    } catch (hookError) {
      this.owner.log.error(`wsmount: ${b.route} onError threw (connection ${b.id})`, hookError);
    }
    this.hookBroken = true;
    if (this.backlog !== null && this.backlog.length > 0) {
      this.owner.log.debug(`wsmount: dropping ${this.backlog.length} messages that waited for connection ${this.behavior.id}'s failed hook`);
      this.backlog.clear();
      this.queueShrank();
    }
    if (this.state === ReadyState.OPEN) this.close(CloseCode.InternalError, 'internal error');
  }
}


/** Keeps a close reason within 123 bytes (our own reasons are ASCII). */
function truncateReason(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 120).toString('latin1') + '...';
}
