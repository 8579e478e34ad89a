import { Buffer } from 'node:buffer';
import { type Server, createServer } from 'node:http';
import net from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import type tls from 'node:tls';
import type { Routes, WebSocketHandler } from '../handler.js';
import {
  type ClientHandshake,
  type ClientHeaderValue,
  checkHandshakeResponse,
  createClientHandshake,
  readResponseHead,
} from '../handshake/client.js';
import { TestClient } from './client.js';
import { ClientDeflate, type ResolvedTestDeflate, type TestPerMessageDeflateOptions, resolveTestDeflate } from './deflate.js';
import type { TestClientOptions } from './types.js';
import { HandshakeError } from './errors.js';
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
}

const DEFAULT_TIMEOUT = 5000;
/** Largest rejection body kept for `HandshakeError.body`. */
const MAX_BODY = 64 * 1024;
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

/**
 * A refusal's body without the one line break that ends it: wsmount writes its reason as one
 * line (`'log in first\n'`), and a test compares it with the message it threw.
 */
function withoutFinalLineBreak(body: string): string {
  if (body.endsWith('\r\n')) return body.slice(0, -2);
  if (body.endsWith('\n')) return body.slice(0, -1);
  return body;
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
      const body = withoutFinalLineBreak(received.subarray(r.bodyStart, Math.min(end, r.bodyStart + MAX_BODY)).toString('utf8'));
      const summary = body.trim() === '' ? '' : `: ${body.trim().slice(0, 200)}`;
      fail(
        new HandshakeError('REJECTED', `the server refused the WebSocket with ${r.status} ${r.statusText}`.trimEnd() + summary, r.status, r.headers, body),
      );
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
