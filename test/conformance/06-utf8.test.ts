/**
 * Autobahn section 6 — UTF-8 handling (RFC 6455 §5.6, §8.1): text messages must be valid UTF-8
 * (RFC 3629); valid text echoes intact however it is fragmented, and invalid text fails the
 * connection with 1007 — fast, on the fragment (or the TCP chunk) that carries the first byte
 * that cannot start or continue a valid sequence, before the client sends the rest.
 */
import { describe, expect, test } from 'vitest';
import { ALL_UTF8_CASES, KOSME, UTF8_GROUPS, type Utf8Case, firstInvalidAt } from './cases/utf8.js';
import {
  OP,
  type RawClient,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  expectPong,
  expectQuiet,
  framesOf,
  hex,
  sendChopped,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const bytesOf = (b: Buffer): Buffer[] => Array.from(b, (x) => Buffer.from([x]));

/** Every way we fragment a valid text; each must echo exactly `bytes`. */
async function echoEveryWay(c: RawClient, bytes: Buffer): Promise<void> {
  // Whole.
  c.send(OP.TEXT, bytes);
  await expectEcho(c, OP.TEXT, bytes);
  // Two fragments, split at every byte position (including inside code points).
  for (let k = 1; k < bytes.length; k++) {
    c.sendRaw(framesOf(OP.TEXT, [bytes.subarray(0, k), bytes.subarray(k)]));
    await expectEcho(c, OP.TEXT, bytes);
  }
  // One byte per fragment.
  if (bytes.length > 1) {
    c.sendRaw(framesOf(OP.TEXT, bytesOf(bytes)));
    await expectEcho(c, OP.TEXT, bytes);
  }
  // One frame, one byte per TCP write.
  await sendChopped(c, encodeClientFrame(OP.TEXT, bytes), 1);
  await expectEcho(c, OP.TEXT, bytes);
}

describe('6.0 the UTF-8 tables', () => {
  test('6.0.1 every table flag agrees with an independent decoder (WHATWG TextDecoder, fatal)', () => {
    const wrong = ALL_UTF8_CASES.filter((t) => (firstInvalidAt(t.bytes) === null) !== t.valid).map((t) => t.id);
    expect(wrong).toEqual([]);
  });
});

describe('6.1 empty text', () => {
  test('6.1.1 empty text message → empty echo', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, '');
    await expectEcho(c, OP.TEXT, '');
    await expectCleanClose(c);
  });

  test('6.1.2 text in 3 empty fragments → empty echo', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]));
    await expectEcho(c, OP.TEXT, '');
    await expectCleanClose(c);
  });

  test('6.1.3 text in 3 fragments, first and last empty → echo of the middle', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, [Buffer.alloc(0), Buffer.from('middle frame payload'), Buffer.alloc(0)]));
    await expectEcho(c, OP.TEXT, 'middle frame payload');
    await expectCleanClose(c);
  });
});

describe('6.2 valid UTF-8, fragmented', () => {
  const HELLO = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8');

  test('6.2.1 valid UTF-8 text in one frame → echo', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, HELLO);
    await expectEcho(c, OP.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('6.2.2 valid UTF-8 text in 2 fragments split on a code point boundary → echo', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, [Buffer.from('Hello-µ@ßöä'), Buffer.from('üàá-UTF-8!!')]));
    await expectEcho(c, OP.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('6.2.3 valid UTF-8 text in 1-byte fragments (splits inside code points) → echo', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, bytesOf(HELLO)));
    await expectEcho(c, OP.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('6.2.4 κόσμε in 1-byte fragments → echo', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, bytesOf(KOSME)));
    await expectEcho(c, OP.TEXT, KOSME);
    await expectCleanClose(c);
  });
});

// κόσμε, then a surrogate U+D800 (invalid exactly at byte 12, 0xa0), then "edited".
const INVALID_6_3 = Buffer.concat([KOSME, Buffer.from('eda080', 'hex'), Buffer.from('edited')]);

describe('6.3 invalid UTF-8', () => {
  test('6.3.1 invalid UTF-8 text in one frame → fail 1007, no echo', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, INVALID_6_3);
    await expectFail(c, 1007);
  });

  test('6.3.2 invalid UTF-8 text in 1-byte fragments → fail 1007, no echo', async () => {
    const c = await server.connect();
    c.sendRaw(framesOf(OP.TEXT, bytesOf(INVALID_6_3)));
    await expectFail(c, 1007);
  });
});

describe('6.4 fail fast on invalid UTF-8', () => {
  // κόσμε | U+110000 in the UTF-8 integer scheme (invalid at byte 12, 0x90) | "edited"
  const P1 = KOSME;
  const P2 = Buffer.from('f4908080', 'hex');
  const P3 = Buffer.from('edited');
  const ALL = Buffer.concat([P1, P2, P3]);

  test('6.4.1 3 fragments: valid, then the invalid code point → 1007 before the 3rd is sent', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, P1, { fin: false });
    await expectQuiet(c, 300);
    c.send(OP.CONT, P2, { fin: false });
    await expectFail(c, 1007);
  });

  test('6.4.2 3 fragments: valid up to byte 11 + 0xf4, then only the byte that breaks it → 1007 before the rest', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, ALL.subarray(0, 12), { fin: false });
    await expectQuiet(c, 300);
    c.send(OP.CONT, ALL.subarray(12, 13), { fin: false });
    await expectFail(c, 1007);
  });

  test('6.4.3 one frame in 3 TCP chops: valid, then the invalid code point → 1007 before the rest of the frame', async () => {
    const c = await server.connect();
    const frame = encodeClientFrame(OP.TEXT, ALL);
    const head = frame.length - ALL.length;
    c.sendRaw(frame.subarray(0, head + P1.length));
    await expectQuiet(c, 300);
    c.sendRaw(frame.subarray(head + P1.length, head + P1.length + P2.length));
    await expectFail(c, 1007);
  });

  test('6.4.4 one frame in 3 TCP chops: up to 0xf4, then only the byte that breaks it → 1007 before the rest of the frame', async () => {
    const c = await server.connect();
    const frame = encodeClientFrame(OP.TEXT, ALL);
    const head = frame.length - ALL.length;
    c.sendRaw(frame.subarray(0, head + 12));
    await expectQuiet(c, 300);
    c.sendRaw(frame.subarray(head + 12, head + 13));
    await expectFail(c, 1007);
  });
});

function describeCase(t: Utf8Case): string {
  return `0x${hex(t.bytes)}`;
}

for (const g of UTF8_GROUPS) {
  describe(`${g.section} ${g.title}`, () => {
    for (const t of g.cases) {
      if (t.valid) {
        test(`${t.id} valid ${describeCase(t)} → echo intact, whole and fragmented at every byte position`, async () => {
          const c = await server.connect();
          await echoEveryWay(c, t.bytes);
          await expectCleanClose(c);
        });
        continue;
      }

      test(`${t.id} invalid ${describeCase(t)} in one frame → fail 1007, no echo`, async () => {
        const c = await server.connect();
        c.send(OP.TEXT, t.bytes);
        await expectFail(c, 1007);
      });

      const at = firstInvalidAt(t.bytes);
      if (typeof at === 'number') {
        test(`${t.id} fail-fast: first fragment ${describeCase({ ...t, bytes: t.bytes.subarray(0, at) })} (up to the first bad byte) → 1007 before the rest is sent`, async () => {
          const c = await server.connect();
          c.send(OP.TEXT, t.bytes.subarray(0, at), { fin: false });
          await expectFail(c, 1007);
        });
      } else {
        test(`${t.id} truncated at the end: first fragment ${describeCase(t)} is a valid prefix (no close yet), then an empty final fragment → 1007`, async () => {
          const c = await server.connect();
          c.send(OP.TEXT, t.bytes, { fin: false });
          await expectQuiet(c, 100);
          c.send(OP.CONT, Buffer.alloc(0));
          await expectFail(c, 1007);
        });
      }
    }
  });
}

describe('6.25 UTF-8 state across fragments and control frames (beyond Autobahn)', () => {
  test('6.25.1 a 4-byte emoji split across fragments with a ping between → pong, then echo intact', async () => {
    const c = await server.connect();
    const emoji = Buffer.from('😀', 'utf8');
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.TEXT, emoji.subarray(0, 2), { fin: false }),
        encodeClientFrame(OP.PING, 'mid-code-point'),
        encodeClientFrame(OP.CONT, emoji.subarray(2)),
      ]),
    );
    await expectPong(c, 'mid-code-point');
    await expectEcho(c, OP.TEXT, emoji);
    await expectCleanClose(c);
  });

  test('6.25.2 an invalid text after a valid one does not poison earlier state: valid echoes, then 1007', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.TEXT, KOSME), encodeClientFrame(OP.TEXT, Buffer.from([0xce]))]));
    await expectEcho(c, OP.TEXT, KOSME);
    await expectFail(c, 1007);
  });

  test('6.25.3 a message ending mid code point does not leak into the next: "ce" FIN, then "ba" → 1007 on the first', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.TEXT, Buffer.from([0xce])), encodeClientFrame(OP.TEXT, Buffer.from([0xba]))]));
    await expectFail(c, 1007);
  });

  test('6.25.4 binary messages are never UTF-8 checked: invalid bytes as binary echo intact', async () => {
    const c = await server.connect();
    const bytes = Buffer.from('c0afeda080fffe', 'hex');
    c.send(OP.BINARY, bytes);
    await expectEcho(c, OP.BINARY, bytes);
    await expectCleanClose(c);
  });
});
