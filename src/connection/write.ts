import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import type { Frame } from '../protocol/framer.js';
// Not an ES module import (src/builtins.ts says why).
const stream = process.getBuiltinModule('node:stream');

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
  if (isHttp2Stream(socket)) {
    stream.addAbortSignal(ABORTED, socket);
  } else {
    socket.destroy();
  }
}

/** Whether `socket` is an Http2Stream (server or client side): the only Duplex with an `rstCode` and a `close()`. */
export function isHttp2Stream(socket: Duplex): boolean {
  return 'rstCode' in socket && typeof (socket as Duplex & { close?: unknown }).close === 'function';
}

/** An already aborted signal: handing it to `addAbortSignal()` destroys the stream at once. */
const ABORTED: AbortSignal = AbortSignal.abort();

/**
 * The bytes of `socket`'s backlog that are surely waiting for the peer: its `writableLength`,
 * less, on an HTTP/2 stream, the write Node is still framing.
 *
 * A stream takes one write at a time (the chunks written meanwhile wait behind it, then go as one
 * `_writev`), and Node completes an HTTP/2 stream's write only once all of its bytes are framed
 * and written to the session's socket. When the session's flow-control window runs short (many
 * busy streams on one connection), that write is framed a piece at a time, and the peer reads its
 * first messages, and sends more, long before it completes: `writableLength` then counts those
 * messages as waiting. Measured with 16 streams on one connection and 32 messages of 64 KiB in
 * flight each: up to 63 counted (Node 24), 52 (Node 20). Leaving the write in progress out of the
 * count never counts bytes the peer has read, and bounds a stream's backlog at twice
 * `maxBackpressure`: that write holds at most what was waiting when it began (or one message
 * larger than the limit, sent on an empty backlog).
 */
export function backlogBytes(socket: Duplex): number {
  const held = socket.writableLength;
  if (!isHttp2Stream(socket)) return held;
  const writing = (socket as Duplex & { _writableState?: { writelen?: unknown } })._writableState?.writelen;
  return typeof writing === 'number' && writing <= held ? held - writing : held;
}
