/**
 * The parser is correct for any chunking: the same stream fed whole, byte by byte, and in
 * seeded random pieces gives exactly the same events. Frames are built by the encoder below,
 * not by src/protocol/framer.ts.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ProtocolError } from '../../src/protocol/errors.js';
import { FrameParser, type ParserOptions, type ParserSink } from '../../src/protocol/parser.js';

interface FrameSpec {
  op: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  mask?: boolean;
  key?: readonly [number, number, number, number];
}

/** RFC 6455 §5.2 by hand; every frame gets its own masking key from `keySeed`. */
let keySeed = 0x1234567;
function frame(spec: FrameSpec): Buffer {
  const data = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : Buffer.from(spec.payload ?? []);
  const n = data.length;
  const masked = spec.mask ?? true;
  const m = masked ? 0x80 : 0;
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | spec.op];
  if (n < 126) head.push(m | n);
  else if (n < 65536) head.push(m | 126, n >> 8, n & 0xff);
  else head.push(m | 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  if (!masked) return Buffer.concat([Buffer.from(head), data]);
  keySeed = (Math.imul(keySeed, 1103515245) + 12345) >>> 0;
  const key = spec.key ?? [keySeed & 0xff, (keySeed >>> 8) & 0xff, (keySeed >>> 16) & 0xff, (keySeed >>> 24) | 1];
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = (data[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([Buffer.from(head), Buffer.from(key), body]);
}

function closeBody(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason, 'utf8');
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** mulberry32. */
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

/** Payload bytes are summarized (length + sha1) so a 70,000-byte message compares cheaply. */
function digest(data: Uint8Array): string {
  return `${data.length}:${createHash('sha1').update(data).digest('hex')}`;
}

class Recorder implements ParserSink {
  events: string[] = [];
  onMessage(data: Buffer, isText: boolean): void {
    this.events.push(`${isText ? 'text' : 'binary'} ${digest(data)}`);
  }
  onPing(data: Buffer): void {
    this.events.push(`ping ${data.toString('hex')}`);
  }
  onPong(data: Buffer): void {
    this.events.push(`pong ${data.toString('hex')}`);
  }
  onCloseFrame(code: number, reason: string): void {
    this.events.push(`close ${code} ${JSON.stringify(reason)}`);
  }
  onProtocolError(error: ProtocolError): void {
    this.events.push(`error ${error.code} ${error.closeCode}`);
  }
}

/** Feeds copies of the pieces (the parser unmasks in place). */
function run(stream: Buffer, sizes: Iterable<number>, options: ParserOptions, sink: Recorder = new Recorder()): string[] {
  const parser = new FrameParser(sink, options);
  let at = 0;
  for (const size of sizes) {
    if (at >= stream.length) break;
    parser.push(Buffer.from(stream.subarray(at, at + size)));
    at += size;
  }
  if (at < stream.length) parser.push(Buffer.from(stream.subarray(at)));
  return sink.events;
}

function* whole(): Generator<number> {
  yield Number.MAX_SAFE_INTEGER;
}
function* bytewise(): Generator<number> {
  for (;;) yield 1;
}
function* randomSizes(seed: number, max: number): Generator<number> {
  const rand = prng(seed);
  for (;;) yield 1 + Math.floor(rand() * max);
}

function bytes(length: number, seed: number): Buffer {
  const rand = prng(seed);
  return Buffer.from(Array.from({ length }, () => Math.floor(rand() * 256)));
}

const SERVER: ParserOptions = { expectMasked: true, maxPayload: 1 << 20, maxFragments: 100 };

interface Sample {
  name: string;
  stream: Buffer;
  options: ParserOptions;
  /** What the stream must produce (checked on the whole-stream run). */
  expected: string[];
}

const big = bytes(70_000, 1);
const bigText = 'ab€😀ü'.repeat(7000); // 7000 * 11 bytes = 77,000 bytes with code points at every alignment
const bigTextBytes = Buffer.from(bigText, 'utf8');

const samples: Sample[] = [
  {
    name: 'several small frames of every kind',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: 'hi' }),
      frame({ op: 0x2, payload: Uint8Array.of(1, 2, 3) }),
      frame({ op: 0x9, payload: 'ping' }),
      frame({ op: 0xa }),
      frame({ op: 0x1 }),
      frame({ op: 0x8, payload: closeBody(1000, 'bye') }),
    ]),
    options: SERVER,
    expected: [
      `text ${digest(Buffer.from('hi'))}`,
      `binary ${digest(Uint8Array.of(1, 2, 3))}`,
      'ping 70696e67',
      'pong ',
      `text ${digest(new Uint8Array(0))}`,
      'close 1000 "bye"',
    ],
  },
  {
    name: 'fragmented text with code points split across fragments and interleaved control frames',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: Buffer.from('h\xc3', 'latin1'), fin: false }),
      frame({ op: 0x9, payload: 'a' }),
      frame({ op: 0x0, payload: Buffer.from('\xa9 \xe2\x82', 'latin1'), fin: false }),
      frame({ op: 0x0, fin: false }),
      frame({ op: 0xa, payload: 'b' }),
      frame({ op: 0x0, payload: Buffer.from('\xac \xf0\x9f\x98\x80', 'latin1') }),
      frame({ op: 0x2, payload: Uint8Array.of(0xff), fin: false }),
      frame({ op: 0x0, payload: Uint8Array.of(0xfe) }),
    ]),
    options: SERVER,
    expected: ['ping 61', 'pong 62', `text ${digest(Buffer.from('hé € 😀'))}`, `binary ${digest(Uint8Array.of(0xff, 0xfe))}`],
  },
  {
    name: 'a 70,000-byte binary message (64-bit length) followed by text',
    stream: Buffer.concat([frame({ op: 0x2, payload: big }), frame({ op: 0x1, payload: 'after' })]),
    options: SERVER,
    expected: [`binary ${digest(big)}`, `text ${digest(Buffer.from('after'))}`],
  },
  {
    name: 'a 70,000-byte binary message in three fragments (16-bit, 64-bit and 7-bit lengths)',
    stream: Buffer.concat([
      frame({ op: 0x2, payload: big.subarray(0, 300), fin: false }),
      frame({ op: 0x9, payload: 'x' }),
      frame({ op: 0x0, payload: big.subarray(300, 69_900), fin: false }),
      frame({ op: 0x0, payload: big.subarray(69_900) }),
    ]),
    options: SERVER,
    expected: ['ping 78', `binary ${digest(big)}`],
  },
  {
    name: 'a large multi-byte text message (native UTF-8 path) in uneven fragments',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: bigTextBytes.subarray(0, 1001), fin: false }),
      frame({ op: 0x0, payload: bigTextBytes.subarray(1001, 50_003), fin: false }),
      frame({ op: 0x0, payload: bigTextBytes.subarray(50_003) }),
    ]),
    options: SERVER,
    expected: [`text ${digest(bigTextBytes)}`],
  },
  {
    name: 'a 300-byte text (16-bit length) and a close with a multi-byte reason',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: 'ü'.repeat(150) }),
      frame({ op: 0x8, payload: closeBody(4001, 'räson') }),
      frame({ op: 0x1, payload: 'ignored' }),
    ]),
    options: SERVER,
    expected: [`text ${digest(Buffer.from('ü'.repeat(150)))}`, 'close 4001 "räson"'],
  },
  {
    name: 'unmasked server frames parsed by the client role',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: 'srv', mask: false, fin: false }),
      frame({ op: 0x9, payload: 'hb', mask: false }),
      frame({ op: 0x0, payload: 'ok', mask: false }),
      frame({ op: 0x2, payload: big.subarray(0, 66_000), mask: false }),
    ]),
    options: { expectMasked: false, maxPayload: 1 << 20, maxFragments: 100 },
    expected: ['ping 6862', `text ${digest(Buffer.from('srvok'))}`, `binary ${digest(big.subarray(0, 66_000))}`],
  },
  {
    name: 'a stream that ends in invalid UTF-8 deep inside a large text frame',
    stream: Buffer.concat([
      frame({ op: 0x1, payload: 'fine' }),
      frame({ op: 0x1, payload: Buffer.concat([bigTextBytes.subarray(0, 11 * 3600), Buffer.from([0xed, 0xa0, 0x80]), bigTextBytes.subarray(0, 100)]) }),
      frame({ op: 0x1, payload: 'never' }),
    ]),
    options: SERVER,
    expected: [`text ${digest(Buffer.from('fine'))}`, 'error WS_INVALID_UTF8 1007'],
  },
  {
    name: 'a stream that goes over maxPayload across fragments',
    stream: Buffer.concat([
      frame({ op: 0x2, payload: big.subarray(0, 600), fin: false }),
      frame({ op: 0x0, payload: big.subarray(0, 500) }),
    ]),
    options: { expectMasked: true, maxPayload: 1000, maxFragments: 100 },
    expected: ['error WS_MESSAGE_TOO_BIG 1009'],
  },
];

describe('FrameParser: any chunking gives the same events', () => {
  for (const sample of samples) {
    describe(sample.name, () => {
      it('fed in one piece, it produces the expected events', () => {
        expect(run(sample.stream, whole(), sample.options)).toEqual(sample.expected);
      });

      it('fed byte by byte, it produces exactly the same events', () => {
        expect(run(sample.stream, bytewise(), sample.options)).toEqual(sample.expected);
      });

      it('fed in seeded random pieces, it produces exactly the same events', () => {
        for (const [seed, max] of [
          [1, 3],
          [2, 7],
          [3, 17],
          [4, 64],
          [5, 300],
          [6, 5000],
          [7, 40_000],
        ] as const) {
          expect(run(sample.stream, randomSizes(seed, max), sample.options), `seed ${seed}, pieces up to ${max}`).toEqual(
            sample.expected,
          );
        }
      });
    });
  }

  it('every two-piece split of a small multi-frame stream gives the same events', () => {
    const sample = samples[1] as Sample;
    for (let cut = 1; cut < sample.stream.length; cut++) {
      expect(run(sample.stream, [cut], sample.options), `cut at ${cut}`).toEqual(sample.expected);
    }
  });

  it('every three-piece split of a short masked message gives the same events', () => {
    const stream = Buffer.concat([frame({ op: 0x1, payload: 'h€llo', fin: false }), frame({ op: 0x0, payload: '!' })]);
    const expected = [`text ${digest(Buffer.from('h€llo!'))}`];
    for (let a = 1; a < stream.length; a++) {
      for (let b = a + 1; b < stream.length; b++) {
        expect(run(stream, [a, b - a], SERVER), `cuts at ${a}, ${b}`).toEqual(expected);
      }
    }
  });
});

describe('parsers fed in turns, and what a parser keeps between messages', () => {
  it('many parsers fed in interleaved random pieces each get their own messages: no key or UTF-8 state leaks from one to another', () => {
    const texts = ['é'.repeat(300), 'plain ascii text', '€𝄞'.repeat(50), ''];
    const streams = Array.from({ length: 6 }, (_, p) =>
      Buffer.concat([
        frame({ op: 0x1, payload: texts[p % texts.length] as string }),
        frame({ op: 0x2, payload: bytes(70_000, p) }),
        frame({ op: 0x1, payload: 'ab€', fin: false }),
        frame({ op: 0x9, payload: 'ping' }),
        frame({ op: 0x0, payload: '𝄞z' }),
      ]),
    );
    const expected = streams.map((s) => run(s, whole(), SERVER));
    const sinks = streams.map(() => new Recorder());
    const parsers = sinks.map((sink) => new FrameParser(sink, SERVER));
    const at = streams.map(() => 0);
    const rand = prng(99);
    while (at.some((a, i) => a < (streams[i] as Buffer).length)) {
      const i = Math.floor(rand() * streams.length);
      const s = streams[i] as Buffer;
      if ((at[i] as number) >= s.length) continue;
      const size = 1 + Math.floor(rand() * 700);
      (parsers[i] as FrameParser).push(Buffer.from(s.subarray(at[i], (at[i] as number) + size)));
      at[i] = (at[i] as number) + size;
    }
    expect(expected.every((e) => e.length === 4 && !e.some((x) => x.startsWith('error')))).toBe(true);
    expect(sinks.map((s) => s.events)).toEqual(expected);
  });

  it('keeps no UTF-8 validator once a text message has ended: whole, split across chunks, or fragmented', () => {
    const stream = Buffer.concat([
      frame({ op: 0x1, payload: 'whole €' }),
      frame({ op: 0x1, payload: 'split across pieces 𝄞'.repeat(20) }),
      frame({ op: 0x1, payload: 'frag €', fin: false }),
      frame({ op: 0x0, payload: 'ment' }),
    ]);
    const sink = new Recorder();
    const parser = new FrameParser(sink, SERVER);
    const kept = (): unknown => (parser as unknown as { utf8: unknown }).utf8;
    const cuts = [0, 9, 40, 300, stream.length - 3, stream.length];
    const during: unknown[] = [];
    for (let k = 1; k < cuts.length; k++) {
      parser.push(Buffer.from(stream.subarray(cuts[k - 1], cuts[k])));
      during.push(kept());
    }
    expect(sink.events.map((e) => e.split(' ')[0])).toEqual(['text', 'text', 'text']);
    // Mid-message (the split text, the fragmented one) a validator is held; after the last, none.
    expect(during.slice(0, -1).some((v) => v !== null)).toBe(true);
    expect(kept()).toBeNull();
  });

  it('still fails fast on a text message split across chunks that is not UTF-8, and on one that ends inside a code point', () => {
    const bad = Buffer.concat([frame({ op: 0x1, payload: Buffer.concat([Buffer.from('x'.repeat(100)), Buffer.from([0xc3, 0x28]), Buffer.from('y'.repeat(100))]) })]);
    expect(run(bad, randomSizes(5, 30), SERVER)).toEqual(['error WS_INVALID_UTF8 1007']);
    const cut = Buffer.concat([frame({ op: 0x1, payload: Buffer.from([0x61, 0xe2, 0x82]), fin: false }), frame({ op: 0x0, payload: Buffer.alloc(0) })]);
    expect(run(cut, bytewise(), SERVER)).toEqual(['error WS_INVALID_UTF8 1007']);
    // A code point split across fragments is valid: only the message as a whole must be UTF-8.
    const across = Buffer.concat([frame({ op: 0x1, payload: Buffer.from([0x61, 0xe2]), fin: false }), frame({ op: 0x0, payload: Buffer.from([0x82, 0xac]) })]);
    expect(run(across, whole(), SERVER)).toEqual([`text ${digest(Buffer.from('a€'))}`]);
  });

  it('tells a bad byte from a message cut inside a code point, whether the message comes whole or in pieces', () => {
    const reasons = (stream: Buffer, sizes: Iterable<number>): string[] => {
      const sink = new Recorder();
      sink.onProtocolError = (error: ProtocolError): void => {
        sink.events.push(error.message);
      };
      return run(stream, sizes, SERVER, sink);
    };
    const truncated = frame({ op: 0x1, payload: Buffer.from([0x61, 0xe2, 0x82]) });
    const badByte = frame({ op: 0x1, payload: Buffer.from([0x61, 0xe2, 0x28, 0x61]) });
    for (const sizes of [whole, bytewise]) {
      expect(reasons(truncated, sizes())).toEqual(['text message ends inside a UTF-8 sequence']);
      expect(reasons(badByte, sizes())).toEqual(['text message is not valid UTF-8']);
    }
  });
});
