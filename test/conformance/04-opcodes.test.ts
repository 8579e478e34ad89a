/**
 * Autobahn section 4 — opcodes (RFC 6455 §5.2): reserved non-control opcodes 0x3–0x7 (4.1.x)
 * and reserved control opcodes 0xB–0xF (4.2.x) fail the connection with 1002. A message
 * received before the bad frame is still echoed first; a ping after it is not answered.
 */
import { describe, test } from 'vitest';
import {
  OP,
  encodeClientFrame,
  expectEcho,
  expectFail,
  sendChopped,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const HELLO = 'Hello, world!';

/** Autobahn's five shapes per reserved opcode range, applied to `[o1..o5]`. */
function cases(section: string, what: string, opcodes: number[]): void {
  const [a, b, c3, d, e] = opcodes as [number, number, number, number, number];
  const hex = (o: number): string => `0x${o.toString(16).toUpperCase()}`;

  test(`${section}.1 ${what} opcode ${hex(a)}, empty → fail 1002`, async () => {
    const c = await server.connect();
    c.send(a);
    await expectFail(c, 1002);
  });

  test(`${section}.2 ${what} opcode ${hex(b)}, with payload → fail 1002`, async () => {
    const c = await server.connect();
    c.send(b, 'reserved opcode payload');
    await expectFail(c, 1002);
  });

  test(`${section}.3 text, then ${what} opcode ${hex(c3)}, then ping → echo, then fail 1002, no pong`, async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.TEXT, HELLO), encodeClientFrame(c3), encodeClientFrame(OP.PING)]));
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });

  test(`${section}.4 text, then ${what} opcode ${hex(d)} with payload, then ping → echo, then fail 1002, no pong`, async () => {
    const c = await server.connect();
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.TEXT, HELLO),
        encodeClientFrame(d, 'reserved opcode payload'),
        encodeClientFrame(OP.PING),
      ]),
    );
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });

  test(`${section}.5 text, then ${what} opcode ${hex(e)} with payload, then ping, sent byte by byte → echo, then fail 1002`, async () => {
    const c = await server.connect();
    await sendChopped(
      c,
      Buffer.concat([
        encodeClientFrame(OP.TEXT, HELLO),
        encodeClientFrame(e, 'reserved opcode payload'),
        encodeClientFrame(OP.PING),
      ]),
      1,
    );
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });
}

describe('4.1 reserved non-control opcodes', () => {
  cases('4.1', 'non-control', [3, 4, 5, 6, 7]);
});

describe('4.2 reserved control opcodes', () => {
  cases('4.2', 'control', [0xb, 0xc, 0xd, 0xe, 0xf]);
});

describe('4.3 reserved opcodes inside a fragmented message (beyond Autobahn)', () => {
  const all = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];
  all.forEach((opcode, i) => {
    test(`4.3.${i + 1} text fragment, then opcode 0x${opcode.toString(16).toUpperCase()} (FIN), then the final fragment → fail 1002, no echo`, async () => {
      const c = await server.connect();
      c.sendRaw(
        Buffer.concat([
          encodeClientFrame(OP.TEXT, 'fragment1', { fin: false }),
          encodeClientFrame(opcode, 'x'),
          encodeClientFrame(OP.CONT, 'fragment2'),
        ]),
      );
      await expectFail(c, 1002);
    });
  });
});
