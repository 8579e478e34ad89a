/**
 * The binary envelope publishes cross processes in: version, flags, the publisher's id, the
 * topic and the payload's bytes as they are (no JSON, no base64).
 */
import { Buffer } from 'node:buffer';
import { expect, test } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../../src/pubsub/envelope.js';

const origin = Buffer.from('0102030405060708', 'hex');

test('text round-trips as UTF-8 and binary as its bytes; the layout is version, flags, id, topic length, topic, payload', () => {
  const { envelope, payloadStart } = encodeEnvelope(origin, 'room:ü', 'hé 😀');
  expect(envelope.subarray(0, 12)).toEqual(Buffer.from([1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 7]));
  expect(envelope.subarray(12, payloadStart).toString()).toBe('room:ü');
  expect(envelope.subarray(payloadStart)).toEqual(Buffer.from('hé 😀'));
  expect(decodeEnvelope(envelope)).toEqual({ origin, topic: 'room:ü', binary: false, payload: Buffer.from('hé 😀') });
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const bin = encodeEnvelope(origin, 't', bytes).envelope;
  expect(bin[1]).toBe(1);
  const decoded = decodeEnvelope(new Uint8Array(bin.buffer, bin.byteOffset, bin.length));
  expect(decoded?.binary).toBe(true);
  expect(decoded?.payload).toEqual(bytes);
  expect(encodeEnvelope(origin, 't', '').envelope.length).toBe(13);
});

test('anything else decodes to null: too short, another version, unknown flags, a topic longer than the message', () => {
  const good = encodeEnvelope(origin, 'topic', 'x').envelope;
  expect(decodeEnvelope(good.subarray(0, 11))).toBeNull();
  expect(decodeEnvelope(Buffer.concat([Buffer.from([2]), good.subarray(1)]))).toBeNull();
  const flags = Buffer.from(good);
  flags[1] = 2;
  expect(decodeEnvelope(flags)).toBeNull();
  const long = Buffer.from(good);
  long.writeUInt16BE(200, 10);
  expect(decodeEnvelope(long)).toBeNull();
});
