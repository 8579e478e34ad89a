/**
 * How a WebSocket arrives over HTTP/1.1: the server's 'upgrade' event. The marks wsmount puts on
 * an upgrade socket (so that several handlers, or two copies of wsmount, coordinate), the note of
 * what a keep-alive connection carried before its upgrade, whether another listener has answered
 * an upgrade, and the one function that writes a refusal.
 */
import type { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Rejection, rejection } from '../handshake/rejection.js';
import type { Acceptance } from '../handshake/decide.js';
import { type ExtraHeaders, acceptResponse, rejectionBytes } from '../handshake/response.js';
import { splitTarget } from '../router.js';
import type { Transport } from './transport.js';
// Not an ES module import (src/builtins.ts says why).
const net = process.getBuiltinModule('node:net');

// Marks on shared objects use registered symbols so that two copies of wsmount coordinate.
export const kClaim: unique symbol = Symbol.for('wsmount.claim');
export const kUnclaimed: unique symbol = Symbol.for('wsmount.unclaimed');
export const kHandler: unique symbol = Symbol.for('wsmount.handler');

const kWrittenBefore: unique symbol = Symbol.for('wsmount.writtenBefore');

export interface MarkedSocket extends Duplex {
  [kClaim]?: object;
  [kUnclaimed]?: boolean;
  /** Bytes written on the socket before this upgrade arrived (a keep-alive connection's earlier responses). */
  [kWrittenBefore]?: number;
  server?: NodeJS.EventEmitter;
  bytesWritten?: number;
}

/** What a wsmount handler's listener carries under `kHandler`: enough for another handler to compare routes. */
export interface HandlerMark {
  patterns(): string[];
}

/** An 'upgrade' listener; wsmount's carry their handler under `kHandler`. */
export type UpgradeListener = ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) & { [kHandler]?: HandlerMark };

/** Swallows errors on sockets we touched before anyone else listened (a reset mid-upgrade). */
export function onEarlySocketError(): void {}

/**
 * The first wsmount handler to see an upgrade marks its socket: errors are swallowed until a
 * connection takes it, and the bytes already written on it are noted. On a keep-alive connection
 * that carried plain HTTP requests first, those are the earlier responses; only bytes written
 * after this upgrade arrived mean that someone answered it.
 */
export function guard(socket: MarkedSocket): void {
  // Guarded once: our listener is on it (another copy of wsmount adds its own, as harmless).
  // Asked of the socket rather than marked on it: a mark would cost every connection a slot.
  if (socket.rawListeners('error').includes(onEarlySocketError)) return;
  // Without a note (the handler was mounted with server.on('upgrade', …) behind another
  // listener), a listener before ours may have written already: its answer then counts as
  // written before. One that answered synchronously has, in practice, also ended the socket or
  // started reading it, which isHandled() sees.
  socket[kWrittenBefore] ??= socket.bytesWritten ?? 0;
  socket.on('error', onEarlySocketError);
}

/** Whether a listener that is not wsmount's comes before `listener` on the server's 'upgrade' event. */
function othersRanBefore(server: NodeJS.EventEmitter, listener: UpgradeListener): boolean {
  for (const l of server.listeners('upgrade') as UpgradeListener[]) {
    if (l === listener || isNote(l)) return false;
    if (l[kHandler] === undefined) return true;
  }
  return false;
}

const kNote: unique symbol = Symbol.for('wsmount.noteUpgrade');
type NoteListener = ((request: IncomingMessage, socket: Duplex) => void) & { [kNote]?: true };

/**
 * `attach()` puts this first among a server's 'upgrade' listeners when another listener comes
 * before ours: it notes the bytes written on the socket before any listener could answer, so that
 * `guard()`'s count stays exact when that listener answers synchronously. `detach()` removes it;
 * if the handler's listener was removed some other way, it removes itself, and answers 404 an
 * upgrade that no listener is left to see (Node would otherwise leave that socket hanging).
 */
const noteUpgrade: NoteListener = (request, socket) => {
  const s = socket as MarkedSocket;
  const server = s.server;
  if (server !== undefined && !(server.listeners('upgrade') as UpgradeListener[]).some((l) => l[kHandler] !== undefined)) {
    server.removeListener('upgrade', noteUpgrade);
    if (server.listenerCount('upgrade') === 0) {
      s.on('error', onEarlySocketError);
      writeRejection(socket, rejection(404, 'NOT_FOUND', `no WebSocket route for ${splitTarget(request.url ?? '/').path}`), 2000);
    }
    return;
  }
  s[kWrittenBefore] ??= s.bytesWritten ?? 0;
};
noteUpgrade[kNote] = true;

function isNote(listener: unknown): boolean {
  return (listener as NoteListener)[kNote] === true;
}

/**
 * Bytes written on an upgrade socket since the upgrade arrived (queued bytes included). A stream
 * that does not count them (an in-memory Duplex) shows what waits in its buffer instead.
 */
export function writtenSinceUpgrade(socket: MarkedSocket): number {
  if (socket.bytesWritten === undefined) return socket.writableLength;
  return socket.bytesWritten - (socket[kWrittenBefore] ?? 0);
}

/** Whether anyone has answered, taken or closed an upgrade socket. */
export function isHandled(socket: MarkedSocket): boolean {
  return (
    socket[kClaim] !== undefined ||
    socket.destroyed ||
    !socket.writable ||
    writtenSinceUpgrade(socket) > 0 ||
    socket.listenerCount('data') > 0
  );
}

/** Writes a complete HTTP response for a refused handshake, then closes the socket. */
export function writeRejection(socket: Duplex, r: Rejection, timeout: number): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rejectionBytes(r));
  // Read and drop what the client still sends until it closes; destroy it if it lingers.
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), Math.min(timeout, 2000));
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
}

/** Puts the note first on `server` when a listener that is not wsmount's comes before `listener`. */
export function noteBeforeOthers(server: NodeJS.EventEmitter, listener: UpgradeListener): void {
  if (othersRanBefore(server, listener)) server.prependListener('upgrade', noteUpgrade);
}

/** Removes the note from `server` once no wsmount handler listens there. */
export function dropNoteIfAlone(server: NodeJS.EventEmitter): void {
  const left = server.listeners('upgrade') as UpgradeListener[];
  if (!left.some((l) => l[kHandler] !== undefined)) for (const l of left) if (isNote(l)) server.removeListener('upgrade', l);
}

/** Whether a listener belongs to neither a wsmount handler nor wsmount's note. */
export function isForeign(listener: UpgradeListener): boolean {
  return listener[kHandler] === undefined && !isNote(listener);
}

/**
 * Throws, naming the fix, unless `target` can emit `'upgrade'`: a `net.Server` (every http,
 * https and http2 server is one), or another emitter that is not an app. The classic mistake is
 * an Express or Koa app, which has `on()` and `listen()` but never emits `'upgrade'`.
 */
export function checkServer(target: unknown): void {
  if (target instanceof net.Server) return;
  const fix = 'app.listen(port) returns the server (Express, Koa), or make one with http.createServer(app)';
  const t = target as { on?: unknown; listeners?: unknown; listen?: unknown; callback?: unknown; server?: unknown; httpServer?: unknown } | null | undefined;
  if (typeof target === 'function') {
    throw new TypeError(`wsmount: attach() needs the http server, not an app: it was given a function (an Express or Connect app?), which never emits 'upgrade'. ${fix}`);
  }
  if (typeof target !== 'object' || t === null || t === undefined) {
    throw new TypeError(`wsmount: attach() needs an http or https server, not ${String(target)}: ${fix}`);
  }
  if (typeof t.callback === 'function') {
    throw new TypeError('wsmount: attach() needs the http server, not a Koa app (it has .callback()): const server = app.listen(port), or http.createServer(app.callback())');
  }
  if (t.server instanceof net.Server) {
    throw new TypeError('wsmount: attach() needs the http server, not the app that holds it: pass its .server (Fastify: sockets.attach(app.server))');
  }
  if (t.httpServer instanceof net.Server) {
    throw new TypeError('wsmount: attach() needs the http server, not the object that holds it: pass its .httpServer (Vite: sockets.attach(server.httpServer))');
  }
  if (typeof t.listen === 'function') {
    throw new TypeError(`wsmount: attach() needs the http server, not an object with listen() that is not one (an app?): ${fix}`);
  }
  if (typeof t.on !== 'function' || typeof t.listeners !== 'function') {
    throw new TypeError(`wsmount: attach() needs an http or https server (something that emits 'upgrade'), not this object: ${fix}`);
  }
}

/** The HTTP/1.1 'upgrade' transport: the socket is the TCP (or TLS) connection. @internal */
export const HTTP1: Transport = {
  http2: false,
  guard(socket) {
    guard(socket as MarkedSocket);
  },
  handled(socket) {
    return isHandled(socket as MarkedSocket);
  },
  othersMayTake(socket) {
    const server = (socket as MarkedSocket).server;
    return server === undefined || (server.listeners('upgrade') as UpgradeListener[]).some(isForeign);
  },
  endedUnanswered(socket) {
    const s = socket as MarkedSocket;
    return s[kClaim] === undefined && s.writableEnded && writtenSinceUpgrade(s) === 0;
  },
  endedByOther(socket) {
    return socket.writableEnded;
  },
  answeredByOther() {
    // An answer on an HTTP/1.1 socket ends it too, which the socket's state already shows.
    return false;
  },
  accept(socket: Duplex, decision: Acceptance, extraHeaders: ExtraHeaders | undefined) {
    // Header values may hold obs-text bytes (RFC 9110 §5.5): one byte per character.
    socket.write(acceptResponse(decision.accept as string, decision.protocol, extraHeaders, decision.deflate?.responseHeader), 'latin1');
  },
  reject: writeRejection,
};
