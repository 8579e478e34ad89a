/**
 * Order with compression's asynchronous paths. Messages over the synchronous cut-offs are
 * inflated and compressed on the thread pool; the parser pauses while a message inflates, and
 * outgoing frames wait in send order behind one being compressed (connection/ordered.ts). So:
 *
 * - one connection that sends, in ONE write, a mix of big (thread-pool) and small compressed
 *   messages, uncompressed ones, a fragmented big one with a ping between its fragments, and
 *   numbered pings, gets every echo back intact and in order, and a pong for every ping, in
 *   order (RFC 6455 §5.5.3) — with the client's context kept (so the server's inflate window has
 *   to cross the synchronous/asynchronous boundary in order) and with the server's context reset
 *   (the preset) or kept;
 * - close() while a big message is still being compressed sends the messages accepted before it
 *   first, then the close frame, and nothing after it (RFC 6455 §5.5.1) — from the behavior's
 *   close(), the handler's graceful close(), and behind a broadcast.
 *
 * Compressed frames are built and read with node:zlib (deflate-helpers.ts), never src/extensions.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type PerMessageDeflateOptions } from '../../src/index.js';
import { asyncJobs } from '../../src/extensions/permessage-deflate/zlib-sync.js';
import { useFixture } from '../helpers/fixture.js';
import { type RawClient, type RawFrame, encodeClientFrame } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import { Rng } from './fixtures/prng.js';
import { ClientInflater, OFFER_TAKEOVER, StreamDeflater, compressedFrame, connectDeflate, evenCuts, fragmentedFrames, halfCompressible, nextMessage } from './deflate-helpers.js';

const { serve } = useFixture();

const KiB = 1024;
/**
 * Over every synchronous cut-off both ways: ~108 KiB compressed (> 64 KiB: inflated on the
 * thread pool) and 200 KiB plain (> 64 KiB: compressed on the thread pool).
 */
const BIG = 200 * KiB;
/** Over the 1 KiB threshold, under every synchronous cut-off. */
const SMALL = 3 * KiB;

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

/** What the client sends, in order. */
type Item =
  | { kind: 'data'; opcode: 0x1 | 0x2; plain: Buffer; how: 'compressed' | 'plain' | 'fragmented' }
  | { kind: 'ping'; payload: string };

function text(rng: Rng, size: number, label: string): Buffer {
  return Buffer.from(`${label}|${halfCompressible(rng.u32(), size).toString('latin1')}`.slice(0, size), 'utf8');
}

/**
 * A seeded mix of 60 items: big and small compressed text/binary, tiny compressed ones (echoed
 * uncompressed: under the threshold), uncompressed ones, fragmented big ones, pings.
 */
function mix(seed: number): Item[] {
  const rng = new Rng(seed);
  const items: Item[] = [];
  let pings = 0;
  for (let i = 0; i < 60; i++) {
    const pick = rng.weighted({ big: 4, small: 6, tiny: 2, plain: 3, fragmented: 2, ping: 5 });
    const opcode = rng.chance(0.5) ? 0x1 : 0x2;
    const label = `#${i}`;
    switch (pick) {
      case 'big':
        items.push({ kind: 'data', opcode, plain: text(rng, BIG, label), how: 'compressed' });
        break;
      case 'small':
        items.push({ kind: 'data', opcode, plain: text(rng, SMALL, label), how: 'compressed' });
        break;
      case 'tiny':
        items.push({ kind: 'data', opcode, plain: Buffer.from(`${label} tiny`), how: 'compressed' });
        break;
      case 'plain':
        items.push({ kind: 'data', opcode, plain: text(rng, rng.range(10, 4000), label), how: 'plain' });
        break;
      case 'fragmented':
        items.push({ kind: 'data', opcode, plain: text(rng, BIG, label), how: 'fragmented' });
        break;
      case 'ping':
        items.push({ kind: 'ping', payload: `ping ${pings++}` });
        break;
    }
  }
  return items;
}

/** The bytes of `items` for one write; compressed items go through one context-keeping deflater. */
async function encode(items: readonly Item[]): Promise<Buffer> {
  const deflater = new StreamDeflater();
  const out: Buffer[] = [];
  try {
    for (const item of items) {
      if (item.kind === 'ping') {
        out.push(encodeClientFrame(0x9, item.payload));
      } else if (item.how === 'plain') {
        out.push(encodeClientFrame(item.opcode, item.plain));
      } else {
        const payload = await deflater.compress(item.plain);
        if (item.how === 'compressed') {
          out.push(compressedFrame(item.opcode, payload));
        } else {
          // Three fragments, RSV1 on the first only, a ping between the first two (§5.4).
          const [a, b] = evenCuts(payload.length, 3) as [number, number];
          out.push(
            encodeClientFrame(item.opcode, payload.subarray(0, a), { fin: false, rsv: 4 }),
            encodeClientFrame(0x9, 'inside a fragmented message'),
            fragmentedFrames(0x0, payload.subarray(a), [b - a], false),
          );
        }
      }
    }
  } finally {
    deflater.close();
  }
  return Buffer.concat(out);
}

const SERVER_CONTEXTS: [string, true | PerMessageDeflateOptions, boolean][] = [
  ["the server's context reset (the preset)", true, false],
  ["the server's context kept", { serverNoContextTakeover: false }, true],
];

describe('one write of big and small compressed messages and pings: echoes in order, every ping answered', () => {
  for (const [name, perMessageDeflate, serverTakeover] of SERVER_CONTEXTS) {
    for (const seed of [0x0de1, 0x0de2]) {
      test(`${name}, mix ${seed.toString(16)}: every echo intact and in order, a pong per ping in order`, async () => {
        const items = mix(seed);
        const s = await serve({ '/': Echo }, { perMessageDeflate, pingInterval: 0 });
        const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
        const wire = await encode(items);
        client.sendRaw(wire);
        const data = items.filter((i): i is Extract<Item, { kind: 'data' }> => i.kind === 'data');
        const pings = items.filter((i): i is Extract<Item, { kind: 'ping' }> => i.kind === 'ping');
        const inflater = new ClientInflater(serverTakeover);
        const control: RawFrame[] = [];
        for (const [k, item] of data.entries()) {
          const m = await nextMessage(client, { timeout: 20_000, inflater, control });
          if (m.opcode !== item.opcode || !m.data.equals(item.plain)) {
            throw new Error(`echo ${k}: expected ${item.plain.subarray(0, 8).toString('latin1')}… (${item.plain.length} bytes, opcode ${item.opcode}), got ${m.data.subarray(0, 8).toString('latin1')}… (${m.data.length} bytes, opcode ${m.opcode})`);
          }
          // Compressed exactly when at least the 1 KiB threshold long.
          expect([k, m.compressed]).toEqual([k, item.plain.length >= 1024]);
        }
        // Pongs may come before the echoes of earlier messages (control frames are not held behind
        // data being compressed), but every ping gets one, in order.
        await waitFor(() => {
          control.push(...client.pending());
          return control.length >= pings.length + data.filter((d) => d.how === 'fragmented').length;
        }, 10_000, 'every pong');
        const pongs = control.filter((f) => f.opcode === 0xa).map((f) => f.payload.toString());
        expect(pongs.filter((p) => p.startsWith('ping '))).toEqual(pings.map((p) => p.payload));
        expect(pongs.filter((p) => p === 'inside a fragmented message')).toHaveLength(data.filter((d) => d.how === 'fragmented').length);
        expect(control.every((f) => f.opcode === 0xa)).toBe(true);
        const st = s.srv.handler.stats().compression;
        expect(st.messagesIn).toBe(data.filter((d) => d.how !== 'plain').length);
        expect(st.messagesOut).toBe(data.filter((d) => d.plain.length >= 1024).length);
        // The mix really took the asynchronous paths.
        expect(data.filter((d) => d.plain.length === BIG).length).toBeGreaterThanOrEqual(3);
        expect((await client.close(1000)).code).toBe(1000);
        await waitFor(() => asyncJobs().running === 0 && asyncJobs().waiting === 0, 5000, 'no zlib job left');
      }, 60_000);
    }
  }
});

describe('close() while a big message is being compressed: the accepted messages first, then the close frame', () => {
  /** What the behavior saw when it called close(), and what a send after it returned. */
  let backlogAtClose = -1;
  let sendAfterClose = '';

  class Closer extends Behavior {
    override onText(text: string): void {
      if (text !== 'go') return;
      // Two big messages (compressed on the thread pool), a small one, a tiny one: then close.
      this.sendBinary(halfCompressible(1, BIG));
      this.sendText(halfCompressible(2, BIG).toString('latin1'));
      this.sendText(halfCompressible(3, SMALL).toString('latin1'));
      this.sendText('tiny');
      backlogAtClose = this.bufferedAmount;
      this.close(1000, 'done');
      // After close(): not sent.
      sendAfterClose = this.sendText('after close');
    }
  }

  const expected = (): [number, Buffer][] => [
    [0x2, halfCompressible(1, BIG)],
    [0x1, halfCompressible(2, BIG)],
    [0x1, halfCompressible(3, SMALL)],
    [0x1, Buffer.from('tiny')],
  ];

  /** Reads the data frames up to the close frame; then checks nothing follows it. */
  async function readToClose(client: RawClient, inflater: ClientInflater): Promise<{ got: [number, Buffer][]; code: number | undefined; reason: string }> {
    const got: [number, Buffer][] = [];
    for (;;) {
      const f = await client.nextFrame(20_000);
      if (f.opcode === 0x8) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
        client.send(0x8, f.payload.subarray(0, 2));
        expect(await client.waitClosed(5000)).toBe(true);
        expect(client.pending()).toEqual([]);
        return { got, code, reason: f.payload.subarray(2).toString() };
      }
      if (f.opcode >= 0x8) continue;
      expect(f.fin).toBe(true); // the server sends whole messages
      got.push([f.opcode, f.rsv === 4 ? inflater.inflate(f.payload) : f.payload]);
    }
  }

  for (const [name, perMessageDeflate, serverTakeover] of SERVER_CONTEXTS) {
    test(`the behavior's close(), ${name}: the four messages in order, then 1000 'done'`, async () => {
      backlogAtClose = -1;
      const s = await serve({ '/': Closer }, { perMessageDeflate, pingInterval: 0 });
      const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
      client.send(0x1, 'go');
      const { got, code, reason } = await readToClose(client, new ClientInflater(serverTakeover));
      // Both big messages were still waiting, uncompressed, when close() was called.
      expect(backlogAtClose).toBeGreaterThanOrEqual(2 * BIG);
      expect(got.map(([op, b]) => [op, b.length])).toEqual(expected().map(([op, b]) => [op, b.length]));
      expect(got.every(([, b], i) => b.equals((expected()[i] as [number, Buffer])[1]))).toBe(true);
      expect([code, reason]).toEqual([1000, 'done']);
      expect(sendAfterClose).toBe('dropped');
    });

    test(`the handler's graceful close(), ${name}: the messages sent before it in order, then 1001`, async () => {
      const s = await serve({ '/': Echo }, { perMessageDeflate, pingInterval: 0, closeTimeout: 10_000 });
      const handler = s.srv.handler;
      const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
      await waitFor(() => handler.clients.size === 1, 2000, 'the client');
      const b = [...handler.clients][0] as Echo;
      b.sendBinary(halfCompressible(1, BIG));
      b.sendText(halfCompressible(2, BIG).toString('latin1'));
      b.sendText(halfCompressible(3, SMALL).toString('latin1'));
      b.sendText('tiny');
      expect(b.bufferedAmount).toBeGreaterThanOrEqual(2 * BIG);
      const closing = handler.close();
      const { got, code } = await readToClose(client, new ClientInflater(serverTakeover));
      await closing;
      expect(got.map(([op, x]) => [op, x.length])).toEqual(expected().map(([op, x]) => [op, x.length]));
      expect(got.every(([, x], i) => x.equals((expected()[i] as [number, Buffer])[1]))).toBe(true);
      expect(code).toBe(1001);
    });
  }

  test("a broadcast being compressed, then the handler's close(): every client gets the broadcast, then 1001", async () => {
    const s = await serve({ '/': Echo }, { perMessageDeflate: true, pingInterval: 0, closeTimeout: 10_000 });
    const handler = s.srv.handler;
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectDeflate(s.port, '/', OFFER_TAKEOVER)));
    await waitFor(() => handler.clients.size === 5, 2000, 'the clients');
    const big = halfCompressible(4, BIG);
    expect(handler.broadcast(big)).toBe(5);
    expect(handler.broadcast('tiny')).toBe(5);
    const closing = handler.close();
    for (const client of clients) {
      const { got, code } = await readToClose(client, new ClientInflater());
      expect(got.map(([op, x]) => [op, x.length])).toEqual([
        [0x2, BIG],
        [0x1, 4],
      ]);
      expect((got[0] as [number, Buffer])[1].equals(big)).toBe(true);
      expect(code).toBe(1001);
    }
    await closing;
    expect(handler.stats().compression.messagesOut).toBe(5);
  });
});
