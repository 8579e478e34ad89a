/**
 * Autobahn section 1 — framing: text (1.1.x) and binary (1.2.x) messages of every length-field
 * boundary echo intact (RFC 6455 §5.2: 7-bit, 16-bit and 64-bit payload lengths).
 */
import { describe, test } from 'vitest';
import {
  OP,
  binaryPayload,
  bigFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  sendChopped,
  textPayload,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();

const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

describe('1.1 text messages', () => {
  LENGTHS.forEach((length, i) => {
    test(`1.1.${i + 1} text message, payload ${length}`, async () => {
      const c = await server.connect();
      const payload = textPayload(length, '*');
      c.sendRaw(bigFrame(OP.TEXT, payload));
      await expectEcho(c, OP.TEXT, payload);
      await expectCleanClose(c);
    });
  });

  test('1.1.8 text message, payload 65536, sent in chops of 997 octets', async () => {
    const c = await server.connect();
    const payload = textPayload(65536, '*');
    await sendChopped(c, bigFrame(OP.TEXT, payload), 997);
    await expectEcho(c, OP.TEXT, payload);
    await expectCleanClose(c);
  });
});

describe('1.2 binary messages', () => {
  LENGTHS.forEach((length, i) => {
    test(`1.2.${i + 1} binary message, payload ${length}`, async () => {
      const c = await server.connect();
      const payload = binaryPayload(length);
      c.sendRaw(bigFrame(OP.BINARY, payload));
      await expectEcho(c, OP.BINARY, payload);
      await expectCleanClose(c);
    });
  });

  test('1.2.8 binary message, payload 65536, sent in chops of 997 octets', async () => {
    const c = await server.connect();
    const payload = binaryPayload(65536);
    await sendChopped(c, bigFrame(OP.BINARY, payload), 997);
    await expectEcho(c, OP.BINARY, payload);
    await expectCleanClose(c);
  });
});

describe('1.3 length encodings (beyond Autobahn)', () => {
  // RFC 6455 §5.2 asks the sender for the minimal length encoding but gives the receiver no rule
  // to reject a longer one; a lenient receiver must still read the length correctly.
  test('1.3.1 text "Hello" with its length in the 16-bit field (non-minimal) still echoes', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, 'Hello', { lengthBits: 16 });
    await expectEcho(c, OP.TEXT, 'Hello');
    await expectCleanClose(c);
  });

  test('1.3.2 binary 200 bytes with its length in the 64-bit field (non-minimal) still echoes', async () => {
    const c = await server.connect();
    const payload = binaryPayload(200);
    c.send(OP.BINARY, payload, { lengthBits: 64 });
    await expectEcho(c, OP.BINARY, payload);
    await expectCleanClose(c);
  });

  test('1.3.3 64-bit length with the most significant bit set fails with 1002', async () => {
    const c = await server.connect();
    // RFC 6455 §5.2: "the most significant bit MUST be 0".
    const head = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]);
    c.sendRaw(head);
    await expectFail(c, 1002);
  });

  test('1.3.4 unmasked client frame fails with 1002', async () => {
    const c = await server.connect();
    // RFC 6455 §5.1: a server MUST close the connection upon receiving an unmasked frame.
    c.send(OP.TEXT, 'Hello', { mask: false });
    await expectFail(c, 1002);
  });
});
