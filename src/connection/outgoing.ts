/**
 * A data message sent to many connections (broadcast, publish): framed once, and — for the
 * connections that compress with `server_no_context_takeover` — compressed once per parameter
 * set, so a fan-out costs one deflate however many sockets it reaches (RFC 7692 §7.2.3 makes the
 * shared bytes valid only where the compressor resets after every message). @internal
 */
import { Buffer } from 'node:buffer';
import type { Frame } from '../protocol/framer.js';

export class OutgoingMessage {
  /** The uncompressed frame, written as is to connections that do not compress it. */
  readonly frame: Frame;
  readonly opcode: number;
  /** Compressed frames by the compressor's parameter key. */
  private compressed: Map<string, Frame | Promise<Frame>> | null = null;

  constructor(opcode: number, frame: Frame) {
    this.opcode = opcode;
    this.frame = frame;
  }

  /** The payload bytes (a view into the frame, no copy). */
  get payload(): Buffer {
    const f = this.frame;
    if (!Buffer.isBuffer(f)) return f[1];
    const n = (f[1] as number) & 0x7f;
    return f.subarray(n === 127 ? 10 : n === 126 ? 4 : 2);
  }

  /** The compressed frame for `key`, made by `make` on first use and shared afterwards. */
  compressedFor(key: string, make: (payload: Buffer) => Frame | Promise<Frame>): Frame | Promise<Frame> {
    const cache = (this.compressed ??= new Map());
    let frame = cache.get(key);
    if (frame === undefined) {
      frame = make(this.payload);
      cache.set(key, frame);
    }
    return frame;
  }
}
