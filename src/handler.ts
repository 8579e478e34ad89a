import type { Buffer } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { type BinaryData, ReadyState, internals } from './behavior.js';
import { type Connection, timerDelay } from './connection/index.js';
import { abort } from './connection/write.js';
import { monotonicMs } from './builtins.js';
import { type Logger, levelLogger } from './logger.js';
import { type HandlerOptions, type ResolvedHandlerOptions, resolveOptions, routeDeflate, routeLimits } from './options.js';
import { Opcode } from './protocol/constants.js';
import { encodeFrame, encodeText, toBuffer } from './protocol/framer.js';
import { OutgoingMessage } from './connection/outgoing.js';
import { Topics, checkTopic } from './pubsub/topics.js';
import { splitTarget } from './router.js';
import { type CheckedRoutes, type Client, type ClientOf, type RoutePattern, type Routes, behaviorClass } from './routes.js';
import { Counters, type HandlerStats, type RouteStats, countsOf } from './stats.js';
import { type MarkedSocket, type UpgradeListener, checkServer, dropNoteIfAlone, kHandler, noteBeforeOthers } from './transport/http1.js';
import {
  HTTP2,
  NO_HEAD,
  type StreamListener,
  attachHttp2,
  detachHttp2,
  foreignListeners,
  isHttp2Server,
  isWebSocketConnect,
  streamRequest,
} from './transport/http2.js';
import { Admission, type Route } from './transport/upgrade.js';

export type { HandlerOptions, ResolvedHandlerOptions } from './options.js';
export type { CheckedRoutes, Client, ClientOf, RouteParamsMismatch, RoutePattern, Routes } from './routes.js';

/**
 * A server `attach()` accepts: an `http` or `https` server (HTTP/1.1 upgrades), or an `http2`
 * one (`http2.createServer()`, `http2.createSecureServer()`), where WebSockets arrive as
 * extended CONNECT streams (RFC 8441) and, with `allowHTTP1`, as HTTP/1.1 upgrades too. An
 * Express or Koa *app* is not one: `app.listen()` returns its server.
 */
export type UpgradeServer = HttpServer | HttpsServer | Http2Server | Http2SecureServer;
type Emitter = NodeJS.EventEmitter;

/**
 * Options for {@link WebSocketHandler.broadcast}: one route's clients (`route`, a pattern of the
 * table) or every client, optionally filtered. `C` is the client type the filter sees: the
 * route's behavior when `route` is given, else any of the table's.
 */
export interface BroadcastOptions<C extends Client = Client, P extends string | undefined = string | undefined> {
  /** Only clients of this route, named by its pattern (`'/chat'`, `'/rooms/:id'`). */
  route?: P;
  /** Only clients for which this returns true. */
  filter?(client: C): boolean;
}

/** Options for {@link WebSocketHandler.close}. */
export interface HandlerCloseOptions {
  /** Close code sent to every client. Default 1001 (going away). */
  code?: number;
  /** Close reason. Default `''`. */
  reason?: string;
  /** Milliseconds before stragglers are destroyed. Default `closeTimeout`. */
  timeout?: number;
}

/**
 * Routes WebSocket upgrades on any Node `http`/`https` server to behavior classes.
 * Create it with {@link createWebSocketHandler}, which infers `R`, the route table's type: the
 * handler then knows each route's behavior (`clientsOf('/rooms/:room')` gives `Room`s, a
 * pattern not in the table does not compile). `WebSocketHandler` alone is any handler.
 */
// Not `implements ConnectionOwner`: that interface is internal (stripped from the published
// types); passing `this` to `new Connection()` checks the same shape.
export class WebSocketHandler<R extends Routes = Routes> {
  /** Options with defaults filled in. */
  readonly options: Readonly<ResolvedHandlerOptions<ClientOf<R>>>;
  /** @internal */
  readonly log: Logger;
  /**
   * Live set of connected clients: a behavior joins just before its `onOpen` and leaves just
   * before its `onClose`. Typed as any of the table's behaviors (narrow with `instanceof`).
   */
  readonly clients: ReadonlySet<ClientOf<R>>;
  /**
   * The `'upgrade'` listener, bound: `server.on('upgrade', handler.handleUpgrade)` works. An
   * unmatched path is left for other listeners and answered 404 if none takes it.
   */
  readonly handleUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The `'stream'` listener `attach()` puts first on an http2 server (RFC 8441 extended CONNECT). */
  private readonly handleStream: StreamListener;

  /** @internal */
  readonly counters: Counters = new Counters();
  /** @internal the topics: subscribers here, publishing, the backplane link. */
  readonly pubsub: Topics;
  /** The upgrade flow: the router, the connection counts, the upgrades in `verify()`. */
  private readonly admission: Admission;
  private readonly all = new Set<Client>();
  private readonly byRoute = new Map<string, Route>();
  /** The heartbeat / idle sweep: one timer for every connection, running while any is open. */
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly tick: number;
  private readonly servers = new Set<NodeJS.EventEmitter>();
  private closing: Promise<void> | null = null;
  private closed: (() => void) | null = null;
  private closeTimer: NodeJS.Timeout | null = null;

  /** Prefer {@link createWebSocketHandler}; this is the same, checks included. */
  constructor(routes: R & CheckedRoutes<R>, options: HandlerOptions<ClientOf<R>> = {}) {
    const o = resolveOptions(options);
    this.options = o;
    this.log = levelLogger(options.logger ?? console, options.logLevel ?? 'warn');
    const admission = new Admission(this);
    this.admission = admission;
    if (typeof routes !== 'object' || routes === null) {
      throw new TypeError(`wsmount: the routes are an object of URL patterns to Behavior classes, like { '/echo': Echo }, not ${String(routes)}`);
    }
    let shortest = Infinity;
    for (const pattern of Object.keys(routes)) {
      const cls = behaviorClass(pattern, routes[pattern]);
      const limits = routeLimits(cls, o, pattern);
      const deflate = routeDeflate(cls, o, pattern);
      const route: Route = { owner: this, pattern, cls, clients: null, open: 0, limits, counters: new Counters(), deflate, maxConnections: cls.maxConnections ?? Infinity, count: 0 };
      admission.router.add(pattern, route);
      this.byRoute.set(pattern, route);
      if (limits.pingInterval > 0) shortest = Math.min(shortest, limits.pingInterval, limits.pongTimeout);
      if (limits.idleTimeout > 0) shortest = Math.min(shortest, limits.idleTimeout);
    }
    // One route: its clients are the handler's clients, one set for both.
    if (this.byRoute.size === 1) for (const route of this.byRoute.values()) route.clients = this.all;
    // The sweep runs ten times per shortest interval: a deadline is met within a tenth of it.
    this.tick = shortest === Infinity ? 0 : Math.max(1, Math.floor(shortest / 10));
    // The set holds instances of the table's classes (checked above), so of ClientOf<R>.
    this.clients = this.all as ReadonlySet<Client> as unknown as ReadonlySet<ClientOf<R>>;
    // Last: the routes and options are valid, so a backplane is joined only by a handler that exists.
    const onSubscription = options.onSubscription as ((client: Client, topic: string, count: number, previous: number) => void) | undefined;
    this.pubsub = new Topics({ log: this.log, onSubscription: onSubscription?.bind(options) }, o.backplane);
    const listener: UpgradeListener = (request, socket, head) => admission.upgrade(request, socket as MarkedSocket, head);
    listener[kHandler] = this;
    this.handleUpgrade = listener;
    const onStream: StreamListener = function (this: Emitter, stream, headers, _flags, rawHeaders) {
      if (!isWebSocketConnect(headers)) return; // other streams belong to the app
      admission.upgrade(streamRequest(this, stream, headers, rawHeaders), stream as unknown as MarkedSocket, NO_HEAD, false, HTTP2);
    };
    onStream[kHandler] = this;
    this.handleStream = onStream;
  }

  // ---- mounting -------------------------------------------------------------------------------

  /**
   * Listens for `'upgrade'` on `server`: an `http` or `https` server (`app.listen()` returns
   * Express's and Koa's; Fastify's is `app.server`). On an `http2` server it also serves
   * WebSockets over HTTP/2 (RFC 8441 extended CONNECT streams, answered `:status 200`): its
   * `'stream'` listener goes first, ahead of Node's compatibility layer, and the server
   * advertises `enableConnectProtocol` to new sessions until `detach()`. Throws for an app or
   * anything else that never emits `'upgrade'`, and if this handler is already attached to that
   * server. Several servers (http, https, http2) may share one handler.
   */
  attach(target: UpgradeServer): this {
    checkServer(target);
    const server = target as Emitter;
    if (this.servers.has(server) || server.listeners('upgrade').includes(this.handleUpgrade)) {
      throw new Error('wsmount: this handler is already attached to that server');
    }
    for (const other of server.listeners('upgrade') as UpgradeListener[]) {
      const handler = other[kHandler];
      if (handler === undefined) continue;
      const overlap = this.patterns().filter((p) => handler.patterns().includes(p));
      if (overlap.length > 0) {
        this.log.warn(`wsmount: another handler on this server also serves ${overlap.join(', ')}; the first attached wins`);
      }
    }
    server.on('upgrade', this.handleUpgrade);
    noteBeforeOthers(server, this.handleUpgrade as UpgradeListener);
    if (isHttp2Server(server)) {
      attachHttp2(server, this.handleStream);
      const others = foreignListeners(server);
      if (others !== null) {
        this.log.warn(
          `wsmount: this http2 server has ${others} listener(s) of the app's; they now also see the WebSocket CONNECT streams wsmount answers: skip streams whose headers[':protocol'] is 'websocket' (or whose headersSent is true) there`,
        );
      }
    }
    this.servers.add(server);
    return this;
  }

  /** Stops listening on `server` (or on every attached server). Open connections stay open. */
  detach(server?: UpgradeServer): this {
    for (const s of server === undefined ? [...this.servers] : [server as Emitter]) {
      if (!this.servers.has(s) && typeof s?.listeners !== 'function') continue; // never attached; not a server
      s.removeListener('upgrade', this.handleUpgrade);
      if (isHttp2Server(s)) detachHttp2(s, this.handleStream);
      this.servers.delete(s);
      dropNoteIfAlone(s);
    }
    return this;
  }

  /**
   * @internal Takes an upgrade for this handler's first route whatever its path (the ws face's
   * `WebSocketServer.handleUpgrade`, where the caller has already chosen the server).
   */
  upgradeAnyPath(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.admission.upgrade(request, socket as MarkedSocket, head, true);
  }

  /** Whether this handler has a route for the request's path (for frameworks that claim every upgrade). */
  handles(request: { url?: string | undefined }): boolean {
    return this.admission.router.match(splitTarget(request.url ?? '/').path) !== undefined;
  }

  /**
   * Live set of one route's connected clients, by pattern (`'/rooms/:id'`), typed as that
   * route's behavior. A pattern not in the table does not compile (with the loose `Routes`, it
   * throws).
   */
  clientsOf<P extends keyof R & string>(route: P): ReadonlySet<ClientOf<R, P>> {
    const r = this.byRoute.get(route);
    if (r === undefined) throw new Error(`wsmount: no route ${route}; the routes are ${this.patterns().join(', ')}`);
    // Made on first use from the handler's set (in its order, which is the order they joined);
    // kept up to date from then on (connectionOpened, connectionClosed).
    r.clients ??= new Set([...this.all].filter((client) => client.route === r.pattern));
    return r.clients as ReadonlySet<Client> as unknown as ReadonlySet<ClientOf<R, P>>;
  }

  /**
   * A snapshot of the handler's counters: open connections (in all and per route), handshakes
   * accepted and rejected by status, messages and bytes in and out, closes by code, backpressure
   * drops and closes, heartbeat timeouts and round trips; in all and per route (`routes`). The
   * counters cost a few additions per message.
   */
  stats(): HandlerStats {
    // The handler's own counters (rejections, verify timeouts) plus every route's.
    const c = new Counters();
    c.add(this.counters);
    const connectionsByRoute: Record<string, number> = {};
    const routes: Record<string, RouteStats> = {};
    for (const [pattern, route] of this.byRoute) {
      connectionsByRoute[pattern] = route.open;
      routes[pattern] = route.counters.routeStats(route.open);
      c.add(route.counters);
    }
    let handshakesRejected = 0;
    for (const n of c.rejected.values()) handshakesRejected += n;
    return {
      connections: this.all.size,
      connectionsByRoute,
      pendingHandshakes: this.admission.pending.size,
      handshakesAccepted: c.handshakesAccepted,
      handshakesRejected,
      handshakesRejectedByStatus: countsOf(c.rejected),
      messagesIn: c.messagesIn,
      messagesOut: c.messagesOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      closesByCode: countsOf(c.closes),
      backpressureDrops: c.backpressureDrops,
      backpressureCloses: c.backpressureCloses,
      pingsSent: c.pingsSent,
      pongTimeouts: c.pongTimeouts,
      idleCloses: c.idleCloses,
      rateLimitCloses: c.rateLimitCloses,
      verifyTimeouts: c.verifyTimeouts,
      heartbeatRtt: c.rttHistogram(),
      routes,
      topics: this.pubsub.size,
      subscriptions: this.pubsub.subscriptions,
      publishes: this.pubsub.published,
      backplane: this.pubsub.stats(),
      compression: {
        connections: c.compressedConnections,
        messagesIn: c.compressedMessagesIn,
        compressedBytesIn: c.compressedBytesIn,
        inflatedBytesIn: c.inflatedBytesIn,
        messagesOut: c.compressedMessagesOut,
        uncompressedBytesOut: c.uncompressedBytesOut,
        compressedBytesOut: c.compressedBytesOut,
      },
    };
  }

  /** The route patterns, in registration order. */
  patterns(): string[] {
    return this.admission.router.routes().map((r) => r.pattern);
  }

  // ---- messaging ------------------------------------------------------------------------------

  /**
   * Sends one message to every open client (or one route's clients, optionally filtered). The
   * message is framed once and the same bytes are written to every socket. A client whose
   * backlog would pass `maxBackpressure` is skipped, and closed with 1008 under the `'close'`
   * policy, instead of buffering without bound. Returns how many clients it was written to.
   */
  broadcast(data: string | BinaryData, options?: BroadcastOptions<ClientOf<R>, undefined>): number;
  broadcast<P extends RoutePattern<R>>(data: string | BinaryData, options: BroadcastOptions<ClientOf<R, P>, P> & { route: P }): number;
  broadcast(data: string | BinaryData, options?: BroadcastOptions<Client>): number {
    const message = typeof data === 'string' ? new OutgoingMessage(Opcode.Text, encodeText(data)) : new OutgoingMessage(Opcode.Binary, encodeFrame(Opcode.Binary, toBuffer(data)));
    const targets: ReadonlySet<Client> = options?.route === undefined ? this.all : this.clientsOf(options.route as RoutePattern<R>);
    // The filter was typed for its route's behavior, and only that route's clients reach it.
    const filter = options?.filter as ((client: Client) => boolean) | undefined;
    let count = 0;
    for (const client of targets) {
      const c = internals.connection(client);
      if (c === null || c.state !== ReadyState.OPEN) continue;
      if (filter !== undefined && !filter(client)) continue;
      if (c.writeMessage(message) !== 'dropped') count++;
    }
    return count;
  }

  /**
   * Publishes to every subscriber of `topic` (see `Behavior.subscribe()`): on this handler and,
   * with a `backplane`, on every other process and host. A string goes as text, bytes as binary;
   * each local subscriber gets the same framed bytes, under its own backpressure policy. For an
   * HTTP route, a job or a timer:
   *
   * ```ts
   * app.post('/announce', (req, res) => { sockets.publish('room:lobby', req.body.text); res.end(); });
   * ```
   *
   * Returns how many subscribers on this process it was written to (0 for a topic nobody here
   * has; publishing to it is cheap). Across processes, delivery is at most once: while the
   * backplane is down, other processes miss what is published (counted in `stats().backplane`).
   * Throws `TypeError` for a topic that is not a non-empty string of at most 1,024 characters.
   */
  publish(topic: string, data: string | BinaryData): number {
    return this.pubsub.publish(topic, data, null, 'handler.publish()');
  }

  /** How many connections on this handler (this process) are subscribed to `topic`. */
  subscriberCount(topic: string): number {
    checkTopic(topic, 'subscriberCount()');
    return this.pubsub.count(topic);
  }

  /**
   * Graceful shutdown: new upgrades get 503, every client gets a close frame (1001 by default)
   * behind every message already accepted by `send*()` (nothing is dropped before it), and the
   * promise resolves once every socket is gone; stragglers are destroyed after the timeout.
   * Calling it again returns the same promise. Stays attached, to answer 503. Once every
   * socket is gone (`onClose` hooks may still publish), it leaves the backplane.
   */
  close(options: HandlerCloseOptions = {}): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.admission.accepting = false;
    const code = options.code ?? 1001;
    const reason = options.reason ?? '';
    const timeout = options.timeout ?? this.options.closeTimeout;
    this.closing = new Promise<void>((resolve) => {
      this.closed = resolve;
    }).then(() => this.pubsub.close());
    for (const client of this.all) internals.connection(client)?.close(code, reason);
    this.closeTimer = setTimeout(() => {
      for (const client of this.all) internals.connection(client)?.terminate();
      for (const socket of this.admission.pending) abort(socket);
    }, timerDelay(timeout));
    this.closeTimer.unref();
    this.checkIdle();
    return this.closing;
  }

  /** `await using handler = createWebSocketHandler(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private static sweep(handler: WebSocketHandler): void {
    const now = monotonicMs();
    for (const client of handler.all) internals.connection(client)?.sweep(now);
  }

  /** @internal resolves a waiting close() once no connection and no upgrade in verify() is left. */
  checkIdle(): void {
    if (this.closed === null || this.all.size > 0 || this.admission.pending.size > 0) return;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    const resolve = this.closed;
    this.closed = null;
    resolve();
  }

  /** @internal the 101 is written: the connection joins the client sets, and the sweep runs while any is open. */
  connectionOpened(behavior: Client, route: Route): void {
    this.all.add(behavior);
    route.open++;
    const clients = route.clients;
    if (clients !== null && clients !== this.all) clients.add(behavior);
    if (this.sweepTimer === null && this.tick > 0) {
      this.sweepTimer = setInterval(WebSocketHandler.sweep, this.tick, this);
      this.sweepTimer.unref();
    }
  }

  /** @internal the connection's socket is gone; its `onClose` runs next. */
  connectionClosed(connection: Connection, code: number): void {
    const behavior = connection.behavior;
    const route = connection.route as Route;
    this.pubsub.dropAll(connection);
    if (this.all.delete(behavior)) {
      route.open--;
      const clients = route.clients;
      if (clients !== null && clients !== this.all) clients.delete(behavior);
    }
    this.admission.reserve(route, behavior.remoteAddress, -1);
    route.counters.closedWith(code);
    if (this.all.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
    this.checkIdle();
  }
}

/**
 * Creates a handler that routes WebSocket upgrades to behavior classes. Mount it with
 * `handler.attach(server)` or `server.on('upgrade', handler.handleUpgrade)`.
 *
 * ```ts
 * const sockets = createWebSocketHandler({ '/reverse': Reverse, '/rooms/:room': Room }, { maxPayload: 1 << 20 });
 * sockets.attach(server);
 * for (const room of sockets.clientsOf('/rooms/:room')) room.data.user; // typed as Room
 * ```
 *
 * The handler keeps the table's types (nothing to annotate): `clientsOf()` and `broadcast`'s
 * `route` take only its patterns, and give that route's behavior type. A behavior whose `Params`
 * need params its pattern does not give (`RouteParams<'/rooms/:id'>` at `'/rooms/:room'`) is a
 * compile error at that route's key. At run time it throws `TypeError` for a route that is not a
 * `Behavior` class, a malformed pattern or an unknown option key (with the nearest valid name),
 * and `RangeError` for an option value out of range; each message says what to write.
 */
export function createWebSocketHandler<R extends Routes>(routes: R & CheckedRoutes<R>, options?: HandlerOptions<ClientOf<R>>): WebSocketHandler<R> {
  return new WebSocketHandler<R>(routes, options);
}
