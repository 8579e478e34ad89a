/**
 * The framer's output is decoded here by hand (RFC 6455 §5.2), never by src's parser.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  COPY_THRESHOLD,
  encodeClosePayload,
  encodeFrame,
  encodeText,
  frameLength,
  headerSize,
  writeHeader,
  type Frame,
} from '../../src/protocol/framer.js';
import { Opcode } from '../../src/protocol/constants.js';

function flatten(frame: Frame): Buffer {
  return Buffer.isBuffer(frame) ? frame : Buffer.concat([frame[0], frame[1]]);
}

interface Decoded {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  key: number[] | null;
  lengthBits: 7 | 16 | 64;
  headerLength: number;
  payload: Buffer;
}

/** Decodes exactly one frame, by hand, and insists that nothing trails it. */
function decode(bytes: Buffer): Decoded {
  const b0 = bytes[0] as number;
  const b1 = bytes[1] as number;
  let at = 2;
  let length = b1 & 0x7f;
  let lengthBits: 7 | 16 | 64 = 7;
  if (length === 126) {
    length = ((bytes[2] as number) << 8) | (bytes[3] as number);
    lengthBits = 16;
    at = 4;
  } else if (length === 127) {
    let big = 0n;
    for (let i = 0; i < 8; i++) big = (big << 8n) | BigInt(bytes[2 + i] as number);
    expect(big >> 63n).toBe(0n); // RFC 6455 §5.2: the most significant bit must be 0
    length = Number(big);
    lengthBits = 64;
    at = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  let key: number[] | null = null;
  if (masked) {
    key = [bytes[at] as number, bytes[at + 1] as number, bytes[at + 2] as number, bytes[at + 3] as number];
    at += 4;
  }
  expect(bytes.length - at).toBe(length);
  const payload = Buffer.from(bytes.subarray(at));
  if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (key[i % 4] as number);
  return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, key, lengthBits, headerLength: at, payload };
}

function pattern(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + (i >> 8)) & 0xff;
  return out;
}

describe('encodeFrame header (RFC 6455 §5.2)', () => {
  const cases: readonly [number, 7 | 16 | 64, number][] = [
    [0, 7, 2],
    [1, 7, 2],
    [125, 7, 2],
    [126, 16, 4],
    [127, 16, 4],
    [65535, 16, 4],
    [65536, 64, 10],
    [(1 << 20) + 3, 64, 10],
  ];

  for (const [length, bits, headerLength] of cases) {
    it(`RFC 6455 §5.2: a ${length}-byte payload uses the minimal ${bits}-bit length encoding`, () => {
      const payload = pattern(length);
      const frame = encodeFrame(Opcode.Binary, payload);
      const bytes = flatten(frame);
      expect(frameLength(frame)).toBe(bytes.length);
      expect(bytes.length).toBe(headerLength + length);
      expect(headerSize(length, false)).toBe(headerLength);
      expect(headerSize(length, true)).toBe(headerLength + 4);
      const d = decode(bytes);
      expect(d).toMatchObject({ fin: true, rsv: 0, opcode: 2, masked: false, lengthBits: bits, headerLength });
      expect(d.payload.equals(payload)).toBe(true);
      // Exact header bytes.
      const expectedHeader =
        bits === 7
          ? [0x82, length]
          : bits === 16
            ? [0x82, 126, length >> 8, length & 0xff]
            : [0x82, 127, 0, 0, 0, 0, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff];
      expect([...bytes.subarray(0, headerLength)]).toEqual(expectedHeader);
    });
  }

  it('RFC 6455 §5.2: writeHeader encodes a length over 2^32 in 64 bits, big-endian', () => {
    const target = new Uint8Array(14);
    const end = writeHeader(target, 0, Opcode.Binary, 2 ** 32 + 5, true, 0, null);
    expect(end).toBe(10);
    expect([...target.subarray(0, 10)]).toEqual([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 5]);
    const end2 = writeHeader(target, 0, Opcode.Text, 2 ** 40 + 0x01020304, false, 0, Uint8Array.of(9, 8, 7, 6));
    expect(end2).toBe(14);
    expect([...target]).toEqual([0x01, 0xff, 0, 0, 1, 0, 1, 2, 3, 4, 9, 8, 7, 6]);
  });

  it('RFC 6455 §5.2: writeHeader writes at the given offset and returns the offset after the header', () => {
    const target = new Uint8Array(20).fill(0xee);
    expect(writeHeader(target, 5, Opcode.Ping, 3, true, 0, null)).toBe(7);
    expect([...target.subarray(4, 8)]).toEqual([0xee, 0x89, 3, 0xee]);
  });

  it('RFC 6455 §5.2: FIN, RSV bits and opcode land in the first byte', () => {
    const p = Buffer.from('x');
    expect(flatten(encodeFrame(Opcode.Text, p, { fin: false }))[0]).toBe(0x01);
    expect(flatten(encodeFrame(Opcode.Continuation, p))[0]).toBe(0x80);
    expect(flatten(encodeFrame(Opcode.Text, p, { rsv1: true }))[0]).toBe(0xc1);
    expect(flatten(encodeFrame(Opcode.Binary, p, { rsv: 7 }))[0]).toBe(0xf2);
    expect(flatten(encodeFrame(Opcode.Binary, p, { rsv: 2, rsv1: true }))[0]).toBe(0xa2);
    expect(flatten(encodeFrame(Opcode.Close, new Uint8Array(0)))[0]).toBe(0x88);
    expect(flatten(encodeFrame(Opcode.Pong, p))[0]).toBe(0x8a);
  });

  it('a payload over COPY_THRESHOLD is returned as [header, payload] without copying the payload', () => {
    const payload = pattern(COPY_THRESHOLD + 1);
    const frame = encodeFrame(Opcode.Binary, payload);
    expect(Buffer.isBuffer(frame)).toBe(false);
    const [header, body] = frame as readonly [Buffer, Buffer];
    expect(body).toBe(payload);
    expect([...header]).toEqual([0x82, 126, (COPY_THRESHOLD + 1) >> 8, (COPY_THRESHOLD + 1) & 0xff]);
  });

  it('a plain Uint8Array payload over COPY_THRESHOLD is wrapped as a view, not copied', () => {
    const backing = new ArrayBuffer(10_000);
    const payload = new Uint8Array(backing, 7, 9_000);
    payload.fill(0x33);
    const frame = encodeFrame(Opcode.Binary, payload) as readonly [Buffer, Buffer];
    expect(frame[1].buffer).toBe(backing);
    expect(frame[1].byteOffset).toBe(7);
    expect(frame[1].length).toBe(9_000);
  });
});

describe('encodeFrame masking (RFC 6455 §5.3)', () => {
  for (const length of [0, 5, 125, 126, 65535, 65536]) {
    it(`RFC 6455 §5.3: a frame masked with a given key decodes back (${length} bytes)`, () => {
      const payload = pattern(length);
      const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
      const bytes = flatten(encodeFrame(Opcode.Binary, payload, { mask: key }));
      const d = decode(bytes);
      expect(d.masked).toBe(true);
      expect(d.key).toEqual([0x37, 0xfa, 0x21, 0x3d]);
      expect(d.payload.equals(payload)).toBe(true);
      if (length >= 4) {
        // The bytes on the wire really are masked.
        expect(bytes[d.headerLength]).toBe((payload[0] as number) ^ 0x37);
        expect(bytes[d.headerLength + 1]).toBe((payload[1] as number) ^ 0xfa);
      }
    });
  }

  it('RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d gives the RFC example bytes', () => {
    const bytes = flatten(encodeFrame(Opcode.Text, Buffer.from('Hello'), { mask: Uint8Array.of(0x37, 0xfa, 0x21, 0x3d) }));
    expect(bytes.toString('hex')).toBe('818537fa213d7f9f4d5158');
  });

  it('RFC 6455 §5.3: mask: true picks a key and the frame decodes back', () => {
    const payload = pattern(300);
    const d = decode(flatten(encodeFrame(Opcode.Binary, payload, { mask: true })));
    expect(d.masked).toBe(true);
    expect(d.payload.equals(payload)).toBe(true);
  });

  it('mask: false gives an unmasked frame', () => {
    const d = decode(flatten(encodeFrame(Opcode.Binary, Buffer.from('ab'), { mask: false })));
    expect(d.masked).toBe(false);
    expect(d.payload.toString()).toBe('ab');
  });

  it('RFC 6455 §5.3: a masking key that is not 4 bytes is a RangeError', () => {
    expect(() => encodeFrame(Opcode.Binary, Buffer.from('x'), { mask: Uint8Array.of(1, 2, 3) })).toThrow(RangeError);
    expect(() => encodeFrame(Opcode.Binary, Buffer.from('x'), { mask: Uint8Array.of(1, 2, 3, 4, 5) })).toThrow(RangeError);
  });

  it('masking never modifies the input payload (small and large)', () => {
    for (const length of [10, COPY_THRESHOLD + 100, 70_000]) {
      const payload = pattern(length);
      const before = Buffer.from(payload);
      encodeFrame(Opcode.Binary, payload, { mask: Uint8Array.of(1, 2, 3, 4) });
      encodeFrame(Opcode.Binary, payload, { mask: true });
      expect(payload.equals(before)).toBe(true);
    }
  });
});

describe('encodeFrame is pure (broadcast reuse)', () => {
  it('encoding does not modify the input, and encoding twice gives identical bytes', () => {
    for (const length of [0, 100, COPY_THRESHOLD, COPY_THRESHOLD + 1, 70_000]) {
      const payload = pattern(length);
      const before = Buffer.from(payload);
      const a = flatten(encodeFrame(Opcode.Binary, payload));
      const b = flatten(encodeFrame(Opcode.Binary, payload));
      expect(payload.equals(before)).toBe(true);
      expect(a.equals(b)).toBe(true);
    }
  });

  it('a small frame is a fresh buffer: changing the input afterwards does not change the frame', () => {
    const payload = Buffer.from('hello');
    const frame = encodeFrame(Opcode.Text, payload) as Buffer;
    payload.fill(0);
    expect(decode(frame).payload.toString()).toBe('hello');
  });
});

describe('encodeText', () => {
  const texts = ['', 'Hello', 'héllo wörld', '€', '😀 and 🎉', '日本語テキスト', 'a'.repeat(125), 'é'.repeat(63), 'x'.repeat(65536)];

  for (const text of texts) {
    const label = text.length > 20 ? `${text.slice(0, 5)}… (${text.length} chars)` : JSON.stringify(text);
    it(`RFC 6455 §5.6: encodes ${label} as UTF-8 with its byte length`, () => {
      const bytes = flatten(encodeText(text));
      const d = decode(bytes);
      const utf8 = Buffer.from(text, 'utf8');
      expect(d).toMatchObject({ fin: true, rsv: 0, opcode: 1, masked: false });
      expect(d.payload.equals(utf8)).toBe(true);
      expect(d.lengthBits).toBe(utf8.length < 126 ? 7 : utf8.length < 65536 ? 16 : 64);
    });
  }

  it('RFC 6455 §5.2: the length field counts bytes, not characters (63 × "é" = 126 bytes needs 16 bits)', () => {
    const bytes = flatten(encodeText('é'.repeat(63)));
    expect([...bytes.subarray(0, 4)]).toEqual([0x81, 126, 0, 126]);
    const bytes2 = flatten(encodeText('😀'.repeat(31) + 'a')); // 125 bytes, 63 UTF-16 units
    expect([...bytes2.subarray(0, 2)]).toEqual([0x81, 125]);
  });

  it('encodes a long non-ASCII text (over COPY_THRESHOLD bytes) correctly', () => {
    const text = '€'.repeat(2000); // 6000 bytes
    const d = decode(flatten(encodeText(text)));
    expect(d.payload.toString('utf8')).toBe(text);
    expect(d.lengthBits).toBe(16);
  });

  it('RFC 6455 §5.3: encodeText with a mask decodes back', () => {
    const d = decode(flatten(encodeText('héllo', { mask: Uint8Array.of(9, 9, 9, 9) })));
    expect(d.masked).toBe(true);
    expect(d.payload.toString('utf8')).toBe('héllo');
  });

  it('encodeText honours fin and rsv1', () => {
    expect(flatten(encodeText('a', { fin: false }))[0]).toBe(0x01);
    expect(flatten(encodeText('a', { rsv1: true }))[0]).toBe(0xc1);
  });
});

describe('encodeText: long text tried as ASCII first', () => {
  /** The step (in UTF-16 units) in which framer.ts tries long text as ASCII. */
  const STEP = 16384;
  const ascii = (n: number): string => {
    let s = '';
    for (let i = 0; s.length < n; i++) s += String.fromCharCode(32 + (i % 95));
    return s.slice(0, n);
  };
  const expectFrameOf = (text: string, frame: Frame): void => {
    const d = decode(flatten(frame));
    const utf8 = Buffer.from(text, 'utf8');
    expect(d).toMatchObject({ fin: true, rsv: 0, opcode: 1, masked: false });
    expect(d.payload.equals(utf8)).toBe(true);
    expect(d.headerLength).toBe(headerSize(utf8.length, false));
    expect(d.headerLength + d.payload.length).toBe(frameLength(frame));
  };

  for (const n of [COPY_THRESHOLD / 3 + 1, 4096, STEP - 1, STEP, STEP + 1, 65535, 65536, 3 * STEP + 7, 1 << 20]) {
    it(`RFC 6455 §5.6: ${n} ASCII characters are framed as one buffer with a ${n}-byte payload`, () => {
      const text = ascii(n);
      const frame = encodeText(text);
      expect(Buffer.isBuffer(frame)).toBe(true);
      expectFrameOf(text, frame);
    });
  }

  // Where the first non-ASCII character falls: in the probe, in the first step, on either side of
  // a step boundary, in the last unit.
  const n = 3 * STEP + 100;
  for (const at of [0, 63, 64, 100, STEP - 2, STEP - 1, STEP, STEP + 1, 2 * STEP - 1, 2 * STEP, n - 1]) {
    for (const [label, ch] of [
      ['é (2 bytes)', 'é'],
      ['€ (3 bytes)', '€'],
      ['😀 (a surrogate pair, 4 bytes)', '😀'],
      ['a lone high surrogate', '\ud83d'],
      ['a lone low surrogate', '\ude00'],
    ] as const) {
      it(`RFC 6455 §5.6: ASCII text with ${label} at unit ${at} encodes exactly as Buffer.from(text, 'utf8')`, () => {
        const base = ascii(n);
        const text = base.slice(0, at) + ch + base.slice(at + 1);
        expectFrameOf(text, encodeText(text));
      });
    }
  }

  it('RFC 6455 §5.6: a surrogate pair split by a step boundary is encoded whole (4 bytes, not two U+FFFD)', () => {
    const text = `${ascii(STEP - 1)}😀${ascii(STEP)}`;
    const d = decode(flatten(encodeText(text)));
    expect(d.payload.equals(Buffer.from(text, 'utf8'))).toBe(true);
    expect(d.payload.length).toBe(2 * STEP - 1 + 4);
  });

  it('RFC 6455 §5.6: long text with non-ASCII throughout, and ASCII with non-ASCII sprinkled late, encode as Buffer.from', () => {
    for (const text of ['日本語テキスト'.repeat(5000), `${ascii(200)}${'é'.padEnd(10, 'a').repeat(7000)}`, `${ascii(STEP * 2)}€`]) {
      expectFrameOf(text, encodeText(text));
    }
  });

  it('encodeText honours fin and rsv1 on long ASCII text', () => {
    const text = ascii(10_000);
    expect(flatten(encodeText(text, { fin: false }))[0]).toBe(0x01);
    expect(flatten(encodeText(text, { rsv1: true }))[0]).toBe(0xc1);
    const d = decode(flatten(encodeText(text, { mask: Uint8Array.of(1, 2, 3, 4) })));
    expect(d.masked).toBe(true);
    expect(d.payload.toString('latin1')).toBe(text);
  });
});

describe('encodeClosePayload (RFC 6455 §5.5.1, §7.4)', () => {
  it('RFC 6455 §5.5.1: a code and reason encode as a 2-byte big-endian code followed by UTF-8', () => {
    expect(encodeClosePayload(1000, 'bye').toString('hex')).toBe('03e8627965');
    expect(encodeClosePayload(4999).toString('hex')).toBe('1387');
    expect(encodeClosePayload(3000, 'é').toString('hex')).toBe('0bb8c3a9');
  });

  it('RFC 6455 §5.5.1: no code gives an empty payload', () => {
    expect(encodeClosePayload().length).toBe(0);
    expect(encodeClosePayload(undefined, '').length).toBe(0);
  });

  it('RFC 6455 §5.5.1: a reason without a code is a RangeError', () => {
    expect(() => encodeClosePayload(undefined, 'why')).toThrow(RangeError);
  });

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535, 65536, -1]) {
    it(`RFC 6455 §7.4.1: close code ${code} may not be sent (RangeError)`, () => {
      expect(() => encodeClosePayload(code)).toThrow(RangeError);
      expect(() => encodeClosePayload(code, 'reason')).toThrow(RangeError);
    });
  }

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`RFC 6455 §7.4: close code ${code} may be sent`, () => {
      const out = encodeClosePayload(code, 'r');
      expect(out.readUInt16BE(0)).toBe(code);
      expect(out.subarray(2).toString()).toBe('r');
    });
  }

  it('RFC 6455 §7.4: a close code is a 16-bit integer; a fractional or NaN code is a RangeError', () => {
    expect(() => encodeClosePayload(Number.NaN)).toThrow(RangeError);
    expect(() => encodeClosePayload(1000.5)).toThrow(RangeError);
    expect(() => encodeClosePayload(3000.25, 'x')).toThrow(RangeError);
  });

  it('RFC 6455 §5.5.1: a reason of 123 bytes fits; 124 bytes is a RangeError (counted in bytes, not characters)', () => {
    expect(encodeClosePayload(1000, 'a'.repeat(123)).length).toBe(125);
    expect(() => encodeClosePayload(1000, 'a'.repeat(124))).toThrow(RangeError);
    expect(encodeClosePayload(1000, 'é'.repeat(61) + 'a').length).toBe(125); // 123 bytes, 62 characters
    expect(() => encodeClosePayload(1000, 'é'.repeat(62))).toThrow(RangeError); // 124 bytes, 62 characters
    expect(() => encodeClosePayload(1000, '😀'.repeat(31))).toThrow(RangeError); // 124 bytes, 62 UTF-16 units
  });

  it('RFC 6455 §5.5: a close frame built from the largest payload is a valid control frame (≤ 125 bytes)', () => {
    const bytes = flatten(encodeFrame(Opcode.Close, encodeClosePayload(1000, 'z'.repeat(123))));
    expect([...bytes.subarray(0, 2)]).toEqual([0x88, 125]);
  });
});
