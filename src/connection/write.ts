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
