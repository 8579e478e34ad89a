import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { type Behavior, ReadyState } from '../behavior.js';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import type { DeflateSession, Inflated } from '../extensions/permessage-deflate/session.js';
import { type ConnectionCloseMessage, type ProtocolErrorMessage, channels } from '../diagnostics.js';
import { encodeClosePayload, encodeFrame } from '../protocol/framer.js';
import { FrameParser, type ParserOptions, type ParserSink } from '../protocol/parser.js';
import { beginBatch, flushBatch, inBatch } from './batch.js';
import { StreamReceiver } from './stream-in.js';
import { STREAM_HIGH_WATER_BYTES } from './streamed-message.js';
import { EMPTY } from './sender.js';
import { type ConnectionLimits, type RouteShared, timerDelay } from './types.js';
import { abort } from './write.js';
import { F_AWAITING_PONG, F_CLOSE_RECEIVED, F_END_PENDING } from './flags.js';
import { monotonicMs } from '../builtins.js';
export type { HookName } from './types.js';
/**
 * The connection on its socket (or HTTP/2 stream), under the registered symbol of the upgrade's
 * claim (transport/http1.ts `kClaim`): the handler that took the upgrade, then its connection.
 * One slot on the socket for both; to another copy of wsmount either means "taken".
 */
const kConnection: unique symbol = Symbol.for('wsmount.claim');

type Client = Behavior;

type SocketWithConnection = Duplex & { [kConnection]?: Connection };

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
  // A streamed message waits its turn (stream-in.ts): the parser keeps what comes, up to a bound.
  if (c.streamHeld && c.parser.bufferedBytes >= STREAM_HIGH_WATER_BYTES) this.pause();
  this.uncork();
}

/** @internal The connection running over a byte stream, once it has started. */
export function connectionOn(socket: Duplex): Connection | undefined {
  const c = (socket as SocketWithConnection)[kConnection];
  return c instanceof Connection ? c : undefined;
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

/** The parser options of each route's connections, by kind (compressed or not, streaming or not): shared. */
const parserOptionsOf = new WeakMap<ConnectionLimits, ParserOptions[]>();

function parserOptions(limits: ConnectionLimits, allowRsv1: boolean, streaming: boolean): ParserOptions {
  let kinds = parserOptionsOf.get(limits);
  if (kinds === undefined) parserOptionsOf.set(limits, (kinds = []));
  const kind = (allowRsv1 ? 1 : 0) | (streaming ? 2 : 0);
  return (kinds[kind] ??= {
    expectMasked: true,
    maxPayload: limits.maxPayload,
    maxFragments: limits.maxFragments,
    allowRsv1,
    streaming,
    maxStreamBytes: limits.maxStreamBytes,
  });
}

function closeTimedOut(connection: Connection): void {
  connection.closeTimer = null;
  abort(connection.socket);
}

/**
 * One WebSocket connection over one Duplex (a net.Socket, a TLS socket, an in-memory pair):
 * message dispatch to the behavior, the close handshake, writes and their backpressure, the
 * heartbeat and the per-connection limits. The only code that touches the socket after the
 * handshake. Its layers: sender.ts (writes, backpressure, drain, control frames), dispatch.ts
 * (data messages to the iterator or the hooks, hook promises and failures), and this file (the
 * socket's events, the parser's events, the close handshake, heartbeat, idle time, rate limit).
 */
export class Connection extends StreamReceiver implements ParserSink {
  /**
   * The frame parser, made when bytes arrive (or something stops or pauses reading first), and
   * let go by the heartbeat sweep whenever it holds nothing ({@link FrameParser.atRest}): an
   * idle connection, the most of a large server's, keeps none (184 bytes and more). (No sweep
   * runs when no route has a heartbeat or an idle timeout: a parser once made then stays.)
   */
  private parserSlot: FrameParser | null = null;
  get parser(): FrameParser {
    const p = this.parserSlot;
    return p !== null ? p : this.newParser();
  }
  private newParser(): FrameParser {
    // RFC 7692 §6: RSV1 means "compressed" only once permessage-deflate is agreed; a route that
    // takes messages as streams (decided when the connection was made): stream-in.ts.
    const p = new FrameParser(this, parserOptions(this.shared.limits, this.deflate !== null, this.streaming));
    this.parserSlot = p;
    return p;
  }
  /** @internal the route this connection belongs to (the handler's record, which is `shared`). */
  get route(): RouteShared {
    return this.shared;
  }
  /** @internal the topics it is subscribed to (pubsub/topics.ts), once it has subscribed to one. */
  topics: Set<string> | null = null;
  /** @internal */
  get closeTimer(): NodeJS.Timeout | null {
    return this.extras === null ? null : this.extras.closeTimer;
  }
  set closeTimer(value: NodeJS.Timeout | null) {
    if (value !== null || this.extras !== null) this.extra().closeTimer = value;
  }
  /** The peer's FIN arrived while a message was inflating: handled once it and what follows are. */
  private get endPending(): boolean {
    return (this.flags & F_END_PENDING) !== 0;
  }
  private set endPending(on: boolean) {
    this.flags = on ? this.flags | F_END_PENDING : this.flags & ~F_END_PENDING;
  }
  /** The peer's close frame has arrived. */
  private get closeReceived(): boolean {
    return (this.flags & F_CLOSE_RECEIVED) !== 0;
  }
  private set closeReceived(on: boolean) {
    this.flags = on ? this.flags | F_CLOSE_RECEIVED : this.flags & ~F_CLOSE_RECEIVED;
  }
  /** What `onClose` will report; 1006 until a close frame arrives or we fail the connection. */
  private get closeCode(): number {
    return this.extras === null ? CloseCode.Abnormal : this.extras.closeCode;
  }
  private set closeCode(value: number) {
    if (value !== CloseCode.Abnormal || this.extras !== null) this.extra().closeCode = value;
  }
  private get closeReason(): string {
    return this.extras === null ? '' : this.extras.closeReason;
  }
  private set closeReason(value: string) {
    if (value !== '' || this.extras !== null) this.extra().closeReason = value;
  }

  // Heartbeat and idle time (monotonicMs(), builtins.ts), updated by the handler's sweep.
  private lastActive: number;
  /** When the last heartbeat ping was sent (or the connection opened). */
  private lastPing: number;
  private get awaitingPong(): boolean {
    return (this.flags & F_AWAITING_PONG) !== 0;
  }
  private set awaitingPong(on: boolean) {
    this.flags = on ? this.flags | F_AWAITING_PONG : this.flags & ~F_AWAITING_PONG;
  }
  /** @internal the last heartbeat round trip in ms, or -1. */
  latency = -1;

  /** @internal */
  constructor(socket: Duplex, behavior: Client, route: RouteShared, deflate: DeflateSession | null = null) {
    super(socket, behavior, route, deflate);
    if (deflate !== null) this.counters.compressedConnections++;
    // Whole milliseconds: a small integer, not a number object of its own in every connection
    // (for 24 days after wsmount is loaded). The heartbeat times its pings exactly.
    const now = Math.floor(monotonicMs());
    this.lastActive = now;
    this.lastPing = now;
  }

  /** Starts reading: `early` holds bytes that arrived with or before the upgrade. */
  start(early: readonly Buffer[]): void {
    const s = this.socket as SocketWithConnection;
    s[kConnection] = this;
    s.on('end', onEnd);
    s.on('close', onClose);
    s.on('error', onError);
    s.on('drain', onDrain);
    if (this.userPaused) {
      // The app paused in onOpen (the ws face's pause() in 'connection'): what came with the
      // upgrade waits in the socket for resume(), as later bytes do.
      for (let i = early.length - 1; i >= 0; i--) s.unshift(early[i] as Buffer);
    } else {
      for (const chunk of early) {
        this.counters.bytesIn += chunk.length;
        this.parser.push(chunk);
      }
    }
    if (s.destroyed) {
      // The peer left before we started listening; 'close' has been emitted already.
      if (this.state !== ReadyState.CLOSED) this.socketClosed();
      return;
    }
    s.on('data', onData);
  }

  // ---- closing --------------------------------------------------------------------------------

  /** Starts the closing handshake (RFC 6455 §7.1.2). Throws RangeError on a code that may not be sent. */
  close(code: number | undefined, reason: string): void {
    // No code: a close frame with no payload (the peer sees 1005), as ws's `close()` sends.
    const payload = encodeClosePayload(code, reason);
    if (this.state !== ReadyState.OPEN) return;
    this.state = ReadyState.CLOSING;
    this.interruptStreams(code ?? CloseCode.NoStatus, reason === '' ? 'the connection is closing' : `the connection is closing (${reason})`);
    this.readToTheEnd();
    this.sendClose(payload);
    this.armCloseTimer();
  }

  /**
   * Closing: whatever paused reading (the messages() queue, the app's pause()) gives way, so the
   * peer's close frame and FIN are seen.
   */
  private readToTheEnd(): void {
    this.resumeReading();
    this.pauseReading(false);
  }

  /**
   * @internal The app stops (`true`) or starts again (`false`) reading this socket: the ws face's
   * `pause()`/`resume()`. Messages already parsed from the chunk in hand are still delivered.
   */
  pauseReading(paused: boolean): void {
    if (this.state === ReadyState.CLOSED || this.userPaused === paused) return;
    this.userPaused = paused;
    if (paused) this.socket.pause();
    else if (this.mayRead()) this.socket.resume();
  }

  /**
   * Destroys the socket with no closing handshake. Writes held for batching (batch.ts: the 101,
   * replies made in this chunk or task) are released first, so what was sent just before still
   * leaves, as it would unbatched. The state is CLOSING until the socket's close is handled.
   */
  terminate(): void {
    if (this.state === ReadyState.CLOSED) return;
    const s = this.socket;
    this.flushOut();
    while (s.writableCorked > 0) s.uncork();
    this.state = ReadyState.CLOSING;
    abort(s);
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
    this.interruptStreams(code, reason);
    // Failing: what still waits to be compressed is not sent (RFC 6455 §7.1.7).
    this.dropOrdered(code, reason);
    if (!this.closeSent) {
      this.closeCode = code;
      this.closeReason = reason;
      this.sendClose(encodeClosePayload(code, truncateReason(reason)));
    }
    this.state = ReadyState.CLOSING;
    this.readToTheEnd();
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
    // Between frames, holding nothing: the parser goes until bytes come again (one allocation a
    // sweep at most for a busy connection; none kept by a quiet one).
    if (this.parserSlot !== null && this.parserSlot.atRest) this.parserSlot = null;
    if (this.streamInProgress) this.lastActive = now;
    if (limits.idleTimeout > 0 && now - this.lastActive >= limits.idleTimeout) {
      this.counters.idleCloses++;
      this.owner.log.info(`wsmount: closing connection ${this.behavior.id} with 1001: no message either way for ${limits.idleTimeout} ms`);
      this.close(CloseCode.GoingAway, 'idle timeout');
      return;
    }
    if (limits.pingInterval <= 0) return;
    if (this.readPaused || this.userPaused || this.streamHeld) {
      // We stopped reading (a slow consumer of ours, or the app's pause()): the pong could not be
      // seen. Not the peer's fault. (Reading paused behind a held pong is: the heartbeat goes on.)
      this.awaitingPong = false;
      this.lastPing = now;
      return;
    }
    if (this.awaitingPong) {
      if (now - this.lastPing >= limits.pongTimeout) {
        this.counters.pongTimeouts++;
        this.owner.log.info(`wsmount: terminating connection ${this.behavior.id}: no pong within ${limits.pongTimeout} ms`);
        abort(this.socket);
      }
    } else if (now - this.lastPing >= limits.pingInterval) {
      this.lastPing = now;
      this.awaitingPong = true;
      this.counters.pingsSent++;
      this.writeControl(encodeFrame(Opcode.Ping, EMPTY));
    }
  }

  // ---- receiving ------------------------------------------------------------------------------

  onMessage(data: Buffer, isText: boolean, compressed = false): void {
    if (this.state === ReadyState.CLOSED) return;
    if (compressed) {
      this.inflate(data, isText);
      return;
    }
    this.counters.messagesIn++;
    this.active = true;
    if (this.limits.rateCapacity > 0 && !this.takeToken()) return;
    this.dispatch(data, isText);
  }

  /**
   * A message that arrived compressed (RSV1, RFC 7692 §6.1): inflated at once when small, else
   * on the thread pool while the parser and the socket wait, so that what follows it (messages,
   * pings, the close frame) is handled after it, in order.
   */
  private inflate(data: Buffer, isText: boolean): void {
    const result = (this.deflate as DeflateSession).inflate(data, isText, this.limits.maxPayload);
    if (!(result instanceof Promise)) {
      this.inflated(result, isText);
      return;
    }
    this.inflating = true;
    this.parser.pause();
    this.socket.pause();
    result.then(
      (r) => this.inflatedLater(r, isText),
      (error: unknown) => this.inflatedLater({ ok: false, code: 'WS_INVALID_COMPRESSED_DATA', closeCode: CloseCode.InternalError, message: String(error) }, isText),
    );
  }

  private inflated(r: Inflated, isText: boolean): void {
    if (r.ok) this.onMessage(r.data, isText, false);
    else this.onProtocolError(new ProtocolError(r.code, r.closeCode, r.message));
  }

  /**
   * The thread pool finished a message: deliver it, then what the parser kept meanwhile (in one
   * batch, as for a chunk), then read on — also after a failure, to see the peer's close reply.
   */
  private inflatedLater(r: Inflated, isText: boolean): void {
    this.inflating = false;
    if (this.state === ReadyState.CLOSED) return;
    const s = this.socket;
    if (!this.parser.stopped) {
      s.cork();
      beginBatch();
      try {
        this.inflated(r, isText);
        this.parser.resume();
      } finally {
        flushBatch();
      }
      s.uncork();
    }
    if (this.inflating) return; // the next message went to the thread pool: it resumes reading
    if (this.endPending) {
      // The peer's FIN came while the parser still held its last frames: handled now, after them.
      this.endPending = false;
      this.peerEnded();
      return;
    }
    if (this.mayRead()) s.resume();
  }

  /** @internal Reading resumed after a streamed message's reader caught up: a FIN that came meanwhile is handled now. */
  protected override readingResumed(): void {
    if (!this.endPending || this.inflating || this.streamHeld) return;
    this.endPending = false;
    this.peerEnded();
  }

  /** Takes a token from the rate limit's bucket, or fails the connection with 1008. */
  protected takeToken(): boolean {
    const limits = this.limits;
    const now = monotonicMs();
    // The bucket lives in the extras, made full at the first message (it would be full by then).
    const e = this.extra();
    const tokens = e.refilledAt < 0 ? limits.rateCapacity : Math.min(limits.rateCapacity, e.tokens + (now - e.refilledAt) * limits.rateRefill);
    e.refilledAt = now;
    if (tokens >= 1) {
      e.tokens = tokens - 1;
      return true;
    }
    e.tokens = tokens;
    this.counters.rateLimitCloses++;
    this.owner.log.warn(`wsmount: closing connection ${this.behavior.id} with 1008: over the message rate limit`);
    this.fail(CloseCode.PolicyViolation, 'message rate limit exceeded');
    return false;
  }

  onPing(data: Buffer): void {
    if (this.limits.rateCapacity > 0 && !this.takeToken()) return;
    // RFC 6455 §5.5.2–5.5.3: answer with a pong carrying the same payload.
    // A close frame held behind messages being compressed is not sent yet: pings are still answered.
    if ((!this.closeSent || this.closeHeld !== null) && this.socket.writable) this.answerPing(data);
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
      this.latency = monotonicMs() - this.lastPing;
      this.counters.roundTrip(this.latency);
    }
    try {
      this.behavior.onPong(data);
    } catch (error) {
      this.hookFailed(error, 'onPong');
    }
  }

  onCloseFrame(code: number, reason: string): void {
    this.interruptStreams(code, 'the peer closed the connection');
    this.closeReceived = true;
    this.closeCode = code;
    this.closeReason = reason;
    // RFC 6455 §5.5.1: echo the status code (and reason); an empty close gets an empty close.
    // Replies already accepted and still being compressed go first (§5.5.1 lets us finish what
    // we were sending); the close timer bounds the wait.
    if (!this.closeSent) this.sendClose(code === CloseCode.NoStatus ? EMPTY : encodeClosePayload(code, reason));
    this.state = ReadyState.CLOSING;
    this.readToTheEnd();
    // RFC 6455 §7.1.1: the server closes the TCP connection first (after our close frame).
    if (this.closeHeld !== null) this.endHeld = true;
    else this.socket.end();
    this.armCloseTimer();
  }

  onProtocolError(error: ProtocolError): void {
    this.interruptWith(error);
    if (channels.protocolError.hasSubscribers) {
      const message: ProtocolErrorMessage = { client: this.behavior, error };
      channels.protocolError.publish(message);
    }
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
    if (this.inflating) {
      // The parser holds the frames after a message still inflating (the socket's buffer is
      // empty, so 'end' came although it is paused): they are handled first (inflatedLater).
      this.endPending = true;
      return;
    }
    if (this.streamHeld && !this.parser.stopped) {
      // The same while a streamed message's reader catches up (stream-in.ts): the frames the
      // parser holds (the message's end, the peer's close frame) come first, once it has read
      // on; it has closeTimeout for that.
      this.endPending = true;
      this.armCloseTimer();
      return;
    }
    this.parser.stop();
    this.interruptStreams(CloseCode.Abnormal, 'the peer ended the TCP connection');
    // Nothing more can be sent in order: a message being streamed stops, what waits is dropped.
    this.dropOrdered(CloseCode.Abnormal, 'the peer ended the TCP connection');
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING;
    this.flushOut();
    // After a close handshake our FIN is out already: a second end() only builds (and drops) an
    // ERR_STREAM_ALREADY_FINISHED error with its stack trace, ~5% of a handshake cycle's CPU.
    if (!this.socket.writableEnded) this.socket.end();
    // A peer that ended its half and reads nothing would keep our end (and our backlog) forever.
    this.armCloseTimer();
  }

  /**
   * @internal Our end of the byte stream has finished: everything we wrote, our close frame
   * last, is out. Over HTTP/2 (RFC 8441 §5) END_STREAM both ways is the orderly close, but some
   * clients (undici 7) never end their half. Once both close frames have crossed, nothing more
   * may come, so the WebSocket is closed now, and the transport waits for the peer's END_STREAM
   * on its own, for as long as this returns (`closeTimeout`); null: not closed.
   */
  endSent(): number | null {
    if (!this.closeReceived || !this.closeSent || this.state === ReadyState.CLOSED) return null;
    this.socketClosed();
    return this.limits.closeTimeout;
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
    this.interruptStreams(this.closeCode, 'the connection closed');
    this.readPaused = false;
    this.heldPong = null;
    this.settleDrain(false);
    this.dropOrdered(this.closeCode, 'the connection closed');
    if (this.deflate !== null) {
      this.deflate.close();
      this.counters.compressedConnections--;
    }
    // The messages() iterator hands out what it holds, then ends; it stays the inbox (a second
    // messages() still throws) until released.
    this.inbox?.end();
    this.owner.connectionClosed(this, this.closeCode);
    if (channels.close.hasSubscribers) {
      const message: ConnectionCloseMessage = { client: this.behavior, code: this.closeCode, reason: this.closeReason };
      channels.close.publish(message);
    }
    if (this.busy) this.closePending = true;
    else this.reportClose();
  }

  /** @internal */
  protected reportClose(): void {
    this.closePending = false;
    try {
      this.behavior.onClose(this.closeCode, this.closeReason);
    } catch (error) {
      this.owner.log.error(`wsmount: ${this.behavior.route} onClose threw (connection ${this.behavior.id})`, error);
    }
  }
}

/** Keeps a close reason within 123 bytes (our own reasons are ASCII). */
function truncateReason(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 120).toString('latin1') + '...';
}
