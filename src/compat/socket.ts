/**
 * The ws face's per-connection object: what ws's server-side `WebSocket` is where the libraries
 * built on ws (graphql-ws, tRPC, Yjs) and typical user code touch it, over a wsmount connection.
 * Its shape follows `@types/ws` so that code typed against ws compiles against it; what it does
 * follows ws 8, except where README "Coming from ws" lists a difference.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Behavior } from '../behavior.js';
import type { Connection, SendStatus } from '../connection/index.js';
import { ReadyState } from '../behavior-types.js';
import { Opcode, isValidWireCloseCode } from '../protocol/constants.js';
import { toBuffer } from '../protocol/framer.js';
import {
  type CloseEvent,
  type ErrorEvent,
  type Event,
  type EventListenerLike,
  type EventListenerOptions,
  type MessageEvent,
  type WebSocketEventMap,
  addEventListener,
  getAttribute,
  removeEventListener,
  setAttribute,
} from './events.js';
// Not an ES module import (src/builtins.ts says why).
const events: typeof import('node:events') = process.getBuiltinModule('node:events');

/** What a `message` event's `data` is: a `Buffer` (text always), or by `binaryType` for binary. */
export type RawData = Buffer | ArrayBuffer | Buffer[];

/**
 * What `send()` takes: a string goes as text, anything else as binary (unless `options.binary`
 * says). An array of Buffers (what `'fragments'` hands out) is sent joined, as one message.
 */
export type SendData = string | number | Buffer | ArrayBuffer | ArrayBufferView | SharedArrayBuffer | readonly Buffer[];

/** `send()`'s options, as ws's. `mask` and `compress` are accepted and ignored (see README). */
export interface SendOptions {
  /** Send as binary (`true`) or text (`false`). Default: text for a string, binary otherwise. */
  binary?: boolean | undefined;
  /** Ignored: a server never masks (RFC 6455 §5.1). */
  mask?: boolean | undefined;
  /** Ignored: a message is compressed when the connection agreed permessage-deflate and it passes the threshold. */
  compress?: boolean | undefined;
  /** Must be `true` (or absent): sending one message in several `send()` calls is not supported. */
  fin?: boolean | undefined;
}

/** Called once the data is written, or with the error that kept it from being sent. */
export type SendCallback = (error?: Error) => void;

/**
 * `ping()`/`pong()`'s callback. Typed as in `@types/ws` (an `Error` argument), though it is
 * called with no argument when the frame was written (ws passes `null`).
 */
export type ControlCallback = (error: Error) => void;

/** How binary messages are handed to `'message'` listeners. */
export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments';

/** An `on<type>` attribute's value. */
export type EventHandler<E> = ((event: E) => void) | null;

const BINARY_TYPES: ReadonlySet<string> = new Set(['nodebuffer', 'arraybuffer', 'fragments']);
const STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const;

/**
 * One accepted WebSocket connection on a {@link wsRoute}, as ws's server-side `WebSocket`: the
 * object a `'connection'` listener gets. Not constructed by users.
 *
 * Differences from ws, in short (README "Coming from ws" has them all): wsmount's limits,
 * heartbeat and backpressure policy apply; a listener that throws closes this connection with
 * 1011 (ws would crash the process); `'error'` is emitted only when it has a listener; a message
 * fragmented on the wire arrives joined (`'fragments'` gives a one-element array).
 */
export class WebSocket extends events.EventEmitter {
  static readonly CONNECTING: 0 = 0;
  static readonly OPEN: 1 = 1;
  static readonly CLOSING: 2 = 2;
  static readonly CLOSED: 3 = 3;
  /** 0: not used on the server side (a connection is open when it is handed out). */
  declare readonly CONNECTING: 0;
  /** 1: the connection is open. */
  declare readonly OPEN: 1;
  /** 2: the closing handshake has started. */
  declare readonly CLOSING: 2;
  /** 3: the connection is closed. */
  declare readonly CLOSED: 3;

  /** The upgrade request this connection came with. */
  readonly request: IncomingMessage;
  /** The same connection as a wsmount `Behavior`: topics (`subscribe`, `publish`), `latency`, `data`. */
  readonly behavior: Behavior;
  readonly #connection: Connection;
  #binaryType: BinaryType = 'nodebuffer';

  /** @internal Made by the route (route.ts) when a connection opens. */
  constructor(behavior: Behavior, connection: Connection) {
    if (connection === undefined) {
      throw new TypeError(
        "wsmount/ws: this WebSocket is the server side of a connection that a wsRoute accepted; it is not constructed. To connect as a client, use Node's global WebSocket or the ws package",
      );
    }
    // A listener's rejected promise (an async 'message' listener that throws) comes back to
    // [captureRejectionSymbol] below, as a listener's exception does to the hook.
    super({ captureRejections: true });
    this.behavior = behavior;
    // ws types the request as an IncomingMessage. Over HTTP/2 (RFC 8441) it is Node's
    // Http2ServerRequest, which has the members libraries read (headers, url, socket).
    this.request = behavior.request as IncomingMessage;
    this.#connection = connection;
  }

  /** How binary messages reach `'message'`: `'nodebuffer'` (default), `'arraybuffer'` or `'fragments'`. Other values are ignored, as in ws. */
  get binaryType(): BinaryType {
    return this.#binaryType;
  }
  set binaryType(type: BinaryType) {
    if (BINARY_TYPES.has(type)) this.#binaryType = type;
  }

  /** Bytes accepted by `send()` and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.behavior.bufferedAmount;
  }

  /** The agreed extensions' names: `'permessage-deflate'` or `''`. */
  get extensions(): string {
    return this.behavior.extensions.perMessageDeflate === null ? '' : 'permessage-deflate';
  }

  /** Whether `pause()` stopped reading. */
  get isPaused(): boolean {
    return this.#connection.userPaused;
  }

  /** The agreed subprotocol, or `''`. */
  get protocol(): string {
    return this.behavior.protocol ?? '';
  }

  /** 1 OPEN, 2 CLOSING, 3 CLOSED (never 0: the connection is open when it is handed out). */
  get readyState(): 0 | 1 | 2 | 3 {
    return this.#connection.state;
  }

  /** `''`: the server side of a connection has no URL to dial (ws leaves it undefined). See `request.url`. */
  get url(): string {
    return '';
  }

  /** WHATWG style: `onopen` (never called on the server side: the connection is already open). */
  get onopen(): EventHandler<Event> {
    return getAttribute(this, 'open') as EventHandler<Event>;
  }
  set onopen(listener: EventHandler<Event>) {
    setAttribute(this, 'open', listener);
  }
  /** WHATWG style: `onmessage`, with `event.data` a string for text. */
  get onmessage(): EventHandler<MessageEvent> {
    return getAttribute(this, 'message') as EventHandler<MessageEvent>;
  }
  set onmessage(listener: EventHandler<MessageEvent>) {
    setAttribute(this, 'message', listener);
  }
  /** WHATWG style: `onclose`, with `event.code`, `event.reason` (a string) and `event.wasClean`. */
  get onclose(): EventHandler<CloseEvent> {
    return getAttribute(this, 'close') as EventHandler<CloseEvent>;
  }
  set onclose(listener: EventHandler<CloseEvent>) {
    setAttribute(this, 'close', listener);
  }
  /** WHATWG style: `onerror`. */
  get onerror(): EventHandler<ErrorEvent> {
    return getAttribute(this, 'error') as EventHandler<ErrorEvent>;
  }
  set onerror(listener: EventHandler<ErrorEvent>) {
    setAttribute(this, 'error', listener);
  }

  /** WHATWG style: adds a listener for `'open'`, `'message'`, `'close'` or `'error'` (once per listener). */
  addEventListener<K extends keyof WebSocketEventMap>(type: K, listener: EventListenerLike<WebSocketEventMap[K]>, options?: EventListenerOptions): void {
    addEventListener(this, type, listener, options);
  }

  /** WHATWG style: removes a listener `addEventListener` added. */
  removeEventListener<K extends keyof WebSocketEventMap>(type: K, listener: EventListenerLike<WebSocketEventMap[K]>): void {
    removeEventListener(this, type, listener);
  }

  /**
   * Sends a message: a string as text, anything else as binary, unless `options.binary` says
   * otherwise (bytes sent as text must be valid UTF-8, or this throws `TypeError`: RFC 6455 §8.1).
   * A number is sent as its decimal string. Not open (closing or closed): nothing is sent, and
   * `callback` gets an error. `callback` is called once the message is written (after the
   * backlog drains, when it had to wait), or with the error that kept it from going: the
   * connection closed first, or the message was dropped by the `maxBackpressure` policy.
   */
  send(data: SendData, callback?: SendCallback): void;
  send(data: SendData, options: SendOptions | null, callback?: SendCallback): void;
  send(data: SendData, options?: SendOptions | SendCallback | null, callback?: SendCallback): void {
    let opts: SendOptions | undefined;
    if (typeof options === 'function') callback = options;
    else if (options !== null) opts = options; // ws takes null as "no options"
    const c = this.#connection;
    if (c.state !== ReadyState.OPEN) {
      if (callback !== undefined) notOpen(c.state, callback);
      return;
    }
    let status: SendStatus;
    if (opts === undefined) {
      status = typeof data === 'string' ? c.sendText(data) : typeof data === 'number' ? c.sendText(String(data)) : c.sendBytes(bytesOf(data), Opcode.Binary);
    } else {
      if (opts.fin === false) {
        throw new TypeError('wsmount/ws: send() with { fin: false } (one message over several calls) is not supported; join the parts and send them in one call');
      }
      const text = typeof data === 'string' || typeof data === 'number';
      if (opts.binary === undefined ? text : opts.binary === false) {
        if (text) status = c.sendText(String(data));
        else {
          const bytes = bytesOf(data as Exclude<SendData, string | number>);
          if (!isUtf8(bytes)) throw new TypeError('wsmount/ws: send(data, { binary: false }): data is not valid UTF-8, so it cannot go as text (RFC 6455 §8.1); send it with { binary: true }');
          status = c.sendBytes(bytes, Opcode.Text);
        }
      } else {
        status = c.sendBytes(text ? Buffer.from(String(data)) : bytesOf(data as Exclude<SendData, string | number>), Opcode.Binary);
      }
    }
    if (callback !== undefined) settle(c, status, callback);
  }

  /**
   * Starts the closing handshake. With no `code`, the close frame has no payload (the peer sees
   * 1005), as in ws. Throws `TypeError` for a code that may not be sent (valid: 1000–1003,
   * 1007–1014, 3000–4999) and `RangeError` for a reason over 123 bytes. Does nothing once closing.
   */
  close(code?: number, reason?: string | Buffer): void {
    const c = this.#connection;
    if (c.state !== ReadyState.OPEN) return;
    if (code !== undefined && (typeof code !== 'number' || !isValidWireCloseCode(code))) {
      throw new TypeError(`wsmount/ws: close(${String(code)}): the first argument must be a close code that may be sent (1000–1003, 1007–1014, 3000–4999)`);
    }
    const text = reason === undefined || code === undefined ? '' : typeof reason === 'string' ? reason : Buffer.from(reason).toString('utf8');
    if (Buffer.byteLength(text) > 123) throw new RangeError('wsmount/ws: close(): the reason must not be greater than 123 bytes');
    c.close(code, text);
  }

  /**
   * Destroys the socket at once, with no closing handshake (`'close'` sees 1006); `readyState` is
   * CLOSING until then. What was sent just before still leaves, as with ws.
   */
  terminate(): void {
    this.#connection.terminate();
  }

  /**
   * Sends a ping (payload at most 125 bytes, or `RangeError`). `mask` is ignored. Not open:
   * nothing is sent and `callback` gets an error.
   */
  ping(data?: SendData, mask?: boolean, callback?: ControlCallback): void {
    this.#control(true, data, mask, callback);
  }

  /** Sends an unsolicited pong (pings are answered by wsmount itself). As `ping()` otherwise. */
  pong(data?: SendData, mask?: boolean, callback?: ControlCallback): void {
    this.#control(false, data, mask, callback);
  }

  #control(ping: boolean, data: SendData | ControlCallback | undefined, mask: boolean | ControlCallback | undefined, cb: ControlCallback | undefined): void {
    // Called with no argument on success (ws passes null), whatever @types/ws says.
    let callback = cb as SendCallback | undefined;
    let payload = data;
    if (typeof payload === 'function') {
      callback = payload as SendCallback;
      payload = undefined;
    } else if (typeof mask === 'function') callback = mask as SendCallback;
    const c = this.#connection;
    if (c.state !== ReadyState.OPEN) {
      if (callback !== undefined) notOpen(c.state, callback);
      return;
    }
    const bytes = payload === undefined ? undefined : typeof payload === 'string' || typeof payload === 'number' ? String(payload) : bytesOf(payload);
    const status = ping ? c.ping(bytes) : c.pong(bytes);
    if (callback !== undefined) settle(c, status, callback);
  }

  /** Stops reading the socket until `resume()` (messages already read are still delivered). */
  pause(): void {
    this.#connection.pauseReading(true);
  }

  /** Reads the socket again after `pause()`. */
  resume(): void {
    this.#connection.pauseReading(false);
  }

  /**
   * @internal An async listener's promise rejected (EventEmitter's captureRejections): the
   * connection fails as it does when a listener throws (logged, `'error'` to a listener, 1011).
   */
  override [events.captureRejectionSymbol](error: unknown, event: string | symbol): void {
    const c = this.#connection;
    const hook = event === 'message' ? 'onRawText' : event === 'ping' ? 'onPing' : event === 'pong' ? 'onPong' : null;
    if (hook !== null && c.state === ReadyState.OPEN) c.hookFailed(error, hook);
    else this.behavior.handler.log.error(`wsmount/ws: a '${String(event)}' listener's promise rejected (connection ${this.behavior.id})`, error);
  }

  /** @internal A data message arrived (route.ts). */
  received(bytes: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.emit('message', bytes, false);
      return;
    }
    const type = this.#binaryType;
    this.emit('message', type === 'nodebuffer' ? bytes : type === 'arraybuffer' ? arrayBufferOf(bytes) : [bytes], true);
  }
}

// The instance constants live on the prototype, as in ws: no per-connection cost.
for (const [value, name] of STATES.entries()) {
  Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
}

type Events = {
  close: (this: WebSocket, code: number, reason: Buffer) => void;
  error: (this: WebSocket, error: Error) => void;
  message: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  open: (this: WebSocket) => void;
  ping: (this: WebSocket, data: Buffer) => void;
  pong: (this: WebSocket, data: Buffer) => void;
};

// The typed events, as overloads of EventEmitter's methods (no code: declaration merging).
export interface WebSocket {
  on<K extends keyof Events>(event: K, listener: Events[K]): this;
  on(event: string | symbol, listener: (this: WebSocket, ...args: never[]) => void): this;
  once<K extends keyof Events>(event: K, listener: Events[K]): this;
  once(event: string | symbol, listener: (this: WebSocket, ...args: never[]) => void): this;
  off<K extends keyof Events>(event: K, listener: Events[K]): this;
  off(event: string | symbol, listener: (this: WebSocket, ...args: never[]) => void): this;
  addListener<K extends keyof Events>(event: K, listener: Events[K]): this;
  addListener(event: string | symbol, listener: (...args: never[]) => void): this;
  removeListener<K extends keyof Events>(event: K, listener: Events[K]): this;
  removeListener(event: string | symbol, listener: (...args: never[]) => void): this;
}

/** A Buffer view of what `send()` took as bytes, without copying. */
function bytesOf(data: Exclude<SendData, string | number>): Buffer {
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return toBuffer(data);
  if (Array.isArray(data)) return joined(data);
  if (typeof SharedArrayBuffer === 'function' && data instanceof SharedArrayBuffer) return Buffer.from(data);
  throw new TypeError(`wsmount/ws: send() takes a string, a number, a Buffer, an ArrayBuffer or a typed array, not ${describe(data)}`);
}

function joined(parts: readonly unknown[]): Buffer {
  for (const part of parts) {
    if (!Buffer.isBuffer(part)) throw new TypeError(`wsmount/ws: send() takes an array of Buffers (a message's fragments), not one holding ${describe(part)}`);
  }
  return Buffer.concat(parts as readonly Buffer[]);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
}

/** An ArrayBuffer holding exactly these bytes: the Buffer's own when it spans all of it. */
function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  const buffer = bytes.buffer as ArrayBuffer;
  if (bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) return buffer;
  return buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/** ws's answer to a send on a connection that is not open: the callback gets an error, later. */
function notOpen(state: number, callback: SendCallback): void {
  process.nextTick(callback, new Error(`WebSocket is not open: readyState ${state} (${STATES[state] ?? 'CLOSED'})`));
}

/** Calls a send's callback once its bytes are written, or with why they were not. */
function settle(c: Connection, status: SendStatus, callback: SendCallback): void {
  if (status === 'sent') {
    process.nextTick(callback);
  } else if (status === 'queued') {
    c.drained().then((drained) => (drained ? callback() : callback(new Error('wsmount/ws: the connection closed before the message was written'))));
  } else {
    process.nextTick(
      callback,
      new Error('wsmount/ws: the message was dropped: the connection is closing, or the peer is not reading and the backlog is at maxBackpressure'),
    );
  }
}
