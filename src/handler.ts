import { Buffer } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { type BehaviorClass, type BinaryData, ReadyState, internals } from './behavior.js';
import { Connection, type ConnectionLimits, timerDelay } from './connection/index.js';
import { type Acceptance, type Refusal, decideHandshake } from './handshake/decide.js';
import { HandshakeRejection, type Rejection, rejection } from './handshake/rejection.js';
import { acceptResponse } from './handshake/response.js';
import { type Logger, levelLogger } from './logger.js';
import { type HandlerOptions, type ResolvedHandlerOptions, resolveOptions, routeLimits } from './options.js';
import { Opcode } from './protocol/constants.js';
import { type Frame, encodeFrame, encodeText, toBuffer } from './protocol/framer.js';
import { Router, splitTarget } from './router.js';
import { type CheckedRoutes, type Client, type ClientOf, type RoutePattern, type Routes, behaviorClass } from './routes.js';
import { Counters, type HandlerStats, countsOf } from './stats.js';
import {
  type MarkedSocket,
  type UpgradeListener,
  checkServer,
  dropNoteIfAlone,
  guard,
  isForeign,
  isHandled,
  kClaim,
  kHandler,
  kUnclaimed,
  noteBeforeOthers,
  onEarlySocketError,
  writeRejection,
  writtenSinceUpgrade,
} from './transport/http1.js';

export type { HandlerOptions, ResolvedHandlerOptions } from './options.js';
export type { CheckedRoutes, Client, ClientOf, RouteParamsMismatch, RoutePattern, Routes } from './routes.js';

/**
 * A server `attach()` accepts: one that emits Node's `'upgrade'` event — an `http` or `https`
 * server (an HTTP/2 server too: with `allowHTTP1` it emits `'upgrade'` for HTTP/1.1 clients). An
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

/** Bytes a client may send before its handshake completes (it should send none). */
const EARLY_LIMIT = 64 * 1024;

/** One route: its behavior class, its clients, its resolved limits. */
interface Route {
  pattern: string;
  cls: BehaviorClass;
  clients: Set<Client>;
  limits: ConnectionLimits;
  maxConnections: number;
  /** Open connections plus upgrades in `verify()`. */
  count: number;
}

/** One upgrade between its route match and its opening (or refusal). */
interface Upgrade {
  request: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  /** The request path (no query). */
  path: string;
  route: Route;
  behavior: Client;
  decision: Acceptance;
  /** Bytes that arrived while an async verify() ran. */
  early: Buffer[];
  /** Another 'upgrade' listener ended the socket while verify() ran. */
  endedByOther: boolean;
}

let nextId = 1;

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

  /** @internal */
  readonly counters: Counters = new Counters();
  private readonly router = new Router<Route>();
  private readonly all = new Set<Client>();
  private readonly byRoute = new Map<string, Route>();
  private readonly pending = new Set<Duplex>();
  /** Open connections plus upgrades in `verify()`, in all and per IP. */
  private count = 0;
  private readonly perIp = new Map<string, number>();
  /** The heartbeat / idle sweep: one timer for every connection, running while any is open. */
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly tick: number;
  private readonly servers = new Set<NodeJS.EventEmitter>();
  private accepting = true;
  private closing: Promise<void> | null = null;
  private closed: (() => void) | null = null;
  private closeTimer: NodeJS.Timeout | null = null;

  /** Prefer {@link createWebSocketHandler}; this is the same, checks included. */
  constructor(routes: R & CheckedRoutes<R>, options: HandlerOptions<ClientOf<R>> = {}) {
    const o = resolveOptions(options);
    this.options = o;
    this.log = levelLogger(options.logger ?? console, options.logLevel ?? 'warn');
    if (typeof routes !== 'object' || routes === null) {
      throw new TypeError(`wsmount: the routes are an object of URL patterns to Behavior classes, like { '/echo': Echo }, not ${String(routes)}`);
    }
    let shortest = Infinity;
    for (const pattern of Object.keys(routes)) {
      const cls = behaviorClass(pattern, routes[pattern]);
      const limits = routeLimits(cls, o, pattern);
      const route: Route = { pattern, cls, clients: new Set(), limits, maxConnections: cls.maxConnections ?? Infinity, count: 0 };
      this.router.add(pattern, route);
      this.byRoute.set(pattern, route);
      if (limits.pingInterval > 0) shortest = Math.min(shortest, limits.pingInterval, limits.pongTimeout);
      if (limits.idleTimeout > 0) shortest = Math.min(shortest, limits.idleTimeout);
    }
    // The sweep runs ten times per shortest interval: a deadline is met within a tenth of it.
    this.tick = shortest === Infinity ? 0 : Math.max(1, Math.floor(shortest / 10));
    // The set holds instances of the table's classes (checked above), so of ClientOf<R>.
    this.clients = this.all as ReadonlySet<Client> as unknown as ReadonlySet<ClientOf<R>>;
    const listener: UpgradeListener = (request, socket, head) => this.upgrade(request, socket as MarkedSocket, head);
    listener[kHandler] = this;
    this.handleUpgrade = listener;
  }

  // ---- mounting -------------------------------------------------------------------------------

  /**
   * Listens for `'upgrade'` on `server`: an `http` or `https` server (`app.listen()` returns
   * Express's and Koa's; Fastify's is `app.server`). Throws for an app or anything else that
   * never emits `'upgrade'`, and if this handler is already attached to that server. Several
   * servers (http and https) may share one handler.
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
    this.servers.add(server);
    return this;
  }

  /** Stops listening on `server` (or on every attached server). Open connections stay open. */
  detach(server?: UpgradeServer): this {
    for (const s of server === undefined ? [...this.servers] : [server as Emitter]) {
      if (!this.servers.has(s) && typeof s?.listeners !== 'function') continue; // never attached; not a server
      s.removeListener('upgrade', this.handleUpgrade);
      this.servers.delete(s);
      dropNoteIfAlone(s);
    }
    return this;
  }

  /** Whether this handler has a route for the request's path (for frameworks that claim every upgrade). */
  handles(request: { url?: string | undefined }): boolean {
    return this.router.match(splitTarget(request.url ?? '/').path) !== undefined;
  }

  /**
   * Live set of one route's connected clients, by pattern (`'/rooms/:id'`), typed as that
   * route's behavior. A pattern not in the table does not compile (with the loose `Routes`, it
   * throws).
   */
  clientsOf<P extends keyof R & string>(route: P): ReadonlySet<ClientOf<R, P>> {
    const r = this.byRoute.get(route);
    if (r === undefined) throw new Error(`wsmount: no route ${route}; the routes are ${this.patterns().join(', ')}`);
    return r.clients as ReadonlySet<Client> as unknown as ReadonlySet<ClientOf<R, P>>;
  }

  /**
   * A snapshot of the handler's counters: open connections (in all and per route), handshakes
   * accepted and rejected by status, messages and bytes in and out, closes by code, backpressure
   * drops and closes, heartbeat timeouts. The counters cost a few additions per message.
   */
  stats(): HandlerStats {
    const c = this.counters;
    const connectionsByRoute: Record<string, number> = {};
    for (const [pattern, route] of this.byRoute) connectionsByRoute[pattern] = route.clients.size;
    let handshakesRejected = 0;
    for (const n of c.rejected.values()) handshakesRejected += n;
    return {
      connections: this.all.size,
      connectionsByRoute,
      pendingHandshakes: this.pending.size,
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
    };
  }

  /** The route patterns, in registration order. */
  patterns(): string[] {
    return this.router.routes().map((r) => r.pattern);
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
    const frame: Frame = typeof data === 'string' ? encodeText(data) : encodeFrame(Opcode.Binary, toBuffer(data));
    const targets: ReadonlySet<Client> = options?.route === undefined ? this.all : this.clientsOf(options.route as RoutePattern<R>);
    // The filter was typed for its route's behavior, and only that route's clients reach it.
    const filter = options?.filter as ((client: Client) => boolean) | undefined;
    let count = 0;
    for (const client of targets) {
      const c = internals.connection(client);
      if (c === null || c.state !== ReadyState.OPEN) continue;
      if (filter !== undefined && !filter(client)) continue;
      if (c.writeFrame(frame) !== 'dropped') count++;
    }
    return count;
  }

  /**
   * Graceful shutdown: new upgrades get 503, every client gets a close frame (1001 by default)
   * behind every message already accepted by `send*()` (nothing is dropped before it), and the
   * promise resolves once every socket is gone; stragglers are destroyed after the timeout.
   * Calling it again returns the same promise. Stays attached, to answer 503.
   */
  close(options: HandlerCloseOptions = {}): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.accepting = false;
    const code = options.code ?? 1001;
    const reason = options.reason ?? '';
    const timeout = options.timeout ?? this.options.closeTimeout;
    this.closing = new Promise<void>((resolve) => {
      this.closed = resolve;
    });
    for (const client of this.all) internals.connection(client)?.close(code, reason);
    this.closeTimer = setTimeout(() => {
      for (const client of this.all) internals.connection(client)?.terminate();
      for (const socket of this.pending) socket.destroy();
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
    const now = performance.now();
    for (const client of handler.all) internals.connection(client)?.sweep(now);
  }

  private checkIdle(): void {
    if (this.closed === null || this.all.size > 0 || this.pending.size > 0) return;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    const resolve = this.closed;
    this.closed = null;
    resolve();
  }

  // ---- the upgrade ----------------------------------------------------------------------------

  private upgrade(request: IncomingMessage, socket: MarkedSocket, head: Buffer): void {
    guard(socket);
    const { path, query } = splitTarget(request.url ?? '/');
    const match = this.router.match(path);
    const owner = socket[kClaim];
    if (owner !== undefined) {
      if (owner === this) {
        this.log.error('wsmount: the same upgrade reached this handler twice; is it attached twice (attach() and server.on("upgrade"))?');
      } else if (match !== undefined) {
        this.log.error(`wsmount: ${path} is claimed by two wsmount handlers on one server; their routes overlap`);
      }
      return;
    }
    if (match === undefined) {
      this.leaveForOthers(request, socket);
      return;
    }
    socket[kClaim] = this;

    const route = match.value;
    const cls = route.cls;
    let behavior: Client;
    try {
      behavior = new cls();
    } catch (error) {
      this.log.error(`wsmount: constructing the behavior for ${match.pattern} threw`, error);
      this.reject(socket, rejection(500, 'VERIFY_FAILED', 'internal error'));
      return;
    }
    internals.init(behavior, { id: nextId++, request, params: match.params, route: route.pattern, query, handler: this });
    let decision: Acceptance | Refusal;
    // The user code decideHandshake runs: the origins function, then selectProtocol().
    let running = 'the origins function';
    try {
      decision = decideHandshake(request, {
        protocols: cls.protocols,
        requireProtocol: cls.requireProtocol,
        origins: this.options.origins,
        accepting: this.accepting,
        selectProtocol: (offered) => {
          running = 'selectProtocol()';
          return behavior.selectProtocol(offered, request);
        },
      });
    } catch (error) {
      internals.abandon(behavior);
      this.hookRefused(socket, path, running, error);
      return;
    }
    if (!decision.ok) {
      internals.abandon(behavior);
      this.reject(socket, decision.rejection);
      return;
    }
    behavior.protocol = decision.protocol;
    const ip = behavior.remoteAddress;
    const full = this.overLimit(route, ip);
    if (full !== null) {
      internals.abandon(behavior);
      this.reject(socket, full);
      return;
    }
    this.reserve(route, ip, 1);
    const u: Upgrade = { request, socket, head, path, route, behavior, decision, early: [], endedByOther: false };

    let verdict: boolean | void | Promise<boolean | void>;
    try {
      verdict = behavior.verify(request);
    } catch (error) {
      this.afterVerify(u, undefined, { error });
      return;
    }
    if (verdict instanceof Promise || typeof (verdict as PromiseLike<unknown> | undefined)?.then === 'function') {
      this.awaitVerify(u, verdict as Promise<boolean | void>);
    } else {
      this.afterVerify(u, verdict as boolean | void);
    }
  }

  /**
   * An async verify(): keep reading meanwhile, so a client that leaves is noticed and early bytes
   * are kept; the upgrade counts as pending for close().
   */
  private awaitVerify(u: Upgrade, verdict: Promise<boolean | void>): void {
    const socket = u.socket;
    let earlyBytes = 0;
    const onData = (chunk: Buffer): void => {
      earlyBytes += chunk.length;
      if (earlyBytes > EARLY_LIMIT) socket.destroy();
      else u.early.push(chunk);
    };
    const onEnd = (): void => {
      // Our side already ended before the peer's FIN: another 'upgrade' listener ended it.
      u.endedByOther = socket.writableEnded;
      socket.destroy();
    };
    const onClose = (): void => {
      // The client is gone: free its place now; whatever verify() decides later is ignored.
      if (settled) return;
      finish();
      this.release(u);
      this.droppedDuringVerify(socket, u.path, u.endedByOther);
      this.checkIdle();
    };
    this.pending.add(socket);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    let settled = false;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onClose);
      this.pending.delete(socket);
    };
    const settle = (result: boolean | void, failure?: { error: unknown }): void => {
      if (settled) return;
      finish();
      this.afterVerify(u, result, failure);
      this.checkIdle();
    };
    const timedOut = (): void => {
      if (settled) return;
      finish();
      this.release(u);
      this.counters.verifyTimeouts++;
      if (socket.destroyed || !socket.writable) {
        socket.destroy();
      } else {
        this.log.warn(`wsmount: verify() for ${u.path} took longer than verifyTimeout (${this.options.verifyTimeout} ms); answered 503`);
        this.reject(socket, rejection(503, 'VERIFY_TIMEOUT', 'the server could not decide in time', { 'Retry-After': '5' }));
      }
      this.checkIdle();
    };
    const timer = setTimeout(timedOut, timerDelay(this.options.verifyTimeout));
    timer.unref();
    verdict.then(
      (result) => settle(result),
      (error: unknown) => settle(undefined, { error }),
    );
  }

  /** verify() has decided (or thrown, as `failure`): drop, refuse, or open. */
  private afterVerify(u: Upgrade, verdict: boolean | void, failure?: { error: unknown }): void {
    if (!this.decide(u, verdict, failure)) this.release(u);
  }

  /** An upgrade that will never open: its behavior reads CLOSED and its place in the counts is given back. */
  private release(u: Upgrade): void {
    internals.abandon(u.behavior);
    this.reserve(u.route, u.behavior.remoteAddress, -1);
  }

  /** Returns whether the connection was opened. */
  private decide(u: Upgrade, verdict: boolean | void, failure: { error: unknown } | undefined): boolean {
    const { socket } = u;
    if (socket.destroyed || !socket.writable) {
      // The client left, verify() terminated the socket, or another listener ended it.
      this.droppedDuringVerify(socket, u.path, u.endedByOther || !socket.destroyed);
      return false;
    }
    if (failure !== undefined) {
      this.hookRefused(socket, u.path, 'verify()', failure.error);
      return false;
    }
    if (verdict === false) {
      this.reject(socket, rejection(403, 'VERIFY_REJECTED', 'forbidden'));
      return false;
    }
    if (!this.accepting) {
      this.reject(socket, rejection(503, 'SHUTTING_DOWN', 'the server is shutting down', { 'Retry-After': '5' }));
      return false;
    }
    this.open(u);
    return true;
  }

  /** The connection limit an upgrade would pass, as a rejection, or null. */
  private overLimit(route: Route, ip: string | undefined): Rejection | null {
    if (this.count >= this.options.maxConnections) {
      return rejection(503, 'TOO_MANY_CONNECTIONS', `the server is at maxConnections (${this.options.maxConnections})`, { 'Retry-After': '5' });
    }
    if (route.count >= route.maxConnections) {
      return rejection(503, 'TOO_MANY_CONNECTIONS', `${route.pattern} is at its maxConnections (${route.maxConnections})`, { 'Retry-After': '5' });
    }
    if (ip !== undefined && (this.perIp.get(ip) ?? 0) >= this.options.maxConnectionsPerIp) {
      return rejection(429, 'TOO_MANY_CONNECTIONS', `too many connections from ${ip} (maxConnectionsPerIp ${this.options.maxConnectionsPerIp})`, { 'Retry-After': '5' });
    }
    return null;
  }

  /** Takes (`delta` 1) or gives back (-1) an upgrade's place in the connection counts. */
  private reserve(route: Route, ip: string | undefined, delta: 1 | -1): void {
    this.count += delta;
    route.count += delta;
    if (ip === undefined || this.options.maxConnectionsPerIp === Infinity) return;
    const n = (this.perIp.get(ip) ?? 0) + delta;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }

  /** An unmatched upgrade: leave it while another listener may take it; 404 when none does. */
  private leaveForOthers(request: IncomingMessage, socket: MarkedSocket): void {
    if (socket[kUnclaimed] === true) return; // another wsmount handler is already watching it
    socket[kUnclaimed] = true;
    const server = socket.server;
    const listeners = (server?.listeners('upgrade') ?? []) as UpgradeListener[];
    const foreign = server === undefined || listeners.some(isForeign);
    const answer = (): void => {
      if (socket[kClaim] === undefined && socket.writableEnded && writtenSinceUpgrade(socket) === 0) {
        this.log.info(
          `wsmount: another 'upgrade' listener ended the upgrade for ${splitTarget(request.url ?? '/').path} without answering (socket.io: destroyUpgrade: false lets wsmount answer 404)`,
        );
        return;
      }
      if (isHandled(socket)) return;
      this.reject(socket, rejection(404, 'NOT_FOUND', `no WebSocket route for ${splitTarget(request.url ?? '/').path}`));
    };
    setImmediate(() => {
      if (isHandled(socket)) return;
      if (!foreign) {
        answer();
        return;
      }
      const timer = setTimeout(answer, timerDelay(this.options.unclaimedTimeout));
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
  }

  /**
   * The socket went away while verify() ran. When another 'upgrade' listener ended it (socket.io
   * ends silent upgrade sockets after 1 s by default), say so: that is a configuration problem.
   */
  private droppedDuringVerify(socket: Duplex, path: string, endedByOther: boolean): void {
    socket.destroy();
    if (endedByOther) {
      this.log.warn(
        `wsmount: another 'upgrade' listener ended the socket for ${path} before verify() finished (socket.io: set destroyUpgrade: false)`,
      );
    } else {
      this.log.debug(`wsmount: client left during verify() on ${path}`);
    }
  }

  /**
   * A hook that decides the handshake (`selectProtocol()`, `verify()`) threw: a
   * `HandshakeRejection` answers with its status; anything else is logged with the path and
   * answered 500.
   */
  private hookRefused(socket: Duplex, path: string, hook: string, error: unknown): void {
    if (error instanceof HandshakeRejection) {
      this.reject(socket, rejection(error.status, 'VERIFY_REJECTED', error.message, error.headers));
      return;
    }
    this.log.error(`wsmount: ${hook} for ${path} threw`, error);
    this.reject(socket, rejection(500, 'VERIFY_FAILED', 'internal error'));
  }

  private reject(socket: Duplex, r: Rejection): void {
    this.counters.rejectedWith(r.status);
    this.log.info(`wsmount: handshake rejected with ${r.status} (${r.code}): ${r.message}`);
    writeRejection(socket, r, this.options.closeTimeout);
  }

  /** Answers 101 and opens the connection. */
  private open(u: Upgrade): void {
    const { request, socket, head, behavior, decision, route } = u;
    const net = socket as Duplex & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void };
    net.setNoDelay?.(true);
    net.setTimeout?.(0);
    const connection = new Connection(socket, behavior, this, route.limits);
    internals.connect(behavior, connection);
    socket.removeListener('error', onEarlySocketError);
    socket.cork();
    // Header values may hold obs-text bytes (RFC 9110 §5.5): one byte per character.
    socket.write(acceptResponse(decision.accept, decision.protocol, internals.responseHeaders(behavior) ?? undefined), 'latin1');
    this.counters.handshakesAccepted++;
    this.all.add(behavior);
    connection.route = route;
    route.clients.add(behavior);
    if (this.sweepTimer === null && this.tick > 0) {
      this.sweepTimer = setInterval(WebSocketHandler.sweep, this.tick, this);
      this.sweepTimer.unref();
    }
    try {
      connection.track(behavior.onOpen(), 'onOpen');
    } catch (error) {
      connection.hookFailed(error, 'onOpen');
    }
    // `head` may share memory with the HTTP parser's buffer: copy it before unmasking in place.
    connection.start(head.length > 0 ? [Buffer.from(head), ...u.early] : u.early);
    socket.uncork();
    this.log.debug(`wsmount: connection ${behavior.id} open on ${request.url ?? ''}`);
  }

  /** @internal the connection's socket is gone; its `onClose` runs next. */
  connectionClosed(connection: Connection, code: number): void {
    const behavior = connection.behavior;
    const route = connection.route as Route;
    this.all.delete(behavior);
    route.clients.delete(behavior);
    this.reserve(route, behavior.remoteAddress, -1);
    this.counters.closedWith(code);
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
