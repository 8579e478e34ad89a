import { Buffer } from 'node:buffer';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, type ServerOptions as HttpsServerOptions, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as TlsServer } from 'node:tls';
import { type HandlerOptions, type Routes, WebSocketHandler } from '../handler.js';

/** Options for {@link listen}. */
export interface ListenOptions {
  /**
   * Attach to this server instead of creating one. If it is not listening yet, `listen()` starts
   * it on `host`:`port` and `close()` closes it; if it already listens, `close()` leaves it
   * listening and only ends this handler's WebSockets and detaches the handler. An `https`
   * server gives `wss://` URLs.
   */
  server?: Server | HttpsServer;
  /**
   * Serve `wss://`: `listen()` creates an `https` server with these options (at least `key` and
   * `cert`, PEM), and `url()` gives `wss://` URLs. Connect with the certificate as `ca` (or
   * `rejectUnauthorized: false`). Not together with `server` (give an `https` server instead).
   *
   * ```ts
   * await using server = await listen(routes, { tls: { key, cert } });
   * const client = await connect(server, '/chat', { ca: cert });
   * ```
   */
  tls?: HttpsServerOptions;
  /** Host to bind. Default `'127.0.0.1'` (loopback only). */
  host?: string;
  /** Port. Default 0: a free ephemeral port. */
  port?: number;
  /** Handler options, used when `listen()` is given routes (it then creates the handler). */
  handlerOptions?: HandlerOptions;
  /** Answers plain HTTP requests on the server `listen()` creates. Default: 426 Upgrade Required. */
  onRequest?: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Milliseconds `close()` waits for WebSocket clients to finish the closing handshake before it
   * destroys their sockets. Default 500.
   */
  closeTimeout?: number;
}

/** A listening test server: see {@link listen}. */
export interface Listening {
  /**
   * `ws://127.0.0.1:<port><path>`, or `wss://…` when the server is an `https` server (the `tls`
   * option). `path` defaults to `/` and may carry a query.
   */
  url(path?: string): string;
  /** The HTTP(S) server the handler is attached to. */
  readonly server: Server | HttpsServer;
  /** The handler: the one given, or the one created from the routes. */
  readonly handler: WebSocketHandler;
  /** The bound port. */
  readonly port: number;
  /**
   * Tears everything down and always finishes promptly, however clients behave: closes this
   * server's WebSocket clients with 1001, destroys every socket still open after `closeTimeout`
   * (clients that never answer the close, half-sent handshakes, idle HTTP connections), and closes
   * the HTTP server. A handler `listen()` created is closed (`handler.close()`); a handler you
   * passed in stays usable. Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /** `await using server = await listen(…)`: `close()` at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_CLOSE_TIMEOUT = 500;
/** Extra time after the close timeout before `close()` gives up waiting for the server. */
const FINAL_GRACE = 500;

function isHandler(value: unknown): value is WebSocketHandler {
  return typeof value === 'object' && value !== null && typeof (value as Partial<WebSocketHandler>).handleUpgrade === 'function';
}

function answerPlainRequest(_request: IncomingMessage, response: ServerResponse): void {
  const body = 'This is a WebSocket test server.\n';
  response.writeHead(426, {
    Connection: 'close',
    Upgrade: 'websocket',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}

function socketClosed(socket: Duplex): Promise<void> {
  // `closed` turns true a tick before 'close' is emitted: let the listeners run first.
  if (socket.closed) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/**
 * Serves a handler (or a routes table) on an ephemeral port on 127.0.0.1, for tests that want a
 * real TCP connection (TLS, `wss://`, with the `tls` option). Resolves once listening.
 *
 * ```ts
 * await using server = await listen({ '/echo': Echo });
 * const client = await connect(server, '/echo');
 * ```
 */
export async function listen<R extends Routes>(handlerOrRoutes: WebSocketHandler<R> | Routes, options: ListenOptions = {}): Promise<Listening> {
  // Generic in R so that a handler with a typed route table is taken as it is (TypeScript 5 does
  // not see WebSocketHandler<{ '/rooms/:room': typeof Room }> as a WebSocketHandler).
  const ownHandler = !isHandler(handlerOrRoutes);
  const handler = (isHandler(handlerOrRoutes) ? handlerOrRoutes : new WebSocketHandler(handlerOrRoutes, options.handlerOptions)) as WebSocketHandler;
  if (options.server !== undefined && options.tls !== undefined) {
    throw new TypeError('wsmount/testing: listen() takes `server` or `tls`, not both; to serve TLS on your own server, pass an https server');
  }
  const onRequest = options.onRequest ?? answerPlainRequest;
  const server = options.server ?? (options.tls === undefined ? createServer(onRequest) : createHttpsServer(options.tls, onRequest));
  const scheme = server instanceof TlsServer ? 'wss' : 'ws';
  const closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
  const host = options.host ?? '127.0.0.1';

  // Every socket the server accepts from now on, so close() can end what neither the handler nor
  // http.Server tracks (half-sent handshakes, upgrade sockets nobody answered).
  const sockets = new Set<Duplex>();
  const onConnection = (socket: Duplex): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const startListening = !server.listening;
  server.on('connection', onConnection);
  // Over TLS the handler sees the TLS socket, not the TCP one under it: track both.
  server.on('secureConnection', onConnection);
  const attached = !server.listeners('upgrade').includes(handler.handleUpgrade);
  if (attached) handler.attach(server);

  if (startListening) {
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        server.removeListener('connection', onConnection);
        server.removeListener('secureConnection', onConnection);
        if (attached) handler.detach(server);
        reject(error);
      };
      server.once('error', fail);
      server.listen(options.port ?? 0, host, () => {
        server.removeListener('error', fail);
        resolve();
      });
    });
  }
  const address = server.address() as AddressInfo;
  const port = address.port;
  const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address === '::' ? '::1' : address.address}]` : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    const serverClosed = startListening && server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // 1. Close frames (1001) to this server's WebSocket clients.
    const mine = [...handler.clients].filter((client) => sockets.has(client.request.socket as Duplex));
    let handlerClosed: Promise<void> = Promise.resolve();
    if (ownHandler) {
      handlerClosed = handler.close({ timeout: closeTimeout });
    } else {
      for (const client of mine) {
        try {
          client.close(1001, '');
        } catch {
          // a behavior that throws from close() is destroyed below
        }
      }
    }
    if (startListening) server.closeIdleConnections();
    // 2. Wait (bounded) for them to finish the closing handshake.
    const waitFor = mine.map((client) => client.request.socket as Duplex);
    await Promise.race([Promise.all([handlerClosed, ...waitFor.map(socketClosed)]), delay(closeTimeout)]);
    // 3. Whatever is still open misbehaves: destroy it. On a server that was already listening,
    // only this handler's WebSockets are ours to end.
    const leftovers = startListening ? [...sockets] : waitFor;
    for (const socket of leftovers) socket.destroy();
    if (startListening) server.closeAllConnections();
    server.removeListener('connection', onConnection);
    server.removeListener('secureConnection', onConnection);
    if (attached) handler.detach(server);
    // 4. The HTTP server, bounded too: close() must never hang a test run.
    await Promise.race([Promise.all([serverClosed, ...leftovers.map(socketClosed)]), delay(FINAL_GRACE)]);
    // Let the handler see those sockets close (their onClose runs) before close() resolves.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };

  const self: Listening = {
    url(path = '/') {
      return `${scheme}://${urlHost}:${port}${path.startsWith('/') ? path : `/${path}`}`;
    },
    server,
    handler,
    port,
    close() {
      closing ??= close();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  return self;
}
