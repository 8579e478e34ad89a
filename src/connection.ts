import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { type Behavior, type BinaryData, ReadyState } from './behavior.js';
import type { Logger } from './logger.js';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from './protocol/constants.js';
import type { ProtocolError } from './protocol/errors.js';
import { type Frame, encodeClosePayload, encodeFrame, encodeText } from './protocol/framer.js';
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

/** Copies-free view of any binary input as a Buffer. */
export function toBuffer(data: BinaryData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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
    this.socket.end();
    this.armCloseTimer();
  }

  // ---- ParserSink -----------------------------------------------------------------------------

  onMessage(data: Buffer, isText: boolean): void {
    if (this.state === ReadyState.CLOSED) return;
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
