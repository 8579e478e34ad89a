/**
 * The upgrade flow, from an 'upgrade' event to an open connection or a refusal: match the route,
 * decide the handshake, hold the connection limits (in all, per route, per IP), run the
 * behavior's verify() (and keep what the client sends meanwhile), then answer 101 or a rejection.
 * The handler owns one {@link Admission}; attaching to servers, the client sets and close() stay
 * in the handler, which the flow calls back only to register an opened connection and to let a
 * waiting close() finish.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { type BehaviorClass, type UpgradeRequest, internals } from '../behavior.js';
import { transportOf } from '../behavior-types.js';
import { Connection, type ConnectionLimits, timerDelay } from '../connection/index.js';
import type { RouteShared } from '../connection/types.js';
import type { WebSocketHandler } from '../handler.js';
import { type Acceptance, type Refusal, decideHandshake } from '../handshake/decide.js';
import { HandshakeRejection, type Rejection, rejection } from '../handshake/rejection.js';
import type { Logger } from '../logger.js';
import type { DeflateConfig } from '../extensions/permessage-deflate/options.js';
import { DeflateSession } from '../extensions/permessage-deflate/session.js';
import { Router, splitTarget } from '../router.js';
import type { Client } from '../routes.js';
import type { Counters } from '../stats.js';
import {
  type ConnectionOpenMessage,
  type HandshakeAcceptedMessage,
  type HandshakeRejectedMessage,
  type UpgradeReceivedMessage,
  channels,
} from '../diagnostics.js';
import { HTTP1, type MarkedSocket, kClaim, kUnclaimed, onEarlySocketError } from './http1.js';
import { upgradeOnlyMount } from './http2.js';
import type { Transport } from './transport.js';
import { abort } from '../connection/write.js';
// Not an ES module import (src/builtins.ts says why).
const net = process.getBuiltinModule('node:net');

/** Bytes a client may send before its handshake completes (it should send none). */
const EARLY_LIMIT = 64 * 1024;

/** One route: its behavior class, its clients, its resolved limits. @internal */
export interface Route extends RouteShared {
  pattern: string;
  cls: BehaviorClass;
  /**
   * The route's clients as a live set, made the first time one is asked for (`clientsOf()`, a
   * broadcast to the route): until then they are only in the handler's set, which saves every
   * connection an entry in a second one. With a single route it is the handler's set itself.
   */
  clients: Set<Client> | null;
  /** Open connections (those in the handler's set). */
  open: number;
  limits: ConnectionLimits;
  /** The route's counters, bumped by its connections. */
  counters: Counters;
  /** Compression: the route's static or the handler's `perMessageDeflate`, resolved; null = declined. */
  deflate: DeflateConfig | null;
  maxConnections: number;
  /** Open connections plus upgrades in `verify()`. */
  count: number;
}

/** One upgrade between its route match and its opening (or refusal). */
interface Upgrade {
  request: UpgradeRequest;
  /** The byte stream: the TCP socket, or the HTTP/2 stream. */
  socket: Duplex;
  transport: Transport;
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
 * Admits upgrades for one handler: its router, its connection counts and the upgrades waiting on
 * verify(). It reads the handler's options, log and counters, and calls back the handler's
 * `connectionOpened()` and `checkIdle()`; the handler is also the claim mark on an upgrade socket,
 * the `handler` a behavior sees and the owner of each connection. @internal
 */
export class Admission {
  /** The route table: path -> route. */
  readonly router: Router<Route> = new Router<Route>();
  /** Upgrades waiting on an async verify(), for stats() and close(). */
  readonly pending: Set<Duplex> = new Set<Duplex>();
  /** False once close() started: new upgrades get 503. */
  accepting = true;
  /** Open connections plus upgrades in `verify()`, in all and per IP. */
  private count = 0;
  private readonly perIp = new Map<string, number>();
  private readonly handler: WebSocketHandler;
  private readonly options: WebSocketHandler['options'];
  private readonly log: Logger;
  private readonly counters: Counters;

  /** Built in the handler's constructor, once its options and log are set. */
  constructor(handler: WebSocketHandler) {
    this.handler = handler;
    this.options = handler.options;
    this.log = handler.log;
    this.counters = handler.counters;
  }

  /**
   * The handler's 'upgrade' listener (and its HTTP/2 'stream' listener, with `transport`
   * HTTP2): match the route, decide the handshake, reserve a place, run verify(), then open the
   * connection or refuse it.
   */
  upgrade(request: UpgradeRequest, socket: MarkedSocket, head: Buffer, anyPath = false, transport: Transport = HTTP1): void {
    const { path, query } = splitTarget(request.url ?? '/');
    // anyPath: the first route takes every upgrade, whatever its target (the ws face's handleUpgrade).
    const match = anyPath ? this.router.first() : this.router.match(path);
    // The claim is the handler that took the upgrade, then (connection.ts) its open connection.
    const owner = socket[kClaim];
    if (owner !== undefined) {
      if (owner === this.handler || (owner instanceof Connection && owner.route.owner === this.handler)) {
        this.log.error('wsmount: the same upgrade reached this handler twice; is it attached twice (attach() and server.on("upgrade"))?');
      } else if (match !== undefined) {
        this.log.error(`wsmount: ${path} is claimed by two wsmount handlers on one server; their routes overlap`);
      }
      return;
    }
    // Unclaimed: marked for as long as it is (a claimed socket was guarded by its claimant).
    transport.guard(socket);
    if (match === undefined) {
      this.leaveForOthers(request, socket, transport);
      return;
    }
    socket[kClaim] = this.handler;
    if (channels.upgrade.hasSubscribers) {
      const message: UpgradeReceivedMessage = { request, socket, transport: transportOf(request), path, route: match.pattern };
      channels.upgrade.publish(message);
    }
    if (!transport.http2 && upgradeOnlyMount(socket.server)) {
      this.log.warn(
        "wsmount: this http2 server passes HTTP/1.1 upgrades to wsmount, but no wsmount handler serves its HTTP/2 streams (mounted with server.on('upgrade', …)?): WebSockets over HTTP/2 get no answer from wsmount. Mount with sockets.attach(server)",
      );
    }

    const route = match.value;
    const cls = route.cls;
    let behavior: Client;
    try {
      behavior = new cls();
    } catch (error) {
      this.log.error(`wsmount: constructing the behavior for ${match.pattern} threw`, error);
      this.reject(transport, socket, rejection(500, 'VERIFY_FAILED', 'internal error'), request, route.pattern);
      return;
    }
    internals.init(behavior, { id: nextId++, request, params: match.params, route: route.pattern, query, handler: this.handler });
    let decision: Acceptance | Refusal;
    // The user code decideHandshake runs: the origins function, then selectProtocol().
    let running = 'the origins function';
    try {
      decision = decideHandshake(request, {
        http2: transport.http2,
        protocols: cls.protocols,
        requireProtocol: cls.requireProtocol,
        origins: this.options.origins,
        accepting: this.accepting,
        deflate: route.deflate?.negotiation ?? null,
        selectProtocol: (offered) => {
          running = 'selectProtocol()';
          return behavior.selectProtocol(offered, request);
        },
      });
    } catch (error) {
      internals.abandon(behavior);
      this.hookRefused(transport, socket, request, route.pattern, path, running, error);
      return;
    }
    if (!decision.ok) {
      internals.abandon(behavior);
      this.reject(transport, socket, decision.rejection, request, route.pattern);
      return;
    }
    behavior.protocol = decision.protocol;
    const ip = behavior.remoteAddress;
    const full = this.overLimit(route, ip);
    if (full !== null) {
      internals.abandon(behavior);
      this.reject(transport, socket, full, request, route.pattern);
      return;
    }
    this.reserve(route, ip, 1);
    const u: Upgrade = { request, socket, transport, head, path, route, behavior, decision, early: [], endedByOther: false };

    let verdict: boolean | void | Promise<boolean | void>;
    let thenable: boolean;
    try {
      verdict = behavior.verify(request);
      thenable = verdict instanceof Promise || typeof (verdict as PromiseLike<unknown> | undefined)?.then === 'function';
    } catch (error) {
      this.afterVerify(u, undefined, { error });
      return;
    }
    if (thenable) {
      // A foreign thenable (its then() may throw) is adopted by a real promise.
      this.awaitVerify(u, verdict instanceof Promise ? verdict : Promise.resolve().then(() => verdict));
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
    /** An app's own listener answered it meanwhile (an HTTP/2 'connect' listener): step away, it is theirs. */
    const leave = (): boolean => {
      if (!u.transport.answeredByOther(socket)) return false;
      finish();
      this.release(u);
      this.answeredElsewhere(u.path);
      this.handler.checkIdle();
      return true;
    };
    const onData = (chunk: Buffer): void => {
      if (leave()) return;
      earlyBytes += chunk.length;
      if (earlyBytes > EARLY_LIMIT) abort(socket);
      else u.early.push(chunk);
    };
    const onEnd = (): void => {
      if (leave()) return;
      // Our side already ended before the peer's FIN: another 'upgrade' listener ended it.
      u.endedByOther = u.transport.endedByOther(socket);
      abort(socket);
    };
    const onClose = (): void => {
      // The client is gone: free its place now; whatever verify() decides later is ignored.
      if (settled || leave()) return;
      finish();
      this.release(u);
      this.droppedDuringVerify(socket, u.path, u.endedByOther);
      this.handler.checkIdle();
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
      this.handler.checkIdle();
    };
    const timedOut = (): void => {
      if (settled) return;
      finish();
      this.release(u);
      this.counters.verifyTimeouts++;
      if (socket.destroyed || !socket.writable) {
        abort(socket);
      } else {
        this.log.warn(`wsmount: verify() for ${u.path} took longer than verifyTimeout (${this.options.verifyTimeout} ms); answered 503`);
        this.reject(u.transport, socket, rejection(503, 'VERIFY_TIMEOUT', 'the server could not decide in time', { 'Retry-After': '5' }), u.request, u.route.pattern);
      }
      this.handler.checkIdle();
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
    if (u.transport.answeredByOther(socket)) {
      this.answeredElsewhere(u.path);
      return false;
    }
    if (socket.destroyed || !socket.writable) {
      // The client left, verify() terminated the socket, or another listener ended it.
      this.droppedDuringVerify(socket, u.path, u.endedByOther || !socket.destroyed);
      return false;
    }
    if (failure !== undefined) {
      this.hookRefused(u.transport, socket, u.request, u.route.pattern, u.path, 'verify()', failure.error);
      return false;
    }
    if (verdict === false) {
      this.reject(u.transport, socket, rejection(403, 'VERIFY_REJECTED', 'forbidden'), u.request, u.route.pattern);
      return false;
    }
    if (!this.accepting) {
      this.reject(u.transport, socket, rejection(503, 'SHUTTING_DOWN', 'the server is shutting down', { 'Retry-After': '5' }), u.request, u.route.pattern);
      return false;
    }
    return this.open(u);
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
  reserve(route: Route, ip: string | undefined, delta: 1 | -1): void {
    this.count += delta;
    route.count += delta;
    if (ip === undefined || this.options.maxConnectionsPerIp === Infinity) return;
    const n = (this.perIp.get(ip) ?? 0) + delta;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }

  /** An unmatched upgrade: leave it while another listener may take it; 404 when none does. */
  private leaveForOthers(request: UpgradeRequest, socket: MarkedSocket, transport: Transport): void {
    if (socket[kUnclaimed] === true) return; // another wsmount handler is already watching it
    socket[kUnclaimed] = true;
    if (channels.upgrade.hasSubscribers) {
      const message: UpgradeReceivedMessage = { request, socket, transport: transportOf(request), path: splitTarget(request.url ?? '/').path, route: null };
      channels.upgrade.publish(message);
    }
    const foreign = transport.othersMayTake(socket);
    const answer = (): void => {
      if (transport.endedUnanswered(socket)) {
        this.log.info(
          `wsmount: another 'upgrade' listener ended the upgrade for ${splitTarget(request.url ?? '/').path} without answering (socket.io: destroyUpgrade: false lets wsmount answer 404)`,
        );
        return;
      }
      if (transport.handled(socket)) return;
      this.reject(transport, socket, rejection(404, 'NOT_FOUND', `no WebSocket route for ${splitTarget(request.url ?? '/').path}`), request, null);
    };
    setImmediate(() => {
      if (transport.handled(socket)) return;
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
    abort(socket);
    if (endedByOther) {
      this.log.warn(
        `wsmount: another 'upgrade' listener ended the socket for ${path} before verify() finished (socket.io: set destroyUpgrade: false)`,
      );
    } else {
      this.log.debug(`wsmount: client left during verify() on ${path}`);
    }
  }

  /** An app's own listener answered an upgrade while its verify() ran (an HTTP/2 'connect' listener): theirs now. */
  private answeredElsewhere(path: string): void {
    this.log.warn(`wsmount: another listener answered the WebSocket request for ${path} while verify() ran; it is left to that listener`);
  }

  /**
   * A hook that decides the handshake (`selectProtocol()`, `verify()`) threw: a
   * `HandshakeRejection` answers with its status; anything else is logged with the path and
   * answered 500.
   */
  private hookRefused(transport: Transport, socket: Duplex, request: UpgradeRequest, route: string, path: string, hook: string, error: unknown): void {
    if (error instanceof HandshakeRejection) {
      this.reject(transport, socket, rejection(error.status, 'VERIFY_REJECTED', error.message, error.headers), request, route);
      return;
    }
    this.log.error(`wsmount: ${hook} for ${path} threw`, error);
    this.reject(transport, socket, rejection(500, 'VERIFY_FAILED', 'internal error'), request, route);
  }

  private reject(transport: Transport, socket: Duplex, r: Rejection, request: UpgradeRequest, route: string | null): void {
    this.counters.rejectedWith(r.status);
    if (channels.rejected.hasSubscribers) {
      const message: HandshakeRejectedMessage = { request, route, status: r.status, code: r.code, message: r.message };
      channels.rejected.publish(message);
    }
    this.log.info(`wsmount: handshake rejected with ${r.status} (${r.code}): ${r.message}`);
    transport.reject(socket, r, this.options.closeTimeout);
  }

  /** Answers 101 (HTTP/2: 200) and opens the connection. */
  private open(u: Upgrade): boolean {
    const { socket, head, behavior, decision, route } = u;
    const tcp = socket as Duplex & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void; timeout?: number };
    tcp.setNoDelay?.(true);
    // A timeout the host's server set (server.timeout) would keep firing 'timeout' on an idle
    // WebSocket (an app listening for it would end it): cleared. A TCP socket without one is
    // left alone (setTimeout(0) would give it a property to keep).
    if (!(socket instanceof net.Socket) || (tcp.timeout !== undefined && tcp.timeout !== 0)) tcp.setTimeout?.(0);
    socket.cork();
    try {
      u.transport.accept(socket, decision, internals.responseHeaders(behavior) ?? undefined);
    } catch (error) {
      // Node refused the answer (an HTTP/2 header it does not allow): nothing was sent.
      socket.uncork();
      this.log.error(`wsmount: the answer to the handshake for ${u.path} could not be sent (a header set by verify()?)`, error);
      this.reject(u.transport, socket, rejection(500, 'VERIFY_FAILED', 'internal error'), u.request, route.pattern);
      return false;
    }
    const deflate = decision.deflate === null || route.deflate === null ? null : new DeflateSession(decision.deflate, route.deflate, route.counters);
    const connection = new Connection(socket, behavior, route, deflate);
    internals.connect(behavior, connection);
    socket.removeListener('error', onEarlySocketError);
    route.counters.handshakesAccepted++;
    this.handler.connectionOpened(behavior, route);
    if (channels.accepted.hasSubscribers) {
      const message: HandshakeAcceptedMessage = { request: u.request, client: behavior };
      channels.accepted.publish(message);
    }
    if (channels.open.hasSubscribers) {
      const message: ConnectionOpenMessage = { client: behavior };
      channels.open.publish(message);
    }
    let opened: void | Promise<void> = undefined;
    try {
      opened = behavior.onOpen();
      connection.track(opened, 'onOpen');
    } catch (error) {
      connection.hookFailed(error, 'onOpen');
    }
    // The request is let go once onOpen has run (Behavior.keepRequest): ~1 KiB per idle connection.
    try {
      internals.opened(behavior, opened);
    } catch {
      // a foreign thenable whose then() throws: the request stays, nothing else changes
    }
    // `head` may share memory with the HTTP parser's buffer: copy it before unmasking in place.
    connection.start(head.length > 0 ? [Buffer.from(head), ...u.early] : u.early);
    socket.uncork();
    this.log.debug(
      `wsmount: connection ${behavior.id} open on ${behavior.url}${decision.deflate === null ? '' : ` (${decision.deflate.responseHeader})`}`,
    );
    return true;
  }
}
