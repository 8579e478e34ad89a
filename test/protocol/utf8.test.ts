import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { Utf8Validator, isValidUtf8 } from '../../src/protocol/utf8.js';

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

/** Feeds the pieces; returns whether every write and end() succeeded. */
function validate(pieces: readonly Uint8Array[]): boolean {
  const v = new Utf8Validator();
  for (const p of pieces) if (!v.write(p)) return false;
  return v.end();
}

const VALID: readonly [string, string][] = [
  ['empty', ''],
  ['ASCII', '48 65 6c 6c 6f'],
  ['NUL and DEL', '00 7f'],
  ['U+0080 (smallest 2-byte)', 'c2 80'],
  ['U+00E9 é', 'c3 a9'],
  ['U+07FF (largest 2-byte)', 'df bf'],
  ['U+0800 (smallest 3-byte, E0 A0)', 'e0 a0 80'],
  ['U+20AC €', 'e2 82 ac'],
  ['U+D7FF (just below surrogates, ED 9F)', 'ed 9f bf'],
  ['U+E000 (just above surrogates)', 'ee 80 80'],
  ['U+FFFD', 'ef bf bd'],
  ['U+FFFF', 'ef bf bf'],
  ['U+10000 (smallest 4-byte, F0 90)', 'f0 90 80 80'],
  ['U+1F600 😀', 'f0 9f 98 80'],
  ['U+10FFFF (largest, F4 8F)', 'f4 8f bf bf'],
  ['mixed', '61 c3 a9 e2 82 ac f0 9f 98 80 7a'],
];

/** [name, bytes, index of the first byte after which the input can no longer be valid]. */
const INVALID: readonly [string, string, number][] = [
  ['overlong C0 80 (NUL)', 'c0 80', 0],
  ['overlong C1 BF', 'c1 bf', 0],
  ['overlong E0 80 80', 'e0 80 80', 1],
  ['overlong E0 9F BF', 'e0 9f bf', 1],
  ['overlong F0 80 80 80', 'f0 80 80 80', 1],
  ['overlong F0 8F BF BF', 'f0 8f bf bf', 1],
  ['surrogate ED A0 80 (U+D800)', 'ed a0 80', 1],
  ['surrogate ED BF BF (U+DFFF)', 'ed bf bf', 1],
  ['surrogate pair ED A0 BD ED B2 A9', 'ed a0 bd ed b2 a9', 1],
  ['above U+10FFFF: F4 90 80 80', 'f4 90 80 80', 1],
  ['F5 lead', 'f5 80 80 80', 0],
  ['F7 lead', 'f7 bf bf bf', 0],
  ['5-byte F8 lead', 'f8 88 80 80 80', 0],
  ['6-byte FC lead', 'fc 84 80 80 80 80', 0],
  ['FE', 'fe', 0],
  ['FF', 'ff', 0],
  ['lone continuation 80', '80', 0],
  ['lone continuation BF after ASCII', '61 bf', 1],
  ['extra continuation after a complete 2-byte', 'c3 a9 a9', 2],
  ['2-byte lead followed by ASCII', 'c3 41', 1],
  ['3-byte lead followed by ASCII', 'e2 41 ac', 1],
  ['3-byte sequence cut by ASCII', 'e2 82 41', 2],
  ['4-byte sequence cut by ASCII', 'f0 9f 98 41', 3],
  ['4-byte sequence cut by a new lead', 'f0 9f 98 f0 9f 98 80', 3],
  ['valid then bad', '61 62 c3 a9 ff', 4],
];

/** Valid prefixes that end inside a code point: every write succeeds but end() is false. */
const TRUNCATED: readonly [string, string][] = [
  ['2-byte lead only', 'c3'],
  ['3-byte, 1 of 3', 'e2'],
  ['3-byte, 2 of 3', 'e2 82'],
  ['4-byte, 3 of 4', 'f0 9f 98'],
  ['ASCII then 4-byte, 2 of 4', '61 62 63 f4 8f'],
  ['E0 A0 (narrowed range, then cut)', 'e0 a0'],
];

describe('Utf8Validator (RFC 3629, RFC 6455 §8.1)', () => {
  for (const [name, bytes] of VALID) {
    it(`RFC 3629: accepts ${name}, whole and split at every position`, () => {
      const b = hex(bytes);
      expect(validate([b])).toBe(true);
      expect(isValidUtf8(b)).toBe(true);
      for (let cut = 0; cut <= b.length; cut++) {
        expect(validate([b.subarray(0, cut), b.subarray(cut)]), `cut at ${cut}`).toBe(true);
      }
      expect(validate(Array.from(b, (x) => Uint8Array.of(x))), 'byte by byte').toBe(true);
    });
  }

  for (const [name, bytes, badAt] of INVALID) {
    it(`RFC 3629: rejects ${name}, whole and split at every position`, () => {
      const b = hex(bytes);
      expect(validate([b])).toBe(false);
      expect(isValidUtf8(b)).toBe(false);
      for (let cut = 0; cut <= b.length; cut++) {
        expect(validate([b.subarray(0, cut), b.subarray(cut)]), `cut at ${cut}`).toBe(false);
      }
    });

    it(`RFC 6455 §8.1 (fail fast): ${name} is rejected by the write that carries byte ${badAt}`, () => {
      const b = hex(bytes);
      const v = new Utf8Validator();
      for (let i = 0; i < badAt; i++) expect(v.write(b.subarray(i, i + 1)), `byte ${i}`).toBe(true);
      expect(v.write(b.subarray(badAt, badAt + 1))).toBe(false);
    });
  }

  for (const [name, bytes] of TRUNCATED) {
    it(`RFC 3629: ${name} — every write succeeds but end() is false`, () => {
      const b = hex(bytes);
      const v = new Utf8Validator();
      expect(v.write(b)).toBe(true);
      expect(v.end()).toBe(false);
      expect(isValidUtf8(b)).toBe(false);
      for (let cut = 0; cut <= b.length; cut++) {
        const w = new Utf8Validator();
        expect(w.write(b.subarray(0, cut))).toBe(true);
        expect(w.write(b.subarray(cut))).toBe(true);
        expect(w.end()).toBe(false);
      }
    });
  }

  it('end() resets the validator for the next message', () => {
    const v = new Utf8Validator();
    expect(v.write(hex('e2 82'))).toBe(true);
    expect(v.end()).toBe(false);
    // A fresh message: a continuation byte at the start is now invalid, ASCII is fine.
    expect(v.write(hex('41'))).toBe(true);
    expect(v.end()).toBe(true);
    expect(v.write(hex('c3'))).toBe(true);
    expect(v.end()).toBe(false);
    expect(v.write(hex('ac'))).toBe(false);
  });

  it('reset() forgets a partial code point', () => {
    const v = new Utf8Validator();
    expect(v.write(hex('f0 9f'))).toBe(true);
    v.reset();
    expect(v.write(hex('41'))).toBe(true);
    expect(v.end()).toBe(true);
  });

  it('empty writes change nothing', () => {
    const v = new Utf8Validator();
    expect(v.write(new Uint8Array(0))).toBe(true);
    expect(v.write(hex('e2'))).toBe(true);
    expect(v.write(new Uint8Array(0))).toBe(true);
    expect(v.write(hex('82 ac'))).toBe(true);
    expect(v.end()).toBe(true);
  });
});

describe('Utf8Validator on long inputs (native path, > 48 bytes)', () => {
  const filler = Buffer.from('aé€😀'.repeat(30), 'utf8'); // 300 bytes, code points of every width

  /** Byte offsets in `filler` where a code point starts. */
  const boundaries: number[] = [];
  for (let i = 0; i < filler.length; i++) if (((filler[i] as number) & 0xc0) !== 0x80) boundaries.push(i);

  it('RFC 3629: a long valid input is accepted whole, split at every position, and in 3 pieces', () => {
    expect(validate([filler])).toBe(true);
    expect(isValidUtf8(filler)).toBe(true);
    for (let cut = 0; cut <= filler.length; cut++) {
      expect(validate([filler.subarray(0, cut), filler.subarray(cut)]), `cut at ${cut}`).toBe(true);
    }
    for (let a = 0; a <= filler.length; a += 7) {
      for (let b = a; b <= filler.length; b += 11) {
        expect(validate([filler.subarray(0, a), filler.subarray(a, b), filler.subarray(b)]), `cuts ${a}/${b}`).toBe(true);
      }
    }
  });

  const bads: readonly [string, string][] = [
    ['FF', 'ff'],
    ['overlong C0 80', 'c0 80'],
    ['surrogate ED A0 80', 'ed a0 80'],
    ['above U+10FFFF F4 90 80 80', 'f4 90 80 80'],
    ['lone continuation 80', '80'],
    ['truncated E2 82 then ASCII', 'e2 82 41'],
  ];

  for (const [name, badHex] of bads) {
    it(`RFC 3629: a long input with ${name} inserted at various code point boundaries is rejected, whole and split`, () => {
      const bad = Buffer.from(hex(badHex));
      for (const at of boundaries.filter((_, i) => i % 5 === 0 || i === boundaries.length - 1).concat([filler.length])) {
        const input = Buffer.concat([filler.subarray(0, at), bad, filler.subarray(at)]);
        expect(validate([input]), `at ${at}`).toBe(false);
        expect(isValidUtf8(input), `isValidUtf8 at ${at}`).toBe(false);
        for (let cut = 0; cut <= input.length; cut += 13) {
          expect(validate([input.subarray(0, cut), input.subarray(cut)]), `at ${at}, cut ${cut}`).toBe(false);
        }
      }
    });
  }

  it('RFC 6455 §8.1 (fail fast): in a long input, the write that holds the bad byte already fails', () => {
    for (const at of [0, 1, 47, 48, 49, 100, 200, 299]) {
      const at0 = boundaries.find((b) => b >= at) ?? filler.length;
      const input = Buffer.concat([filler.subarray(0, at0), Buffer.from([0xff]), filler]);
      const v = new Utf8Validator();
      // The first piece ends 60 bytes after the bad byte: the rest never needs to arrive.
      expect(v.write(input.subarray(0, at0 + 61)), `bad byte at ${at0}`).toBe(false);
    }
  });

  it('RFC 3629: a long input that ends inside a code point is valid so far, and end() is false', () => {
    for (const tail of ['c3', 'e2 82', 'f0 9f 98']) {
      const input = Buffer.concat([filler, Buffer.from(hex(tail))]);
      const v = new Utf8Validator();
      expect(v.write(input)).toBe(true);
      expect(v.end()).toBe(false);
      expect(isValidUtf8(input)).toBe(false);
    }
  });

  it('RFC 3629: a long input whose first write ends mid code point and whose second write is long', () => {
    const euro = Buffer.from('€', 'utf8');
    const first = Buffer.concat([Buffer.alloc(100, 0x61), euro.subarray(0, 1)]);
    const second = Buffer.concat([euro.subarray(1), Buffer.alloc(100, 0x62), Buffer.from('😀')]);
    expect(validate([first, second])).toBe(true);
    const badSecond = Buffer.concat([Buffer.from([0x82, 0x41]), Buffer.alloc(100, 0x62)]);
    expect(validate([first, badSecond])).toBe(false);
  });

  it('isValidUtf8 agrees with Buffer decoding on 2000 seeded random short and long inputs', () => {
    let x = 0x9e3779b9;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    };
    const pieces = [hex('61'), hex('c3 a9'), hex('e2 82 ac'), hex('f0 9f 98 80'), hex('ed a0 80'), hex('c0'), hex('80'), hex('f4 90')];
    for (let n = 0; n < 2000; n++) {
      const count = next() % 40;
      const parts: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        // Mostly valid pieces, sometimes a bad one.
        const p = next() % 20 === 0 ? (pieces[4 + (next() % 4)] as Uint8Array) : (pieces[next() % 4] as Uint8Array);
        parts.push(p);
      }
      const input = Buffer.concat(parts);
      // Reference: decoding is lossless exactly when the input is valid UTF-8.
      const reference = Buffer.compare(Buffer.from(input.toString('utf8'), 'utf8'), input) === 0;
      expect(isValidUtf8(input), input.toString('hex')).toBe(reference);
      const cut = input.length === 0 ? 0 : next() % input.length;
      expect(validate([input.subarray(0, cut), input.subarray(cut)]), `${input.toString('hex')} cut ${cut}`).toBe(reference);
    }
  });
});
