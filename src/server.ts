import { Buffer } from 'node:buffer';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CheckedRoutes, type Client, type ClientOf, type HandlerCloseOptions, type HandlerOptions, type Routes, WebSocketHandler } from './handler.js';
import { checkOptionKeys } from './options.js';
// Not an ES module import (src/builtins.ts says why).
const http = process.getBuiltinModule('node:http');

/** Options for {@link createWebSocketServer}: the handler's, plus where to listen. */
export interface WebSocketServerOptions<C extends Client = Client> extends HandlerOptions<C> {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Host to bind. Default `'127.0.0.1'` (loopback only); use `'0.0.0.0'` or `'::'` to serve a network. */
  host?: string;
  /**
   * Answers plain HTTP requests (serve pages, health checks). Default: 426 Upgrade Required.
   */
  onRequest?: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Milliseconds a client has to send a request's (or an upgrade's) complete headers; past it
   * Node answers 408 and closes. Default 10,000 (Node's own is 60,000, checked only every 30 s,
   * so a client sending a byte a second held a socket for up to 90 s).
   */
  headersTimeout?: number;
  /** Milliseconds a client has to send a whole plain HTTP request. Default 30,000 (Node's: 300,000). */
  requestTimeout?: number;
  /** Milliseconds an idle keep-alive HTTP connection stays open. Default 5,000 (as Node's). */
  keepAliveTimeout?: number;
}

/** The standalone server's HTTP timeouts; README "Slow clients before the handshake" explains them. */
const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 } as const;
/** How often Node checks headersTimeout and requestTimeout (its default is 30,000 ms). */
const TIMEOUT_CHECK_INTERVAL = 1_000;

/** A small standalone server: its own `http.Server` with a handler inside (typed for its route table `R`). */
export interface WebSocketServer<R extends Routes = Routes> {
  /** The handler: `clients`, `broadcast`, … */
  readonly handler: WebSocketHandler<R>;
  /** The underlying `http.Server`. */
  readonly server: Server;
  /** The bound port once listening, else `undefined`. */
  readonly port: number | undefined;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** `ws://host:port/path` for the bound address. */
  url(path?: string): string;
  /** Closes every WebSocket (1001 by default), then the HTTP server. */
  close(options?: HandlerCloseOptions): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The options createWebSocketServer adds to the handler's (a misspelling is checked against both). */
const SERVER_KEYS = ['port', 'host', 'onRequest', 'headersTimeout', 'requestTimeout', 'keepAliveTimeout'];

function defaultRequest(_request: IncomingMessage, response: ServerResponse): void {
  const body = 'This is a WebSocket server: connect with a WebSocket client.\n';
  response.writeHead(426, {
    Connection: 'Upgrade, close',
    Upgrade: 'websocket',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}

/**
 * The seed's `WebsocketServer(port, host, loglevel)`: a standalone server for prototyping and
 * tests, built on the same handler you would mount on your own app.
 *
 * ```ts
 * const server = createWebSocketServer({ '/reverse': Reverse }, { port: 9001 });
 * const port = await server.listen();
 * ```
 *
 * The route table keeps its types as with {@link createWebSocketHandler} (`server.handler` knows
 * each route's behavior), and the options are checked the same way, its own keys included.
 */
export function createWebSocketServer<R extends Routes>(routes: R & CheckedRoutes<R>, options: WebSocketServerOptions<ClientOf<R>> = {}): WebSocketServer<R> {
  checkOptionKeys(options, SERVER_KEYS, 'createWebSocketServer');
  const {
    port = 0,
    host = '127.0.0.1',
    onRequest = defaultRequest,
    headersTimeout = SERVER_TIMEOUTS.headersTimeout,
    requestTimeout = SERVER_TIMEOUTS.requestTimeout,
    keepAliveTimeout = SERVER_TIMEOUTS.keepAliveTimeout,
    ...handlerOptions
  } = options;
  const handler = new WebSocketHandler<R>(routes, handlerOptions);
  // Node requires headersTimeout <= requestTimeout (0 turns requestTimeout off).
  const server = http.createServer(
    {
      headersTimeout: requestTimeout === 0 ? headersTimeout : Math.min(headersTimeout, requestTimeout),
      requestTimeout,
      keepAliveTimeout,
      // Checked every second, or as often as a shorter headersTimeout needs (not under 100 ms).
      connectionsCheckingInterval: Math.max(100, Math.min(TIMEOUT_CHECK_INTERVAL, headersTimeout > 0 ? headersTimeout : TIMEOUT_CHECK_INTERVAL)),
    },
    onRequest,
  );
  handler.attach(server);
  let bound: number | undefined;
  let closing: Promise<void> | null = null;
  const self: WebSocketServer<R> = {
    handler,
    server,
    get port() {
      return bound;
    },
    listen() {
      return new Promise<number>((resolve, reject) => {
        const fail = (error: Error): void => reject(error);
        server.once('error', fail);
        server.listen(port, host, () => {
          server.removeListener('error', fail);
          bound = (server.address() as AddressInfo).port;
          resolve(bound);
        });
      });
    },
    url(path = '/') {
      if (bound === undefined) throw new Error('wsmount: the server is not listening');
      const h = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      return `ws://${h}:${bound}${path.startsWith('/') ? path : `/${path}`}`;
    },
    close(closeOptions) {
      closing ??= (async () => {
        const serverClosed = server.listening
          ? new Promise<void>((resolve) => server.close(() => resolve()))
          : Promise.resolve();
        server.closeIdleConnections();
        await handler.close(closeOptions);
        server.closeAllConnections();
        await serverClosed;
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  return self;
}
