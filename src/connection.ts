import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { type Behavior, type BinaryData, ReadyState } from './behavior.js';
import type { Logger } from './logger.js';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from './protocol/constants.js';
import type { ProtocolError } from './protocol/errors.js';
import { type Frame, encodeClosePayload, encodeFrame, encodeText, toBuffer } from './protocol/framer.js';
import { FrameParser, type ParserSink } from './protocol/parser.js';
const kConnection: unique symbol = Symbol('wsmount.connection');

/**
 * What a send did: `'sent'` handed to the socket with no backlog, `'queued'` accepted but the
 * socket is backed up (see `bufferedAmount`), `'dropped'` not sent because the connection is
 * not open.
 */
export type SendStatus = 'sent' | 'queued' | 'dropped';

/** What a connection needs from the handler that owns it. @internal */
export interface ConnectionOwner {
  readonly log: Logger;
  connectionClosed(connection: Connection, code: number, reason: string): void;
}

/** Per-connection limits. @internal */
export interface ConnectionLimits {
  maxPayload: number;
  maxFragments: number;
  closeTimeout: number;
}

type Client = Behavior<Record<string, string>, unknown>;
type SocketWithConnection = Duplex & { [kConnection]?: Connection };

const EMPTY = Buffer.alloc(0);

/**
 * `Behavior.messages()` pauses reading the socket once its queue holds this many messages
 * (or {@link MESSAGES_HIGH_WATER_BYTES}, whichever comes first). The queue can exceed it by the
 * messages of the one TCP chunk being parsed when the mark was reached.
 */
export const MESSAGES_HIGH_WATER_COUNT = 16;
/** `Behavior.messages()` pauses reading the socket once its queue holds this many payload bytes. */
export const MESSAGES_HIGH_WATER_BYTES: number = 1 << 20;
/** A paused socket resumes once the consumer has drained the queue to at most this many messages… */
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

/**
 * The queue behind `Behavior.messages()`: the connection pushes data messages into it while it is
 * the connection's `inbox`, and pauses the socket above the high-water mark.
 */
class MessageQueue implements MessageStream {
  private readonly connection: Connection | null;
  private items: Buffer[] = [];
  private kinds: boolean[] = [];
  private head = 0;
  private bytes = 0;
  private waiters: ((result: IteratorResult<string | Buffer, undefined>) => void)[] = [];
  /** The connection closed: hand out what is queued, then `done`. */
  private ended = false;
  /** `return()` was called: `done` at once. */
  private released = false;
  /** This queue paused the socket. */
  paused = false;

  constructor(connection: Connection | null) {
    this.connection = connection;
    if (connection === null) this.ended = true;
  }

  get queued(): number {
    return this.items.length - this.head;
  }

  /** @internal nothing more will ever come out of this iterator. */
  get finished(): boolean {
    return this.released || (this.ended && this.head === this.items.length);
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal a data message from the peer. */
  push(data: Buffer, isText: boolean): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ done: false, value: isText ? data.toString('utf8') : data });
      return;
    }
    this.items.push(data);
    this.kinds.push(isText);
    this.bytes += data.length;
    const c = this.connection as Connection;
    if (
      !this.paused &&
      c.state === ReadyState.OPEN &&
      (this.items.length - this.head >= MESSAGES_HIGH_WATER_COUNT || this.bytes >= MESSAGES_HIGH_WATER_BYTES)
    ) {
      this.paused = true;
      c.socket.pause();
    }
  }

  /** @internal the connection is closed: pending `next()` calls get `done`; queued messages are still handed out. */
  end(): void {
    this.ended = true;
    this.resumeSocket();
    if (this.queued === 0) this.settleWaiters();
  }

  /** @internal resumes reading if this queue paused it. */
  resumeSocket(): void {
    if (this.paused) {
      this.paused = false;
      this.connection?.socket.resume();
    }
  }

  private settleWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(DONE);
  }

  next(): Promise<IteratorResult<string | Buffer, undefined>> {
    if (this.released) return Promise.resolve(DONE);
    if (this.head < this.items.length) {
      const data = this.items[this.head] as Buffer;
      const isText = this.kinds[this.head] as boolean;
      this.head++;
      this.bytes -= data.length;
      if (this.head === this.items.length) {
        this.items = [];
        this.kinds = [];
        this.head = 0;
      }
      if (this.paused && this.queued <= MESSAGES_LOW_WATER_COUNT && this.bytes <= MESSAGES_LOW_WATER_BYTES) this.resumeSocket();
      return Promise.resolve({ done: false, value: isText ? data.toString('utf8') : data });
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
    this.resumeSocket();
    this.settleWaiters();
    const items = this.items;
    const kinds = this.kinds;
    const head = this.head;
    this.items = [];
    this.kinds = [];
    this.head = 0;
    this.bytes = 0;
    const c = this.connection;
    if (c !== null) {
      if (c.inbox === this) c.inbox = null;
      for (let i = head; i < items.length; i++) c.onMessage(items[i] as Buffer, kinds[i] as boolean);
    }
    return Promise.resolve(DONE);
  }
}

// ---- socket listeners: module-level, `this` is the socket -----------------------------------

function onData(this: SocketWithConnection, chunk: Buffer): void {
  const c = this[kConnection];
  if (c === undefined) return;
  // Everything sent while this chunk is handled (echoes, replies, pongs) goes out in one write.
  this.cork();
  c.parser.push(chunk);
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

function closeTimedOut(connection: Connection): void {
  connection.closeTimer = null;
  connection.socket.destroy();
}

/**
 * One WebSocket connection over one Duplex (a net.Socket, a TLS socket, an in-memory pair):
 * message dispatch to the behavior, the close handshake, and writes. The only code that touches
 * the socket after the handshake.
 */
export class Connection implements ParserSink {
  readonly socket: Duplex;
  readonly behavior: Client;
  readonly parser: FrameParser;
  state: ReadyState = ReadyState.OPEN;
  /** @internal the route's client set this connection belongs to. */
  group: Set<Client> | null = null;
  /** @internal */
  closeTimer: NodeJS.Timeout | null = null;
  private readonly owner: ConnectionOwner;
  private readonly closeTimeout: number;
  private closeSent = false;
  /** What `onClose` will report; 1006 until a close frame arrives or we fail the connection. */
  private closeCode: number = CloseCode.Abnormal;
  private closeReason = '';
  private hookFailedBound: ((error: unknown) => void) | null = null;
  /** @internal the active `messages()` iterator, which takes data messages instead of the hooks. */
  inbox: MessageQueue | null = null;

  constructor(socket: Duplex, behavior: Client, owner: ConnectionOwner, limits: ConnectionLimits) {
    this.socket = socket;
    this.behavior = behavior;
    this.owner = owner;
    this.closeTimeout = limits.closeTimeout;
    this.parser = new FrameParser(this, {
      expectMasked: true,
      maxPayload: limits.maxPayload,
      maxFragments: limits.maxFragments,
    });
  }

  /** Starts reading: `early` holds bytes that arrived with or before the upgrade. */
  start(early: readonly Buffer[]): void {
    const s = this.socket as SocketWithConnection;
    s[kConnection] = this;
    s.on('end', onEnd);
    s.on('close', onClose);
    s.on('error', onError);
    for (const chunk of early) this.parser.push(chunk);
    if (s.destroyed) {
      // The peer left before we started listening; 'close' has been emitted already.
      if (this.state !== ReadyState.CLOSED) this.socketClosed();
      return;
    }
    s.on('data', onData);
  }

  /** Bytes written but not yet flushed to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Writes an already framed message. */
  writeFrame(frame: Frame): SendStatus {
    if (this.state !== ReadyState.OPEN) return 'dropped';
    const s = this.socket;
    let flushed: boolean;
    if (Buffer.isBuffer(frame)) {
      flushed = s.write(frame);
    } else {
      s.cork();
      s.write(frame[0]);
      flushed = s.write(frame[1]);
      s.uncork();
    }
    return flushed ? 'sent' : 'queued';
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
    return this.writeFrame(encodeFrame(Opcode.Ping, payload));
  }

  /** Starts the closing handshake (RFC 6455 §7.1.2). Throws RangeError on a code that may not be sent. */
  close(code: number, reason: string): void {
    const payload = encodeClosePayload(code, reason);
    if (this.state !== ReadyState.OPEN) return;
    this.state = ReadyState.CLOSING;
    // Read on, so the peer's close frame is seen even behind a paused messages() queue.
    this.inbox?.resumeSocket();
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
    if (this.socket.writable) this.socket.write(encodeFrame(Opcode.Close, payload));
  }

  private armCloseTimer(): void {
    if (this.closeTimer === null && !this.socket.destroyed) {
      this.closeTimer = setTimeout(closeTimedOut, this.closeTimeout, this);
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
    this.inbox?.resumeSocket();
    this.socket.end();
    this.armCloseTimer();
  }

  // ---- ParserSink -----------------------------------------------------------------------------

  /**
   * Starts `Behavior.messages()`: see there. Throws if an iterator is already active. After the
   * connection closed, returns an iterator that is already done.
   */
  messages(): MessageStream {
    if (this.inbox !== null && !this.inbox.finished) {
      throw new Error(
        `messages() is already active on connection ${this.behavior.id}: only one iterator at a time (break out of the first one to release it)`,
      );
    }
    if (this.state === ReadyState.CLOSED) {
      this.inbox = null;
      return new MessageQueue(null);
    }
    return (this.inbox = new MessageQueue(this));
  }

  onMessage(data: Buffer, isText: boolean): void {
    if (this.state === ReadyState.CLOSED) return;
    const inbox = this.inbox;
    if (inbox !== null) {
      inbox.push(data, isText);
      return;
    }
    const b = this.behavior;
    try {
      const result = isText ? b.onText(data.toString('utf8')) : b.onBinary(data);
      if (result !== undefined) this.watch(result);
    } catch (error) {
      this.hookFailed(error);
    }
  }

  onPing(data: Buffer): void {
    // RFC 6455 §5.5.2–5.5.3: answer with a pong carrying the same payload.
    if (!this.closeSent && this.socket.writable) this.socket.write(encodeFrame(Opcode.Pong, data));
    try {
      this.behavior.onPing(data);
    } catch (error) {
      this.hookFailed(error);
    }
  }

  onPong(data: Buffer): void {
    try {
      this.behavior.onPong(data);
    } catch (error) {
      this.hookFailed(error);
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
      this.owner.log.error('wsmount: onError threw', hookError);
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

  /** @internal the socket is gone: report the close once. */
  socketClosed(): void {
    if (this.state === ReadyState.CLOSED) return;
    this.state = ReadyState.CLOSED;
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    this.parser.stop();
    // The messages() iterator hands out what it holds, then ends; it stays the inbox (a second
    // messages() still throws) until released.
    this.inbox?.end();
    this.owner.connectionClosed(this, this.closeCode, this.closeReason);
  }

  // ---- hook failures --------------------------------------------------------------------------

  /** Catches a rejected promise returned by a hook. */
  watch(result: unknown): void {
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (this.hookFailedBound ??= this.hookFailed.bind(this)));
    }
  }

  /** A hook threw: log it, tell `onError`, close with 1011. One bad handler never takes the process down. */
  hookFailed(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.owner.log.error(`wsmount: a hook of connection ${this.behavior.id} threw`, err);
    try {
      this.behavior.onError(err);
    } catch (hookError) {
      this.owner.log.error('wsmount: onError threw', hookError);
    }
    if (this.state === ReadyState.OPEN) this.close(CloseCode.InternalError, 'internal error');
  }
}

/** Keeps a close reason within 123 bytes (our own reasons are ASCII). */
function truncateReason(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : Buffer.from(reason).subarray(0, 120).toString('latin1') + '...';
}
