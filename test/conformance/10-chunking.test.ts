/**
 * Autobahn section 10 is about the sender's auto-fragmentation; a server library's echo decides
 * its own framing, so we turn the rule around: however the client's bytes and frames are cut —
 * one byte per TCP write, small frames — the message echoes intact, and the server's echo is one
 * well-formed unfragmented, unmasked frame.
 */
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { upgradeRequest } from '../helpers/raw.js';
import {
  OP,
  TRANSPORT,
  WAIT,
  binaryPayload,
  closePayload,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectPong,
  fragmentFrames,
  sendChopped,
  sleep,
  textPayload,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();

describe('10.1 chunking on the wire', () => {
  test('10.1.1 65536-byte text sent as 1300-byte frames (client auto-fragmentation) → one intact echo', async () => {
    const c = await server.connect();
    const payload = textPayload(65536, '*');
    c.sendRaw(fragmentFrames(OP.TEXT, payload, 1300));
    await expectEcho(c, OP.TEXT, payload);
    await expectCleanClose(c);
  });

  test('10.1.2 multi-byte UTF-8 text, one byte per TCP write → echo intact', async () => {
    const c = await server.connect();
    const payload = Buffer.from('Hello-µ@ßöäüàá-UTF-8!! κόσμε 😀 \u{10FFFF}'.repeat(8), 'utf8');
    await sendChopped(c, encodeClientFrame(OP.TEXT, payload), 1);
    await expectEcho(c, OP.TEXT, payload);
    await expectCleanClose(c);
  });

  test('10.1.3 2000-byte binary (16-bit length), one byte per TCP write → echo intact', async () => {
    const c = await server.connect();
    const payload = binaryPayload(2000);
    await sendChopped(c, encodeClientFrame(OP.BINARY, payload), 1);
    await expectEcho(c, OP.BINARY, payload);
    await expectCleanClose(c);
  });

  test('10.1.4 65536-byte binary (64-bit length), one byte per TCP write for the header and mask, then 1 KiB writes → echo intact', async () => {
    const c = await server.connect();
    const payload = binaryPayload(65536);
    const frame = encodeClientFrame(OP.BINARY, payload);
    await sendChopped(c, frame.subarray(0, 14), 1);
    await sendChopped(c, frame.subarray(14), 1024);
    await expectEcho(c, OP.BINARY, payload);
    await expectCleanClose(c);
  });

  test('10.1.5 fragmented text with a ping between fragments, one byte per TCP write → pong, then echo intact', async () => {
    const c = await server.connect();
    const text = Buffer.from('κόσμε', 'utf8');
    const bytes = Buffer.concat([
      encodeClientFrame(OP.TEXT, text.subarray(0, 3), { fin: false }),
      encodeClientFrame(OP.PING, 'byte by byte'),
      encodeClientFrame(OP.CONT, text.subarray(3)),
    ]);
    await sendChopped(c, bytes, 1);
    await expectPong(c, 'byte by byte');
    await expectEcho(c, OP.TEXT, text);
    await expectCleanClose(c);
  });

  test('10.1.6 20 messages in one TCP write → 20 echoes in order', async () => {
    const c = await server.connect();
    const messages = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? Buffer.from(`message ${i}`) : binaryPayload(i * 37)));
    c.sendRaw(Buffer.concat(messages.map((m, i) => encodeClientFrame(i % 2 === 0 ? OP.TEXT : OP.BINARY, m))));
    for (let i = 0; i < messages.length; i++) await expectEcho(c, i % 2 === 0 ? OP.TEXT : OP.BINARY, messages[i] as Buffer);
    await expectCleanClose(c);
  });

  // HTTP/1.1 only: the case is about the bytes of an HTTP/1.1 upgrade request and its 101 (a frame
  // that arrives in the request's own TCP write becomes the upgrade's `head`). Over HTTP/2 there
  // is no request text and no `head`: the handshake is a HEADERS frame and every WebSocket byte
  // comes as the stream's DATA, so the case means nothing there (the h2c server does not even
  // speak HTTP/1.1), and the h2c project skips it.
  test.skipIf(TRANSPORT === 'h2')('10.1.7 a frame in the same TCP write as the upgrade request → 101, then the echo', async () => {
    // Bytes that arrive with the request reach the server as the upgrade's `head`.
    const socket = net.connect(server.port(), '127.0.0.1');
    const received: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => {});
    try {
      socket.write(Buffer.concat([Buffer.from(upgradeRequest('/echo')), encodeClientFrame(OP.TEXT, 'early bird')]));
      const echo = Buffer.concat([Buffer.from([0x81, 10]), Buffer.from('early bird')]);
      const deadline = Date.now() + WAIT;
      let all = Buffer.alloc(0);
      for (;;) {
        all = Buffer.concat(received);
        const end = all.indexOf('\r\n\r\n');
        if (end !== -1 && all.length >= end + 4 + echo.length) break;
        if (Date.now() > deadline) throw new Error(`no echo within ${WAIT} ms: ${JSON.stringify(all.toString('latin1'))}`);
        await sleep(10);
      }
      const end = all.indexOf('\r\n\r\n');
      expect(all.subarray(0, all.indexOf('\r\n')).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      expect(all.subarray(end + 4).toString('hex')).toBe(echo.toString('hex'));
      // Clean close: server answers 1000 and closes TCP.
      socket.write(encodeClientFrame(OP.CLOSE, closePayload(1000)));
      const timer = sleep(WAIT).then(() => 'timeout');
      expect(await Promise.race([closed.then(() => 'closed'), timer])).toBe('closed');
      const rest = Buffer.concat(received).subarray(end + 4 + echo.length);
      expect(rest.toString('hex')).toBe('880203e8');
    } finally {
      socket.destroy();
    }
  });
});

/** A small seeded PRNG (mulberry32), so a failing random case can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random text mixing 1- to 4-byte code points (never surrogates). */
function randomText(rand: () => number, codePoints: number): string {
  let out = '';
  for (let i = 0; i < codePoints; i++) {
    const r = rand();
    let cp: number;
    if (r < 0.4) cp = 0x20 + Math.floor(rand() * 0x5f);
    else if (r < 0.6) cp = 0x80 + Math.floor(rand() * (0x800 - 0x80));
    else if (r < 0.8) {
      cp = 0x800 + Math.floor(rand() * (0x10000 - 0x800));
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    } else cp = 0x10000 + Math.floor(rand() * (0x110000 - 0x10000));
    out += String.fromCodePoint(cp);
  }
  return out;
}

describe('10.2 random fragmentation and chunking (beyond Autobahn)', () => {
  const SEEDS = [1, 6455, 0xc0ffee];
  SEEDS.forEach((seed, i) => {
    test(`10.2.${i + 1} 200 random text/binary messages, random fragments (splitting code points), pings between fragments, random TCP chops (seed ${seed}) → every pong and echo, in order`, async () => {
      const rand = prng(seed);
      const c = await server.connect();
      const wire: Buffer[] = [];
      const expected: { opcode: number; payload: Buffer }[] = [];
      for (let m = 0; m < 200; m++) {
        const isText = rand() < 0.6;
        const payload = isText ? Buffer.from(randomText(rand, Math.floor(rand() * 200)), 'utf8') : Buffer.from(Array.from({ length: Math.floor(rand() * 600) }, () => Math.floor(rand() * 256)));
        // Cut points anywhere, even inside a code point; 1 to 8 fragments.
        const cuts = Array.from({ length: Math.floor(rand() * 8) }, () => Math.floor(rand() * (payload.length + 1))).sort((a, b) => a - b);
        const bounds = [0, ...cuts, payload.length];
        for (let k = 0; k < bounds.length - 1; k++) {
          const last = k === bounds.length - 2;
          wire.push(encodeClientFrame(k === 0 ? (isText ? OP.TEXT : OP.BINARY) : OP.CONT, payload.subarray(bounds[k], bounds[k + 1]), { fin: last }));
          if (!last && rand() < 0.3) {
            const ping = Buffer.from(`ping ${m}.${k}`);
            wire.push(encodeClientFrame(OP.PING, ping));
            expected.push({ opcode: OP.PONG, payload: ping });
          }
        }
        expected.push({ opcode: isText ? OP.TEXT : OP.BINARY, payload });
      }
      const bytes = Buffer.concat(wire);
      // Random TCP writes of 1 to 300 bytes.
      for (let off = 0; off < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 300);
        c.sendRaw(bytes.subarray(off, off + n));
        off += n;
        if (rand() < 0.1) await sleep(0);
      }
      for (const e of expected) {
        if (e.opcode === OP.PONG) await expectPong(c, e.payload);
        else await expectEcho(c, e.opcode, e.payload);
      }
      await expectCleanClose(c);
    });
  });
});
