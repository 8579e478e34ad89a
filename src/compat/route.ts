/**
 * `wsRoute()`: puts a ws-style `WebSocketServer` (server.ts) on a route of the routes table, next
 * to Behavior routes. It makes a Behavior class whose instances forward wsmount's hooks to a
 * ws-style `WebSocket` (socket.ts), so routing, `origins`, limits, heartbeat, stats and the
 * handler's `close()` apply to the libraries built on ws as they do to every route.
 */
import { Buffer } from 'node:buffer';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Behavior, type BehaviorClass, internals } from '../behavior.js';
import type { PerMessageDeflateOptions } from '../extensions/permessage-deflate/options.js';
import { HandshakeRejection } from '../handshake/rejection.js';
import { WebSocketServer, type VerifyClientInfo, type WsPerMessageDeflateOptions } from './server.js';
import { WebSocket } from './socket.js';

/** The Behavior statics a ws route takes as options: one list for the type and the check. */
const ROUTE_OPTIONS = [
  'maxPayload',
  'maxFragments',
  'maxBackpressure',
  'backpressure',
  'pingInterval',
  'pongTimeout',
  'idleTimeout',
  'maxConnections',
  'rateLimit',
  'perMessageDeflate',
] as const;
const ROUTE_OPTION_SET: ReadonlySet<string> = new Set(ROUTE_OPTIONS);

/**
 * A ws route's own limits, as a Behavior route's statics of the same names and types (each
 * defaults to the handler's). `maxPayload` and `perMessageDeflate` given to the
 * `WebSocketServer` count too; these win.
 */
export type WsRouteOptions = { -readonly [K in (typeof ROUTE_OPTIONS)[number]]?: BehaviorClass[K] };

/** The Behavior class `wsRoute` makes: `wss` is the server its connections go to. */
export interface WsRouteClass extends BehaviorClass {
  new (): WsConnection;
  /** The server this route's connections are handed to. */
  readonly wss: WebSocketServer;
}

/**
 * Mounts a ws-style server on a route: `{ '/graphql': wsRoute((wss) => useServer({ schema }, wss)),
 * '/chat': Chat }`. Pass a `WebSocketServer` you made (to keep what a library's setup returns:
 * `const trpc = applyWSSHandler({ wss, router })`), or a function that gets a new one. The
 * function runs once, now. The server's `'connection'` listeners get `(socket, request)` for each
 * connection the route accepts.
 *
 * @param target - the server, or a function that sets one up.
 * @param options - this route's limits (`maxPayload`, `pingInterval`…), as Behavior statics.
 */
export function wsRoute(target: WebSocketServer | ((wss: WebSocketServer) => unknown), options: WsRouteOptions = {}): WsRouteClass {
  // Options first: nothing of the user's runs when they are wrong.
  for (const key of Object.keys(options)) {
    if (!ROUTE_OPTION_SET.has(key)) {
      throw new TypeError(`wsmount/ws: wsRoute() has no option '${key}'; its options are ${ROUTE_OPTIONS.join(', ')} (ws's server options go to new WebSocketServer(…))`);
    }
  }
  let wss: WebSocketServer;
  if (target instanceof WebSocketServer) wss = target;
  else if (typeof target === 'function') {
    wss = new WebSocketServer({ noServer: true });
    target(wss);
  } else {
    throw new TypeError("wsmount/ws: wsRoute() takes a WebSocketServer from 'wsmount/ws', or a function (wss) => { … } that sets one up");
  }
  const route = class extends WsConnection {
    static readonly wss: WebSocketServer = wss;
  };
  const statics: Record<string, unknown> = {};
  const o = wss.options;
  if (o.maxPayload !== undefined) statics['maxPayload'] = o.maxPayload;
  if (o.perMessageDeflate !== undefined) statics['perMessageDeflate'] = fromWsDeflate(o.perMessageDeflate);
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) statics[key] = value;
  }
  for (const [key, value] of Object.entries(statics)) Object.defineProperty(route, key, { value, enumerable: true });
  return route;
}

function ignore(): void {}

/** ws's headers (`OutgoingHttpHeaders`) as HandshakeRejection takes them: strings (a list joined with ', '). */
function headersOf(headers: OutgoingHttpHeaders | undefined): Record<string, string> | undefined {
  if (headers === undefined || headers === null) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') out[name] = value;
    else if (typeof value === 'number') out[name] = String(value);
    else if (Array.isArray(value)) out[name] = value.join(', ');
  }
  return out;
}

/** ws's permessage-deflate options in wsmount's terms (its `zlibDeflateOptions` level and memLevel, and the rest by name). */
function fromWsDeflate(value: boolean | WsPerMessageDeflateOptions): boolean | PerMessageDeflateOptions {
  if (typeof value === 'boolean') return value;
  const out: Record<string, unknown> = {};
  for (const key of ['serverNoContextTakeover', 'clientNoContextTakeover', 'serverMaxWindowBits', 'clientMaxWindowBits', 'threshold'] as const) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  const z = value.zlibDeflateOptions;
  // -1 is zlib's Z_DEFAULT_COMPRESSION, which is level 6.
  if (z?.level !== undefined) out['level'] = z.level === -1 ? 6 : z.level;
  if (z?.memLevel !== undefined) out['memLevel'] = z.memLevel;
  return out as PerMessageDeflateOptions;
}

/**
 * A connection on a ws route: wsmount's hooks, forwarded to the ws-style `socket`. The
 * handler-level `onConnect`/`onMessage`/`onDisconnect` callbacks are not called for it: its
 * server's events are its hooks.
 */
export class WsConnection extends Behavior {
  /** ws hands the request to `'connection'` listeners and its socket keeps it (`ws.request`). */
  static override keepRequest = true;
  /** The ws-style socket handed to the server's `'connection'` listeners (set when it opens). */
  socket: WebSocket | null = null;

  #wss(): WebSocketServer {
    const wss = (this.constructor as Partial<WsRouteClass>).wss;
    if (wss === undefined) throw new TypeError('wsmount/ws: WsConnection is made by wsRoute(); map the route to wsRoute(wss), not to WsConnection or a subclass of it');
    return wss;
  }

  /** ws's choice: `options.handleProtocols(offered, request)`, else the first offered. */
  override selectProtocol(offered: readonly string[], request: IncomingMessage): string | undefined | false {
    const choose = this.#wss().options.handleProtocols;
    // ws asks handleProtocols only when the client offered something.
    if (choose === undefined || offered.length === 0) return offered[0];
    const chosen = choose(new Set(offered), request);
    return chosen === false ? undefined : chosen;
  }

  /** 503 once the server is closed; else its `verifyClient`, if any (refusing with 401, or its code). */
  override verify(request: IncomingMessage): void | Promise<void> {
    const wss = this.#wss();
    if (!wss.accepting) throw new HandshakeRejection(503, 'the WebSocketServer on this route is closed');
    const check = wss.options.verifyClient;
    if (check === undefined) return;
    const info: VerifyClientInfo = {
      origin: String(request.headers.origin ?? request.headers['sec-websocket-origin'] ?? ''),
      secure: (request.socket as { encrypted?: boolean }).encrypted === true,
      req: request,
    };
    if (check.length < 2) {
      if (!check(info, ignore)) throw new HandshakeRejection(401);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      check(info, (result, code, message, headers) => {
        // The server may have been closed while verifyClient ran: 503, as ws answers then.
        if (result) {
          if (wss.accepting) resolve();
          else reject(new HandshakeRejection(503, 'the WebSocketServer on this route is closed'));
          return;
        }
        try {
          // ws: `code || 401`; a status HandshakeRejection refuses (not 300–599) is a 500 and a log line.
          reject(new HandshakeRejection(code || 401, message, headersOf(headers)));
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  override onOpen(): void {
    const connection = internals.connection(this);
    if (connection === null) return;
    const socket = new WebSocket(this, connection);
    this.socket = socket;
    this.#wss().connected(socket, socket.request);
  }

  override onRawText(bytes: Buffer): void {
    this.socket?.received(bytes, false);
  }

  override onBinary(bytes: Buffer): void {
    this.socket?.received(bytes, true);
  }

  override onPing(data: Buffer): void {
    this.socket?.emit('ping', data);
  }

  override onPong(data: Buffer): void {
    this.socket?.emit('pong', data);
  }

  /** ws emits `'error'` on the socket; here only to a listener (none: wsmount has logged it). */
  override onError(error: Error): void {
    const socket = this.socket;
    if (socket !== null && socket.listenerCount('error') > 0) socket.emit('error', error);
  }

  override onClose(code: number, reason: string): void {
    const socket = this.socket;
    if (socket === null) return;
    this.#wss().disconnected(socket);
    socket.emit('close', code, Buffer.from(reason));
  }
}
