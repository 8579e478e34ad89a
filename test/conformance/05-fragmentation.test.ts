/**
 * Autobahn section 5 — fragmentation (RFC 6455 §5.4): fragments of one message are joined in
 * order; control frames may be injected between fragments and are answered at once; control
 * frames must not be fragmented; a continuation needs an open message and a new data frame may
 * not start while one is open. Violations fail the connection with 1002.
 */
import { describe, expect, test } from 'vitest';
import {
  OP,
  binaryPayload,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  expectPong,
  expectQuiet,
  framesOf,
  sendChopped,
  sendEach,
  sleep,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const f = (opcode: number, payload: string | Buffer = '', fin = true): Buffer => encodeClientFrame(opcode, payload, { fin });

/** How a case's frames go on the wire: one write, a write per frame with a pause, or byte-wise. */
type Mode = 'one write' | 'a write per frame' | 'byte by byte';
async function deliver(c: Awaited<ReturnType<typeof server.connect>>, frames: Buffer[], mode: Mode): Promise<void> {
  if (mode === 'one write') c.sendRaw(Buffer.concat(frames));
  else if (mode === 'a write per frame') await sendEach(c, frames, 20);
  else await sendChopped(c, Buffer.concat(frames), 1);
}

describe('5.1–5.2 fragmented control frames', () => {
  test('5.1 ping in 2 fragments → fail 1002, no pong', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.PING, 'fragment1', false), f(OP.CONT, 'fragment2')]));
    await expectFail(c, 1002);
  });

  test('5.2 pong in 2 fragments → fail 1002', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.PONG, 'fragment1', false), f(OP.CONT, 'fragment2')]));
    await expectFail(c, 1002);
  });
});

describe('5.3–5.8 fragmented text, with and without a ping in between', () => {
  const modes: Mode[] = ['one write', 'a write per frame', 'byte by byte'];
  modes.forEach((mode, i) => {
    test(`5.${3 + i} text in 2 fragments (${mode}) → echo of the joined message`, async () => {
      const c = await server.connect();
      await deliver(c, [f(OP.TEXT, 'fragment1', false), f(OP.CONT, 'fragment2')], mode);
      await expectEcho(c, OP.TEXT, 'fragment1fragment2');
      await expectCleanClose(c);
    });
  });
  modes.forEach((mode, i) => {
    test(`5.${6 + i} text in 2 fragments with a ping between (${mode}) → pong, then echo`, async () => {
      const c = await server.connect();
      await deliver(c, [f(OP.TEXT, 'fragment1', false), f(OP.PING, 'ping payload'), f(OP.CONT, 'fragment2')], mode);
      await expectPong(c, 'ping payload');
      await expectEcho(c, OP.TEXT, 'fragment1fragment2');
      await expectCleanClose(c);
    });
  });
});

describe('5.9–5.18 continuation and start frames out of place', () => {
  const modes: Mode[] = ['one write', 'a write per frame', 'byte by byte'];
  modes.forEach((mode, i) => {
    test(`5.${9 + i} continuation (FIN) with nothing to continue, then text (${mode}) → fail 1002, no echo`, async () => {
      const c = await server.connect();
      await deliver(c, [f(OP.CONT, 'non-continuation payload'), f(OP.TEXT, 'Hello, world!')], mode);
      await expectFail(c, 1002);
    });
  });
  modes.forEach((mode, i) => {
    test(`5.${12 + i} continuation (no FIN) with nothing to continue, then text (${mode}) → fail 1002, no echo`, async () => {
      const c = await server.connect();
      await deliver(c, [f(OP.CONT, 'non-continuation payload', false), f(OP.TEXT, 'Hello, world!')], mode);
      await expectFail(c, 1002);
    });
  });

  test('5.15 text in 2 fragments, then a continuation with nothing to continue, then text → echo, then fail 1002', async () => {
    const c = await server.connect();
    c.sendRaw(
      Buffer.concat([
        f(OP.TEXT, 'fragment1', false),
        f(OP.CONT, 'fragment2'),
        f(OP.CONT, 'fragment3', false),
        f(OP.TEXT, 'fragment4'),
      ]),
    );
    await expectEcho(c, OP.TEXT, 'fragment1fragment2');
    await expectFail(c, 1002);
  });

  test('5.16 twice: continuation (no FIN) with nothing to continue, text in 2 fragments → fail 1002, no echo', async () => {
    const c = await server.connect();
    const round = [f(OP.CONT, 'fragment1', false), f(OP.TEXT, 'fragment2', false), f(OP.CONT, 'fragment3')];
    c.sendRaw(Buffer.concat([...round, ...round]));
    await expectFail(c, 1002);
  });

  test('5.17 twice: continuation (FIN) with nothing to continue, text in 2 fragments → fail 1002, no echo', async () => {
    const c = await server.connect();
    const round = [f(OP.CONT, 'fragment1'), f(OP.TEXT, 'fragment2', false), f(OP.CONT, 'fragment3')];
    c.sendRaw(Buffer.concat([...round, ...round]));
    await expectFail(c, 1002);
  });

  test('5.18 text fragment (no FIN), then a new text frame instead of a continuation → fail 1002, no echo', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.TEXT, 'fragment1', false), f(OP.TEXT, 'fragment2')]));
    await expectFail(c, 1002);
  });
});

describe('5.19–5.20 pings between fragments, with pauses', () => {
  const fragments = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
  const pings = ['pongme 1!', 'pongme 2!'];

  async function run(mode: 'one write per part' | 'a write per frame'): Promise<void> {
    const c = await server.connect();
    const part1 = [f(OP.TEXT, fragments[0], false), f(OP.CONT, fragments[1], false), f(OP.PING, pings[0])];
    const part2 = [f(OP.CONT, fragments[2], false), f(OP.CONT, fragments[3], false), f(OP.PING, pings[1]), f(OP.CONT, fragments[4])];
    if (mode === 'one write per part') c.sendRaw(Buffer.concat(part1));
    else await sendEach(c, part1, 20);
    // The first pong must come while the message is still open: before the rest is sent.
    await expectPong(c, pings[0] as string);
    await expectQuiet(c, 300);
    if (mode === 'one write per part') c.sendRaw(Buffer.concat(part2));
    else await sendEach(c, part2, 20);
    await expectPong(c, pings[1] as string);
    await expectEcho(c, OP.TEXT, fragments.join(''));
    await expectCleanClose(c);
  }

  test('5.19 text in 5 fragments, ping after 2, pause, 2 more, ping, last → both pongs at once, then the echo', async () => {
    await run('one write per part');
  });

  test('5.20 as 5.19, every frame its own write → both pongs at once, then the echo', async () => {
    await run('a write per frame');
  });
});

describe('5.21+ more fragmentation (beyond Autobahn)', () => {
  test('5.21 binary in 2 fragments → echo of the joined message', async () => {
    const c = await server.connect();
    const a = binaryPayload(100);
    const b = binaryPayload(300);
    c.sendRaw(framesOf(OP.BINARY, [a, b]));
    await expectEcho(c, OP.BINARY, Buffer.concat([a, b]));
    await expectCleanClose(c);
  });

  test('5.22 text in 100 fragments of varied sizes (some empty) → echo of the joined message', async () => {
    const c = await server.connect();
    const pieces = Array.from({ length: 100 }, (_, i) => Buffer.from('x'.repeat(i % 7) + String(i)));
    pieces[10] = Buffer.alloc(0);
    pieces[99] = Buffer.alloc(0);
    c.sendRaw(framesOf(OP.TEXT, pieces));
    await expectEcho(c, OP.TEXT, Buffer.concat(pieces));
    await expectCleanClose(c);
  });

  test('5.23 binary in 1000 fragments, with a ping every 100 → 10 pongs, then the echo', async () => {
    const c = await server.connect();
    const pieces = Array.from({ length: 1000 }, (_, i) => binaryPayload(1 + (i % 50)));
    const frames: Buffer[] = [];
    pieces.forEach((p, i) => {
      frames.push(f(i === 0 ? OP.BINARY : OP.CONT, p, i === pieces.length - 1));
      if (i % 100 === 50) frames.push(f(OP.PING, `ping ${i}`));
    });
    c.sendRaw(Buffer.concat(frames));
    for (let i = 50; i < 1000; i += 100) await expectPong(c, `ping ${i}`);
    await expectEcho(c, OP.BINARY, Buffer.concat(pieces));
    await expectCleanClose(c);
  });

  test('5.24 text in 4 fragments, 100 ms between each → echo only after the last, joined', async () => {
    const c = await server.connect();
    const parts = ['one ', 'two ', 'three ', 'four'];
    for (let i = 0; i < parts.length; i++) {
      c.sendRaw(f(i === 0 ? OP.TEXT : OP.CONT, parts[i], i === parts.length - 1));
      if (i < parts.length - 1) await expectQuiet(c, 100);
    }
    await expectEcho(c, OP.TEXT, parts.join(''));
    await expectCleanClose(c);
  });

  test('5.25 close in 2 fragments → fail 1002 (not a clean close)', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.CLOSE, Buffer.from([0x03, 0xe8]), false), f(OP.CONT, 'bye')]));
    await expectFail(c, 1002);
  });

  test('5.26 binary fragment (no FIN), then a new binary frame instead of a continuation → fail 1002', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.BINARY, 'a', false), f(OP.BINARY, 'b')]));
    await expectFail(c, 1002);
  });

  test('5.27 text fragment (no FIN), then a binary frame → fail 1002', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([f(OP.TEXT, 'a', false), f(OP.BINARY, 'b')]));
    await expectFail(c, 1002);
  });

  test('5.28 two fragmented messages back to back, text then binary, each echoed as its own type', async () => {
    const c = await server.connect();
    const bin = binaryPayload(64);
    c.sendRaw(
      Buffer.concat([
        f(OP.TEXT, 'ab', false),
        f(OP.CONT, 'cd'),
        f(OP.BINARY, bin.subarray(0, 10), false),
        f(OP.CONT, bin.subarray(10, 40), false),
        f(OP.CONT, bin.subarray(40)),
      ]),
    );
    await expectEcho(c, OP.TEXT, 'abcd');
    await expectEcho(c, OP.BINARY, bin);
    await expectCleanClose(c);
  });

  test('5.29 message fragmented across pauses with a pong and a ping between → pong answered, echo joined', async () => {
    const c = await server.connect();
    c.sendRaw(f(OP.BINARY, Buffer.from([1, 2]), false));
    await sleep(50);
    c.sendRaw(f(OP.PONG, 'unsolicited'));
    await sleep(50);
    c.sendRaw(f(OP.PING, 'mid'));
    await expectPong(c, 'mid');
    c.sendRaw(f(OP.CONT, Buffer.from([3, 4])));
    await expectEcho(c, OP.BINARY, Buffer.from([1, 2, 3, 4]));
    expect(c.tcpClosed).toBe(false);
    await expectCleanClose(c);
  });
});
