import { Buffer } from 'node:buffer';
import { type Duplex, addAbortSignal } from 'node:stream';
import type { Frame } from '../protocol/framer.js';

/**
 * Writes a frame: one buffer, or header and payload back to back inside one cork (one syscall,
 * no payload copy). Returns what the socket's last `write` returned (false: past its high-water
 * mark).
 */
export function writeFrameTo(socket: Duplex, frame: Frame): boolean {
  if (Buffer.isBuffer(frame)) return socket.write(frame);
  socket.cork();
  socket.write(frame[0]);
  const flushed = socket.write(frame[1]);
  socket.uncork();
  return flushed;
}

/**
 * Ends the byte stream at once, with no closing handshake. A socket is destroyed; an HTTP/2
 * stream (RFC 8441) gets a bare RST_STREAM CANCEL, which ends that stream only: its session, and
 * the requests and WebSockets sharing it, go on. (Node's `stream.close(code)` sends END_STREAM
 * first, which a peer could take for an orderly end; destroying the stream with Node's own
 * AbortError, as `addAbortSignal()` does, resets it with CANCEL and nothing before. The
 * stream then emits that error: its owner listens for errors.)
 */
export function abort(socket: Duplex): void {
  if (socket.destroyed) return;
  // An Http2Stream (server or client side): the only Duplex with an rstCode.
  if ('rstCode' in socket && typeof (socket as Duplex & { close?: unknown }).close === 'function') {
    addAbortSignal(ABORTED, socket);
  } else {
    socket.destroy();
  }
}

/** An already aborted signal: handing it to `addAbortSignal()` destroys the stream at once. */
const ABORTED: AbortSignal = AbortSignal.abort();
