/**
 * A data message sent to many connections (broadcast, publish): framed once, and — for the
 * connections that compress with `server_no_context_takeover` — compressed once per parameter
 * set, so a fan-out costs one deflate however many sockets it reaches (RFC 7692 §7.2.3 makes the
 * shared bytes valid only where the compressor resets after every message).
 */
import { Buffer } from 'node:buffer';
import type { Frame } from '../protocol/framer.js';

export class OutgoingMessage {
  /** The uncompressed frame, written as is to connections that do not compress it. */
  readonly frame: Frame;
  readonly opcode: number;
  /** The payload's length in bytes. */
  readonly length: number;
  /** Compressed frames by the compressor's parameter key. */
  private compressed: Map<string, Frame | Promise<Frame>> | null = null;

  constructor(opcode: number, frame: Frame) {
    this.opcode = opcode;
    this.frame = frame;
    this.length = payloadLengthOf(frame);
  }

  /** The payload bytes (a view into the frame, no copy). */
  get payload(): Buffer {
    const f = this.frame;
    return Buffer.isBuffer(f) ? f.subarray(headerLength(f)) : f[1];
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

/** The payload length of an unmasked frame (a server's), from its bytes. */
export function payloadLengthOf(frame: Frame): number {
  return Buffer.isBuffer(frame) ? frame.length - headerLength(frame) : frame[1].length;
}

/** The header length of an unmasked frame held in one buffer (RFC 6455 §5.2). */
function headerLength(frame: Buffer): number {
  const n = (frame[1] as number) & 0x7f;
  return n === 127 ? 10 : n === 126 ? 4 : 2;
}
