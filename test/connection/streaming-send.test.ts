/**
 * Issue 15, sending: `Behavior.sendStream(source, { text, fragmentSize, signal })` sends one
 * fragmented message (/tmp/stream-api.md, "Sending"). Real sockets on 127.0.0.1; the frames are
 * checked on the wire by raw readers written apart from src/.
 *
 * - 1 GiB from a generator making chunks on the fly, server alone in a child process (RSS growth
 *   under 64 MiB), read by a streaming frame reader that checksums as it goes.
 * - Exact framing (a frame per chunk, split over fragmentSize, an empty FIN continuation), text or
 *   binary, every kind of source, the resolved byte count.
 * - Backpressure (the source is never read ahead; maxBackpressure does not apply), control frames
 *   between fragments (pongs, heartbeat pings), order against other sends (never interleaved).
 * - Failures: the peer leaving (WS_STREAM_INTERRUPTED, source released), the source throwing
 *   (1011 after the partial message and nothing else), an abort signal, invalid UTF-8.
 * - permessage-deflate agreed: streamed frames go uncompressed, the next message is compressed.
 */
import { rssBound } from '../helpers/rss-floor.js';
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, type SendStatus } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import type { RawClient, RawFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { GiB, MiB, expectedHash, hashUpdate, templateOf, templates } from './fixtures/streaming-data.js';
import { type Assembled, FrameReader, closeOf, handshake, readMessages, useStreamingChild } from './streaming-helpers.js';

const { serve, connect } = useFixture();

// ---- helpers ----------------------------------------------------------------------------------------

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Statics {
  pingInterval?: number;
  pongTimeout?: number;
  maxBackpressure?: number;
  perMessageDeflate?: boolean;
}

/** Mounts a route that hands its behavior instances out, connects a raw client, returns both. */
async function open(statics: Statics = {}, headers: Record<string, string> = {}, options: HandlerOptions = {}) {
  const made: Behavior[] = [];
  const pongs: Buffer[] = [];
  const closes: [number, string][] = [];
  class Held extends Behavior {
    static override pingInterval = statics.pingInterval;
    static override pongTimeout = statics.pongTimeout;
    static override maxBackpressure = statics.maxBackpressure;
    static override perMessageDeflate = statics.perMessageDeflate;
    override onOpen(): void {
      made.push(this);
    }
    override onPong(data: Buffer): void {
      pongs.push(data);
    }
    override onClose(code: number, reason: string): void {
      closes.push([code, reason]);
    }
  }
  const s = await serve({ '/h': Held }, options);
  const client = await connect(s.port, '/h', headers);
  await waitFor(() => made.length === 1, 3000, 'open');
  return { s, client, b: made[0] as Behavior, pongs, closes };
}

/** Settles to ['ok', value] or ['error', error], never rejects. */
function outcome<T>(p: Promise<T>): Promise<['ok', T] | ['error', unknown]> {
  return p.then(
    (v) => ['ok', v] as ['ok', T],
    (e: unknown) => ['error', e] as ['error', unknown],
  );
}

const frameShape = (frames: RawFrame[]): [number, boolean, number, string][] => frames.map((f) => [f.opcode, f.fin, f.rsv, f.payload.toString('hex')]);
const hex = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('hex');

/** Reads one message from `client`: the frameShape of its frames. */
async function oneMessageShape(client: RawClient): Promise<[number, boolean, number, string][]> {
  const { messages } = await readMessages(client, 1);
  return frameShape((messages[0] as Assembled).frames);
}

/** Frames that arrive until TCP closes (after a close frame), none expected. */
async function framesUntilClosed(client: RawClient, timeout = 3000): Promise<RawFrame[]> {
  const rest: RawFrame[] = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      rest.push(await client.nextFrame(Math.max(1, deadline - Date.now())));
    } catch {
      return rest;
    }
  }
}

/** An async source of `count` chunks of `size` bytes (chunk k filled with k), counting pulls and noting when it is released. */
function countingSource(count: number, size: number, options: { gate?: Promise<void>; after?: number; delay?: number } = {}) {
  const state = { pulls: 0, released: false, finished: false };
  async function* gen(): AsyncGenerator<Buffer> {
    try {
      for (let k = 0; k < count; k++) {
        if (options.gate !== undefined && k === (options.after ?? 1)) await options.gate;
        if (options.delay !== undefined) await sleep(options.delay);
        state.pulls++;
        yield Buffer.alloc(size, k & 0xff);
      }
      state.finished = true;
    } finally {
      state.released = true;
    }
  }
  return { state, source: gen() };
}

// ---- 1 GiB, server in its own process ----------------------------------------------------------------

describe('1 GiB sent with sendStream, the server alone in a child process', () => {
  const child = useStreamingChild({ chunkSizes: [MiB] });

  test('1024 chunks of 1 MiB made on the fly arrive as one message, whole and in order; server RSS growth < 64 MiB (or the growth of raw TCP on this Node + 16 MiB, where that is more: Node 24)', async () => {
    const server = child();
    const base = await server.call<{ rss: number }>('watchRss');
    const { socket, rest } = await handshake(server.port, `/download?size=${GiB}&chunk=${MiB}`);
    const reader = new FrameReader(socket, rest, 4096);
    try {
      await reader.until(() => reader.messages.length === 2 && (reader.messages[1] as { complete: boolean }).complete, 40_000, 'the stream and its report');
      const { peak } = await server.call<{ peak: number }>('peakRss');
      const stream = reader.messages[0] as (typeof reader.messages)[number];
      const report = JSON.parse((reader.messages[1]?.payload as Buffer).toString('utf8')) as Record<string, unknown>;
      expect(report).toEqual({ sent: GiB, pulls: 1024 });
      expect(reader.errors).toEqual([]);
      expect(stream.opcode).toBe(0x2);
      expect(stream.complete).toBe(true);
      expect(stream.bytes).toBe(GiB);
      expect(stream.hash).toBe(expectedHash(MiB, 1024));
      const frames = stream.frames;
      expect(frames[0]).toMatchObject({ opcode: 0x2, fin: false, rsv: 0 });
      expect(frames.slice(1).every((f) => f.opcode === 0 && f.rsv === 0)).toBe(true);
      expect(frames.slice(0, -1).every((f) => !f.fin && f.length > 0)).toBe(true);
      expect(frames.at(-1)).toEqual({ fin: true, rsv: 0, opcode: 0, length: 0 });
      const { bound, floor } = await rssBound('out', GiB);
      console.log(`[streaming-send] 1 GiB download: ${frames.length} frames, server RSS peak - baseline = ${((peak - base.rss) / MiB).toFixed(1)} MiB (raw TCP on this Node: ${(floor / MiB).toFixed(1)} MiB)`);
      expect(peak - base.rss).toBeLessThan(bound);
    } finally {
      socket.destroy();
    }
  }, 240_000);
});

// ---- framing ----------------------------------------------------------------------------------------------

describe('one fragmented message on the wire (RFC 6455 §5.4)', () => {
  test("string chunks: a text frame per chunk, then an empty FIN continuation; resolves with the UTF-8 bytes sent", async () => {
    const { client, b } = await open();
    const sent = await b.sendStream(['ab', 'é€', 'd']);
    expect(sent).toBe(2 + 5 + 1);
    expect(await oneMessageShape(client)).toEqual([
      [0x1, false, 0, hex('ab')],
      [0x0, false, 0, hex('é€')],
      [0x0, false, 0, hex('d')],
      [0x0, true, 0, ''],
    ]);
  });

  test('Buffer chunks: binary by default', async () => {
    const { client, b } = await open();
    expect(await b.sendStream([Buffer.from([1, 2]), Buffer.from([3])])).toBe(3);
    expect(await oneMessageShape(client)).toEqual([
      [0x2, false, 0, '0102'],
      [0x0, false, 0, '03'],
      [0x0, true, 0, ''],
    ]);
  });

  test('text: true with byte chunks (a code point split across them) is a text message; text: false with strings is binary', async () => {
    const { client, b } = await open();
    expect(await b.sendStream([Buffer.from([0x61, 0xe2]), new Uint8Array([0x82, 0xac])], { text: true })).toBe(4);
    expect(await b.sendStream(['hé'], { text: false })).toBe(3);
    const { messages } = await readMessages(client, 2);
    expect(messages.map((m) => [m.opcode, m.payload.toString('hex')])).toEqual([
      [0x1, '61e282ac'],
      [0x2, hex('hé')],
    ]);
  });

  test('chunks over fragmentSize are split: 10 bytes at fragmentSize 4 → 4, 4, 2, then the empty FIN frame', async () => {
    const { client, b } = await open();
    const data = Buffer.from('0123456789');
    expect(await b.sendStream([data, Buffer.from('ab')], { fragmentSize: 4 })).toBe(12);
    expect(await oneMessageShape(client)).toEqual([
      [0x2, false, 0, hex('0123')],
      [0x0, false, 0, hex('4567')],
      [0x0, false, 0, hex('89')],
      [0x0, false, 0, hex('ab')],
      [0x0, true, 0, ''],
    ]);
  });

  test('an empty source is one empty message (binary by default, text with text: true); resolves 0', async () => {
    const { client, b } = await open();
    expect(await b.sendStream([])).toBe(0);
    expect(await b.sendStream((async function* () {})(), { text: true })).toBe(0);
    const { messages } = await readMessages(client, 2);
    expect(messages.map((m) => [m.opcode, m.payload.length])).toEqual([
      [0x2, 0],
      [0x1, 0],
    ]);
  });

  test('every kind of source and chunk: async generator, sync iterable, Node Readable, web ReadableStream; ArrayBuffer, typed-array and DataView views (their own bytes only)', async () => {
    const { client, b } = await open();
    const backing = new Uint8Array([9, 9, 1, 2, 3, 4, 5, 6, 9, 9]);
    const view16 = new Uint16Array(backing.buffer, 2, 3); // bytes 1..6
    const dv = new DataView(backing.buffer, 4, 2); // bytes 3, 4
    const ab = new Uint8Array([7, 8]).buffer;
    async function* gen(): AsyncGenerator<Buffer | ArrayBuffer> {
      yield Buffer.from('x');
      yield ab;
    }
    const readable = new Readable({
      read() {
        this.push(Buffer.from('read'));
        this.push(Buffer.from('able'));
        this.push(null);
      },
    });
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([0x77, 0x65]));
        controller.enqueue(new Uint8Array([0x62]));
        controller.close();
      },
    });
    const results = [
      await b.sendStream(gen()),
      await b.sendStream([view16, dv]),
      await b.sendStream(readable),
      await b.sendStream(web, { text: true }),
    ];
    expect(results).toEqual([3, 8, 8, 3]);
    const { messages } = await readMessages(client, 4);
    expect(messages.map((m) => [m.opcode, m.payload.toString('hex')])).toEqual([
      [0x2, '780708'],
      [0x2, '0102030405060304'],
      [0x2, hex('readable')],
      [0x1, hex('web')],
    ]);
  });
});

// ---- backpressure -----------------------------------------------------------------------------------------

describe('backpressure', () => {
  test('a peer that does not read: the source is not pulled ahead (each pull after the socket drained), and the message completes once it reads', async () => {
    const { client, b } = await open();
    client.socket.pause();
    const COUNT = 64;
    const SIZE = MiB;
    const t = templates(SIZE);
    const atPull: number[] = [];
    let pulls = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let k = 0; k < COUNT; k++) {
        pulls++;
        atPull.push(b.bufferedAmount);
        yield Buffer.from(t[templateOf(k)] as Buffer);
      }
    }
    const sending = outcome(b.sendStream(source()));
    let last = -1;
    let same = 0;
    while (same < 4) {
      await sleep(50);
      same = pulls === last ? same + 1 : 0;
      last = pulls;
    }
    console.log(`[streaming-send] paused reader: ${pulls} of ${COUNT} chunks pulled, bufferedAmount ${b.bufferedAmount}, at each pull: ${atPull.join(',')}`);
    expect(pulls).toBeLessThan(COUNT);
    // Never more than one chunk (and its frame headers) waits in user space.
    expect(b.bufferedAmount).toBeLessThanOrEqual(SIZE + 64 * 1024);
    // Each pull comes once the socket has drained, not while a chunk still waits in it.
    expect(atPull.slice(1).every((n) => n < 64 * 1024)).toBe(true);
    client.socket.resume();
    const { messages } = await readMessages(client, 1, 20_000);
    expect(await sending).toEqual(['ok', COUNT * SIZE]);
    const m = messages[0] as { payload: Buffer; opcode: number };
    expect(m.opcode).toBe(0x2);
    expect(m.payload.length).toBe(COUNT * SIZE);
    expect(hashUpdate(0, m.payload)).toBe(expectedHash(SIZE, COUNT));
  });

  test('maxBackpressure (64 KiB) does not apply to stream fragments: 16 MiB to a paused reader completes, the connection stays open', async () => {
    const { client, b, closes } = await open({ maxBackpressure: 64 * 1024 });
    client.socket.pause();
    const { state, source } = countingSource(16, MiB);
    const sending = outcome(b.sendStream(source));
    await sleep(200);
    expect(b.readyState).toBe(Behavior.OPEN);
    client.socket.resume();
    const { messages, close } = await readMessages(client, 1, 10_000);
    expect(close).toBeNull();
    expect(await sending).toEqual(['ok', 16 * MiB]);
    expect(state.finished).toBe(true);
    const payload = (messages[0] as { payload: Buffer }).payload;
    for (let k = 0; k < 16; k++) expect(payload.subarray(k * MiB, (k + 1) * MiB).every((x) => x === k)).toBe(true);
    expect(closes).toEqual([]);
    expect(b.readyState).toBe(Behavior.OPEN);
  });
});

// ---- control frames between fragments -----------------------------------------------------------------------

describe('control frames go out between fragments (RFC 6455 §5.4, §5.5)', () => {
  test("a client's ping during a stream is answered before the next fragment", async () => {
    const { client, b } = await open();
    const gate = deferred();
    const { source } = countingSource(3, 1000, { gate: gate.promise, after: 1 });
    const sending = outcome(b.sendStream(source));
    const first = await client.nextFrame(3000);
    expect([first.opcode, first.fin, first.payload.length]).toEqual([0x2, false, 1000]);
    client.send(0x9, 'mid-stream');
    const pong = await client.nextFrame(3000);
    expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, 'mid-stream']);
    gate.resolve();
    const rest = [await client.nextFrame(3000), await client.nextFrame(3000), await client.nextFrame(3000)];
    expect(rest.map((f) => [f.opcode, f.fin, f.payload.length])).toEqual([
      [0x0, false, 1000],
      [0x0, false, 1000],
      [0x0, true, 0],
    ]);
    expect(await sending).toEqual(['ok', 3000]);
  });

  test('while the peer is not reading a fast 64 MiB stream, its ping is answered with a pong between fragments (before the final frame)', async () => {
    const { client, b } = await open();
    client.socket.pause();
    const { source } = countingSource(64, MiB);
    const sending = outcome(b.sendStream(source));
    await sleep(50);
    client.send(0x9, 'are you there');
    await sleep(100);
    client.socket.resume();
    const { messages, controls } = await readMessages(client, 1, 20_000);
    expect(await sending).toEqual(['ok', 64 * MiB]);
    expect((messages[0] as { payload: Buffer }).payload.length).toBe(64 * MiB);
    expect(controls.map((c) => [c.frame.opcode, c.frame.payload.toString(), c.midMessage])).toEqual([[0xa, 'are you there', true]]);
  });

  test('the heartbeat (pingInterval 200 ms) pings between the fragments of a slow stream; the pongs are seen; the message completes', async () => {
    const { client, b, pongs } = await open({ pingInterval: 200, pongTimeout: 400 });
    const ROUNDS = 5;
    async function* slow(): AsyncGenerator<string> {
      for (let i = 0; i < ROUNDS; i++) {
        yield `part ${i};`;
        // The next chunk only once the server has seen a pong for a ping sent mid-message.
        await waitFor(() => pongs.length > i, 5000, `pong ${i}`);
      }
    }
    const sending = outcome(b.sendStream(slow()));
    const { messages, controls } = await readMessages(client, 1, 10_000, { answerPings: true });
    expect(await sending).toEqual(['ok', Buffer.byteLength(Array.from({ length: ROUNDS }, (_, i) => `part ${i};`).join(''))]);
    expect((messages[0] as { payload: Buffer }).payload.toString()).toBe(Array.from({ length: ROUNDS }, (_, i) => `part ${i};`).join(''));
    const midPings = controls.filter((c) => c.frame.opcode === 0x9 && c.midMessage);
    expect(midPings.length).toBeGreaterThanOrEqual(ROUNDS);
    expect(pongs.length).toBeGreaterThanOrEqual(ROUNDS);
    expect(b.readyState).toBe(Behavior.OPEN);
  });

  test('the heartbeat ends a peer that stops answering during a slow stream: sendStream rejects with WS_STREAM_INTERRUPTED, the source is released', async () => {
    const { client, b } = await open({ pingInterval: 200, pongTimeout: 300 });
    const never = deferred();
    const { state, source } = countingSource(10, 100, { gate: never.promise, after: 1 });
    const sending = outcome(b.sendStream(source));
    expect(await client.waitClosed(5000)).toBe(true);
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    // The generator waits inside the pull that was in flight; once that pull ends, return() runs.
    never.resolve();
    await waitFor(() => state.released, 3000, 'the source to be released');
    expect(state.pulls).toBe(2);
  });
});

// ---- order against other sends ------------------------------------------------------------------------------

describe('order: other sends wait behind a stream and never interleave with it', () => {
  test('two sendStream calls at once with sendText, send and a publish between them arrive whole, in call order', async () => {
    const { s, client, b } = await open();
    b.subscribe('news');
    const pulls: string[] = [];
    async function* slow(tag: string, n: number): AsyncGenerator<string> {
      for (let i = 0; i < n; i++) {
        await sleep(2);
        pulls.push(`${tag}${i}`);
        yield `${tag}${i}|`;
      }
    }
    const statuses: SendStatus[] = [];
    const first = outcome(b.sendStream(slow('A', 6)));
    statuses.push(b.sendText('t1'));
    statuses.push(b.send(Buffer.from([1, 2, 3])));
    s.srv.handler.publish('news', 'published');
    const second = outcome(b.sendStream(slow('B', 6)));
    statuses.push(b.sendText('t2'));
    expect(statuses).toEqual(['queued', 'queued', 'queued']);
    const { messages } = await readMessages(client, 6, 5000);
    expect(messages.map((m) => [m.opcode, m.opcode === 2 ? m.payload.toString('hex') : m.payload.toString()])).toEqual([
      [0x1, 'A0|A1|A2|A3|A4|A5|'],
      [0x1, 't1'],
      [0x2, '010203'],
      [0x1, 'published'],
      [0x1, 'B0|B1|B2|B3|B4|B5|'],
      [0x1, 't2'],
    ]);
    expect(messages[0]?.frames.length).toBe(7);
    expect(messages[4]?.frames.length).toBe(7);
    expect(await first).toEqual(['ok', 18]);
    expect(await second).toEqual(['ok', 18]);
    // The waiting stream did not start reading its source before the first one ended.
    expect(pulls.indexOf('B0')).toBeGreaterThan(pulls.indexOf('A5'));
  });
});

// ---- failures ----------------------------------------------------------------------------------------------

describe('a stream that cannot finish', () => {
  test('the peer sends a close frame mid-stream: sendStream rejects with WS_STREAM_INTERRUPTED, the source is released and no longer pulled', async () => {
    const { client, b } = await open();
    const state = { pulls: 0, released: false };
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          state.pulls++;
          yield Buffer.alloc(1024, 0x41);
          await sleep(5);
        }
      } finally {
        state.released = true;
      }
    }
    const sending = outcome(b.sendStream(endless()));
    const first = await client.nextFrame(3000);
    expect([first.opcode, first.fin]).toEqual([0x2, false]);
    client.send(0x8, Buffer.from([0x03, 0xe8]));
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    await waitFor(() => state.released, 3000, 'the source to be released');
    const pulled = state.pulls;
    await sleep(100);
    expect(state.pulls).toBe(pulled);
    // What the client sees after its close: maybe more fragments of the message, then the echo, never a new message.
    const after = await framesUntilClosed(client);
    const close = after.find((f) => f.opcode === 0x8) ?? null;
    expect(closeOf(close)?.code).toBe(1000);
    expect(after.filter((f) => f.opcode !== 0 && f.opcode !== 0x8)).toEqual([]);
  });

  test('the peer drops TCP mid-stream: sendStream rejects with WS_STREAM_INTERRUPTED and the generator is released', async () => {
    const { client, b } = await open();
    const gate = deferred();
    const { state, source } = countingSource(100, 1000, { gate: gate.promise, after: 2 });
    const sending = outcome(b.sendStream(source));
    await client.nextFrame(3000);
    client.destroy();
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    // The pull in flight (waiting at the gate) ends, then return() runs: no pull after it.
    gate.resolve();
    await waitFor(() => state.released, 3000, 'the source to be released');
    expect(state.pulls).toBe(3);
    await sleep(50);
    expect(state.pulls).toBe(3);
  });

  test('a Node Readable source that keeps producing is destroyed when the peer leaves', async () => {
    const { client, b } = await open();
    let n = 0;
    const readable = new Readable({
      read() {
        setTimeout(() => this.push(Buffer.alloc(1000, n++ & 0xff)), 2);
      },
    });
    const sending = outcome(b.sendStream(readable));
    await client.nextFrame(3000);
    client.destroy();
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    await waitFor(() => readable.destroyed, 3000, 'the Readable to be destroyed');
  });

  test('a stalled Node Readable source (waiting for data when the peer leaves) is destroyed', async () => {
    const { client, b } = await open();
    const readable = new Readable({
      read() {
        /* one chunk pushed below, then nothing until destroyed */
      },
    });
    readable.push(Buffer.from('r'));
    const sending = outcome(b.sendStream(readable));
    const first = await client.nextFrame(3000);
    expect([first.opcode, first.payload.toString()]).toEqual([0x2, 'r']);
    client.destroy();
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    await waitFor(() => readable.destroyed, 3000, 'the Readable to be destroyed');
  });

  test('a web ReadableStream source being sent is cancelled, a sync iterator being sent is returned, when the peer leaves', async () => {
    for (const kind of ['web', 'sync'] as const) {
      const { client, b } = await open();
      let released = false;
      let source: ReadableStream<Uint8Array> | Iterable<Buffer>;
      if (kind === 'web') {
        source = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(new Uint8Array(1000));
            return sleep(5);
          },
          cancel() {
            released = true;
          },
        });
      } else {
        let i = 0;
        source = {
          [Symbol.iterator]: () => ({
            next: () => ({ done: false, value: Buffer.alloc(64 * 1024, i++ & 0xff) }),
            return: () => {
              released = true;
              return { done: true, value: undefined };
            },
          }),
        };
        client.socket.pause();
      }
      const sending = outcome(b.sendStream(source));
      if (kind === 'web') await client.nextFrame(3000);
      else await sleep(100);
      client.destroy();
      const [k, error] = await within(sending, 3000, `sendStream (${kind}) to settle`);
      expect(k).toBe('error');
      expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
      await waitFor(() => released, 3000, `the ${kind} source to be released`);
    }
  });

  test('the source throws mid-stream: sendStream rejects with that error; the client sees the partial fragments, then close 1011, then nothing', async () => {
    const { client, b } = await open();
    const failure = new Error('disk on fire');
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('c0');
      yield Buffer.from('c1');
      await sleep(10);
      yield Buffer.from('c2');
      throw failure;
    }
    const sending = outcome(b.sendStream(failing()));
    // Sent meanwhile: must never reach the wire after half a message.
    expect(b.sendText('queued behind')).toBe('queued');
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect(error).toBe(failure);
    const { messages, controls, close } = await readMessages(client, 1, 3000);
    expect(messages).toEqual([]);
    expect(closeOf(close)).toEqual({ code: 1011, reason: 'message source failed' });
    expect(controls.map((c) => c.afterDataFrames)).toEqual([3]);
    client.send(0x8, (close as RawFrame).payload);
    expect(await framesUntilClosed(client)).toEqual([]);
    expect(client.tcpClosed).toBe(true);
  });

  test('the source throws mid-stream: the data frames before the close are exactly the chunks pulled', async () => {
    const { client, b } = await open();
    async function* failing(): AsyncGenerator<string> {
      yield 'one';
      yield 'two';
      throw new TypeError('bad');
    }
    const sending = outcome(b.sendStream(failing()));
    const frames: RawFrame[] = [];
    for (;;) {
      const f = await client.nextFrame(3000);
      frames.push(f);
      if (f.opcode === 0x8) break;
    }
    expect(frameShape(frames.slice(0, -1))).toEqual([
      [0x1, false, 0, hex('one')],
      [0x0, false, 0, hex('two')],
    ]);
    expect(closeOf(frames.at(-1) as RawFrame)?.code).toBe(1011);
    expect((await sending)[0]).toBe('error');
  });

  test('the server closes (close(4000)) mid-stream: the close frame follows the partial message, sendStream rejects with WS_STREAM_INTERRUPTED, the source is released', async () => {
    const { client, b, closes } = await open();
    const gate = deferred();
    const { state, source } = countingSource(10, 100, { gate: gate.promise, after: 2 });
    const sending = outcome(b.sendStream(source));
    const frames = [await client.nextFrame(3000), await client.nextFrame(3000)];
    expect(frames.map((f) => [f.opcode, f.fin])).toEqual([
      [0x2, false],
      [0x0, false],
    ]);
    b.close(4000, 'bye');
    const next = await client.nextFrame(3000);
    expect(closeOf(next)).toEqual({ code: 4000, reason: 'bye' });
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect((error as { code?: string }).code).toBe('WS_STREAM_INTERRUPTED');
    client.send(0x8, next.payload);
    expect(await framesUntilClosed(client)).toEqual([]);
    gate.resolve();
    await waitFor(() => state.released, 3000, 'the source to be released');
    await waitFor(() => closes.length === 1, 3000, 'onClose');
    expect(closes[0]).toEqual([4000, 'bye']);
  });

  test('a signal already aborted: rejects with its reason and no message reaches the peer', async () => {
    const { client, b } = await open();
    const controller = new AbortController();
    const reason = new Error('too late');
    controller.abort(reason);
    const { state, source } = countingSource(3, 10);
    const [kind, error] = await outcome(b.sendStream(source, { signal: controller.signal }));
    expect(kind).toBe('error');
    expect(error).toBe(reason);
    b.sendText('after');
    const f = await client.nextFrame(3000);
    console.log(`[streaming-send] pre-aborted signal: first frame after it: opcode ${f.opcode} ${f.opcode === 8 ? JSON.stringify(closeOf(f)) : f.payload.toString()}; source pulls ${state.pulls}`);
    // Either the connection was closed (1011) or the stream never began and 'after' is next: never a data frame of the aborted message.
    if (f.opcode === 0x8) expect(closeOf(f)?.code).toBe(1011);
    else expect([f.opcode, f.fin, f.payload.toString()]).toEqual([0x1, true, 'after']);
  });

  test('signal aborted mid-stream: rejects with signal.reason, close 1011 (message aborted), the source is released', async () => {
    const { client, b } = await open();
    const controller = new AbortController();
    const never = deferred();
    const { state, source } = countingSource(10, 10, { gate: never.promise, after: 1 });
    const sending = outcome(b.sendStream(source, { signal: controller.signal }));
    const first = await client.nextFrame(3000);
    expect([first.opcode, first.fin, first.payload.length]).toEqual([0x2, false, 10]);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    const [kind, error] = await within(sending, 3000, 'sendStream to settle');
    expect(kind).toBe('error');
    expect(error).toBe(reason);
    const { close } = await readMessages(client, 1, 3000);
    expect(closeOf(close)).toEqual({ code: 1011, reason: 'message aborted' });
    // The pull in flight (waiting at the gate) ends, then return() runs: no pull after it.
    never.resolve();
    await waitFor(() => state.released, 3000, 'the source to be released');
    expect(state.pulls).toBe(2);
  });

  test('text from byte chunks that is not UTF-8: rejects with TypeError and closes with 1011, and no message is completed', async () => {
    for (const chunks of [[Buffer.from('ok'), Buffer.from([0xff])], [Buffer.from([0x61, 0xe2, 0x82])]]) {
      const { client, b } = await open();
      const [kind, error] = await outcome(b.sendStream(chunks, { text: true }));
      expect(kind).toBe('error');
      expect(error).toBeInstanceOf(TypeError);
      const { messages, close } = await readMessages(client, 1, 3000);
      expect(messages).toEqual([]);
      expect(closeOf(close)?.code).toBe(1011);
    }
  });
});

// ---- permessage-deflate -------------------------------------------------------------------------------------

describe('permessage-deflate agreed', () => {
  test('streamed frames go uncompressed (RSV1 clear); the text sent meanwhile follows, compressed', async () => {
    const { client, b } = await open({ perMessageDeflate: true }, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    expect(client.headers['sec-websocket-extensions'] ?? '').toMatch(/^permessage-deflate/);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    async function* three(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 3; i++) {
        await sleep(2);
        yield chunk;
      }
    }
    const sending = outcome(b.sendStream(three()));
    const big = 'x'.repeat(8192);
    expect(b.sendText(big)).toBe('queued');
    const { messages } = await readMessages(client, 2, 5000);
    expect(await sending).toEqual(['ok', 3 * chunk.length]);
    const stream = messages[0] as { frames: RawFrame[]; payload: Buffer };
    expect(stream.frames.map((f) => f.rsv)).toEqual([0, 0, 0, 0]);
    expect(stream.payload.equals(Buffer.concat([chunk, chunk, chunk]))).toBe(true);
    const text = messages[1] as { frames: RawFrame[]; payload: Buffer; opcode: number };
    expect(text.opcode).toBe(0x1);
    expect(text.frames[0]?.rsv).toBe(4);
    const inflated = zlib.inflateRawSync(Buffer.concat([text.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(inflated.toString()).toBe(big);
  });
});

