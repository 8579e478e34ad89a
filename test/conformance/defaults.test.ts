/**
 * The safe defaults (DESIGN.md: "no 100 MiB messages"), on the `/echo` route with default
 * handler options: maxPayload 1 MiB (1,048,576 bytes, inclusive) → over it 1009 (RFC 6455 §7.4.1
 * "message too big"), decided from the frame header before any payload is buffered; and
 * maxFragments 1024 → over it 1008 (policy violation), decided from the offending frame's header.
 */
import { describe, test } from 'vitest';
import {
  OP,
  bigFrame,
  binaryPayload,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  expectPong,
  fragmentFrames,
  textPayload,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const MiB = 1024 * 1024;

/** The header (with mask key) of a masked frame of `length` bytes, and nothing else. */
function headerOnly(opcode: number, length: number, fin = true): Buffer {
  const head = Buffer.alloc(14);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(length), 2);
  head.writeUInt32BE(0x11223344, 10);
  return head;
}

describe('default maxPayload: 1 MiB', () => {
  test('D.1 text message of exactly 1 MiB → echo intact (the limit is inclusive)', async () => {
    const c = await server.connect();
    const payload = textPayload(MiB);
    c.sendRaw(bigFrame(OP.TEXT, payload));
    await expectEcho(c, OP.TEXT, payload, 10_000);
    await expectCleanClose(c);
  });

  test('D.2 text message of 1 MiB + 1 byte, header only sent → 1009 without waiting for the payload', async () => {
    const c = await server.connect();
    c.sendRaw(headerOnly(OP.TEXT, MiB + 1));
    await expectFail(c, 1009);
  });

  test('D.3 binary message of 1 MiB + 1 byte, header only sent → 1009', async () => {
    const c = await server.connect();
    c.sendRaw(headerOnly(OP.BINARY, MiB + 1));
    await expectFail(c, 1009);
  });

  test('D.4 header claiming 2^63 - 1 bytes → 1009 from the header', async () => {
    const c = await server.connect();
    const head = headerOnly(OP.BINARY, 0);
    head.writeBigUInt64BE(2n ** 63n - 1n, 2);
    c.sendRaw(head);
    await expectFail(c, 1009);
  });

  test('D.5 fragments adding up past 1 MiB: 1 MiB sent, then the header of a 1-byte continuation → 1009', async () => {
    const c = await server.connect();
    c.sendRaw(bigFrame(OP.BINARY, binaryPayload(MiB), false));
    c.sendRaw(encodeClientFrame(OP.CONT, Buffer.from([1])).subarray(0, 6)); // header + key, no payload
    await expectFail(c, 1009);
  });

  test('D.5b the whole 2 MiB frame sent at once → the 1009 close frame still arrives intact, then TCP closes', async () => {
    const c = await server.connect();
    // The server must not reset the connection while unread payload is still arriving, or the
    // close frame could be lost (RFC 6455 §7.1.1: close TCP cleanly after the close frame).
    c.sendRaw(bigFrame(OP.BINARY, binaryPayload(2 * MiB)));
    await expectFail(c, 1009, 10_000);
  });

  test('D.6 a 1009 refusal is not an echo: the earlier message still echoes first', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.TEXT, 'before'), headerOnly(OP.TEXT, 2 * MiB)]));
    await expectEcho(c, OP.TEXT, 'before');
    await expectFail(c, 1009);
  });
});

describe('default maxFragments: 1024', () => {
  test('D.7 message in exactly 1024 fragments → echo intact (the limit is inclusive)', async () => {
    const c = await server.connect();
    const payload = binaryPayload(1024 * 3);
    c.sendRaw(fragmentFrames(OP.BINARY, payload, 3));
    await expectEcho(c, OP.BINARY, payload);
    await expectCleanClose(c);
  });

  test('D.8 message in 1025 fragments → 1008, no echo', async () => {
    const c = await server.connect();
    const payload = textPayload(1025);
    c.sendRaw(fragmentFrames(OP.TEXT, payload, 1));
    await expectFail(c, 1008);
  });

  test('D.9 1024 fragments without FIN, then only the header of the 1025th → 1008 from that header', async () => {
    const c = await server.connect();
    const frames: Buffer[] = [];
    for (let i = 0; i < 1024; i++) frames.push(encodeClientFrame(i === 0 ? OP.TEXT : OP.CONT, 'x', { fin: false }));
    frames.push(encodeClientFrame(OP.CONT, 'y').subarray(0, 6));
    c.sendRaw(Buffer.concat(frames));
    await expectFail(c, 1008);
  });

  test('D.10 control frames between fragments do not count: 1024 fragments with 100 pings between → pongs, then echo', async () => {
    const c = await server.connect();
    const frames: Buffer[] = [];
    for (let i = 0; i < 1024; i++) {
      frames.push(encodeClientFrame(i === 0 ? OP.TEXT : OP.CONT, 'z', { fin: i === 1023 }));
      if (i % 10 === 5 && i < 1000) frames.push(encodeClientFrame(OP.PING, `p${i}`));
    }
    c.sendRaw(Buffer.concat(frames));
    for (let i = 5; i < 1000; i += 10) await expectPong(c, `p${i}`);
    await expectEcho(c, OP.TEXT, 'z'.repeat(1024));
    await expectCleanClose(c);
  });
});
