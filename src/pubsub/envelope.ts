/**
 * The binary envelope a publish crosses processes in: no JSON, no base64, the payload's bytes
 * as they are. Layout (big-endian):
 *
 * ```
 * 0      version (1)
 * 1      flags: bit 0 = binary (else the payload is UTF-8 text)
 * 2..9   the publishing handler's id (8 bytes): a node drops its own echoes
 * 10..11 topic length in bytes (UTF-8)
 * 12..   topic, then payload
 * ```
 */
import { Buffer } from 'node:buffer';

export const ENVELOPE_VERSION = 1;
const FLAG_BINARY = 1;
const HEAD = 12;

/** An envelope, read: views into the received bytes (no copy). */
export interface Envelope {
  /** The publisher's id as 8 bytes. */
  origin: Buffer;
  topic: string;
  binary: boolean;
  payload: Buffer;
}

/**
 * Builds an envelope for `topic` with the UTF-8 bytes of `text`, or the bytes of `data`; returns
 * it with the offset where the payload starts (the local frame takes its payload from there, so
 * text is encoded once).
 */
export function encodeEnvelope(origin: Buffer, topic: string, data: string | Buffer): { envelope: Buffer; payloadStart: number } {
  const topicBytes = Buffer.byteLength(topic);
  const binary = typeof data !== 'string';
  const payloadBytes = binary ? data.length : Buffer.byteLength(data);
  const payloadStart = HEAD + topicBytes;
  const envelope = Buffer.allocUnsafe(payloadStart + payloadBytes);
  envelope[0] = ENVELOPE_VERSION;
  envelope[1] = binary ? FLAG_BINARY : 0;
  origin.copy(envelope, 2, 0, 8);
  envelope.writeUInt16BE(topicBytes, 10);
  envelope.write(topic, HEAD, 'utf8');
  if (binary) envelope.set(data, payloadStart);
  else envelope.write(data, payloadStart, 'utf8');
  return { envelope, payloadStart };
}

/** Reads an envelope, or returns null when it is not one this version understands. */
export function decodeEnvelope(bytes: Uint8Array): Envelope | null {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEAD || b[0] !== ENVELOPE_VERSION) return null;
  const flags = b[1] as number;
  if ((flags & ~FLAG_BINARY) !== 0) return null;
  const topicBytes = b.readUInt16BE(10);
  const payloadStart = HEAD + topicBytes;
  if (payloadStart > b.length) return null;
  return {
    origin: b.subarray(2, 10),
    topic: b.toString('utf8', HEAD, payloadStart),
    binary: (flags & FLAG_BINARY) !== 0,
    payload: b.subarray(payloadStart),
  };
}
