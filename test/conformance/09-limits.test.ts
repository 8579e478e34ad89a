/**
 * Autobahn section 9 — limits and performance, against the `/big` route, whose Behavior class
 * raises the per-route limits (static maxPayload = 16 MiB, maxFragments = 70,000). Large
 * messages, messages in many fragments, and messages chopped into small TCP writes all echo
 * intact. Nothing here asserts wall-clock time: only that every case completes within a
 * generous bound.
 */
import { describe, expect, test } from 'vitest';
import {
  BigEcho,
  OP,
  bigFrame,
  binaryPayload,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  fragmentFrames,
  sendChopped,
  textPayload,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const KiB = 1024;
const MiB = 1024 * 1024;
/** Bound for any one big echo (a generous ceiling, not a performance claim). */
const BIG_WAIT = 30_000;
const CASE_TIMEOUT = 60_000;

function size(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`;
}

function payloadFor(opcode: number, length: number): Buffer {
  return opcode === OP.TEXT ? textPayload(length) : binaryPayload(length);
}

describe('9.0 the raised limits are the route\'s', () => {
  test('9.0.1 the /big route class carries maxPayload 16 MiB and maxFragments 70,000', () => {
    expect(BigEcho.maxPayload).toBe(16 * MiB);
    expect(BigEcho.maxFragments).toBe(70_000);
  });

  test('9.0.2 /big: 16 MiB + 1 byte is still refused with 1009, decided from the header alone', async () => {
    const c = await server.connect('/big');
    c.sendRaw(bigFrame(OP.BINARY, Buffer.alloc(16 * MiB + 1)).subarray(0, 14));
    await expectFail(c, 1009);
  });

  test('9.0.3 /big: 70,001 fragments is still refused with 1008', async () => {
    const c = await server.connect('/big');
    const frames: Buffer[] = [];
    for (let i = 0; i < 70_001; i++) frames.push(encodeClientFrame(i === 0 ? OP.BINARY : OP.CONT, Buffer.from([i & 0xff]), { fin: false }));
    c.sendRaw(Buffer.concat(frames));
    await expectFail(c, 1008, BIG_WAIT);
  }, CASE_TIMEOUT);
});

const SIZES = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];

for (const [section, opcode, kind] of [
  ['9.1', OP.TEXT, 'text'],
  ['9.2', OP.BINARY, 'binary'],
] as const) {
  describe(`${section} large ${kind} messages`, () => {
    SIZES.forEach((length, i) => {
      test(`${section}.${i + 1} ${kind} message of ${size(length)} → echo intact`, async () => {
        const c = await server.connect('/big');
        const payload = payloadFor(opcode, length);
        c.sendRaw(bigFrame(opcode, payload));
        await expectEcho(c, opcode, payload, BIG_WAIT);
        await expectCleanClose(c);
      }, CASE_TIMEOUT);
    });
  });
}

// 64 B .. 4 MiB in powers of 4: 64, 256, 1 KiB, 4 KiB, 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB.
const FRAGMENT_SIZES = Array.from({ length: 9 }, (_, i) => 64 * 4 ** i);

for (const [section, opcode, kind] of [
  ['9.3', OP.TEXT, 'text'],
  ['9.4', OP.BINARY, 'binary'],
] as const) {
  describe(`${section} 4 MiB ${kind} message in fragments`, () => {
    FRAGMENT_SIZES.forEach((fragment, i) => {
      const count = (4 * MiB) / fragment;
      test(`${section}.${i + 1} 4 MiB ${kind} message in ${count} fragments of ${size(fragment)} → echo intact`, async () => {
        const c = await server.connect('/big');
        const payload = payloadFor(opcode, 4 * MiB);
        c.sendRaw(fragmentFrames(opcode, payload, fragment));
        await expectEcho(c, opcode, payload, BIG_WAIT);
        await expectCleanClose(c);
      }, CASE_TIMEOUT);
    });
  });
}

for (const [section, opcode, kind] of [
  ['9.5', OP.TEXT, 'text'],
  ['9.6', OP.BINARY, 'binary'],
] as const) {
  describe(`${section} ${kind} message in small TCP writes`, () => {
    // As Autobahn: 1 MiB in one frame, written in chops of 64 .. 2048 bytes.
    [64, 128, 256, 512, 1024, 2048].forEach((chop, i) => {
      test(`${section}.${i + 1} 1 MiB ${kind} message written in chops of ${chop} bytes → echo intact`, async () => {
        const c = await server.connect('/big');
        const payload = payloadFor(opcode, 1 * MiB);
        await sendChopped(c, bigFrame(opcode, payload), chop);
        await expectEcho(c, opcode, payload, BIG_WAIT);
        await expectCleanClose(c);
      }, CASE_TIMEOUT);
    });
  });
}

for (const [section, opcode, kind] of [
  ['9.7', OP.TEXT, 'text'],
  ['9.8', OP.BINARY, 'binary'],
] as const) {
  describe(`${section} many small ${kind} round trips`, () => {
    [0, 16, 64, 256, 1024, 4096].forEach((length, i) => {
      test(`${section}.${i + 1} 1000 ${kind} messages of ${length} bytes, one at a time → each echoed intact`, async () => {
        const c = await server.connect('/big');
        for (let n = 0; n < 1000; n++) {
          const payload = opcode === OP.TEXT ? textPayload(length, String(n % 10)) : binaryPayload(length);
          c.sendRaw(bigFrame(opcode, payload));
          await expectEcho(c, opcode, payload);
        }
        await expectCleanClose(c);
      }, CASE_TIMEOUT);
    });
  });
}

describe('9.9 the fragment limit, raised', () => {
  test('9.9.1 a 16 MiB-ish binary message in 65,537 fragments (255 B each) → accepted and echoed intact', async () => {
    const c = await server.connect('/big');
    const payload = binaryPayload(65_537 * 255);
    c.sendRaw(fragmentFrames(OP.BINARY, payload, 255));
    await expectEcho(c, OP.BINARY, payload, BIG_WAIT);
    await expectCleanClose(c);
  }, CASE_TIMEOUT);

  test('9.9.2 a 16 MiB text message in exactly 70,000 fragments (the limit) → echoed intact', async () => {
    const c = await server.connect('/big');
    // 69,999 fragments of 239 bytes and a last one carrying the rest: 16 MiB in total.
    const payload = textPayload(16 * MiB);
    const frames: Buffer[] = [];
    const piece = 239;
    for (let i = 0; i < 69_999; i++) frames.push(bigFrame(i === 0 ? OP.TEXT : OP.CONT, payload.subarray(i * piece, (i + 1) * piece), false));
    frames.push(bigFrame(OP.CONT, payload.subarray(69_999 * piece)));
    c.sendRaw(Buffer.concat(frames));
    await expectEcho(c, OP.TEXT, payload, BIG_WAIT);
    await expectCleanClose(c);
  }, CASE_TIMEOUT);
});
