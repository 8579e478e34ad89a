import { Buffer } from 'node:buffer';
import { type Server, createServer } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import type tls from 'node:tls';
import type { Routes, WebSocketHandler } from '../handler.js';
import {
  type ClientHandshake,
  type ClientHeaderValue,
  checkHandshakeResponse,
  createClientHandshake,
  createHttp2ClientHandshake,
  readResponseHead,
} from '../handshake/client.js';
import { TestClient } from './client.js';
import { ClientDeflate, type ResolvedTestDeflate, type TestPerMessageDeflateOptions, resolveTestDeflate } from './deflate.js';
import type { TestClientOptions } from './types.js';
import { HandshakeError, MAX_BODY, refusalError } from './errors.js';
import { connectHttp2 } from './http2.js';
import { hasTlsOptions, tlsFailure, tlsSocket } from './tls.js';

/** Anything {@link connect} can reach: a `ws://` or `wss://` URL, a {@link listen} result, or a handler (in memory). */
export type ConnectTarget<R extends Routes = Routes> = string | URL | { url(path?: string): string } | WebSocketHandler<R>;

/** Options for {@link connect}. */
export interface ConnectOptions extends TestClientOptions {
  /**
   * Extra request headers (`authorization`, `cookie`…). A default handshake header named here
   * is replaced, and `null` leaves it out, to test how the server refuses a broken handshake.
   */
  headers?: Readonly<Record<string, ClientHeaderValue>>;
  /** Subprotocols to offer, in preference order. The server's choice is `client.protocol`. */
  protocols?: string | readonly string[];
  /**
   * Offer permessage-deflate compression (RFC 7692). `false` (default): no offer. `true`: offer
   * as Chrome does (`permessage-deflate; client_max_window_bits`). An object shapes the offer
   * (`serverNoContextTakeover`, `clientNoContextTakeover`, `serverMaxWindowBits`,
   * `clientMaxWindowBits`, or an exact `offer` string) and what the client compresses
   * (`threshold`, default 0: every message, as browsers do; `level`).
   *
   * The response is checked strictly (RFC 7692 §5, §7.1): an extension that was not offered, a
   * second element, an unknown or repeated parameter, a bad window value, a missing
   * `server_no_context_takeover` that was offered, a window larger than offered, or an unoffered
   * `client_max_window_bits` rejects with `HandshakeError` `'BAD_EXTENSION'`, saying which rule.
   * After that `client.perMessageDeflate` says what was agreed (`null` when the server declined),
   * compressed messages are inflated (`client.compressedIn` counts them) and messages from
   * `threshold` bytes up are sent compressed (`client.compressedOut`).
   *
   * ```ts
   * const client = await connect(server, '/feed', { perMessageDeflate: { serverNoContextTakeover: true } });
   * expect(client.perMessageDeflate?.serverNoContextTakeover).toBe(true);
   * ```
   */
  perMessageDeflate?: boolean | TestPerMessageDeflateOptions;
  /** The `Origin` header (browsers always send one; other clients usually don't). */
  origin?: string;
  /** Milliseconds for the whole opening handshake. Default 5,000; then `HandshakeError` `'TIMEOUT'`. */
  timeout?: number;
  /**
   * In memory only: the peer address the server sees, an IPv4 or IPv6 address such as
   * `'203.0.113.7'`. It becomes the server socket's `remoteAddress` (and `remoteFamily`), so
   * `behavior.remoteAddress` shows it and `maxConnectionsPerIp` counts it. Without it an in-memory
   * connection has no address and no per-address limit applies to it. Over TCP the peer address
   * is the real one, and passing this throws a `TypeError`.
   *
   * ```ts
   * const handler = createWebSocketHandler(routes, { maxConnectionsPerIp: 1 });
   * const first = await connect(handler, '/chat', { remoteAddress: '203.0.113.7' });
   * await connect(handler, '/chat', { remoteAddress: '203.0.113.7' }); // HandshakeError, status 429
   * ```
   */
  remoteAddress?: string;
  /** In memory only: the peer port the server sees (`behavior.remotePort`), 1–65535. Over TCP it throws a `TypeError`. */
  remotePort?: number;
  /**
   * `wss://` only: the certificates to trust, as PEM (a string or Buffer, or several), instead of
   * Node's default root CAs. For a self-signed test certificate, pass that certificate itself.
   * Elsewhere (`ws://`, in memory) it throws a `TypeError`.
   *
   * ```ts
   * await using server = await listen(routes, { tls: { key, cert } });
   * const client = await connect(server, '/chat', { ca: cert });
   * ```
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * `wss://` only: refuse a server whose certificate does not verify (untrusted, expired, or not
   * for this host), with `HandshakeError` `'TLS_CERTIFICATE'` or `'TLS_HOSTNAME'`. Default `true`,
   * as in Node's `tls`. `false` accepts any certificate: for a throwaway test certificate only.
   * Elsewhere (`ws://`, in memory) it throws a `TypeError`.
   */
  rejectUnauthorized?: boolean;
  /**
   * `wss://` only: the server name sent in TLS SNI and checked against the certificate. Default:
   * the URL's host when it is a name; for an IP address (`wss://127.0.0.1:…`) no SNI is sent and
   * the certificate must list that IP. Elsewhere (`ws://`, in memory) it throws a `TypeError`.
   */
  servername?: string;
  /**
   * Open the WebSocket over HTTP/2, as an RFC 8441 extended CONNECT stream (what Chrome and
   * Firefox do on an HTTP/2 connection to a server that allows it). Serve one with
   * `listen(routes, { http2: true })` (cleartext, h2c) or `listen(routes, { http2: true, tls })`
   * (h2).
   *
   * - `true`: open an HTTP/2 connection for this WebSocket (`http://` for `ws://`, `https://` with
   *   `ca`, `rejectUnauthorized` and `servername` for `wss://`) and close it when the WebSocket
   *   closes.
   * - A `ClientHttp2Session` you opened with `http2.connect()`: the WebSocket is one stream in
   *   it, so many WebSockets (and plain requests) share one connection; it stays open after the
   *   WebSocket closes. Set TLS options on the session, not here.
   *
   * The request is `:method CONNECT`, `:protocol websocket`, `:scheme`, `:path`, `:authority`,
   * `sec-websocket-version: 13`, and `origin`, `protocols` and `perMessageDeflate` as over
   * HTTP/1.1; `headers` adds or replaces headers, pseudo-headers included (`':protocol': 'chat'`),
   * and `null` drops one (Node's client puts back a `:scheme`, `:path` or `:authority` left out). No
   * `sec-websocket-key` is sent (browsers send none); one added through `headers` must be
   * answered with a matching `sec-websocket-accept`. The server must answer `:status 200`;
   * anything else rejects with `HandshakeError` `'REJECTED'` (its status and body), a server whose
   * SETTINGS do not enable the extended CONNECT with `'NO_EXTENDED_CONNECT'`, one that does not
   * speak HTTP/2 with `'NO_HTTP2'`, and a stream reset before the response with
   * `'STREAM_RESET'`. Then `client.transport` is `'h2'` or `'h2c'` and `client.http2Stream` is the
   * stream. `close()` ends the stream cleanly (END_STREAM both ways, no RST_STREAM);
   * `terminate()` resets it (RST_STREAM CANCEL), never the connection. Not for in-memory
   * connections (a `TypeError`): use {@link listen} with `http2: true`.
   *
   * ```ts
   * await using server = await listen(routes, { http2: true });
   * const client = await connect(server, '/chat', { http2: true });
   * expect(client.transport).toBe('h2c');
   * ```
   */
  http2?: boolean | ClientHttp2Session;
}

const DEFAULT_TIMEOUT = 5000;
/** The `Host` an in-memory connection sends. */
const MEMORY_HOST = 'localhost';

function isHandler(target: ConnectTarget): target is WebSocketHandler {
  return typeof target === 'object' && typeof (target as Partial<WebSocketHandler>).handleUpgrade === 'function';
}

function joinPath(path: string | undefined, fallback: string): string {
  if (path === undefined || path === '') return fallback;
  return path.startsWith('/') ? path : `/${path}`;
}

// ---- in memory ------------------------------------------------------------------------------

/** One private, never-listening HTTP server per handler, so a handler is attached once. */
const memoryServers = new WeakMap<WebSocketHandler, Server>();

function answerPlainRequest(_request: unknown, response: { writeHead(status: number, headers: Record<string, string>): void; end(): void }): void {
  response.writeHead(426, { Connection: 'close', Upgrade: 'websocket', 'Content-Length': '0' });
  response.end();
}

function memoryServer(handler: WebSocketHandler): Server {
  let server = memoryServers.get(handler);
  if (server === undefined) {
    server = createServer(answerPlainRequest);
    memoryServers.set(handler, server);
  }
  // Re-attach if someone detached the handler from every server since.
  if (!server.listeners('upgrade').includes(handler.handleUpgrade)) handler.attach(server);
  return server;
}

/** Checks the in-memory peer options: an IP address, a port in 1–65535. */
function memoryPeer(options: ConnectOptions): { address?: string; family?: string; port?: number } {
  const peer: { address?: string; family?: string; port?: number } = {};
  const { remoteAddress, remotePort } = options;
  if (remoteAddress !== undefined) {
    const version = typeof remoteAddress === 'string' ? net.isIP(remoteAddress) : 0;
    if (version === 0) throw new TypeError(`wsmount/testing: remoteAddress must be an IPv4 or IPv6 address, got ${JSON.stringify(remoteAddress)}`);
    peer.address = remoteAddress;
    peer.family = version === 6 ? 'IPv6' : 'IPv4';
  }
  if (remotePort !== undefined) {
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) {
      throw new RangeError(`wsmount/testing: remotePort must be an integer from 1 to 65535, got ${String(remotePort)}`);
    }
    peer.port = remotePort;
  }
  return peer;
}

/**
 * An in-memory socket pair whose ends behave like TCP: when one side is destroyed (a reset, a
 * terminate) the other is closed too. `stream.duplexPair()` alone leaves the peer open.
 */
function memoryPair(peer: { address?: string; family?: string; port?: number }): [client: Duplex, server: Duplex] {
  const [client, server] = duplexPair();
  // What a net.Socket would say about its peer; the handler reads it from request.socket.
  if (peer.address !== undefined) Object.assign(server, { remoteAddress: peer.address, remoteFamily: peer.family });
  if (peer.port !== undefined) Object.assign(server, { remotePort: peer.port });
  client.once('close', () => server.destroy());
  server.once('close', () => client.destroy());
  return [client, server];
}

// ---- the handshake over any Duplex -----------------------------------------------------------

function handshakeOn(socket: Duplex, handshake: ClientHandshake, options: ConnectOptions, deflate: ResolvedTestDeflate | null): Promise<TestClient> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  return new Promise<TestClient>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    let rejected: { status: number; statusText: string; headers: Record<string, string | string[]>; bodyStart: number; bodyLength: number | undefined } | null = null;
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      cleanup();
      socket.on('error', () => {});
      socket.destroy();
      reject(error);
    };
    const finishRejection = (): void => {
      const r = rejected;
      if (r === null) return;
      const end = r.bodyLength === undefined ? received.length : Math.min(received.length, r.bodyStart + r.bodyLength);
      fail(refusalError(r.status, r.statusText, r.headers, received.subarray(r.bodyStart, end)));
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (rejected !== null) {
        const want = rejected.bodyLength ?? Number.POSITIVE_INFINITY;
        if (received.length - rejected.bodyStart >= Math.min(want, MAX_BODY)) finishRejection();
        return;
      }
      const head = readResponseHead(received);
      if (head.kind === 'incomplete') return;
      if (head.kind === 'malformed') {
        fail(new HandshakeError('MALFORMED_RESPONSE', `not an HTTP response: ${head.message}`));
        return;
      }
      if (head.status !== 101) {
        // A refusal: read its body (Content-Length, or until the server closes) for the error.
        const lengthHeader = head.headers['content-length'];
        const length = typeof lengthHeader === 'string' && lengthHeader.trim() !== '' ? Number(lengthHeader) : Number.NaN;
        rejected = {
          status: head.status,
          statusText: head.statusText,
          headers: head.headers,
          bodyStart: head.length,
          bodyLength: Number.isSafeInteger(length) && length >= 0 ? length : undefined,
        };
        onData(Buffer.alloc(0));
        return;
      }
      const verdict = checkHandshakeResponse(head, handshake);
      if (!verdict.ok) {
        fail(new HandshakeError(verdict.failure, `WebSocket handshake failed: ${verdict.message}`, head.status, head.headers));
        return;
      }
      cleanup();
      // Frames may follow the 101 in the same chunk: hand them to the client.
      const early = Buffer.from(received.subarray(head.length));
      const codec = verdict.perMessageDeflate === null || deflate === null ? null : new ClientDeflate(verdict.perMessageDeflate, deflate);
      resolve(
        new TestClient(socket, early, verdict.protocol, { status: head.status, headers: head.headers }, options, {
          extensions: verdict.extensions,
          deflate: codec,
        }),
      );
    };
    const onEnd = (): void => {
      if (rejected !== null) finishRejection();
      else fail(new HandshakeError('NO_RESPONSE', 'the connection closed before the handshake response'));
    };
    const onError = (error: Error): void => {
      if (rejected !== null) finishRejection();
      else fail(error);
    };
    const onConnect = (): void => {
      (socket as net.Socket).setNoDelay?.(true);
    };
    const timer = setTimeout(() => {
      if (rejected !== null) finishRejection();
      else fail(new HandshakeError('TIMEOUT', `no handshake response within ${timeout} ms`));
    }, timeout);

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    socket.on('connect', onConnect);
    socket.write(handshake.request);
  });
}

/** Checks `perMessageDeflate`; its offer and a `Sec-WebSocket-Extensions` in `headers` would contradict each other. */
function deflateOf(options: ConnectOptions): ResolvedTestDeflate | null {
  const deflate = resolveTestDeflate(options.perMessageDeflate);
  if (deflate !== null && options.headers !== undefined) {
    for (const name of Object.keys(options.headers)) {
      if (name.toLowerCase() === 'sec-websocket-extensions') {
        throw new TypeError(`wsmount/testing: give the extension offer as perMessageDeflate.offer, not as headers[${JSON.stringify(name)}], when perMessageDeflate is set`);
      }
    }
  }
  return deflate;
}

function protocolsOf(options: ConnectOptions): readonly string[] {
  const p = options.protocols;
  return p === undefined ? [] : typeof p === 'string' ? [p] : p;
}

/** The network target of `connect()`: its URL, the request path, and whether it is TLS. */
function networkTarget(target: Exclude<ConnectTarget, WebSocketHandler>, path: string | undefined, options: ConnectOptions): { url: URL; requestPath: string; overTls: boolean } {
  if (options.remoteAddress !== undefined || options.remotePort !== undefined) {
    throw new TypeError('wsmount/testing: remoteAddress and remotePort apply to in-memory connections only (connect(handler, path, …)); over TCP the server sees the real peer');
  }
  const url = new URL(typeof target === 'string' || target instanceof URL ? target : target.url(path ?? '/'));
  const overTls = url.protocol === 'wss:' || url.protocol === 'https:';
  if (!overTls && url.protocol !== 'ws:' && url.protocol !== 'http:') throw new TypeError(`wsmount/testing: not a ws:// or wss:// URL: ${url.href}`);
  if (!overTls && hasTlsOptions(options)) {
    throw new TypeError(`wsmount/testing: ca, rejectUnauthorized and servername apply to wss:// only, not to ${url.protocol}// (${url.href})`);
  }
  const requestPath = typeof target === 'string' || target instanceof URL ? joinPath(path, `${url.pathname}${url.search}`) : `${url.pathname}${url.search}`;
  return { url, requestPath, overTls };
}

/** `connect(…, { http2 })`: checks what only makes sense over HTTP/2, then hands over to http2.ts. */
function connectOverHttp2(
  target: Exclude<ConnectTarget, WebSocketHandler>,
  path: string | undefined,
  options: ConnectOptions,
  protocols: readonly string[],
  deflate: ResolvedTestDeflate | null,
  http2: true | ClientHttp2Session,
): Promise<TestClient> {
  const { url, requestPath, overTls } = networkTarget(target, path, options);
  let session: ClientHttp2Session | null = null;
  if (http2 !== true) {
    if (typeof http2 !== 'object' || http2 === null || typeof (http2 as Partial<ClientHttp2Session>).request !== 'function') {
      throw new TypeError('wsmount/testing: http2 is true or a ClientHttp2Session from http2.connect()');
    }
    session = http2;
    if (hasTlsOptions(options)) {
      throw new TypeError('wsmount/testing: with an HTTP/2 session of your own, set ca, rejectUnauthorized and servername on http2.connect(), not on connect()');
    }
    if (session.encrypted !== undefined && session.encrypted !== overTls) {
      throw new TypeError(
        `wsmount/testing: the HTTP/2 session given is ${session.encrypted ? 'over TLS' : 'cleartext'}, but the URL is ${url.protocol}// (${url.href}): use ${session.encrypted ? 'wss' : 'ws'}://`,
      );
    }
  }
  const handshake = createHttp2ClientHandshake({
    scheme: overTls ? 'https' : 'http',
    authority: url.host,
    path: requestPath,
    protocols,
    origin: options.origin,
    headers: options.headers,
    extensions: deflate?.offer,
  });
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return connectHttp2({ handshake, origin: `${overTls ? 'https' : 'http'}://${url.host}`, hostname, where: url.host, secure: overTls, session }, options, deflate);
}

/**
 * Opens a WebSocket for a test and resolves once the handshake succeeded.
 *
 * - `connect('ws://127.0.0.1:8080/chat')` or `connect(server, '/chat')` with a {@link listen}
 *   result: a real TCP connection.
 * - `connect('wss://localhost:8443/chat', undefined, { ca })`, or a {@link listen} result started
 *   with `tls`: the same over TLS. The certificate is verified as Node's `tls` does (`ca`,
 *   `rejectUnauthorized`, `servername`); a refused certificate rejects with
 *   {@link HandshakeError} `'TLS_CERTIFICATE'` or `'TLS_HOSTNAME'`, a failed TLS handshake with
 *   `'TLS_FAILED'`.
 * - `connect(handler, '/chat')` with a `WebSocketHandler`: **in memory**, no port at all. The
 *   request still goes through Node's own HTTP parser and the handler's real upgrade path (on a
 *   private, never-listening `http.Server`), and both sides run the real handshake and codec.
 *   It has no peer address unless you give one: `{ remoteAddress: '203.0.113.7' }` (and
 *   `remotePort`) is what the server then sees, for `behavior.remoteAddress` and
 *   `maxConnectionsPerIp`.
 * - `connect(server, '/chat', { http2: true })`, or `{ http2: session }` with a session of your
 *   own: over HTTP/2, as an RFC 8441 extended CONNECT stream (see {@link ConnectOptions.http2}).
 *
 * `path` may carry a query (`'/rooms/7?user=ann'`); with a URL it replaces the URL's path.
 * A refused or broken handshake rejects with {@link HandshakeError} (its `status`, `headers` and
 * `body` say what the server answered); a network failure rejects with the socket's error.
 */
export function connect<R extends Routes>(target: ConnectTarget<R>, path?: string, options: ConnectOptions = {}): Promise<TestClient> {
  const protocols = protocolsOf(options);
  let socket: Duplex;
  let handshake: ClientHandshake;
  let secure: { socket: tls.TLSSocket; target: string } | null = null;
  let deflate: ResolvedTestDeflate | null;
  try {
    deflate = deflateOf(options);
    const http2 = options.http2 ?? false;
    if (http2 !== false) {
      if (isHandler(target)) {
        throw new TypeError(
          'wsmount/testing: http2 needs a real HTTP/2 connection, and an in-memory connect(handler, …) speaks HTTP/1.1 only: serve the handler with listen(handler, { http2: true }) and connect to that',
        );
      }
      return connectOverHttp2(target, path, options, protocols, deflate, http2);
    }
    if (isHandler(target) && hasTlsOptions(options)) {
      throw new TypeError('wsmount/testing: ca, rejectUnauthorized and servername apply to wss:// only; an in-memory connection has no TLS');
    }
    if (isHandler(target)) {
      handshake = createClientHandshake({
        host: MEMORY_HOST,
        path: joinPath(path, '/'),
        protocols,
        origin: options.origin,
        headers: options.headers,
        extensions: deflate?.offer,
      });
      const peer = memoryPeer(options);
      const server = memoryServer(target);
      const [clientSide, serverSide] = memoryPair(peer);
      socket = clientSide;
      // Node's HTTP server takes it from here: its parser, then 'upgrade' → the handler.
      server.emit('connection', serverSide);
    } else {
      const { url, requestPath, overTls } = networkTarget(target, path, options);
      handshake = createClientHandshake({
        host: url.host,
        path: requestPath,
        protocols,
        origin: options.origin,
        headers: options.headers,
        extensions: deflate?.offer,
      });
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      if (overTls) {
        const tlsSocketToServer = tlsSocket(host, url.port === '' ? 443 : Number(url.port), options);
        socket = tlsSocketToServer;
        secure = { socket: tlsSocketToServer, target: url.host };
      } else {
        socket = net.connect({ host, port: url.port === '' ? 80 : Number(url.port) });
      }
    }
  } catch (error) {
    return Promise.reject(error);
  }
  if (secure === null) return handshakeOn(socket, handshake, options, deflate);
  const { socket: tlsConnection, target: where } = secure;
  let secured = false;
  tlsConnection.once('secureConnect', () => {
    secured = true;
  });
  return handshakeOn(socket, handshake, options, deflate).catch((error: unknown) => {
    throw tlsFailure(error, where, secured);
  });
}
