/**
 * What an idle connection keeps (src/connection/extras.ts): the state that most connections
 * never use — the close handshake, held control frames, drain waiters, asynchronous hooks,
 * streamed messages — lives in one object made only when one of them is first needed. A
 * connection that has exchanged messages and heartbeats with a real peer keeps none of it; each
 * use that needs it still works, and the close reports the code and reason it must.
 */
import { expect, test } from 'vitest';
import WebSocket from 'ws';
import { Behavior, type StreamedMessage } from '../../src/index.js';
import { internals } from '../../src/behavior-types.js';
import { useFixture } from '../helpers/fixture.js';
import { closePayload } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

/** The connection's `extras` slot (protected: read here through a cast). */
function extrasOf(b: Behavior): unknown {
  const c = internals.connection(b) as unknown as { extras: unknown } | null;
  if (c === null) throw new Error('no connection');
  return c.extras;
}

const opened: Behavior[] = [];
const closes: [number, string][] = [];

class Plain extends Behavior {
  override onOpen(): void {
    opened.push(this);
  }
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
  override onClose(code: number, reason: string): void {
    closes.push([code, reason]);
  }
}

class Async extends Plain {
  override async onText(text: string): Promise<void> {
    await Promise.resolve();
    this.sendText(text);
  }
}

class Streams extends Plain {
  override async onStream(message: StreamedMessage): Promise<void> {
    this.sendText(await message.text());
  }
}

test('messages both ways, pings answered and heartbeats returned leave an open connection with no extras; the close then reports its code and reason', async () => {
  opened.length = 0;
  closes.length = 0;
  const { port } = await mount({ '/plain': Plain }, { pingInterval: 50, pongTimeout: 5000 });
  const client = await connect(port, '/plain');
  await waitFor(() => opened.length === 1);
  const b = opened[0] as Behavior;
  client.send(0x1, 'hello');
  expect((await client.nextFrame()).payload.toString()).toBe('hello');
  client.send(0x2, Buffer.from([1, 2, 3]));
  expect([...(await client.nextFrame()).payload]).toEqual([1, 2, 3]);
  client.send(0x9, 'ping');
  const pong = await client.nextFrame();
  expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, 'ping']);
  // Our heartbeat: answer two of its pings.
  for (let i = 0; i < 2; i++) {
    const ping = await client.nextFrame();
    expect(ping.opcode).toBe(0x9);
    client.send(0xa, ping.payload);
  }
  await waitFor(() => b.latency !== undefined);
  expect(extrasOf(b)).toBeNull();
  client.send(0x8, closePayload(4001, 'bye'));
  const reply = await client.expectClose();
  expect(reply.code).toBe(4001);
  await waitFor(() => closes.length === 1);
  expect(closes[0]).toEqual([4001, 'bye']);
});

test('an idle connection closed by the peer without a close frame reports 1006 and an empty reason', async () => {
  opened.length = 0;
  closes.length = 0;
  const { port } = await mount({ '/plain': Plain }, { pingInterval: 0 });
  const client = await connect(port, '/plain');
  await waitFor(() => opened.length === 1);
  expect(extrasOf(opened[0] as Behavior)).toBeNull();
  client.destroy();
  await waitFor(() => closes.length === 1);
  expect(closes[0]).toEqual([1006, '']);
});

test('a hook that returns a promise and a message received as a stream make the extras, and work', async () => {
  opened.length = 0;
  const { port } = await mount({ '/async': Async, '/streams': Streams }, { pingInterval: 0 });
  const a = await connect(port, '/async');
  const s = await connect(port, '/streams');
  await waitFor(() => opened.length === 2);
  for (const client of [a, s]) {
    client.send(0x1, 'one', { fin: false });
    client.send(0x0, ' two');
    expect((await client.nextFrame()).payload.toString()).toBe('one two');
  }
  for (const b of opened) expect(extrasOf(b)).toBeInstanceOf(Object);
  // With the extras made, the close still reports what the peer sent.
  closes.length = 0;
  a.send(0x8, closePayload(4002, 'done here'));
  expect((await a.expectClose()).code).toBe(4002);
  s.send(0x8, closePayload(1000));
  expect((await s.expectClose()).code).toBe(1000);
  await waitFor(() => closes.length === 2);
  expect(closes.sort()).toEqual([
    [1000, ''],
    [4002, 'done here'],
  ]);
});

test("a route's connections share one object for its handler, limits and counters; the ready state is two bits of the flags and goes OPEN, CLOSING, CLOSED", async () => {
  opened.length = 0;
  closes.length = 0;
  const { port } = await mount({ '/a': Plain, '/b': Async }, { pingInterval: 0 });
  const a1 = await connect(port, '/a');
  const a2 = await connect(port, '/a');
  const b1 = await connect(port, '/b');
  await waitFor(() => opened.length === 3);
  type Inside = { shared: { counters: unknown; limits: unknown; owner: unknown }; counters: unknown; flags: number; state: number };
  const inside = (b: Behavior): Inside => internals.connection(b) as unknown as Inside;
  const [x1, x2, y1] = ['/a', '/a', '/b'].map((route, i) => {
    const b = opened.filter((o) => o.route === route)[i === 1 ? 1 : 0] as Behavior;
    return inside(b);
  }) as [Inside, Inside, Inside];
  expect(x1).not.toBe(x2);
  expect(x1.shared).toBe(x2.shared);
  expect(x1.shared).not.toBe(y1.shared);
  expect(x1.counters).toBe(x1.shared.counters);
  expect(x1.counters).not.toBe(y1.counters);
  // Open: the state's bits are 0, whatever other flags are set.
  const b = opened.find((o) => o.route === '/a') as Behavior;
  expect(b.readyState).toBe(1);
  expect(x1.flags & (3 << 20)).toBe(0);
  // Closing (our close sent, the peer's not yet received), then closed.
  b.close(4003, 'going');
  expect(b.readyState).toBe(2);
  expect(x1.state).toBe(2);
  const frame = await a1.expectClose(5000, { echo: true });
  expect(frame.code).toBe(4003);
  expect(frame.tcpClosed).toBe(true);
  await waitFor(() => b.readyState === 3);
  expect(x1.state).toBe(3);
  // The other connections of the route are untouched.
  expect(x2.state).toBe(1);
  expect(y1.state).toBe(1);
  a2.send(0x1, 'still here');
  expect((await a2.nextFrame()).payload.toString()).toBe('still here');
  b1.send(0x1, 'and here');
  expect((await b1.nextFrame()).payload.toString()).toBe('and here');
});

test('a compressed connection echoing messages over the inline deflate limit (compressed on the thread pool, so ordered) keeps no extras once its queue is empty', async () => {
  opened.length = 0;
  const { port } = await mount({ '/plain': Plain }, { pingInterval: 0, perMessageDeflate: true });
  const client = new WebSocket(`ws://127.0.0.1:${port}/plain`, { perMessageDeflate: true });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    expect(client.extensions).toContain('permessage-deflate');
    await waitFor(() => opened.length === 1);
    const big = 'wsmount '.repeat(16 * 1024); // 128 KiB, over the 16 KiB compressed inline
    for (let i = 0; i < 3; i++) {
      const echo = new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
      client.send(big);
      expect(await echo).toBe(big);
    }
    const b = opened[0] as Behavior;
    const inside = internals.connection(b) as unknown as { ordered: unknown };
    await waitFor(() => inside.ordered === null);
    expect(extrasOf(b)).toBeNull();
  } finally {
    client.terminate();
  }
});
