/**
 * How a WebSocket arrives over HTTP/2 (RFC 8441): an extended CONNECT stream (`:method`
 * CONNECT, `:protocol` websocket) on an `http2.createServer()` or `http2.createSecureServer()`
 * server. The stream is the byte stream the connection runs over once it is answered with
 * `:status 200`; the session and every other stream on it are never touched.
 *
 * Node's compatibility layer (installed when the app has a `'request'` listener: Express, Koa,
 * Fastify, Hono over http2) turns every CONNECT into a `'connect'` event and answers 405 when
 * nobody listens, which would kill our tunnels. So wsmount's `'stream'` listener goes first, and
 * a `'connect'` guard leaves the streams wsmount took alone (answering 405, as Node would, for a
 * CONNECT nobody else serves).
 */
import { Buffer } from 'node:buffer';
import type { IncomingHttpHeaders, Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from 'node:http2';
import { http2 } from '../builtins.js';
import type { Duplex } from 'node:stream';
import { connectionOn } from '../connection/connection.js';
import { timerDelay } from '../connection/index.js';
import { abort } from '../connection/write.js';
import type { Acceptance } from '../handshake/decide.js';
import type { Rejection } from '../handshake/rejection.js';
import { type ExtraHeaders, acceptHeaders2, rejection2 } from '../handshake/response.js';
import { type HandlerMark, kClaim, kHandler, onEarlySocketError } from './http1.js';
import type { Transport } from './transport.js';

const kServer: unique symbol = Symbol.for('wsmount.h2server');
const kGuarded: unique symbol = Symbol.for('wsmount.guarded');
const kConnectGuard: unique symbol = Symbol.for('wsmount.connectGuard');

/** An extended CONNECT stream, with the marks wsmount puts on it. */
export interface MarkedStream extends ServerHttp2Stream {
  [kClaim]?: object;
  [kServer]?: NodeJS.EventEmitter;
  [kGuarded]?: boolean;
}

/** A `'stream'` listener; wsmount's carry their handler under `kHandler`. */
export type StreamListener = ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void) & {
  [kHandler]?: HandlerMark;
};

type ConnectListener = ((request: { stream: ServerHttp2Stream }, response: Http2ServerResponse) => void) & { [kConnectGuard]?: true };

/** An http2 server (plain or secure): the only kind with `updateSettings()`. */
export interface Http2ServerLike extends NodeJS.EventEmitter {
  updateSettings(settings: { enableConnectProtocol?: boolean }): void;
}

/** Whether `server` is an `http2.createServer()` / `createSecureServer()` server. */
export function isHttp2Server(server: NodeJS.EventEmitter): server is Http2ServerLike {
  return typeof (server as Partial<Http2ServerLike>).updateSettings === 'function';
}

/**
 * Whether a stream is a WebSocket's extended CONNECT (RFC 8441 §4). Other `:protocol` values
 * are not WebSockets and are left to whoever serves them.
 */
export function isWebSocketConnect(headers: IncomingHttpHeaders): boolean {
  const protocol = headers[':protocol'];
  return headers[':method'] === 'CONNECT' && typeof protocol === 'string' && protocol.toLowerCase() === 'websocket';
}

/** The request object a behavior sees: Node's own, as the compatibility API gives apps. */
export function streamRequest(server: NodeJS.EventEmitter, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): Http2ServerRequest {
  (stream as MarkedStream)[kServer] = server;
  return new (http2().Http2ServerRequest)(stream, headers, {}, rawHeaders);
}

/** The compatibility layer's CONNECT event, for streams wsmount took or is watching: left alone. */
const connectGuard: ConnectListener = function (this: NodeJS.EventEmitter, request, response) {
  const stream = request.stream as MarkedStream;
  if (stream[kClaim] !== undefined || stream[kGuarded] === true) return;
  // A CONNECT that is not a WebSocket of ours: Node answers 405 when no 'connect' listener exists.
  const others = (this.listeners('connect') as ConnectListener[]).some((l) => l[kConnectGuard] !== true);
  if (!others && !response.headersSent) {
    response.statusCode = 405;
    response.end();
  }
};
connectGuard[kConnectGuard] = true;

/**
 * Serves extended CONNECT on `server`: `listener` goes first among its `'stream'` listeners
 * (ahead of the compatibility layer), the `'connect'` guard is installed once, and the server
 * advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL` to new sessions.
 */
export function attachHttp2(server: Http2ServerLike, listener: StreamListener): void {
  server.prependListener('stream', listener);
  if (!(server.listeners('connect') as ConnectListener[]).some((l) => l[kConnectGuard] === true)) server.on('connect', connectGuard);
  server.updateSettings({ enableConnectProtocol: true });
}

/**
 * The app's own `'stream'` and `'connect'` listeners, which will now see WebSocket CONNECT
 * streams wsmount answers (before attach(), nghttp2 reset them): one that answers every stream
 * throws ERR_HTTP2_HEADERS_SENT on them. Returns a description for a warning, or null.
 */
export function foreignListeners(server: Http2ServerLike): string | null {
  const streams = (server.listeners('stream') as StreamListener[]).filter((l) => l[kHandler] === undefined && !isCompatListener(l)).length;
  const connects = (server.listeners('connect') as ConnectListener[]).filter((l) => l[kConnectGuard] !== true).length;
  if (streams === 0 && connects === 0) return null;
  const which = [streams > 0 ? `${streams} 'stream'` : '', connects > 0 ? `${connects} 'connect'` : ''].filter((w) => w !== '').join(' and ');
  return which;
}

const warnedServers = new WeakSet<NodeJS.EventEmitter>();

/**
 * An HTTP/1.1 upgrade reached a wsmount handler on an http2 server that no wsmount handler
 * serves HTTP/2 on (mounted with `server.on('upgrade', …)` instead of `attach()`): true once per
 * server, so the handler can say so.
 */
export function upgradeOnlyMount(server: NodeJS.EventEmitter | undefined): boolean {
  if (server === undefined || !isHttp2Server(server) || warnedServers.has(server)) return false;
  if ((server.listeners('stream') as StreamListener[]).some((l) => l[kHandler] !== undefined)) return false;
  warnedServers.add(server);
  return true;
}

/**
 * Stops serving extended CONNECT through `listener`. Once no wsmount handler is left on the
 * server it stops advertising the setting (a session that advertises it commits to serving
 * WebSockets: browsers do not fall back to HTTP/1.1 on a failed CONNECT) and drops the guard.
 */
export function detachHttp2(server: Http2ServerLike, listener: StreamListener): void {
  server.removeListener('stream', listener);
  if ((server.listeners('stream') as StreamListener[]).some((l) => l[kHandler] !== undefined)) return;
  for (const l of server.listeners('connect') as ConnectListener[]) if (l[kConnectGuard] === true) server.removeListener('connect', l);
  server.updateSettings({ enableConnectProtocol: false });
}

function isCompatListener(listener: (...args: never[]) => void): boolean {
  return listener.name === 'bound onServerStream';
}

/**
 * How long a closed WebSocket's stream waits for the peer's END_STREAM before ending with
 * RST_STREAM NO_ERROR (at most `closeTimeout`). A browser ends its half within a round trip, so
 * it never sees that reset (a reset after a close can make it stop using HTTP/2 for WebSockets:
 * aspnetcore #42328); undici 7 never ends its half and waits for the stream to close.
 */
const END_STREAM_GRACE = 1000;

/**
 * Our END_STREAM is out. If the close handshake is complete the WebSocket is closed now
 * (`onClose` runs); the peer's END_STREAM is awaited for END_STREAM_GRACE, then the stream is
 * ended with RST_STREAM NO_ERROR (RFC 9113 §8.1: the exchange is complete, the peer's half is no
 * longer needed). An abnormal end stays CANCEL.
 */
function onStreamFinish(this: ServerHttp2Stream): void {
  const wait = connectionOn(this)?.endSent() ?? null;
  if (wait === null || this.closed) return;
  const timer = setTimeout(endQuietly, timerDelay(Math.min(wait, END_STREAM_GRACE)), this);
  timer.unref();
  this.once('close', () => clearTimeout(timer));
}

function endQuietly(stream: ServerHttp2Stream): void {
  if (!stream.closed) stream.close(http2().constants.NGHTTP2_NO_ERROR);
}

/** The HTTP/2 transport: the byte stream is the extended CONNECT's stream. @internal */
export const HTTP2: Transport = {
  http2: true,
  guard(socket) {
    const stream = socket as MarkedStream;
    if (stream[kGuarded] === true) return;
    stream[kGuarded] = true;
    stream.on('error', onEarlySocketError);
  },
  handled(socket) {
    const stream = socket as MarkedStream;
    return stream[kClaim] !== undefined || stream.headersSent || stream.destroyed || stream.closed;
  },
  othersMayTake(socket) {
    const server = (socket as MarkedStream)[kServer];
    if (server === undefined) return true;
    const streams = (server.listeners('stream') as StreamListener[]).some((l) => l[kHandler] === undefined && !isCompatListener(l));
    const connects = (server.listeners('connect') as ConnectListener[]).some((l) => l[kConnectGuard] !== true);
    return streams || connects;
  },
  endedUnanswered() {
    return false;
  },
  endedByOther() {
    return false;
  },
  answeredByOther(socket) {
    return (socket as ServerHttp2Stream).headersSent;
  },
  accept(socket: Duplex, decision: Acceptance, extraHeaders: ExtraHeaders | undefined) {
    const stream = socket as ServerHttp2Stream;
    stream.respond(acceptHeaders2(decision.accept, decision.protocol, extraHeaders, decision.deflate?.responseHeader));
    stream.once('finish', onStreamFinish);
  },
  reject(socket: Duplex, r: Rejection, timeout: number) {
    const stream = socket as ServerHttp2Stream;
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) {
      abort(stream);
      return;
    }
    let { headers, body } = rejection2(r);
    try {
      stream.respond(headers);
    } catch {
      // Node refused one of the extra headers: the status and the reason still go out.
      ({ headers, body } = rejection2({ ...r, headers: {} }));
      stream.respond(headers);
    }
    stream.end(body);
    // Read and drop what the client still sends; if it never ends its side, end the stream
    // without error once the response is out (RFC 9113 §8.1).
    stream.resume();
    const timer = setTimeout(() => {
      if (stream.closed) return;
      // A body still unsent (a client that grants no flow-control window) would keep the
      // stream for the session's life: reset it.
      if (stream.writableFinished) stream.close(http2().constants.NGHTTP2_NO_ERROR);
      else abort(stream);
    }, Math.min(timeout, 2000));
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
  },
};

/** The empty `head` an HTTP/2 upgrade has (bytes come on the stream itself). */
export const NO_HEAD: Buffer = Buffer.alloc(0);
