import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
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

/** RFC 9113 §7: CANCEL, the RST_STREAM code for a stream that is no longer needed. */
const NGHTTP2_CANCEL = 8;

/**
 * Ends the byte stream at once, with no closing handshake. A socket is destroyed; an HTTP/2
 * stream (RFC 8441) is reset with CANCEL, which ends that stream only: its session, and the
 * requests and WebSockets sharing it, go on.
 */
export function abort(socket: Duplex): void {
  const stream = socket as Duplex & { close?: (code: number) => void; rstCode?: number };
  if (typeof stream.close === 'function' && 'rstCode' in stream) {
    if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
  } else {
    socket.destroy();
  }
}
