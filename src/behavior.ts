import type { IncomingHttpHeaders } from 'node:http';
import type { Buffer } from 'node:buffer';
import type { BackpressurePolicy, Connection, MessageStream, RateLimit, SendStatus, SendStreamOptions, StreamSource, StreamedMessage } from './connection/index.js';
import type { WebSocketHandler } from './handler.js';
import { chooseProtocol } from './handshake/decide.js';
import { NO_PARAMS } from './router.js';
import { compactHeaders, expandHeaders, keptHeader } from './handshake/kept-headers.js';
import { FIXED_101 } from './handshake/response.js';
import { isSafeHeaderValue, isToken } from './handshake/tokens.js';
import { decodeText, textBytes } from './protocol/utf8.js';
import { Opcode } from './protocol/constants.js';

import type { BinaryData } from './protocol/framer.js';
import { type PublishOptions, checkTopic } from './pubsub/topics.js';
import { type BehaviorClass, type NegotiatedExtensions, ReadyState, type UpgradeRequest, type WebSocketTransport, setInternals, transportOf } from './behavior-types.js';
import type { PerMessageDeflateOptions } from './extensions/permessage-deflate/options.js';
export type { BinaryData };
export { Backpressure, type BehaviorClass, type NegotiatedExtensions, ReadyState, type UpgradeRequest, type WebSocketTransport } from './behavior-types.js';

/** `data` not read or written yet (`null` and `undefined` are values a behavior may set). */
const UNSET: unique symbol = Symbol('unset');
/** `Behavior.transport`'s values, by their index in the behavior's bits; http/1.1 first (0, the default). */
const TRANSPORTS: readonly WebSocketTransport[] = ['http/1.1', 'h2', 'h2c'];
/** The bit of a behavior's bits that says its handshake failed (readyState CLOSED with no connection). */
const ABANDONED = 4;
/**
 * Extra headers for the 101, set by `setResponseHeader()` during the handshake: kept beside the
 * behavior, not in it (a slot every connection would carry for its whole life), until it opens.
 */
const responseHeadersOf = new WeakMap<object, [string, string][]>();
const NO_EXTENSIONS: NegotiatedExtensions = Object.freeze({ perMessageDeflate: null });

/**
 * Peer addresses seen lately, each kept as one string: Node makes a new string for every
 * `socket.remoteAddress`, and connections that come through one proxy or NAT (often all of
 * them) would each keep their own copy of the same address. Bounded: emptied when full.
 */
const addresses = new Map<string, string>();
const ADDRESSES_KEPT = 256;
function sharedAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const known = addresses.get(address);
  if (known !== undefined) return known;
  if (addresses.size >= ADDRESSES_KEPT) addresses.clear();
  addresses.set(address, address);
  return address;
}
/** @internal */
export { internals } from './behavior-types.js';

/**
 * One instance per WebSocket connection: extend it and override the hooks.
 *
 * ```ts
 * class Reverse extends Behavior {
 *   override onText(text: string) { this.sendText([...text].reverse().join('.')); }
 * }
 * ```
 *
 * `Params` types {@link Behavior.params}: `Behavior<RouteParams<'/rooms/:id'>>`; the handler
 * refuses (at compile time) a route table that mounts a behavior where its params are not given.
 * Per-connection state goes in {@link Behavior.data}, which a subclass declares with its type and
 * a starting value: `override data: Session | null = null`.
 *
 * The base class's hooks forward to the handler-level callbacks (`onConnect`, `onMessage`,
 * `onDisconnect`), so a route mapped to `Behavior` itself behaves like the seed's default
 * behavior; a subclass that overrides a hook can call `super.onText(text)` to keep that
 * forwarding.
 *
 * @typeParam Params - the route params this behavior reads (see {@link RouteParams}).
 * @typeParam _Data - ignored, kept so that 0.1 code written as `Behavior<Params, Data>` still
 * compiles; such a class reads `this.data` as `unknown` until it declares the field as above.
 */
export class Behavior<Params extends Record<string, string> = Record<string, string>, _Data = unknown> {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  // The per-route statics below are read once, when the handler is built (bad values throw then).
  // TypeScript widens a bare literal in a class field to its base type ('drop' to string, false
  // to boolean) without looking at the base class, so a literal-typed static needs a form that
  // keeps the literal: `Backpressure.Drop`, `false as const`, or `static override readonly`.

  /** Subprotocols this route accepts, in server preference order: `static override protocols = ['chat.v2', 'chat.v1']`. */
  static protocols: readonly string[] = [];
  /** With `protocols` set: refuse (400) clients that offer none of them. Default `true`. */
  static requireProtocol = true;
  /** Per-route override of the handler's `maxPayload`. */
  static maxPayload: number | undefined = undefined;
  /** Per-route override of the handler's `maxFragments`. */
  static maxFragments: number | undefined = undefined;
  /** Per-route override of the handler's `maxStreamBytes`: the largest message this route takes as a stream (see `onStream`). */
  static maxStreamBytes: number | undefined = undefined;
  /** Per-route override of the handler's `maxBackpressure`. */
  static maxBackpressure: number | undefined = undefined;
  /**
   * Per-route override of the handler's `backpressure` policy. Write
   * `static override backpressure = Backpressure.Drop` (or `'drop' as const`): a bare `'drop'`
   * is widened to `string` by TypeScript, and refused with "Type 'string' is not assignable to
   * type 'BackpressurePolicy | undefined'".
   */
  static backpressure: BackpressurePolicy | undefined = undefined;
  /** Per-route override of the handler's `pingInterval` (0 turns the heartbeat off for this route). */
  static pingInterval: number | undefined = undefined;
  /** Per-route override of the handler's `pongTimeout`. */
  static pongTimeout: number | undefined = undefined;
  /** Per-route override of the handler's `idleTimeout` (0 turns it off for this route). */
  static idleTimeout: number | undefined = undefined;
  /** Most open connections on this route (upgrades in `verify()` count); over it → 503. Default: no route limit. */
  static maxConnections: number | undefined = undefined;
  /**
   * Per-route override of the handler's `rateLimit`: `static override rateLimit = { messages: 20,
   * interval: 1000 }`. `false` turns it off for this route; write it `false as const` (or
   * `static override readonly rateLimit = false`): a bare `false` is widened to `boolean` by
   * TypeScript, and refused with "Type 'boolean' is not assignable to type 'false | RateLimit |
   * undefined'".
   */
  static rateLimit: RateLimit | false | undefined = undefined;
  /**
   * Per-route override of the handler's `perMessageDeflate`: `static override perMessageDeflate =
   * true` (or an object of settings) compresses this route only; `false` turns compression off
   * here. What a connection agreed is in {@link Behavior.extensions}.
   */
  static perMessageDeflate: boolean | PerMessageDeflateOptions | undefined = undefined;
  /**
   * Keep the whole upgrade request ({@link Behavior.request}) for the connection's life. By
   * default (`false`) a connection lets it go once `onOpen()` has returned (or, when `onOpen()`
   * returns a promise, once that settles): an `IncomingMessage` and its raw headers are about
   * 1 KiB of heap per idle connection, more than a third of what wsmount keeps per connection.
   * What hooks usually read stays after that: {@link Behavior.headers}, {@link Behavior.url},
   * {@link Behavior.origin}, {@link Behavior.query}, {@link Behavior.remoteAddress} and
   * {@link Behavior.remotePort}. A route that reads `this.request` later (its socket, its
   * `rawHeaders`…) sets `static override keepRequest = true`.
   */
  static keepRequest = false;

  /** Unique integer id for this connection (unique in the process). */
  id = 0;
  /**
   * The request that opened this WebSocket: an `http.IncomingMessage` (HTTP/1.1 upgrade) or an
   * `http2.Http2ServerRequest` (HTTP/2 extended CONNECT, see {@link Behavior.transport}).
   * Available in `verify()`, `selectProtocol()` and `onOpen()` (until the promise an async
   * `onOpen()` returns settles); after that, reading it throws a `TypeError` unless the route
   * sets {@link Behavior.keepRequest}. {@link Behavior.headers}, {@link Behavior.url} and
   * {@link Behavior.remoteAddress} stay readable for the connection's life.
   */
  get request(): UpgradeRequest {
    const r = this.#request;
    if (r === undefined) {
      throw new TypeError(
        `wsmount: this.request is let go once onOpen() has run (route ${this.route}): read this.headers, this.url, this.remoteAddress there, or set 'static override keepRequest = true' on the behavior to keep the whole request`,
      );
    }
    return r;
  }
  /** The request target: path and query, as the client sent it (`'/rooms/7?x=1'`). */
  url = '';
  /**
   * Route params, decoded (`/rooms/:id` → `{ id }`; a wildcard's rest under `'*'`). A route
   * without params gets an empty object of its own the first time it reads them.
   */
  declare params: Params;
  /** The route pattern this connection matched, e.g. `'/rooms/:id'`. */
  route = '';
  /** The negotiated subprotocol, or `undefined`. */
  protocol: string | undefined = undefined;
  /**
   * The extensions agreed in the handshake: `this.extensions.perMessageDeflate` holds the
   * permessage-deflate parameters (window sizes, context takeover, threshold), or is null when
   * the connection is not compressed (the route or handler does not enable it, or the client
   * did not offer it).
   */
  get extensions(): NegotiatedExtensions {
    const d = this.#connection?.deflate;
    return d === undefined || d === null ? NO_EXTENSIONS : d.extensions;
  }
  /**
   * Your per-connection state. Declare it in your subclass with its type and a starting value,
   * then set it where you like (`verify()`, `onOpen()`, any hook):
   *
   * ```ts
   * class Room extends Behavior<RouteParams<'/rooms/:room'>> {
   *   override data = { user: '' };                      // a starting value of the right type
   *   override async verify(req: UpgradeRequest) { this.data = { user: await userOf(req) }; }
   *   override onText(text: string) { this.sendText(`${this.data.user}: ${text}`); }
   * }
   * class Admin extends Behavior {
   *   override data: Session | null = null;             // or "not yet", which readers must check
   * }
   * ```
   *
   * The compiler checks the pattern: a declaration without a starting value
   * (`override data: Session;`) is refused ("Property 'data' has no initializer"), so `data` is
   * never typed as something it does not hold yet. In a class that declares nothing it is
   * `unknown`, as it is for the handler-level callbacks and `handler.clients` of a loose route
   * table. At run time it starts as an empty object of its own per connection (JavaScript code
   * may add keys to it), made the first time it is read: a connection that never uses it keeps
   * none.
   */
  declare data: unknown;
  /** The handler that accepted this connection. */
  handler!: WebSocketHandler;

  // The storage behind `data` and `params` (accessors on the prototype, defined below: declared
  // as fields so that a subclass may still write `override data = …`).
  #data: unknown = UNSET;
  #params: Record<string, string> | undefined = undefined;
  #request: UpgradeRequest | undefined = undefined;
  /** The headers object, or, once the request is let go, the same as one string (kept-headers.ts) until a hook reads them. */
  #headers: IncomingHttpHeaders | string = '';
  /** The transport (its index in TRANSPORTS) and, in bit 2, whether the handshake failed (ABANDONED): one slot. */
  #bits = 0;
  /** The query string (after `?`), until `query` parses it. */
  #query: URLSearchParams | string = '';
  #connection: Connection | null = null;

  static {
    // An own `data`/`params` property (a subclass's `override data = …`, or an assignment while
    // the field initializers run) shadows these; everything else reads and writes the slots.
    Object.defineProperty(Behavior.prototype, 'data', {
      get(this: Behavior): unknown {
        const d = this.#data;
        return d !== UNSET ? d : (this.#data = {});
      },
      set(this: Behavior, value: unknown) {
        this.#data = value;
      },
      configurable: true,
      enumerable: false,
    });
    Object.defineProperty(Behavior.prototype, 'params', {
      get(this: Behavior): Record<string, string> {
        return (this.#params ??= Object.create(null) as Record<string, string>);
      },
      set(this: Behavior, value: Record<string, string>) {
        this.#params = value;
      },
      configurable: true,
      enumerable: false,
    });
    setInternals({
      init(b, init) {
        b.id = init.id;
        b.#request = init.request;
        // The parsed headers object (built once, when the handshake read it) outlives the request,
        // as one string once the request is let go (#letGo).
        b.#headers = init.request.headers;
        // A path that is the route's pattern (no params, no query) shares the pattern's string.
        const url = init.request.url ?? '';
        b.url = url === init.route ? init.route : url;
        // Read now: over HTTP/2 the socket is a proxy to the session's, gone once the stream is.
        const transport = TRANSPORTS.indexOf(transportOf(init.request));
        b.#bits = (b.#bits & ABANDONED) | transport;
        // Node caches the peer's address on the socket when it is read (see #letGo). That cache
        // is not deleted: on Node 24 a delete turns the socket into a slow dictionary object.
        b.remoteAddress = sharedAddress(init.request.socket.remoteAddress);
        b.remotePort = init.request.socket.remotePort;
        b.#params = init.params === NO_PARAMS ? undefined : init.params;
        b.route = init.route;
        b.#query = init.query;
        b.handler = init.handler;
      },
      connect(b, connection) {
        b.#connection = connection;
      },
      connection(b) {
        return b.#connection;
      },
      abandon(b) {
        b.#bits |= ABANDONED;
      },
      responseHeaders(b) {
        return responseHeadersOf.get(b) ?? null;
      },
      opened(b, opened) {
        responseHeadersOf.delete(b);
        if ((b.constructor as BehaviorClass).keepRequest === true) return;
        if (typeof (opened as PromiseLike<unknown> | undefined)?.then === 'function') {
          const letGo = (): void => {
            Behavior.#letGo(b);
          };
          // The promise's rejection is the connection's to report (track()): this branch only waits.
          (opened as PromiseLike<unknown>).then(letGo, letGo);
        } else {
          Behavior.#letGo(b);
        }
      },
      requestOf(b) {
        return b.#request;
      },
    });
  }

  /** Lets the request go, keeping its headers as one string until a hook reads them again. */
  static #letGo(b: Behavior): void {
    // Node caches the peer's address on the socket the first time it is read (an object of ~56 B
    // that lives as long as the socket); `remoteAddress` and `remotePort` have it already. A
    // later read of `socket.remoteAddress` asks the kernel again (and, as Node documents, may be
    // undefined once the socket is destroyed).
    // Over HTTP/2 `request.socket` is a proxy to the session's socket, which other streams share.
    const socket = (b.#bits & ~ABANDONED) === 0 ? (b.#request?.socket as { _peername?: unknown } | undefined) : undefined;
    if (socket !== undefined && typeof socket._peername === 'object' && socket._peername !== null) socket._peername = null;
    b.#request = undefined;
    const h = b.#headers;
    const text = typeof h === 'string' ? null : compactHeaders(h);
    if (text !== null) b.#headers = text;
  }

  /**
   * Which protocol carries this WebSocket: `'http/1.1'` (an upgrade, over TLS or not), `'h2'`
   * (an HTTP/2 stream over TLS, RFC 8441) or `'h2c'` (cleartext HTTP/2). Everything else about a
   * behavior is the same on each.
   */
  get transport(): WebSocketTransport {
    return TRANSPORTS[this.#bits & ~ABANDONED] as WebSocketTransport;
  }

  /** The upgrade request's headers (lower-case names). */
  get headers(): IncomingHttpHeaders {
    const h = this.#headers;
    return typeof h !== 'string' ? h : (this.#headers = expandHeaders(h));
  }

  /** The `Origin` header, if the client sent one. */
  get origin(): string | undefined {
    // Read from the kept text when the object is not there (see #letGo): no rebuild for one header.
    const h = this.#headers;
    const o = typeof h !== 'string' ? h.origin : keptHeader(h, 'origin');
    return typeof o === 'string' ? o : undefined;
  }

  /** The peer's IP address (read at the upgrade, so still known in `onClose`). */
  remoteAddress: string | undefined = undefined;
  /** The peer's port. */
  remotePort: number | undefined = undefined;

  /** The query string, parsed (it never takes part in routing). */
  get query(): URLSearchParams {
    const q = this.#query;
    return typeof q !== 'string' ? q : (this.#query = new URLSearchParams(q));
  }

  /** 0 CONNECTING (in `verify`), 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): ReadyState {
    const c = this.#connection;
    // Before a connection exists: CONNECTING, or CLOSED if the handshake failed.
    return c !== null ? c.state : (this.#bits & ABANDONED) !== 0 ? ReadyState.CLOSED : ReadyState.CONNECTING;
  }

  /**
   * Bytes accepted by `send*()` but not yet handed to the kernel: the socket's `writableLength`,
   * plus, with compression, messages still being compressed on the thread pool and those waiting
   * behind them (counted uncompressed). A send that would take it past `maxBackpressure` is
   * dropped (and, under the default `'close'` policy, closes with 1008). Over HTTP/2 the write
   * Node is still framing on the stream is not held against the limit (the peer may have read
   * part of it), so this can reach twice `maxBackpressure`.
   */
  get bufferedAmount(): number {
    return this.#connection?.bufferedAmount ?? 0;
  }

  /**
   * The last heartbeat round trip in milliseconds (ping sent → pong seen), or `undefined` before
   * the first pong (or with the heartbeat off).
   */
  get latency(): number | undefined {
    const ms = this.#connection?.latency ?? -1;
    return ms < 0 ? undefined : ms;
  }

  // ---- hooks ----------------------------------------------------------------------------

  /**
   * Runs before the `101`, with the behavior instance already built (set `this.data` here).
   * Return `false` to refuse with 403, or throw a `HandshakeRejection` for another status.
   * May be async; the client gets no response until it settles.
   */
  verify(request: UpgradeRequest): boolean | void | Promise<boolean | void> {
    void request;
  }

  /**
   * Chooses this connection's subprotocol from the client's `Sec-WebSocket-Protocol` offer (its
   * names, in its order). Runs before `verify()` (which then sees `this.protocol`); return one of
   * the offered names, `undefined` for no subprotocol, or `false` to refuse the upgrade with 400.
   * Returning a name the client did not offer is a bug: the upgrade is answered 500 and logged.
   * Throwing a `HandshakeRejection` refuses with its status. The default picks the first of the
   * static `protocols` the client offers, and refuses when none is and `requireProtocol` is set.
   *
   * ```ts
   * override selectProtocol(offered: readonly string[], request: UpgradeRequest) {
   *   // Newest protocol version this client's build supports.
   *   return offered.includes('chat.v2') && request.headers['x-app-build'] !== 'legacy' ? 'chat.v2' : offered.includes('chat.v1') ? 'chat.v1' : false;
   * }
   * ```
   */
  selectProtocol(offered: readonly string[], request: UpgradeRequest): string | undefined | false {
    void request;
    const cls = this.constructor as BehaviorClass;
    return chooseProtocol(cls.protocols, cls.requireProtocol, offered);
  }

  /**
   * Adds a header to the `101 Switching Protocols` response: call it in `verify()` (or
   * `selectProtocol()`), for example to refresh a session cookie. A name set again is replaced;
   * pass an array for a header that repeats (`Set-Cookie`). Throws `TypeError` for a name that is
   * not an HTTP token, a value with CR, LF or another control character (no response splitting),
   * a header wsmount writes itself (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Content-Length`,
   * `Transfer-Encoding`), or once the 101 has been sent. The headers go on the 101 only; a
   * refusal carries the headers of its `HandshakeRejection`.
   */
  setResponseHeader(name: string, value: string | readonly string[]): void {
    if (this.#connection !== null || (this.#bits & ABANDONED) !== 0) {
      throw new TypeError(`setResponseHeader('${name}') is for verify(): the 101 response has already been sent or refused`);
    }
    if (typeof name !== 'string' || !isToken(name)) throw new TypeError(`setResponseHeader: '${String(name)}' is not a valid header name`);
    const lower = name.toLowerCase();
    if (FIXED_101.has(lower)) throw new TypeError(`setResponseHeader: wsmount writes ${name} itself; it cannot be set`);
    const values: readonly unknown[] = typeof value === 'string' ? [value] : Array.from(value as Iterable<unknown>);
    for (const v of values) {
      if (typeof v !== 'string' || !isSafeHeaderValue(v)) {
        throw new TypeError(
          `setResponseHeader: the value for ${name} must be a string of visible characters, spaces, tabs or latin1 letters (no line break, no other control character, nothing beyond U+00FF)`,
        );
      }
    }
    const kept = (responseHeadersOf.get(this) ?? []).filter(([n]) => n.toLowerCase() !== lower);
    for (const v of values) kept.push([name, v as string]);
    responseHeadersOf.set(this, kept);
  }

  /**
   * The connection is open. Default: calls the handler's `onConnect` (an async one is awaited as
   * this hook's promise). If it returns a promise, messages that arrive before it settles wait
   * (in order) and reach `onText`/`onBinary` after; a rejection is a hook failure (logged,
   * `onError`, closed with 1011), never an unhandled rejection.
   */
  onOpen(): void | Promise<void> {
    return this.handler.options.onConnect?.(this);
  }

  /**
   * A text message arrived (valid UTF-8, all fragments joined). Default: the handler's `onMessage`.
   * If it returns a promise, the next message waits until it settles: messages reach an async
   * handler one at a time, in order, and reading pauses while too many wait (see `messages()`).
   */
  onText(text: string): void | Promise<void> {
    return this.handler.options.onMessage?.(this, text);
  }

  /**
   * Opt-in raw text: override this and text messages arrive here as their UTF-8 bytes (already
   * validated, all fragments joined; the `Buffer` is yours to keep) instead of as a string to
   * `onText`, which is then not called. For apps that forward or parse the bytes themselves
   * (JSON parsers that take a Buffer, relays): no decode to a string and back. Async: as `onText`.
   * `messages()` still yields text as strings. The default decodes and calls `onText`.
   */
  onRawText(bytes: Buffer): void | Promise<void> {
    return this.onText(decodeText(bytes));
  }

  /**
   * Opt-in streaming: override this and every data message of the route arrives here as a
   * {@link StreamedMessage}, an async iterable of its payload as it arrives, instead of whole to
   * `onText`/`onBinary`/`messages()` (which are then not used). For uploads, exports, media: a
   * message of any size, in bounded memory.
   *
   * ```ts
   * class Upload extends Behavior {
   *   static override maxStreamBytes = 4 * 2 ** 30;
   *   override async onStream(message: StreamedMessage) {
   *     await pipeline(message.readable(), fs.createWriteStream(path));
   *   }
   * }
   * ```
   *
   * - **Limits.** `maxPayload` and `maxFragments` do not apply to a streamed message;
   *   `maxStreamBytes` does (default: no limit; over it closes with 1009). Collecting it with
   *   `message.text()`/`bytes()` is bounded by `maxPayload` again.
   * - **Backpressure.** Reading the socket stops while `STREAM_HIGH_WATER_BYTES` (1 MiB) of the
   *   message wait unread and resumes at `STREAM_LOW_WATER_BYTES` (256 KiB): a slow reader slows
   *   the peer down through TCP. Pings are answered as reading goes on; the heartbeat does not
   *   count the time reading is stopped against the peer.
   * - **Order.** The next message is handed out once this one has been read to its end and the
   *   promise returned here (if any) has settled.
   * - **Not wanted.** A message nobody has started reading (iterator, `readable()`, `text()`,
   *   `bytes()`) when this hook returns or its promise settles is dropped: the rest of it is read
   *   and thrown away, and the connection goes on (`if (!message.isText) return;` skips binary
   *   messages). To read it later, take it first: `const body = message.readable()`.
   * - **Endings.** Leaving the loop early closes the connection with 1008; an exception out of
   *   this hook closes it with 1011 (`onError` first). If the connection ends mid-message, reading
   *   it rejects with a `ProtocolError` (`'WS_STREAM_INTERRUPTED'`, or the violation's own code
   *   such as `'WS_INVALID_UTF8'`; text is checked as it arrives and a bad byte closes with 1007).
   * - **Compression.** A compressed message is inflated one piece at a time as it is read.
   *
   * The default collects the message (up to `maxPayload`) and calls `onRawText`/`onBinary`.
   */
  onStream(message: StreamedMessage): void | Promise<void> {
    return message.bytes().then((bytes) => (message.isText ? this.onRawText(bytes) : this.onBinary(bytes)));
  }

  /** A binary message arrived. `bytes` is yours to keep. Default: the handler's `onMessage`. Async: as `onText`. */
  onBinary(bytes: Buffer): void | Promise<void> {
    return this.handler.options.onMessage?.(this, bytes);
  }

  /**
   * The socket flushed its backlog after a send returned `'queued'`: sending is cheap again.
   * (Or `await this.drained()`.)
   */
  onDrain(): void | Promise<void> {}

  /** A ping arrived; the pong has already been sent. */
  onPing(data: Buffer): void {
    void data;
  }

  /** A pong arrived. */
  onPong(data: Buffer): void {
    void data;
  }

  /**
   * The connection is closed (the TCP socket is gone). `code` is the peer's close code, 1005 if
   * its close frame had none, 1006 if it vanished without one (or missed the heartbeat's pong),
   * or the code the server failed the connection with. Default: calls the handler's
   * `onDisconnect`. It is the last hook: when a hook's promise is still pending at the close,
   * the messages waiting behind it are delivered first, then `onClose` runs. A rejection of an
   * async `onDisconnect` is logged, never unhandled.
   */
  onClose(code: number, reason: string): void {
    const result: unknown = this.handler.options.onDisconnect?.(this, code, reason);
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.handler.log.error(`wsmount: onDisconnect rejected (connection ${this.id})`, error));
    }
  }

  /** A protocol violation by the peer, or an exception thrown by one of this behavior's hooks. */
  onError(error: Error): void {
    void error;
  }

  // ---- consuming messages as a stream ----------------------------------------------------

  /**
   * Incoming data messages as an async iterator — a `string` for text, a `Buffer` (yours to keep)
   * for binary — instead of `onText`/`onBinary`:
   *
   * ```ts
   * class Echo extends Behavior {
   *   async onOpen() {
   *     for await (const message of this.messages()) this.send(message);
   *   }
   * }
   * ```
   *
   * - **Which messages it sees.** Every data message that arrives from the call on, in order, each
   *   exactly once. Messages that arrived before the call went to `onText`/`onBinary` as usual,
   *   except those still waiting behind a pending async hook: they move into the iterator, first.
   *   Calling it in `onOpen` before any `await` (as above: `for await` calls it at once) misses
   *   nothing, since the connection reads no bytes before `onOpen` returns.
   * - **One at a time.** While an iterator is active, a second call throws. Leaving the loop
   *   (`break`, `return`, or an exception, which call the iterator's `return()`) releases it:
   *   messages it had queued and not yet yielded (if the connection is still open), then all
   *   later ones, go to `onText`/`onBinary`, in order.
   * - **Backpressure.** When the consumer falls behind and the queue reaches
   *   `MESSAGES_HIGH_WATER_COUNT` (16) messages or `MESSAGES_HIGH_WATER_BYTES` (1 MiB), the socket
   *   stops being read (`socket.pause()`), so the peer's TCP window fills instead of our memory;
   *   it resumes once the queue is down to `MESSAGES_LOW_WATER_COUNT` (4) messages and
   *   `MESSAGES_LOW_WATER_BYTES` (256 KiB). The queue can overshoot the mark by the messages of the
   *   one TCP chunk being parsed when it was reached. `queued`/`queuedBytes` report its size.
   *   Once the connection is closing the socket is read on (to see the peer's close frame).
   * - **End.** The iterator yields what it still holds, then is done, when the connection closes.
   *   Called after the connection closed, it returns an iterator that is already done.
   * - **Errors.** An exception in the loop body is yours: if the loop runs in `onOpen`, it rejects
   *   `onOpen`'s promise, which (like any hook failure) calls `onError` and closes with 1011.
   *
   * Throws if called before the connection is open (in `verify()`).
   */
  messages(): MessageStream {
    const c = this.#connection;
    if (c === null) throw new Error('messages() is available once the connection is open (from onOpen on), not in verify()');
    return c.messages();
  }

  // ---- actions --------------------------------------------------------------------------

  /**
   * Sends a text message: a string, or its UTF-8 bytes (what `onRawText` received, a relayed
   * payload), which go out as they are, with no decode and encode. Bytes that are not valid
   * UTF-8 are a TypeError (checked natively: ~15 µs per MiB). A large `Buffer` is written
   * without a copy: don't change it until it is flushed.
   */
  sendText(text: string | BinaryData): SendStatus {
    if (typeof text === 'string') return this.#connection?.sendText(text) ?? 'dropped';
    const bytes = textBytes(text);
    return this.#connection?.sendBytes(bytes, Opcode.Text) ?? 'dropped';
  }

  /** Sends a binary message. */
  sendBinary(data: BinaryData): SendStatus {
    return this.#connection?.sendBinary(data) ?? 'dropped';
  }

  /** Sends a string as text, anything else as binary. */
  send(data: string | BinaryData): SendStatus {
    return typeof data === 'string' ? this.sendText(data) : this.sendBinary(data);
  }

  /**
   * Sends one message from a source of chunks, as it produces them, as a fragmented message
   * (RFC 6455 §5.4): a file, a database export, tokens from a model.
   *
   * ```ts
   * const bytes = await this.sendStream(fs.createReadStream(path));
   * ```
   *
   * - **Source.** An async or sync iterable of `string`/`Buffer`/`ArrayBuffer`/views, a Node
   *   `Readable`, or a web `ReadableStream`. Each chunk becomes a frame (chunks over
   *   `fragmentSize`, default `STREAM_FRAGMENT_SIZE` = 1 MiB, are split), and an empty final
   *   frame ends the message when the source does. Text (`text: true`, or by default when the
   *   first chunk is a string) is checked as UTF-8 across chunks.
   * - **Backpressure.** It waits for the socket to drain before it pulls the next chunk, and never
   *   reads the source ahead. `maxBackpressure` does not apply to it.
   * - **Order.** Pings, pongs and the close frame still go out between fragments. Messages sent
   *   meanwhile (`send*()`, publishes, another `sendStream()`) wait (`'queued'`, counted in
   *   `bufferedAmount`) and follow the message, in order.
   * - **Result.** Resolves with the payload bytes sent once the last frame is with the socket.
   * - **Failures.** A message cannot be taken back once begun, so whatever stops it after its
   *   first frame closes the connection (the peer sees a close frame after the partial message,
   *   never another message): the source throwing rejects with its error and closes with 1011;
   *   `signal` aborting rejects with its reason and closes with 1011 (to choose the code, call
   *   `close(code)`: the stream stops after the fragment in flight); the connection closing first
   *   rejects with a `ProtocolError` `'WS_STREAM_INTERRUPTED'`, and the messages queued behind
   *   it are dropped. Before the first frame (the source fails at once, the signal was already
   *   aborted) it only rejects: nothing was sent, the connection goes on. The source is released
   *   in each case (a `Readable` destroyed, an iterator's `return()`, a `ReadableStream`
   *   cancelled).
   * - **Compression.** Streamed messages go uncompressed, even on a compressed connection.
   */
  sendStream(source: StreamSource, options?: SendStreamOptions): Promise<number> {
    const c = this.#connection;
    if (c === null) return Promise.reject(new Error('sendStream() is available once the connection is open (from onOpen on), not in verify()'));
    return c.sendStream(source, options);
  }

  // ---- topics ----------------------------------------------------------------------------

  /**
   * Subscribes this connection to `topic`: from now on it gets every message published to it, by
   * any connection or `handler.publish()`, on this process and (with a `backplane`) every other.
   * Returns `false` if it already was subscribed (subscribing twice is a no-op) or is closing.
   * Every subscription ends by itself when the connection closes. A topic is any non-empty
   * string of at most `MAX_TOPIC_LENGTH` (1,024) characters; anything else throws `TypeError`.
   * Throws if called before the connection is open (in `verify()`).
   */
  subscribe(topic: string): boolean {
    const c = this.#connection;
    if (c === null) {
      if ((this.#bits & ABANDONED) !== 0) return false;
      throw new Error('subscribe() is available once the connection is open (from onOpen on), not in verify()');
    }
    return this.handler.pubsub.subscribe(c, topic);
  }

  /** Unsubscribes this connection from `topic`; returns `false` if it was not subscribed. */
  unsubscribe(topic: string): boolean {
    checkTopic(topic, 'unsubscribe()');
    const c = this.#connection;
    return c === null ? false : this.handler.pubsub.unsubscribe(c, topic);
  }

  /** Whether this connection is subscribed to `topic`. */
  isSubscribed(topic: string): boolean {
    checkTopic(topic, 'isSubscribed()');
    return this.#connection?.topics?.has(topic) ?? false;
  }

  /** The topics this connection is subscribed to now, as a new read-only set (empty once closed). */
  get topics(): ReadonlySet<string> {
    return this.handler.pubsub.topicsOf(this.#connection);
  }

  /**
   * Publishes to every subscriber of `topic` on every process, except this connection unless
   * `{ self: true }` (whether or not it is subscribed itself). A string goes as text, bytes as
   * binary. Each local subscriber gets the same framed bytes, under its own backpressure policy;
   * a subscriber sees one publisher's messages in the order they were published, and a
   * connection's own `send()` and publishes stay in the order they were made. Returns how many
   * subscribers on this process it was written to. Works in any hook, `onClose` included.
   */
  publish(topic: string, data: string | BinaryData, options?: PublishOptions): number {
    const self = options?.self === true;
    return this.handler.pubsub.publish(topic, data, self ? null : this.#connection, 'publish()');
  }

  /**
   * Resolves `true` once the socket's backlog is flushed (at once when nothing is waiting), or
   * `false` if the connection closes first. Driven by the socket's `'drain'` event, no polling:
   *
   * ```ts
   * for (const chunk of chunks) {
   *   if (this.sendBinary(chunk) === 'queued' && !(await this.drained())) return;
   * }
   * ```
   */
  drained(): Promise<boolean> {
    return this.#connection?.drained() ?? Promise.resolve(false);
  }

  /** Sends a ping (payload at most 125 bytes). */
  ping(data?: string | BinaryData): SendStatus {
    return this.#connection?.ping(data) ?? 'dropped';
  }

  /**
   * Starts the closing handshake. `code` defaults to 1000; it must be one that may be sent
   * (1000–1003, 1007–1014, 3000–4999) and `reason` at most 123 bytes, or this throws `RangeError`.
   */
  close(code?: number, reason?: string): void {
    this.#connection?.close(code ?? 1000, reason ?? '');
  }

  /**
   * Destroys the socket at once, with no closing handshake (`onClose` sees 1006). What was sent
   * just before (in the same hook) still leaves; `readyState` is CLOSING until `onClose`.
   */
  terminate(): void {
    const c = this.#connection;
    if (c !== null) c.terminate();
    else this.#request?.socket.destroy();
  }
}
