/**
 * Bad compressed input from a raw client (RFC 7692 with RFC 6455): data that does not inflate
 * fails the connection with 1007 (as ws does; §7.2.2 names no code, RFC 6455 §7.4.1 "data not
 * consistent with the type of the message"); RSV1 on a connection that did not agree
 * permessage-deflate is a protocol error, 1002 (RFC 6455 §5.2, RFC 7692 §6); a compressed text
 * message is checked as UTF-8 once inflated, as a whole (RFC 7692 §6.1 with RFC 6455 §8.1): 1007
 * when it is not UTF-8, even when the bad sequence straddles two fragments, and no failure when a
 * valid character does. Each on the synchronous inflate path and on the thread pool, with the
 * client's context kept and reset. Another client on the same server is not disturbed.
 *
 * Compressed frames are built with node:zlib (deflate-helpers.ts), never with src/extensions.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { type RawClient, encodeClientFrame } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import {
  OFFER_NO_TAKEOVER,
  OFFER_TAKEOVER,
  StreamDeflater,
  compress,
  compressedFrame,
  connectDeflate,
  evenCuts,
  fragmentedFrames,
  halfCompressible,
  nextMessage,
} from './deflate-helpers.js';
import { answerClose } from './helpers.js';

const { serve, connect } = useFixture();

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

/**
 * closeTimeout short: the fixture's teardown closes the handler, and the raw clients here never
 * answer its close frame. (deflate-fail-close.test.ts checks that a failed connection is let go
 * of by the closing handshake, not by this timer.)
 */
const OPTIONS: HandlerOptions = { perMessageDeflate: true, pingInterval: 0, closeTimeout: 500 };

const OFFERS = [
  ['client context kept', OFFER_TAKEOVER],
  ['client_no_context_takeover', OFFER_NO_TAKEOVER],
] as const;

/** Expects the server to fail the connection with `code`, with no message before it. */
async function failsWith(client: RawClient, code: number): Promise<string> {
  const closed = await answerClose(client, 10_000);
  expect(closed.data.map((f) => f.opcode)).toEqual([]);
  expect(closed.code).toBe(code);
  expect(closed.tcpClosed).toBe(true);
  return closed.reason;
}

/** A compressed echo round trip (2 KiB: compressed both ways). */
async function echoes(client: RawClient, text: string): Promise<void> {
  client.sendRaw(compressedFrame(0x1, compress(text)));
  const m = await nextMessage(client, { timeout: 10_000 });
  expect([m.opcode, m.compressed, m.data.toString('utf8')]).toEqual([0x1, true, text]);
}

const PROBE = `probe:${halfCompressible(1, 2042).toString('latin1')}`;

describe('data that does not inflate → 1007', () => {
  /** RFC 1951 §3.2.3: BTYPE 11 is reserved ("invalid block type"). */
  const reservedBlockType = Buffer.from([0x06, 0x00, 0x00]);
  /** A stored block whose NLEN is not LEN's complement ("invalid stored block lengths"). */
  const badStoredLengths = Buffer.from([0x00, 0x05, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64, 0x65]);
  /**
   * ~80 KiB: over the 64 KiB synchronous input, so inflated on the thread pool. A valid message
   * with its sync flush kept (it ends on a block boundary), then a reserved block type.
   */
  const bigJunk = (): Buffer =>
    Buffer.concat([zlib.deflateRawSync(halfCompressible(7, 150 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH }), reservedBlockType, Buffer.alloc(64)]);
  const CASES: { name: string; payload: () => Buffer; opcode: number }[] = [
    { name: 'a reserved block type (text, synchronous)', payload: () => reservedBlockType, opcode: 0x1 },
    { name: 'bad stored-block lengths (binary, synchronous)', payload: () => badStoredLengths, opcode: 0x2 },
    { name: '1 KiB of 0xff (binary, synchronous)', payload: () => Buffer.alloc(1024, 0xff), opcode: 0x2 },
    { name: '80 KiB of a valid stream, then a reserved block type (binary, thread pool)', payload: bigJunk, opcode: 0x2 },
    { name: 'the same as text (thread pool)', payload: bigJunk, opcode: 0x1 },
  ];

  for (const c of CASES) {
    for (const [context, offer] of OFFERS) {
      for (const fragments of [1, 5]) {
        test(`${c.name}, ${fragments === 1 ? 'one frame' : `${fragments} fragments`}, ${context}: 1007; another client is served`, async () => {
          const s = await serve({ '/': Echo }, OPTIONS);
          const other = await connect(s.port, '/', { 'Sec-WebSocket-Extensions': OFFER_TAKEOVER });
          const client = await connectDeflate(s.port, '/', offer);
          // One good message first, so a context exists (and must not be what fails).
          await echoes(client, PROBE);
          const payload = c.payload();
          client.sendRaw(fragments === 1 ? compressedFrame(c.opcode, payload) : fragmentedFrames(c.opcode, payload, evenCuts(payload.length, fragments)));
          await failsWith(client, 1007);
          await echoes(other, PROBE);
          await waitFor(() => s.srv.handler.stats().closesByCode['1007'] === 1, 3000, 'the 1007 counted');
        });
      }
    }
  }

  test('a reference into a window the server does not have (the client kept its context although it agreed to reset it): 1007', async () => {
    const s = await serve({ '/': Echo }, OPTIONS);
    const client = await connectDeflate(s.port, '/', OFFER_NO_TAKEOVER);
    expect(client.headers['sec-websocket-extensions']).toContain('client_no_context_takeover');
    const deflater = new StreamDeflater();
    try {
      const first = PROBE;
      // The second message repeats the first: compressed with context, it is mostly a back reference.
      const second = first.slice(0, 1500);
      const frames = [await deflater.compress(first), await deflater.compress(second)];
      client.sendRaw(compressedFrame(0x1, frames[0] as Buffer));
      const m = await nextMessage(client);
      expect(m.data.toString()).toBe(first);
      client.sendRaw(compressedFrame(0x1, frames[1] as Buffer));
      const reason = await failsWith(client, 1007);
      expect(reason).toMatch(/inflate|distance/i);
    } finally {
      deflater.close();
    }
  });

  test('a back reference as the first message under context takeover (nothing to refer to): 1007', async () => {
    const s = await serve({ '/': Echo }, OPTIONS);
    const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
    const deflater = new StreamDeflater();
    try {
      await deflater.compress(PROBE); // never sent
      const second = await deflater.compress(PROBE);
      client.sendRaw(compressedFrame(0x1, second));
      await failsWith(client, 1007);
    } finally {
      deflater.close();
    }
  });
});

describe('RSV1 without permessage-deflate agreed → 1002', () => {
  const valid = compress(PROBE);
  const cases: { name: string; options: HandlerOptions; headers: Record<string, string> }[] = [
    { name: 'the server has compression on, the client offered nothing', options: OPTIONS, headers: {} },
    { name: 'the client offered permessage-deflate, the server has compression off', options: { pingInterval: 0 }, headers: { 'Sec-WebSocket-Extensions': OFFER_TAKEOVER } },
    {
      name: 'the client offered only an unknown extension',
      options: OPTIONS,
      headers: { 'Sec-WebSocket-Extensions': 'x-webkit-deflate-frame' },
    },
  ];
  for (const c of cases) {
    for (const opcode of [0x1, 0x2]) {
      test(`${c.name}: a valid compressed ${opcode === 1 ? 'text' : 'binary'} frame with RSV1 → 1002, no echo`, async () => {
        const s = await serve({ '/': Echo }, c.options);
        const client = await connect(s.port, '/', c.headers);
        expect(client.headers['sec-websocket-extensions']).toBeUndefined();
        client.send(0x1, 'plain');
        expect((await nextMessage(client)).data.toString()).toBe('plain');
        client.sendRaw(compressedFrame(opcode, valid));
        await failsWith(client, 1002);
        await waitFor(() => s.srv.handler.stats().closesByCode['1002'] === 1, 3000, 'the 1002 counted');
      });
    }
  }

  test('with permessage-deflate agreed, RSV2 and RSV3 are still 1002, and so is RSV1 on a continuation or a ping (RFC 7692 §6.1)', async () => {
    const s = await serve({ '/': Echo }, OPTIONS);
    const frames: [string, Buffer][] = [
      ['RSV2', encodeClientFrame(0x1, valid, { rsv: 2 })],
      ['RSV1|RSV3', encodeClientFrame(0x1, valid, { rsv: 5 })],
      ['RSV1 on the continuation', Buffer.concat([encodeClientFrame(0x1, valid.subarray(0, 10), { fin: false, rsv: 4 }), encodeClientFrame(0x0, valid.subarray(10), { rsv: 4 })])],
      ['RSV1 on a ping', encodeClientFrame(0x9, 'x', { rsv: 4 })],
    ];
    for (const [what, bytes] of frames) {
      const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
      await echoes(client, PROBE);
      client.sendRaw(bytes);
      const closed = await answerClose(client, 5000);
      expect([what, closed.code]).toEqual([what, 1002]);
    }
  });
});

describe('compressed text is checked as UTF-8 after inflating, as a whole message', () => {
  /**
   * Stored blocks (level 0): the plaintext appears as is in the compressed payload, after a
   * 5-byte block header, so a cut at plaintext offset k is a cut at payload offset 5 + k.
   */
  function stored(text: Buffer): Buffer {
    const out = compress(text, { level: 0 });
    const at = out.indexOf(text);
    if (at !== 5) throw new Error(`expected one stored block (plaintext at 5, got ${at})`);
    return out;
  }

  const euro = Buffer.from('€', 'utf8'); // E2 82 AC
  const emoji = Buffer.from('😀', 'utf8'); // F0 9F 98 80
  const head = Buffer.from('price: 10 ', 'utf8');
  const tail = Buffer.from(' and more text after it', 'utf8');

  interface Straddle {
    name: string;
    plain: Buffer;
    /** Cuts as plaintext offsets. */
    cuts: number[];
    valid: boolean;
  }
  const at = head.length;
  const STRADDLES: Straddle[] = [
    { name: '€ split after its first byte', plain: Buffer.concat([head, euro, tail]), cuts: [at + 1], valid: true },
    { name: '€ split after its second byte', plain: Buffer.concat([head, euro, tail]), cuts: [at + 2], valid: true },
    { name: 'an emoji split into four frames, one byte each', plain: Buffer.concat([head, emoji, tail]), cuts: [at + 1, at + 2, at + 3], valid: true },
    { name: 'E2 82 then 28 in the next frame (a broken sequence across the cut)', plain: Buffer.concat([head, euro.subarray(0, 2), Buffer.from('('), tail]), cuts: [at + 2], valid: false },
    { name: 'E2 in one frame, 28 AC in the next', plain: Buffer.concat([head, euro.subarray(0, 1), Buffer.from('('), euro.subarray(2), tail]), cuts: [at + 1], valid: false },
    { name: 'the message ends inside a character (F0 9F 98 across two frames, then the end)', plain: Buffer.concat([head, emoji.subarray(0, 3)]), cuts: [at + 1], valid: false },
    { name: 'an overlong encoding (C0 AF) across the cut', plain: Buffer.concat([head, Buffer.from([0xc0, 0xaf]), tail]), cuts: [at + 1], valid: false },
    { name: 'a surrogate (ED A0 80) across two cuts', plain: Buffer.concat([head, Buffer.from([0xed, 0xa0, 0x80]), tail]), cuts: [at + 1, at + 2], valid: false },
  ];

  for (const c of STRADDLES) {
    for (const [context, offer] of OFFERS) {
      test(`${c.name} (stored blocks, ${c.cuts.length + 1} fragments), ${context}: ${c.valid ? 'echoed intact' : '1007'}`, async () => {
        const s = await serve({ '/': Echo }, OPTIONS);
        const client = await connectDeflate(s.port, '/', offer);
        const payload = stored(c.plain);
        client.sendRaw(fragmentedFrames(0x1, payload, c.cuts.map((k) => 5 + k)));
        if (c.valid) {
          const m = await nextMessage(client);
          expect(m.opcode).toBe(0x1);
          expect(m.data.equals(c.plain)).toBe(true);
          // Still in step afterwards (the window took the stored block).
          await echoes(client, PROBE);
        } else {
          const reason = await failsWith(client, 1007);
          expect(reason).toMatch(/UTF-8/);
        }
      });
    }
  }

  const hex = (size: number, end: Buffer): Buffer => Buffer.concat([halfCompressible(9, size), end]);
  /** Each path's message with bad UTF-8 at its end, and the same message made valid. */
  const PATHS: { name: string; plain: () => Buffer; valid: () => Buffer }[] = [
    { name: 'a short message (synchronous)', plain: () => Buffer.from([0x61, 0xc3, 0x28, 0x62]), valid: () => Buffer.from('aéb', 'utf8') },
    // 600 KiB of 'a' compresses to under 1 KiB: inflated 256 KiB synchronously, then on the thread pool.
    {
      name: '600 KiB that compress to under 1 KiB (synchronous start, then the thread pool)',
      plain: () => Buffer.concat([Buffer.alloc(600 * 1024, 0x61), Buffer.from([0xff])]),
      valid: () => Buffer.concat([Buffer.alloc(600 * 1024, 0x61), Buffer.from('é', 'utf8')]),
    },
    // ~170 KiB compressed: over the 64 KiB synchronous input.
    { name: '320 KiB of hex digits (thread pool)', plain: () => hex(320 * 1024, Buffer.from([0xe2, 0x28, 0xa1])), valid: () => hex(320 * 1024, euro) },
  ];
  for (const p of PATHS) {
    for (const [context, offer] of OFFERS) {
      for (const fragments of [1, 7]) {
        test(`invalid UTF-8 at the end of ${p.name}, ${fragments === 1 ? 'one frame' : `${fragments} fragments`}, ${context}: 1007`, async () => {
          const s = await serve({ '/': Echo }, OPTIONS);
          const client = await connectDeflate(s.port, '/', offer);
          await echoes(client, PROBE);
          const payload = compress(p.plain(), { level: 9 });
          client.sendRaw(fragments === 1 ? compressedFrame(0x1, payload) : fragmentedFrames(0x1, payload, evenCuts(payload.length, fragments)));
          const reason = await failsWith(client, 1007);
          expect(reason).toMatch(/UTF-8/);
        });
      }
    }
  }

  test('the same bytes as binary are fine on every path (UTF-8 is a text rule), and the valid text is echoed intact', async () => {
    const s = await serve({ '/': Echo }, OPTIONS);
    const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
    for (const p of PATHS) {
      for (const [opcode, plain] of [
        [0x2, p.plain()],
        [0x1, p.valid()],
      ] as const) {
        const payload = compress(plain, { level: 9 });
        client.sendRaw(fragmentedFrames(opcode, payload, evenCuts(payload.length, 7)));
        const m = await nextMessage(client, { timeout: 10_000 });
        expect([m.opcode, m.data.equals(plain)]).toEqual([opcode, true]);
      }
    }
    await waitFor(() => s.srv.handler.stats().compression.messagesIn === 2 * PATHS.length, 2000, 'every message counted');
  });
});

describe('zlib on the client side is what the tests think it is', () => {
  test('the thread-pool junk is invalid for zlib too, past 64 KiB', () => {
    const junk = Buffer.concat([zlib.deflateRawSync(halfCompressible(7, 150 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH }), Buffer.from([0x06, 0x00, 0x00]), Buffer.alloc(64)]);
    expect(junk.length).toBeGreaterThan(64 * 1024);
    expect(() => zlib.inflateRawSync(Buffer.concat([junk, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })).toThrow(/invalid block type/);
  });

  test('stored blocks put the plaintext at offset 5; the straddling cuts land inside characters', () => {
    const text = Buffer.from('ab€cd', 'utf8');
    const out = zlib.deflateRawSync(text, { level: 0, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(out.indexOf(text)).toBe(5);
    expect(out.subarray(0, 5)).toEqual(Buffer.from([0x00, text.length, 0x00, ~text.length & 0xff, 0xff]));
  });
});
