/**
 * Send-side backpressure: what `send*()` returns (`'sent' | 'queued' | 'dropped'`), the
 * `maxBackpressure` edge, the `'close'` policy (1008 'slow consumer', RFC 6455 §7.4.1) and the
 * `'drop'` policy, the exception for a single message larger than the limit, per-route static
 * overrides, `broadcast()` under the same policy per recipient, and the counters behind them.
 *
 * Exact edges are checked inside `onText` over the in-memory transport (`wsmount/testing`): a
 * write there completes only once the peer has read it, on a later tick, so everything sent
 * inside the hook stays in `bufferedAmount` and the arithmetic is exact. (Over TCP, wsmount
 * hands corked bytes to the kernel before judging a backlog: a burst sent inside a hook to a
 * fast reader is not a slow consumer — checked below.) The "real slow consumer" cases pause a
 * raw client so that the kernel buffers fill.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, type Routes, type SendStatus, type WebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import type { RawClient, RawFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { type TestClient, connect as connectInMemory } from '../../src/testing/index.js';

const { mount, connect, handlerFor } = useFixture();

const made: Behavior[] = [];
const closes: [number, string][] = [];

/** Keeps every instance; records onClose. */
class Held extends Behavior {
  override onOpen(): void {
    made.push(this);
  }
  override onClose(code: number, reason: string): void {
    closes.push([code, reason]);
  }
}

/** What `Burst` saw, per onText call: [bufferedAmount before the send, status]. */
let steps: [number, SendStatus][] = [];
let stateAfter: number[] = [];

/**
 * On a text message 'n:size,size,…' sends one text message per size ('a', 'b', 'c'… repeated
 * to that size; 10 characters frame as 12 bytes) while the socket is corked, recording the
 * backlog before each send and the status.
 */
class Burst extends Held {
  override onText(text: string): void {
    steps = [];
    const sizes = text.split(',').map(Number);
    sizes.forEach((size, i) => {
      const before = this.bufferedAmount;
      steps.push([before, this.sendText(String.fromCharCode(97 + i).repeat(size))]);
    });
    stateAfter.push(this.readyState);
  }
}

async function open(routes: Routes, options: HandlerOptions, path: string): Promise<{ client: RawClient; b: Behavior; port: number; handler: WebSocketHandler }> {
  made.length = 0;
  closes.length = 0;
  stateAfter = [];
  const { port, handler } = await mount(routes, options);
  const client = await connect(port, path);
  await waitFor(() => made.length === 1, 2000, 'open');
  return { client, b: made[0] as Behavior, port, handler };
}

/** `open` over the in-memory transport. */
async function openInMemory(routes: Routes, options: HandlerOptions, path: string): Promise<{ client: TestClient; b: Behavior; handler: WebSocketHandler }> {
  made.length = 0;
  closes.length = 0;
  stateAfter = [];
  const handler = handlerFor(routes, options);
  const client = await connectInMemory(handler, path);
  await waitFor(() => made.length === 1, 2000, 'open');
  return { client, b: made[0] as Behavior, handler };
}

/** The next `n` messages of an in-memory client, as strings. */
async function texts(client: TestClient, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) out.push(String(await client.nextMessage({ timeout: 3000 })));
  return out;
}

/** Reads frames until the server's close frame; answers it and waits for TCP close. */
async function untilClose(client: RawClient, timeout = 5000): Promise<{ data: RawFrame[]; code: number | undefined; reason: string; tcpClosed: boolean }> {
  const data: RawFrame[] = [];
  for (;;) {
    const f = await client.nextFrame(timeout);
    if (f.opcode !== 0x8) {
      data.push(f);
      continue;
    }
    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
    client.send(0x8, f.payload); // echo it, as a client does
    return { data, code, reason: f.payload.subarray(2).toString(), tcpClosed: await client.waitClosed(3000) };
  }
}

/** Reads `n` data frames. */
async function dataFrames(client: RawClient, n: number, timeout = 5000): Promise<RawFrame[]> {
  const out: RawFrame[] = [];
  while (out.length < n) {
    const f = await client.nextFrame(timeout);
    if (f.opcode === 0x1 || f.opcode === 0x2) out.push(f);
  }
  return out;
}

const CHUNK = 64 * 1024;
/** A 64 KiB binary message whose first 4 bytes are `i`. */
function numbered(i: number): Buffer {
  const b = Buffer.alloc(CHUNK, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

/**
 * With the peer paused, sends numbered 64 KiB messages until the kernel takes no more (the
 * socket's backlog is non-empty). Returns the statuses.
 */
function fillKernel(b: Behavior): SendStatus[] {
  const statuses: SendStatus[] = [];
  while (b.bufferedAmount === 0 && statuses.length < 4000) statuses.push(b.sendBinary(numbered(statuses.length)));
  expect(b.bufferedAmount).toBeGreaterThan(0);
  return statuses;
}

describe('send status', () => {
  test("'sent' for a small message on an idle socket; 'queued' behind a backlog, which grows by exactly the frame; 'dropped' once closing", async () => {
    const { client, b } = await open({ '/h': Held }, {}, '/h');
    expect(b.bufferedAmount).toBe(0);
    expect(b.sendText('hi')).toBe('sent');
    expect((await client.nextFrame(2000)).payload.toString()).toBe('hi');

    client.socket.pause();
    const filled = fillKernel(b);
    expect(filled.every((s) => s !== 'dropped')).toBe(true);
    const before = b.bufferedAmount;
    expect(b.sendText('x')).toBe('queued');
    expect(b.bufferedAmount).toBe(before + 3); // 2-byte header + 1 byte
    expect(b.sendBinary(Buffer.alloc(200))).toBe('queued');
    expect(b.bufferedAmount).toBe(before + 3 + 4 + 200); // 16-bit length: 4-byte header

    b.close(1000);
    expect(b.sendText('late')).toBe('dropped');
    expect(b.send(Buffer.from('late'))).toBe('dropped');
    client.socket.resume();
    const end = await untilClose(client);
    expect(end.code).toBe(1000);
    expect(end.data).toHaveLength(filled.length + 2);
    expect(end.data.at(-2)?.payload.toString()).toBe('x');
    expect(end.data.at(-1)?.payload.length).toBe(200);
  });
});

describe('maxBackpressure: the exact edge (sent inside onText, in memory)', () => {
  class Drop24 extends Burst {
    static override maxBackpressure = 24;
    static override backpressure = 'drop' as const;
  }
  class Close24 extends Burst {
    static override maxBackpressure = 24;
  }

  test("'drop': a send that would take the backlog past the limit is dropped; up to the limit exactly is accepted; the connection stays open", async () => {
    const { client, b, handler } = await openInMemory({ '/d': Drop24 }, {}, '/d');
    client.send('10,10,10,1');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps).toEqual([
      [0, 'sent'],
      [12, 'sent'], // 12 + 12 = 24: at the limit, accepted
      [24, 'dropped'],
      [24, 'dropped'], // even 3 bytes do not fit
    ]);
    expect(stateAfter).toEqual([1]);
    expect(await texts(client, 2)).toEqual(['a'.repeat(10), 'b'.repeat(10)]);
    // Flushed: sending works again, and nothing else was sent in between.
    client.send('1');
    expect(await texts(client, 1)).toEqual(['a']);
    expect(b.readyState).toBe(1);
    const stats = handler.stats();
    expect(stats).toMatchObject({ backpressureDrops: 2, backpressureCloses: 0, messagesOut: 3 });
  });

  test("'close' (the default): the over-limit send is dropped and the slow consumer is closed with 1008 'slow consumer'; later sends are dropped", async () => {
    const { client, handler } = await openInMemory({ '/c': Close24 }, {}, '/c');
    client.send('10,10,10,1');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps).toEqual([
      [0, 'sent'],
      [12, 'sent'],
      [24, 'dropped'],
      [24 + 2 + 2 + 13, 'dropped'], // closing: the close frame (1008 'slow consumer', 17 bytes) is behind the two messages
    ]);
    expect(stateAfter).toEqual([2]);
    expect(await texts(client, 2)).toEqual(['a'.repeat(10), 'b'.repeat(10)]);
    expect(await client.closed).toEqual({ code: 1008, reason: 'slow consumer' });
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([[1008, 'slow consumer']]);
    const stats = handler.stats();
    expect(stats).toMatchObject({ backpressureDrops: 1, backpressureCloses: 1, messagesOut: 2, closesByCode: { 1008: 1 } });
  });

  test('over TCP, a burst sent inside a hook to a peer that reads is handed to the kernel first: not a slow consumer', async () => {
    class Burst64 extends Held {
      override onText(): void {
        let dropped = 0;
        for (let i = 0; i < 32; i++) if (this.sendBinary(Buffer.alloc(64 << 10, i)) === 'dropped') dropped++;
        this.sendText(`dropped ${dropped}`);
      }
    }
    const { client, b, handler } = await open({ '/b': Burst64 }, { maxBackpressure: 1 << 20 }, '/b');
    client.send(0x1, 'go'); // 32 × 64 KiB = 2 MiB in one hook, against a 1 MiB limit (loopback's kernel buffers take ~3 MB)
    const got = await dataFrames(client, 33, 10_000);
    expect(got.at(-1)?.payload.toString()).toBe('dropped 0');
    expect(got.slice(0, 32).map((f) => f.payload[0])).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(b.readyState).toBe(1);
    expect(handler.stats()).toMatchObject({ backpressureDrops: 0, backpressureCloses: 0 });
  });

  test('a single message larger than the limit still goes out when nothing is waiting (under either policy); the next one does not fit', async () => {
    const { client, b } = await openInMemory({ '/d': Drop24 }, {}, '/d');
    client.send('100,1');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps).toEqual([
      [0, 'sent'],
      [102, 'dropped'],
    ]);
    expect(await texts(client, 1)).toEqual(['a'.repeat(100)]);
    expect(b.readyState).toBe(1);

    const other = await openInMemory({ '/c': Close24 }, {}, '/c');
    other.client.send('500');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps).toEqual([[0, 'sent']]);
    expect(stateAfter).toEqual([1]);
    expect(await texts(other.client, 1)).toEqual(['a'.repeat(500)]);
    expect(other.b.readyState).toBe(1);
  });

  test("per-route statics override the handler: static backpressure 'drop' keeps its connection under a handler 'close'; static maxBackpressure raises the limit", async () => {
    class Dropper extends Burst {
      static override backpressure = 'drop' as const;
    }
    class Roomy extends Burst {
      static override maxBackpressure = 1 << 20;
    }
    const routes = { '/inherit': Burst, '/dropper': Dropper, '/roomy': Roomy };
    const options: HandlerOptions = { maxBackpressure: 24, backpressure: 'close' };

    const inherit = await openInMemory(routes, options, '/inherit');
    inherit.client.send('10,10,10');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps.map((s) => s[1])).toEqual(['sent', 'sent', 'dropped']);
    expect(stateAfter).toEqual([2]);
    expect((await inherit.client.closed).code).toBe(1008);

    const dropper = await openInMemory(routes, options, '/dropper');
    dropper.client.send('10,10,10');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps.map((s) => s[1])).toEqual(['sent', 'sent', 'dropped']);
    expect(stateAfter).toEqual([1]);

    const roomy = await openInMemory(routes, options, '/roomy');
    roomy.client.send('10,10,10,1000');
    await waitFor(() => stateAfter.length === 1, 2000, 'onText');
    expect(steps.map((s) => s[1])).toEqual(['sent', 'sent', 'sent', 'sent']);
    expect(stateAfter).toEqual([1]);
  });
});

describe('a real slow consumer (the peer stops reading)', () => {
  test("'close': sends are accepted up to maxBackpressure, then the connection closes with 1008 'slow consumer' behind every accepted message, which the peer gets once it reads", async () => {
    const { client, b } = await open({ '/h': Held }, { maxBackpressure: 256 * 1024 }, '/h');
    client.socket.pause();
    const statuses = fillKernel(b);
    while (statuses.at(-1) !== 'dropped' && statuses.length < 4000) statuses.push(b.sendBinary(numbered(statuses.length)));
    const accepted = statuses.length - 1;
    expect(statuses.slice(0, accepted).every((s) => s === 'sent' || s === 'queued')).toBe(true);
    expect(statuses.at(-1)).toBe('dropped');
    expect(b.bufferedAmount).toBeLessThanOrEqual(256 * 1024 + 17); // the 17-byte close frame rides on top
    expect(b.readyState).toBe(2);
    expect(b.sendBinary(numbered(99_999))).toBe('dropped');

    client.socket.resume();
    const end = await untilClose(client, 10_000);
    expect(end.data.map((f) => f.payload.readUInt32BE(0))).toEqual(Array.from({ length: accepted }, (_, i) => i));
    expect(end).toMatchObject({ code: 1008, reason: 'slow consumer', tcpClosed: true });
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([[1008, 'slow consumer']]);
  });

  test("'drop': over-limit sends return 'dropped' and the connection stays open; once the peer reads, it gets exactly the accepted messages and sending works again", async () => {
    const { client, b } = await open({ '/h': Held }, { maxBackpressure: 256 * 1024, backpressure: 'drop' }, '/h');
    client.socket.pause();
    const statuses = fillKernel(b);
    let drops = 0;
    while (drops < 3 && statuses.length < 4000) {
      const s = b.sendBinary(numbered(statuses.length));
      statuses.push(s);
      if (s === 'dropped') drops++;
    }
    expect(drops).toBe(3);
    expect(b.readyState).toBe(1);
    expect(b.bufferedAmount).toBeLessThanOrEqual(256 * 1024);
    const accepted = statuses.flatMap((s, i) => (s === 'dropped' ? [] : [i]));

    client.socket.resume();
    expect(await b.drained()).toBe(true);
    expect(b.sendText('after')).toBe('sent');
    const got = await dataFrames(client, accepted.length + 1, 10_000);
    expect(got.slice(0, -1).map((f) => f.payload.readUInt32BE(0))).toEqual(accepted);
    expect(got.at(-1)?.payload.toString()).toBe('after');
    await sleep(50);
    expect(client.pending()).toEqual([]);
    expect(b.readyState).toBe(1);
  });
});

describe('broadcast under the backpressure policy', () => {
  test("'drop': a backed-up recipient is skipped and kept; the count, messagesOut and backpressureDrops count only what happened", async () => {
    const { client: slow, b, handler, port } = await open({ '/h': Held }, { maxBackpressure: 256 * 1024, backpressure: 'drop' }, '/h');
    const fast = [await connect(port, '/h'), await connect(port, '/h')];
    await waitFor(() => made.length === 3, 2000, 'three open');
    slow.socket.pause();
    const statuses = fillKernel(b);
    while (statuses.at(-1) !== 'dropped' && statuses.length < 4000) statuses.push(b.sendBinary(numbered(statuses.length)));
    const h = handler;
    const before = h.stats();
    expect(h.broadcast(numbered(7777))).toBe(2);
    const after = h.stats();
    expect(after.messagesOut - before.messagesOut).toBe(2);
    expect(after.backpressureDrops - before.backpressureDrops).toBe(1);
    expect(after.backpressureCloses).toBe(0);
    for (const c of fast) expect((await dataFrames(c, 1))[0]?.payload.readUInt32BE(0)).toBe(7777);
    expect(b.readyState).toBe(1);
    slow.socket.resume();
    const got = await dataFrames(slow, statuses.length - 1, 10_000);
    expect(got.map((f) => f.payload.readUInt32BE(0))).not.toContain(7777);
  });

  test("'close': a backed-up recipient is closed with 1008 and not counted; idle recipients get a message larger than the limit", async () => {
    const limit = 128 * 1024;
    const { client: slow, b, handler, port } = await open({ '/h': Held }, { maxBackpressure: limit }, '/h');
    const fast = [await connect(port, '/h'), await connect(port, '/h')];
    await waitFor(() => made.length === 3, 2000, 'three open');
    slow.socket.pause();
    const filled = fillKernel(b);
    const h = handler;
    const before = h.stats();
    const big = Buffer.alloc(limit, 0x42); // over the limit as a frame: only an empty backlog takes it
    expect(h.broadcast(big)).toBe(2);
    const after = h.stats();
    expect(after.messagesOut - before.messagesOut).toBe(2);
    expect(after.backpressureDrops - before.backpressureDrops).toBe(1);
    expect(after.backpressureCloses - before.backpressureCloses).toBe(1);
    expect(b.readyState).toBe(2);
    for (const c of fast) expect((await dataFrames(c, 1))[0]?.payload.equals(big)).toBe(true);
    slow.socket.resume();
    const end = await untilClose(slow, 10_000);
    expect(end.data).toHaveLength(filled.length);
    expect(end).toMatchObject({ code: 1008, reason: 'slow consumer' });
  });
});
