import { Buffer } from 'node:buffer';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import http2, {
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type SecureServerOptions as Http2SecureServerOptions,
  type ServerHttp2Session,
} from 'node:http2';
import { type Server as HttpsServer, type ServerOptions as HttpsServerOptions, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as TlsServer } from 'node:tls';
import { abort } from '../connection/write.js';
import { type Behavior, internals } from '../behavior.js';
import { isHttp2Server as isHttp2Transport } from '../transport/http2.js';
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
  /** `true` serves HTTP/2 instead: see {@link Http2ListenOptions}. */
  http2?: false;
}

/**
 * Options for {@link listen} over HTTP/2, where WebSockets are RFC 8441 extended CONNECT streams
 * (`connect(server, path, { http2: true })`). The rest is as in {@link ListenOptions}.
 *
 * ```ts
 * await using server = await listen(routes, { http2: true });               // h2c (cleartext)
 * await using secure = await listen(routes, { http2: true, tls: { key, cert } }); // h2, and HTTP/1.1
 * ```
 */
export interface Http2ListenOptions extends Omit<ListenOptions, 'server' | 'tls' | 'onRequest' | 'http2'> {
  /**
   * Serve HTTP/2: `listen()` creates an `http2.createServer()` (cleartext h2c), or with `tls` an
   * `http2.createSecureServer({ ...tls, allowHTTP1: true })`, which serves both: HTTP/2 clients
   * (ALPN `h2`) get extended CONNECT, HTTP/1.1 clients the classic upgrade. The handler's
   * attach() enables the extended CONNECT in the server's SETTINGS.
   */
  http2: true;
  /**
   * Serve `wss://` over HTTP/2 with TLS (h2): at least `key` and `cert`, PEM. Connect with the
   * certificate as `ca`. Not together with `server`.
   */
  tls?: Http2SecureServerOptions;
  /**
   * Attach to this HTTP/2 server instead of creating one; as {@link ListenOptions.server} (started
   * and closed by `listen()` unless it already listens).
   */
  server?: Http2Server | Http2SecureServer;
  /**
   * Answers plain HTTP requests (not WebSocket CONNECTs) on the server `listen()` creates: HTTP/2
   * ones, and HTTP/1.1 ones on a TLS server. Default: 426 Upgrade Required.
   */
  onRequest?: (request: Http2ServerRequest | IncomingMessage, response: Http2ServerResponse | ServerResponse) => void;
}

/** A server {@link listen} serves on. */
export type ListeningServer = Server | HttpsServer | Http2Server | Http2SecureServer;

/**
 * A listening test server: see {@link listen}. `S` is its server's type: an `http` or `https`
 * server, or over HTTP/2 (`http2: true`) an `Http2Server` or `Http2SecureServer`.
 */
export interface Listening<S extends ListeningServer = Server | HttpsServer> {
  /**
   * `ws://127.0.0.1:<port><path>`, or `wss://…` when the server serves TLS (the `tls` option).
   * `path` defaults to `/` and may carry a query. Over HTTP/2 it is the same URL:
   * `connect(url, undefined, { http2: true })` opens it as an extended CONNECT.
   */
  url(path?: string): string;
  /** The server the handler is attached to. */
  readonly server: S;
  /** The handler: the one given, or the one created from the routes. */
  readonly handler: WebSocketHandler;
  /** The bound port. */
  readonly port: number;
  /**
   * Tears everything down and always finishes promptly, however clients behave: closes this
   * server's WebSocket clients with 1001, destroys every socket still open after `closeTimeout`
   * (clients that never answer the close, half-sent handshakes, idle HTTP connections), and closes
   * the HTTP server. Over HTTP/2 it then closes every session (GOAWAY) and destroys those still
   * open after a short grace, so teardown never waits for a client's connection. A handler `listen()` created is closed (`handler.close()`); a handler you
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

/** The default answer to a plain request on an HTTP/2 server (and HTTP/1.1 ones beside it). */
function answerPlainHttp2Request(request: Http2ServerRequest | IncomingMessage, response: Http2ServerResponse | ServerResponse): void {
  const body = 'This is a WebSocket test server.\n';
  const headers: Record<string, string | number> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  // RFC 9113 §8.2.2: no connection-specific headers over HTTP/2.
  if (request.httpVersionMajor === 1) Object.assign(headers, { connection: 'close', upgrade: 'websocket' });
  (response as ServerResponse).writeHead(426, headers);
  response.end(body);
}

/** The handler's own test (transport/http2.ts), narrowed to the servers listen() takes. */
function isHttp2Server(server: ListeningServer): server is Http2Server | Http2SecureServer {
  return isHttp2Transport(server);
}

/** The stream (HTTP/2) or socket (HTTP/1.1) a server-side WebSocket runs over. */
function connectionOf(request: IncomingMessage | Http2ServerRequest): Duplex {
  return 'stream' in request ? request.stream : request.socket;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}

function sessionClosed(session: ServerHttp2Session): Promise<void> {
  if (session.closed && session.destroyed) return Promise.resolve();
  return new Promise((resolve) => session.once('close', () => resolve()));
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
 *
 * With `{ http2: true }` it serves HTTP/2 ({@link Http2ListenOptions}), and WebSockets arrive as
 * RFC 8441 extended CONNECT streams: `connect(server, '/echo', { http2: true })`.
 */
export function listen<R extends Routes>(handlerOrRoutes: WebSocketHandler<R> | Routes, options: Http2ListenOptions): Promise<Listening<Http2Server | Http2SecureServer>>;
export function listen<R extends Routes>(handlerOrRoutes: WebSocketHandler<R> | Routes, options?: ListenOptions): Promise<Listening>;
export async function listen<R extends Routes>(
  handlerOrRoutes: WebSocketHandler<R> | Routes,
  options: ListenOptions | Http2ListenOptions = {},
): Promise<Listening<ListeningServer>> {
  // Generic in R so that a handler with a typed route table is taken as it is (TypeScript 5 does
  // not see WebSocketHandler<{ '/rooms/:room': typeof Room }> as a WebSocketHandler).
  const ownHandler = !isHandler(handlerOrRoutes);
  const handler = (isHandler(handlerOrRoutes) ? handlerOrRoutes : new WebSocketHandler(handlerOrRoutes, options.handlerOptions)) as WebSocketHandler;
  if (options.server !== undefined && options.tls !== undefined) {
    throw new TypeError('wsmount/testing: listen() takes `server` or `tls`, not both; to serve TLS on your own server, pass an https server');
  }
  let server: ListeningServer;
  if (options.http2 === true) {
    if (options.server !== undefined && !isHttp2Server(options.server)) {
      throw new TypeError('wsmount/testing: with http2: true, `server` is an HTTP/2 server (http2.createServer() or http2.createSecureServer())');
    }
    const onRequest = options.onRequest ?? answerPlainHttp2Request;
    server = options.server ?? (options.tls === undefined ? http2.createServer(onRequest) : http2.createSecureServer({ ...options.tls, allowHTTP1: true }, onRequest));
  } else if (options.http2 !== undefined && options.http2 !== false) {
    throw new TypeError(`wsmount/testing: http2 is true or false, not ${String(options.http2 as unknown)}`);
  } else {
    const onRequest = options.onRequest ?? answerPlainRequest;
    server = options.server ?? (options.tls === undefined ? createServer(onRequest) : createHttpsServer(options.tls, onRequest));
  }
  const h2 = isHttp2Server(server);
  /** The HTTP/1.1 server, whose connections Node tracks itself; `null` over HTTP/2. */
  const http1Server = isHttp2Server(server) ? null : server;
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
  // Over HTTP/2 every session, to end them once the handler closed its WebSocket streams.
  const sessions = new Set<ServerHttp2Session>();
  const onSession = (session: ServerHttp2Session): void => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  };
  const startListening = !server.listening;
  server.on('connection', onConnection);
  // Over TLS the handler sees the TLS socket, not the TCP one under it: track both.
  server.on('secureConnection', onConnection);
  if (h2) server.on('session', onSession);
  const attached = !server.listeners('upgrade').includes(handler.handleUpgrade);
  if (attached) handler.attach(server);

  if (startListening) {
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        server.removeListener('connection', onConnection);
        server.removeListener('secureConnection', onConnection);
        server.removeListener('session', onSession);
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
    // 1. Close frames (1001) to this server's WebSocket clients: over HTTP/1.1 on its sockets,
    // over HTTP/2 in its sessions.
    // The behavior's own request may be let go already (Behavior.keepRequest): its connection's
    // byte stream says the same.
    const streamOf = (client: Behavior): Duplex | undefined => {
      const request = internals.requestOf(client);
      return request !== undefined ? connectionOf(request as IncomingMessage | Http2ServerRequest) : internals.connection(client)?.socket;
    };
    const ours = (stream: Duplex | undefined): boolean =>
      stream !== undefined && (sockets.has(stream) || sessions.has((stream as { session?: unknown }).session as ServerHttp2Session));
    const mine = [...handler.clients].filter((client) => ours(streamOf(client)));
    const waitFor = mine.map((client) => streamOf(client) as Duplex);
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
    if (startListening) http1Server?.closeIdleConnections();
    // 2. Wait (bounded) for them to finish the closing handshake.
    await Promise.race([Promise.all([handlerClosed, ...waitFor.map(socketClosed)]), delay(closeTimeout)]);
    // 3. Whatever is still open misbehaves: destroy it. On a server that was already listening,
    // only this handler's WebSockets are ours to end. Over HTTP/2 a stream still open is reset
    // (its session lives on), then the sessions get a GOAWAY and a short grace to flush it.
    if (startListening && h2) {
      for (const stream of waitFor) abort(stream);
      for (const session of sessions) session.close();
      await Promise.race([Promise.all([...sessions].map(sessionClosed)), delay(FINAL_GRACE)]);
      for (const session of sessions) session.destroy();
    }
    const leftovers = startListening ? [...sockets] : waitFor;
    for (const socket of leftovers) {
      abort(socket);
    }
    if (startListening) http1Server?.closeAllConnections();
    server.removeListener('connection', onConnection);
    server.removeListener('secureConnection', onConnection);
    server.removeListener('session', onSession);
    if (attached) handler.detach(server);
    // 4. The HTTP server, bounded too: close() must never hang a test run.
    await Promise.race([Promise.all([serverClosed, ...leftovers.map(socketClosed)]), delay(FINAL_GRACE)]);
    // Let the handler see those sockets close (their onClose runs) before close() resolves.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };

  const self: Listening<ListeningServer> = {
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
