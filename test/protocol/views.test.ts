import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { FrameParser, type ParserSink } from '../../src/protocol/parser.js';
import { forgetViewed, viewConstructor, viewOf, viewOfMemory, viewedSource } from '../../src/protocol/views.js';

/** What a view must be: a Buffer like Node's own (same prototype), over the same bytes. */
function expectView(view: Buffer, source: Uint8Array, start: number, end: number): void {
  expect(Buffer.isBuffer(view)).toBe(true);
  expect(Object.getPrototypeOf(view)).toBe(Buffer.prototype);
  expect(view.buffer).toBe(source.buffer);
  expect(view.byteOffset).toBe(source.byteOffset + start);
  expect(view.length).toBe(end - start);
  expect([...view]).toEqual([...source.subarray(start, end)]);
}

describe('viewOf (Buffer views without reading .buffer per view)', () => {
  it('views the bytes asked for, sharing memory, in a pooled Buffer (non-zero byteOffset)', () => {
    const pooled = Buffer.from('0123456789abcdef');
    expect(pooled.byteOffset).not.toBe(0); // from Node's pool: the offset must be added
    const v = viewOf(pooled, 3, 9);
    expectView(v, pooled, 3, 9);
    expect(v.toString('latin1')).toBe('345678');
    v[0] = 0x58; // 'X'
    expect(pooled.toString('latin1')).toBe('012X456789abcdef');
    forgetViewed();
  });

  it('switches source as it is given another Buffer, and after forgetViewed()', () => {
    const a = Buffer.from('aaaaaaaaaaaa');
    const b = Buffer.allocUnsafeSlow(12).fill(0x62);
    expectView(viewOf(a, 0, 4), a, 0, 4);
    expectView(viewOf(b, 2, 12), b, 2, 12);
    expectView(viewOf(a, 5, 5), a, 5, 5); // empty
    forgetViewed();
    expectView(viewOf(a, 1, 12), a, 1, 12);
    expectView(viewOf(b.subarray(4), 1, 3), b.subarray(4), 1, 3); // a view as source: its own offset counts
    forgetViewed();
  });

  it('viewOfMemory makes a Buffer over an ArrayBuffer the caller holds', () => {
    const memory = new ArrayBuffer(16);
    new Uint8Array(memory).set([1, 2, 3, 4, 5, 6], 8);
    const v = viewOfMemory(memory, 8, 6);
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v.buffer).toBe(memory);
    expect([...v]).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('viewConstructor', () => {
  it("takes the runtime's Buffer[Symbol.species] when it makes Buffer views", () => {
    const species = (Buffer as unknown as { [Symbol.species]: unknown })[Symbol.species];
    expect(viewConstructor(species)).toBe(species);
  });

  it('falls back to Buffer.from(arrayBuffer, offset, length) when the species is missing or makes something else', () => {
    for (const species of [undefined, Buffer, Uint8Array, () => 1, class {}]) {
      const View = viewConstructor(species);
      expect(View).not.toBe(species);
      const memory = new ArrayBuffer(8);
      new Uint8Array(memory).set([9, 8, 7, 6, 5, 4, 3, 2]);
      const v = new View(memory, 2, 3);
      expect(Buffer.isBuffer(v)).toBe(true);
      expect(Object.getPrototypeOf(v)).toBe(Buffer.prototype);
      expect(v.buffer).toBe(memory);
      expect([...v]).toEqual([7, 6, 5]);
    }
  });
});

/** A masked binary frame (RFC 6455 §5.3) carrying `text`. */
function maskedFrame(text: string): Buffer {
  const key = [0x11, 0x22, 0x33, 0x44];
  const payload = Buffer.from(text);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x82;
  out[1] = 0x80 | payload.length;
  out.set(key, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = (payload[i] as number) ^ (key[i % 4] as number);
  return out;
}

function sinkOf(onMessage: (data: Buffer) => void): ParserSink {
  return {
    onMessage,
    onPing: () => {},
    onPong: () => {},
    onCloseFrame: () => {},
    onProtocolError: (e) => {
      throw e;
    },
  };
}

const OPTIONS = { expectMasked: true, maxPayload: 1 << 20, maxFragments: 16 };

describe('the parser lets the viewed chunk go', () => {
  it('holds no chunk once it has read its input, and none after a sink threw', () => {
    const got: string[] = [];
    const parser = new FrameParser(sinkOf((d) => {
      got.push(d.toString());
      if (got.length === 2) throw new Error('sink failed');
    }), OPTIONS);
    parser.push(Buffer.concat([maskedFrame('one')]));
    expect(viewedSource()).toBeNull();
    expect(() => parser.push(Buffer.concat([maskedFrame('two'), maskedFrame('three')]))).toThrow('sink failed');
    expect(viewedSource()).toBeNull();
    parser.push(Buffer.concat([maskedFrame('four')]));
    expect(got).toEqual(['one', 'two', 'three', 'four']);
  });

  it('a sink that feeds another parser from inside its callback leaves both with the right bytes', () => {
    const inner: Buffer[] = [];
    const outer: Buffer[] = [];
    const b = new FrameParser(sinkOf((d) => inner.push(d)), OPTIONS);
    const a = new FrameParser(sinkOf((d) => {
      outer.push(d);
      // Pooled like a's chunk: the same ArrayBuffer, another Buffer object.
      b.push(Buffer.concat([maskedFrame(`inner ${d.toString()}`), maskedFrame('x')]));
    }), OPTIONS);
    a.push(Buffer.concat([maskedFrame('alpha'), maskedFrame('beta'), maskedFrame('gamma')]));
    expect(outer.map(String)).toEqual(['alpha', 'beta', 'gamma']);
    expect(inner.map(String)).toEqual(['inner alpha', 'x', 'inner beta', 'x', 'inner gamma', 'x']);
    expect(viewedSource()).toBeNull();
  });
});

describe('the parser hands out views of the chunks it is given', () => {
  it('messages from one chunk are Buffers over that chunk, each with its own bytes, unmasked', () => {
    const got: Buffer[] = [];
    const parser = new FrameParser(sinkOf((data) => got.push(data)), OPTIONS);
    const frame = maskedFrame;
    // In a pooled chunk (non-zero byteOffset), three messages, then a second chunk.
    const chunk = Buffer.concat([frame('first'), frame('second message'), frame('3')]);
    parser.push(chunk);
    parser.push(Buffer.concat([frame('other chunk')]));
    expect(got.map((b) => b.toString())).toEqual(['first', 'second message', '3', 'other chunk']);
    for (const b of got) {
      expect(Buffer.isBuffer(b)).toBe(true);
      expect(Object.getPrototypeOf(b)).toBe(Buffer.prototype);
    }
    expect(got[0]?.buffer).toBe(chunk.buffer);
    expect(got[1]?.byteOffset).toBe(chunk.byteOffset + 6 + 5 + 6);
  });
});
