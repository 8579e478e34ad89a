/**
 * The ws face's server-like object: what ws's `WebSocketServer` is to the libraries that take one
 * (graphql-ws's `useServer`, tRPC's `applyWSSHandler`, a `'connection'` listener for Yjs's
 * `setupWSConnection`). It never listens: a route (`wsRoute(wss)`, route.ts) hands it the
 * connections a wsmount handler accepted, or `handleUpgrade()` does, through a handler of its own.
 */
import { Buffer } from 'node:buffer';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocketHandler, createWebSocketHandler } from '../handler.js';
import { rejection } from '../handshake/rejection.js';
import { splitTarget } from '../router.js';
import { type MarkedSocket, guard, writeRejection } from '../transport/http1.js';
import type { WebSocket } from './socket.js';
import { wsRoute } from './route.js';
// Not an ES module import (src/builtins.ts says why).
const events: typeof import('node:events') = process.getBuiltinModule('node:events');

/** ws's permessage-deflate options; read by `wsRoute` (see README "Coming from ws" for the mapping). */
export interface WsPerMessageDeflateOptions {
  serverNoContextTakeover?: boolean | undefined;
  clientNoContextTakeover?: boolean | undefined;
  serverMaxWindowBits?: number | undefined;
  clientMaxWindowBits?: number | undefined;
  /** `level` (-1 is zlib's default, 6) and `memLevel` are used; ws's other zlib settings are accepted and ignored. */
  zlibDeflateOptions?: ({ level?: number | undefined; memLevel?: number | undefined } & Record<string, unknown>) | undefined;
  /** Accepted and ignored (wsmount inflates with its own settings). */
  zlibInflateOptions?: Record<string, unknown> | undefined;
  threshold?: number | undefined;
  /** Accepted and ignored (wsmount bounds its zlib jobs itself). */
  concurrencyLimit?: number | undefined;
}

/** The information ws's `verifyClient` gets. */
export interface VerifyClientInfo {
  /** The `Origin` header, or `''` when the client sent none (ws leaves it `undefined`). */
  origin: string;
  secure: boolean;
  req: IncomingMessage;
}

/**
 * ws's `verifyClient`, in either of its forms: `(info) => boolean`, or `(info, callback) => void`
 * calling `callback(result, code = 401, message, headers)`. The form is told by the function's
 * declared parameter count, as ws does.
 */
export type VerifyClient = (
  info: VerifyClientInfo,
  callback: (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void,
) => boolean | void;

/**
 * `new WebSocketServer(options)`'s options: the subset of ws's `ServerOptions` that means
 * something here. `port`, `host`, `server` and `backlog` are refused (this server never listens:
 * mount it with `wsRoute`); `noServer` is accepted and changes nothing.
 */
export interface WebSocketServerOptions {
  /** Does nothing: this server never listens by itself. Accepted so that ws code compiles as is. */
  noServer?: boolean | undefined;
  /** For `shouldHandle()` and `handleUpgrade()` (another path gets 400, as in ws); under `wsRoute` the route's pattern decides. */
  path?: string | undefined;
  /** Track connections in `clients` (default `true`). */
  clientTracking?: boolean | undefined;
  /** Largest message accepted, in bytes: the route's `maxPayload` (default: the handler's). */
  maxPayload?: number | undefined;
  /** Compression, as ws takes it: `true`, or ws's option object (mapped to wsmount's). Default: the handler's. */
  perMessageDeflate?: boolean | WsPerMessageDeflateOptions | undefined;
  /** Chooses the subprotocol from the offered set: a name, or `false` for none. Default: the first offered. */
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false;
  /**
   * Accepts or refuses a client before the 101: synchronous (return a boolean) or with a
   * callback `(result, code = 401, message, headers)`. Runs after wsmount's `origins` check.
   */
  verifyClient?: VerifyClient | undefined;
  /** Accepted and ignored: wsmount always validates UTF-8. */
  skipUTF8Validation?: boolean | undefined;
  /** Accepted and ignored: wsmount always answers pings. */
  autoPong?: boolean | undefined;
  /** Accepted and ignored. */
  allowSynchronousEvents?: boolean | undefined;
  /** Accepted and ignored. */
  maxBufferedChunks?: number | undefined;
}

/** What `address()` would report; always `null` here (this server does not listen). */
export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

const REFUSED = ['port', 'host', 'server', 'backlog'] as const;
const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;

/**
 * A ws-style `WebSocketServer` that wsmount feeds: mount it on a route of a handler with
 * `wsRoute(wss)` (or build it inside `wsRoute((wss) => …)`), and it emits `'connection'` with
 * `(socket, request)` for each connection that route accepts, after wsmount's origin check,
 * `verifyClient`, limits and subprotocol choice.
 *
 * ```ts
 * const wss = new WebSocketServer({ noServer: true });
 * wss.on('connection', (ws, request) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
 * createWebSocketHandler({ '/echo': wsRoute(wss) }).attach(server);
 * ```
 */
export class WebSocketServer extends events.EventEmitter {
  /** The options it was made with (libraries set `handleProtocols` here, as on ws's). */
  options: WebSocketServerOptions;
  /** `options.path`, or `''`. */
  path: string;
  /** The open connections (unless `clientTracking: false`). */
  clients: Set<WebSocket> = new Set();
  #state = RUNNING;
  #handler: WebSocketHandler | null = null;
  readonly #callbacks = new WeakMap<IncomingMessage, (client: WebSocket, request: IncomingMessage) => void>();

  /** Throws `TypeError` for `port`, `host`, `server` or `backlog`: mount it with `wsRoute(wss)` instead. */
  constructor(options: WebSocketServerOptions = {}, callback?: () => void) {
    super();
    for (const key of REFUSED) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        throw new TypeError(
          `wsmount/ws: WebSocketServer does not listen by itself, so it takes no '${key}' option; mount it on a route of a handler attached to your server: createWebSocketHandler({ '/path': wsRoute(wss) }).attach(server)`,
        );
      }
    }
    if (callback !== undefined) throw new TypeError("wsmount/ws: WebSocketServer takes no 'listening' callback: it never listens by itself");
    if (options.maxPayload === 0) {
      throw new TypeError('wsmount/ws: maxPayload 0 means "no limit" in ws; wsmount always has one: give the largest message you accept, in bytes (wsmount\'s default is 1 MiB)');
    }
    this.options = { ...options };
    this.path = options.path ?? '';
  }

  /** Always `null`: this server does not listen (the http.Server it is mounted on does). */
  address(): AddressInfo | string | null {
    return null;
  }

  /**
   * Stops accepting connections (new upgrades on its route get 503); connections already open
   * stay open, as in ws 8. Emits `'close'`, and calls `callback`, once the last one has closed
   * (at once when none is open). Called again after that, `callback` gets an error.
   */
  close(callback?: (error?: Error) => void): void {
    if (this.#state === CLOSED) {
      if (callback !== undefined) this.once('close', () => callback(new Error('The server is not running')));
      process.nextTick(() => this.#closed());
      return;
    }
    if (callback !== undefined) this.once('close', callback);
    if (this.#state === CLOSING) return;
    this.#state = CLOSING;
    if (this.clients.size === 0 || this.options.clientTracking === false) process.nextTick(() => this.#closed());
  }

  /** `close()`'s end: CLOSED, and `'close'` (emitted again by a `close()` after it, as in ws). */
  #closed(): void {
    this.#state = CLOSED;
    this.emit('close');
  }

  /**
   * ws's way to take an upgrade by hand: `server.on('upgrade', (req, socket, head) =>
   * wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)))`. Here it
   * runs through a wsmount handler of this server's own (default limits and heartbeat, this
   * server's options), which takes every path but one other than `options.path` (400, as in
   * ws); `callback` gets the connection instead of a `'connection'` event. Mounting with
   * `wsRoute(wss)` on your handler is the better way: its `origins`, limits and `close()` then
   * apply.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, callback: (client: WebSocket, request: IncomingMessage) => void): void {
    if (!this.shouldHandle(request)) {
      // As ws: a path other than options.path is answered 400 (and the socket is ours to end).
      guard(socket as MarkedSocket);
      writeRejection(socket, rejection(400, 'NOT_FOUND', `this WebSocket server takes ${this.path} only`), 2000);
      return;
    }
    let handler = this.#handler;
    if (handler === null) {
      try {
        handler = this.#handler = createWebSocketHandler({ '/': wsRoute(this) });
      } catch (error) {
        // Options wsRoute refuses (they threw at construction otherwise): never a throw into
        // Node's 'upgrade' event, which would take the process down.
        guard(socket as MarkedSocket);
        writeRejection(socket, rejection(500, 'VERIFY_FAILED', 'internal error'), 2000);
        if (this.listenerCount('error') > 0) this.emit('error', error);
        else console.error('wsmount/ws: handleUpgrade could not build its handler from these options', error);
        return;
      }
    }
    this.#callbacks.set(request, callback);
    handler.upgradeAnyPath(request, socket, head);
  }

  /** Whether `request` is for this server: its path is `options.path` (any path when unset). */
  shouldHandle(request: IncomingMessage): boolean {
    return this.path === '' || splitTarget(request.url ?? '/').path === this.path;
  }

  /** @internal Whether it still takes connections (route.ts refuses with 503 after `close()`). */
  get accepting(): boolean {
    return this.#state === RUNNING;
  }

  /** @internal A route accepted a connection: track it, then hand it out. */
  connected(client: WebSocket, request: IncomingMessage): void {
    if (this.options.clientTracking !== false) this.clients.add(client);
    const callback = this.#callbacks.get(request);
    if (callback !== undefined) {
      this.#callbacks.delete(request);
      callback(client, request);
    } else {
      this.emit('connection', client, request);
    }
  }

  /** @internal A connection closed: forget it; the last one after `close()` ends the server. */
  disconnected(client: WebSocket): void {
    if (!this.clients.delete(client)) return;
    if (this.#state === CLOSING && this.clients.size === 0) process.nextTick(() => this.#closed());
  }
}

type ServerEvents = {
  connection: (this: WebSocketServer, socket: WebSocket, request: IncomingMessage) => void;
  error: (this: WebSocketServer, error: Error) => void;
  close: (this: WebSocketServer) => void;
};

// The typed events, as overloads of EventEmitter's methods (no code: declaration merging).
export interface WebSocketServer {
  on<K extends keyof ServerEvents>(event: K, listener: ServerEvents[K]): this;
  on(event: string | symbol, listener: (this: WebSocketServer, ...args: never[]) => void): this;
  once<K extends keyof ServerEvents>(event: K, listener: ServerEvents[K]): this;
  once(event: string | symbol, listener: (this: WebSocketServer, ...args: never[]) => void): this;
  off<K extends keyof ServerEvents>(event: K, listener: ServerEvents[K]): this;
  off(event: string | symbol, listener: (this: WebSocketServer, ...args: never[]) => void): this;
  addListener<K extends keyof ServerEvents>(event: K, listener: ServerEvents[K]): this;
  addListener(event: string | symbol, listener: (...args: never[]) => void): this;
  removeListener<K extends keyof ServerEvents>(event: K, listener: ServerEvents[K]): this;
  removeListener(event: string | symbol, listener: (...args: never[]) => void): this;
}
