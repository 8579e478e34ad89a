import { afterAll, describe, expect, it } from 'vitest';
import { SMALL_UNMASK, applyMask, copyUnmasked, unmaskSmall, useSimd } from '../../src/protocol/mask.js';

/** The definition in RFC 6455 §5.3: transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4). */
function naive(bytes: Uint8Array, key: Uint8Array, position: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = (bytes[i] as number) ^ (key[(position + i) % 4] as number);
  return out;
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const KEYS = [Uint8Array.of(0x37, 0xfa, 0x21, 0x3d), Uint8Array.of(0xff, 0x00, 0x80, 0x01), Uint8Array.of(0, 0, 0, 0)];

describe('applyMask (RFC 6455 §5.3)', () => {
  it('RFC 6455 §5.3: matches the byte-wise definition for lengths 0..300, byteOffsets 0..7 and positions 0..5', () => {
    for (const key of KEYS) {
      for (let length = 0; length <= 300; length++) {
        const original = pattern(length, length + 1);
        for (let offset = 0; offset < 8; offset++) {
          for (const position of [0, 1, 2, 3, 5]) {
            // Guard bytes on both sides catch writes outside the view.
            const backing = new Uint8Array(offset + length + 8).fill(0xaa);
            const view = backing.subarray(offset, offset + length);
            view.set(original);
            applyMask(view, key, position);
            const expected = naive(original, key, position);
            if (!view.every((b, i) => b === expected[i])) {
              expect.fail(`mismatch: key ${key.join(',')}, length ${length}, byteOffset ${offset}, position ${position}`);
            }
            for (let i = 0; i < backing.length; i++) {
              if ((i < offset || i >= offset + length) && backing[i] !== 0xaa) {
                expect.fail(`wrote outside the view at ${i}: length ${length}, byteOffset ${offset}, position ${position}`);
              }
            }
          }
        }
      }
    }
  });

  it('RFC 6455 §5.3: a large position is taken modulo 4', () => {
    const key = KEYS[0] as Uint8Array;
    const data = pattern(100, 9);
    for (const position of [4, 7, 1001, 2 ** 31 + 3]) {
      const a = data.slice();
      applyMask(a, key, position);
      expect(a).toEqual(naive(data, key, position));
    }
  });

  it('RFC 6455 §5.3: masking twice restores the input (masking and unmasking are the same operation)', () => {
    const key = KEYS[1] as Uint8Array;
    for (const length of [0, 1, 63, 64, 65, 1000]) {
      const data = pattern(length, 3);
      const work = data.slice();
      applyMask(work, key, 2);
      if (length > 0) expect(work).not.toEqual(data);
      applyMask(work, key, 2);
      expect(work).toEqual(data);
    }
  });

  it('RFC 6455 §5.3: unmasking piecewise (any split, at unaligned offsets) equals unmasking the whole payload', () => {
    const key = KEYS[0] as Uint8Array;
    for (const length of [7, 64, 65, 130, 300]) {
      const data = pattern(length, length);
      const expected = naive(data, key, 0);
      for (let cut1 = 0; cut1 <= length; cut1 += 1 + (length >> 4)) {
        for (let cut2 = cut1; cut2 <= length; cut2 += 1 + (length >> 3)) {
          const backing = new Uint8Array(length + 3);
          const work = backing.subarray(3);
          work.set(data);
          applyMask(work.subarray(0, cut1), key, 0);
          applyMask(work.subarray(cut1, cut2), key, cut1);
          applyMask(work.subarray(cut2), key, cut2);
          if (!work.every((b, i) => b === expected[i])) expect.fail(`mismatch: length ${length}, cuts ${cut1}/${cut2}`);
        }
      }
    }
  });

  it('RFC 6455 §5.3: works on a Buffer slice of a pooled allocation', () => {
    const key = KEYS[0] as Uint8Array;
    const big = Buffer.from(pattern(1000, 77));
    const slice = big.subarray(13, 913);
    const expected = naive(slice, key, 1);
    applyMask(slice, key, 1);
    expect(Uint8Array.from(slice)).toEqual(expected);
    expect(Uint8Array.from(big.subarray(0, 13))).toEqual(pattern(1000, 77).subarray(0, 13));
    expect(Uint8Array.from(big.subarray(913))).toEqual(pattern(1000, 77).subarray(913));
  });
});

describe('copyUnmasked (RFC 6455 §5.3), with WebAssembly SIMD and with the JS fallback', () => {
  afterAll(() => {
    useSimd(true);
  });

  it('Node has WebAssembly SIMD here, so the SIMD path is really tested', () => {
    expect(useSimd(true)).toBe(true);
    expect(useSimd(false)).toBe(false);
  });

  /** Copies `original` (placed at `srcOffset`) into a guarded destination at `at` and checks it against the definition. */
  function check(mode: string, original: Uint8Array, key: Uint8Array, position: number, srcOffset: number, dstOffset: number, at: number): void {
    const n = original.length;
    const srcBacking = new Uint8Array(srcOffset + n + 4).fill(0x55);
    const src = srcBacking.subarray(srcOffset, srcOffset + n);
    src.set(original);
    const dstBacking = new Uint8Array(dstOffset + at + n + 8).fill(0xaa);
    const dst = dstBacking.subarray(dstOffset, dstOffset + at + n);
    copyUnmasked(src, dst, at, key, position);
    const expected = naive(original, key, position);
    const what = `${mode}: length ${n}, key ${key.join(',')}, position ${position}, src byteOffset ${srcOffset}, dst byteOffset ${dstOffset}, at ${at}`;
    for (let i = 0; i < n; i++) if (dst[at + i] !== expected[i]) expect.fail(`mismatch at ${i}: ${what}`);
    for (let i = 0; i < dstBacking.length; i++) {
      if ((i < dstOffset + at || i >= dstOffset + at + n) && dstBacking[i] !== 0xaa) expect.fail(`wrote outside the target at ${i}: ${what}`);
    }
    for (let i = 0; i < n; i++) if (src[i] !== original[i]) expect.fail(`changed the source at ${i}: ${what}`);
  }

  for (const [mode, on] of [
    ['WebAssembly SIMD', true],
    ['JS fallback', false],
  ] as const) {
    it(`${mode}: matches the byte-wise definition for lengths 0..300, every alignment of source and target, positions 0..5`, () => {
      useSimd(on);
      for (const key of KEYS) {
        for (let length = 0; length <= 300; length++) {
          const original = pattern(length, length + 7);
          for (let srcOffset = 0; srcOffset < 4; srcOffset++) {
            for (let dstOffset = 0; dstOffset < 4; dstOffset++) {
              for (const position of [0, 1, 2, 3, 5]) check(mode, original, key, position, srcOffset, dstOffset, (position * 3) % 7);
            }
          }
        }
      }
    });

    it(`${mode}: large pieces (64 KiB ± 1, 128 KiB ± 1, 300,001 bytes: more than the WebAssembly memory holds) at every alignment`, () => {
      useSimd(on);
      const key = KEYS[0] as Uint8Array;
      for (const length of [65535, 65536, 65537, 131071, 131072, 131073, 300_001]) {
        const original = pattern(length, length);
        for (let offset = 0; offset < 4; offset++) check(mode, original, key, offset + 1, offset, 3 - offset, offset * 5);
      }
    });

    it(`${mode}: applyMask in place matches the definition around and above the SIMD threshold, at every byteOffset and position`, () => {
      useSimd(on);
      for (const key of KEYS) {
        for (const length of [255, 256, 257, 511, 512, 513, 575, 576, 577, 639, 1000, 4099, 65537, 131073, 300_001]) {
          const original = pattern(length, length + 3);
          for (let offset = 0; offset < 8; offset++) {
            for (const position of [0, 1, 2, 3, 6]) {
              const backing = new Uint8Array(offset + length + 8).fill(0xaa);
              const view = backing.subarray(offset, offset + length);
              view.set(original);
              applyMask(view, key, position);
              const expected = naive(original, key, position);
              const what = `${mode}: length ${length}, key ${key.join(',')}, byteOffset ${offset}, position ${position}`;
              for (let i = 0; i < length; i++) if (view[i] !== expected[i]) expect.fail(`mismatch at ${i}: ${what}`);
              for (let i = 0; i < backing.length; i++) {
                if ((i < offset || i >= offset + length) && backing[i] !== 0xaa) expect.fail(`wrote outside the view at ${i}: ${what}`);
              }
            }
          }
        }
      }
    });

    it(`${mode}: a payload copied piece by piece at any split equals the payload unmasked whole`, () => {
      useSimd(on);
      const key = KEYS[1] as Uint8Array;
      const original = pattern(5000, 99);
      const expected = naive(original, key, 0);
      for (const cuts of [[1], [255, 256, 257], [63, 64, 65, 1000, 4999], [2500]]) {
        const dst = new Uint8Array(original.length);
        let from = 0;
        for (const to of [...cuts, original.length]) {
          copyUnmasked(original.subarray(from, to), dst, from, key, from);
          from = to;
        }
        expect(Buffer.compare(dst, expected)).toBe(0);
      }
    });
  }
});

describe('unmaskSmall: a whole short payload with the key as a 32-bit word (RFC 6455 §5.3)', () => {
  it('matches the byte-wise definition for every length under SMALL_UNMASK at byteOffsets 0..7, writing nothing outside', () => {
    expect(SMALL_UNMASK).toBeGreaterThanOrEqual(32);
    for (const key of KEYS) {
      // The parser's word: byte j of the key is bits 8j..8j+7.
      const word = (key[0] as number) | ((key[1] as number) << 8) | ((key[2] as number) << 16) | ((key[3] as number) << 24);
      for (let length = 0; length < SMALL_UNMASK; length++) {
        const original = pattern(length, length + 7);
        for (let offset = 0; offset < 8; offset++) {
          const backing = new Uint8Array(offset + length + 8).fill(0xaa);
          const view = backing.subarray(offset, offset + length);
          view.set(original);
          unmaskSmall(view, word);
          const expected = naive(original, key, 0);
          if (!view.every((b, i) => b === expected[i])) expect.fail(`mismatch: key ${key.join(',')}, length ${length}, byteOffset ${offset}`);
          if (backing.some((b, i) => (i < offset || i >= offset + length) && b !== 0xaa)) expect.fail(`wrote outside the view: length ${length}, byteOffset ${offset}`);
        }
      }
    }
  });
});
