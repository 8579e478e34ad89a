/**
 * Autobahn section 2 — pings and pongs (RFC 6455 §5.5.2, §5.5.3): a ping is answered by a pong
 * with the identical payload, a control frame over 125 bytes fails the connection, and an
 * unsolicited pong is ignored.
 */
import { describe, test } from 'vitest';
import {
  OP,
  closePayload,
  encodeClientFrame,
  expectCleanClose,
  expectFail,
  expectPong,
  expectQuiet,
  sendChopped,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();

describe('2 ping/pong', () => {
  test('2.1 ping with empty payload → pong with empty payload', async () => {
    const c = await server.connect();
    c.send(OP.PING);
    await expectPong(c, Buffer.alloc(0));
    await expectCleanClose(c);
  });

  test('2.2 ping with small text payload → pong with the same payload', async () => {
    const c = await server.connect();
    c.send(OP.PING, 'Hello, world!');
    await expectPong(c, 'Hello, world!');
    await expectCleanClose(c);
  });

  test('2.3 ping with small binary payload (non UTF-8) → pong with the same payload', async () => {
    const c = await server.connect();
    const payload = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
    c.send(OP.PING, payload);
    await expectPong(c, payload);
    await expectCleanClose(c);
  });

  test('2.4 ping with 125-byte binary payload → pong with the same payload', async () => {
    const c = await server.connect();
    const payload = Buffer.alloc(125, 0xfe);
    c.send(OP.PING, payload);
    await expectPong(c, payload);
    await expectCleanClose(c);
  });

  test('2.5 ping with 126-byte payload (control frame too long) → fail 1002, no pong', async () => {
    const c = await server.connect();
    c.send(OP.PING, Buffer.alloc(126, 0xfe));
    await expectFail(c, 1002);
  });

  test('2.6 ping with 125-byte payload sent byte by byte → pong with the same payload', async () => {
    const c = await server.connect();
    const payload = Buffer.alloc(125, 0xfe);
    await sendChopped(c, encodeClientFrame(OP.PING, payload), 1);
    await expectPong(c, payload);
    await expectCleanClose(c);
  });

  test('2.7 unsolicited pong with empty payload is ignored (no answer, still open)', async () => {
    const c = await server.connect();
    c.send(OP.PONG);
    await expectQuiet(c);
    await expectCleanClose(c);
  });

  test('2.8 unsolicited pong with payload is ignored (no answer, still open)', async () => {
    const c = await server.connect();
    c.send(OP.PONG, 'unsolicited pong payload');
    await expectQuiet(c);
    await expectCleanClose(c);
  });

  test('2.9 unsolicited pong, then ping → only the pong for the ping', async () => {
    const c = await server.connect();
    c.send(OP.PONG, 'unsolicited pong payload');
    c.send(OP.PING, 'ping payload');
    await expectPong(c, 'ping payload');
    await expectQuiet(c);
    await expectCleanClose(c);
  });

  test('2.10 10 pings with payload → 10 pongs, in order, each with its payload', async () => {
    const c = await server.connect();
    for (let i = 0; i < 10; i++) c.send(OP.PING, `payload-${i}`);
    for (let i = 0; i < 10; i++) await expectPong(c, `payload-${i}`);
    await expectQuiet(c);
    await expectCleanClose(c);
  });

  test('2.11 10 pings with payload, sent byte by byte → 10 pongs, in order', async () => {
    const c = await server.connect();
    const bytes = Buffer.concat(Array.from({ length: 10 }, (_, i) => encodeClientFrame(OP.PING, `payload-${i}`)));
    await sendChopped(c, bytes, 1);
    for (let i = 0; i < 10; i++) await expectPong(c, `payload-${i}`);
    await expectQuiet(c);
    await expectCleanClose(c);
  });

  test('2.12 ping with a 126-byte payload sent in its 16-bit length form → fail 1002 (beyond Autobahn)', async () => {
    const c = await server.connect();
    // The same violation as 2.5 when the length is decided only by the extended field.
    c.send(OP.PING, Buffer.alloc(200, 0x41), { lengthBits: 16 });
    await expectFail(c, 1002);
  });

  test('2.13 pong with a 126-byte payload → fail 1002 (beyond Autobahn)', async () => {
    const c = await server.connect();
    c.send(OP.PONG, Buffer.alloc(126, 0x41));
    await expectFail(c, 1002);
  });

  test('2.14 ping after the close frame is not answered (as 7.1.3): only the close answer, then TCP close', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.CLOSE, closePayload(1000)), encodeClientFrame(OP.PING, 'too late')]));
    await expectFail(c, 1000); // one close frame, no pong before or after it, TCP closed
  });
});
