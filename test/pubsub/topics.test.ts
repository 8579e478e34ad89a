/**
 * Topics in one process: subscribe/unsubscribe/isSubscribed/topics on a behavior, `publish`
 * (sender excluded unless `self`), `handler.publish`, `subscriberCount`, the `onSubscription`
 * presence callback, automatic unsubscription at close, topic-name checks, order between
 * `send()` and `publish()`, one write per socket per batch, and each subscriber's backpressure
 * policy. Clients are wsmount/testing's in-memory ones unless a real TCP socket matters.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import {
  Behavior,
  type Client,
  type HandlerOptions,
  MAX_TOPIC_LENGTH,
  type RouteParams,
  type Routes,
  type WebSocketHandler,
  createWebSocketHandler,
} from '../../src/index.js';
import { type TestClient, connect as connectInMemory } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/server.js';
import { countWrites } from '../helpers/writes.js';

const { mount, connect, defer } = useFixture();

/** Joins `room:<room>` on open; relays text and binary to the room (others only); '!self …' includes itself. */
class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  get topic(): string {
    return `room:${this.params.room}`;
  }
  override onOpen(): void {
    this.subscribe(this.topic);
  }
  override onText(text: string): void {
    if (text.startsWith('!self ')) this.publish(this.topic, text.slice(6), { self: true });
    else if (text === '!leave') this.unsubscribe(this.topic);
    else if (text.startsWith('!join ')) this.subscribe(text.slice(6));
    else this.publish(this.topic, text);
  }
  override onBinary(bytes: Buffer): void {
    this.publish(this.topic, bytes);
  }
}

function quietHandler(routes: Routes, extra: HandlerOptions = {}): WebSocketHandler {
  const handler = createWebSocketHandler(routes, { logLevel: 'silent', pingInterval: 0, ...extra });
  defer(() => handler.close({ timeout: 300 }));
  return handler;
}

async function join(handler: Parameters<typeof connectInMemory>[0], path: string): Promise<TestClient> {
  const client = await connectInMemory(handler, path);
  defer(() => client.terminate());
  return client;
}

/** Nothing more arrives at `client` for a while (after everything in flight was read). */
async function silent(client: TestClient): Promise<void> {
  await expect(client.nextMessage({ timeout: 150 })).rejects.toThrow();
}

describe('subscribe, unsubscribe, isSubscribed, topics', () => {
  test('subscribing twice is a no-op; topics is a live read-only view; unsubscribe reports whether it was subscribed', async () => {
    const seen: Behavior[] = [];
    class Keep extends Behavior {
      override onOpen(): void {
        seen.push(this);
      }
    }
    const handler = quietHandler({ '/k': Keep });
    await join(handler, '/k');
    const b = seen[0] as Behavior;
    const view = b.topics;
    expect(view.size).toBe(0);
    expect(b.subscribe('a')).toBe(true);
    expect(b.subscribe('a')).toBe(false);
    expect(b.subscribe('b')).toBe(true);
    expect(b.isSubscribed('a')).toBe(true);
    expect(b.isSubscribed('c')).toBe(false);
    expect([...b.topics]).toEqual(['a', 'b']);
    expect(handler.subscriberCount('a')).toBe(1);
    expect(b.unsubscribe('a')).toBe(true);
    expect(b.unsubscribe('a')).toBe(false);
    expect(b.unsubscribe('never')).toBe(false);
    expect(handler.subscriberCount('a')).toBe(0);
    expect([...b.topics]).toEqual(['b']);
    expect(handler.stats().topics).toBe(1);
    expect(handler.stats().subscriptions).toBe(1);
  });

  test('every subscription is dropped when the connection closes; onSubscription reports each change with its client', async () => {
    const events: string[] = [];
    const handler = quietHandler(
      { '/rooms/:room': Room },
      {
        onSubscription(client: Client, topic: string, count: number, previous: number) {
          events.push(`${client.id} ${topic} ${previous}->${count}`);
        },
      },
    );
    const a = await join(handler, '/rooms/x');
    const b = await join(handler, '/rooms/x');
    a.sendText('!join lobby');
    await waitFor(() => handler.subscriberCount('lobby') === 1, 2000, 'lobby');
    expect(handler.subscriberCount('room:x')).toBe(2);
    const [idA, idB] = [...handler.clients].map((c) => c.id);
    await a.close();
    await waitFor(() => handler.subscriberCount('room:x') === 1, 2000, 'a left');
    expect(handler.subscriberCount('lobby')).toBe(0);
    await b.close();
    await waitFor(() => handler.subscriberCount('room:x') === 0, 2000, 'b left');
    expect(events).toEqual([
      `${idA} room:x 0->1`,
      `${idB} room:x 1->2`,
      `${idA} lobby 0->1`,
      `${idA} room:x 2->1`,
      `${idA} lobby 1->0`,
      `${idB} room:x 1->0`,
    ]);
    expect(handler.stats().topics).toBe(0);
    expect(handler.stats().subscriptions).toBe(0);
  });

  test('in onClose the connection is already out of every topic (it gets none of the publishes made there)', async () => {
    const during: [number, boolean][] = [];
    class Leaver extends Room {
      override onClose(): void {
        during.push([this.topics.size, this.isSubscribed(this.topic)]);
        this.publish(this.topic, 'left', { self: true });
      }
    }
    const handler = quietHandler({ '/rooms/:room': Leaver });
    const a = await join(handler, '/rooms/y');
    const b = await join(handler, '/rooms/y');
    await waitFor(() => handler.subscriberCount('room:y') === 2, 2000, 'two');
    await a.close();
    expect(await b.nextMessage()).toBe('left');
    expect(during).toEqual([[0, false]]);
  });

  test('subscribe() in verify() throws and says where it works; after the close it returns false', async () => {
    let error: unknown;
    let late: Behavior | undefined;
    class Early extends Behavior {
      override verify(): void {
        try {
          this.subscribe('t');
        } catch (e) {
          error = e;
        }
      }
      override onOpen(): void {
        late = this;
      }
    }
    const handler = quietHandler({ '/e': Early });
    const c = await join(handler, '/e');
    expect(String(error)).toMatch(/subscribe\(\) is available once the connection is open \(from onOpen on\)/);
    await c.close();
    await waitFor(() => late?.readyState === 3, 2000, 'closed');
    expect(late?.subscribe('t')).toBe(false);
    expect(handler.subscriberCount('t')).toBe(0);
  });
});

describe('topic names', () => {
  test(`a topic is a non-empty string of at most ${MAX_TOPIC_LENGTH} characters of valid Unicode: anything else throws TypeError at the call`, async () => {
    let b: Behavior | undefined;
    class Keep extends Behavior {
      override onOpen(): void {
        b = this;
      }
    }
    const handler = quietHandler({ '/k': Keep });
    await join(handler, '/k');
    const client = b as Behavior;
    const bad: unknown[] = ['', 'x'.repeat(MAX_TOPIC_LENGTH + 1), 'a\ud800b', 42, null, undefined, { topic: 'a' }];
    for (const topic of bad) {
      expect(() => client.subscribe(topic as string)).toThrow(/wsmount: subscribe\(\): a topic is a non-empty string of at most 1024 characters/);
      expect(() => client.unsubscribe(topic as string)).toThrow(TypeError);
      expect(() => client.publish(topic as string, 'x')).toThrow(TypeError);
      expect(() => handler.publish(topic as string, 'x')).toThrow(/handler.publish\(\)/);
    }
    expect(client.subscribe('x'.repeat(MAX_TOPIC_LENGTH))).toBe(true);
    expect(client.subscribe('😀 room/ü')).toBe(true);
    expect(() => handler.publish('t', 42 as unknown as string)).toThrow(/a string \(sent as text\) or bytes/);
  });
});

describe('publish', () => {
  test("a behavior's publish reaches the topic's other subscribers, not itself; { self: true } includes it; returns the local count", async () => {
    const counts: number[] = [];
    class Count extends Room {
      override onText(text: string): void {
        counts.push(text.startsWith('!self ') ? this.publish(this.topic, text.slice(6), { self: true }) : this.publish(this.topic, text));
      }
    }
    const handler = quietHandler({ '/rooms/:room': Count });
    const [a, b, c] = [await join(handler, '/rooms/r'), await join(handler, '/rooms/r'), await join(handler, '/rooms/r')];
    const other = await join(handler, '/rooms/elsewhere');
    a.sendText('hello');
    expect(await b.nextMessage()).toBe('hello');
    expect(await c.nextMessage()).toBe('hello');
    a.sendText('!self echo');
    expect(await a.nextMessage()).toBe('echo');
    expect(await b.nextMessage()).toBe('echo');
    expect(await c.nextMessage()).toBe('echo');
    await silent(a);
    await silent(other);
    expect(counts).toEqual([2, 3]);
  });

  test('handler.publish reaches every subscriber, text as text and bytes as binary, byte-exact; a topic nobody has costs nothing and returns 0', async () => {
    const handler = quietHandler({ '/rooms/:room': Room });
    const a = await join(handler, '/rooms/t');
    const b = await join(handler, '/rooms/t');
    await waitFor(() => handler.subscriberCount('room:t') === 2, 2000, 'two');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(70_000, 'é');
    expect(handler.publish('room:t', 'ünïcødé 😀')).toBe(2);
    expect(handler.publish('room:t', all)).toBe(2);
    expect(handler.publish('room:t', new Uint8Array([1, 2, 3]))).toBe(2);
    expect(handler.publish('room:t', big.toString())).toBe(2);
    for (const client of [a, b]) {
      expect(await client.nextMessage()).toBe('ünïcødé 😀');
      expect(Buffer.from((await client.nextMessage()) as Buffer)).toEqual(all);
      expect(Buffer.from((await client.nextMessage()) as Buffer)).toEqual(Buffer.from([1, 2, 3]));
      expect(await client.nextMessage()).toBe(big.toString());
    }
    expect(handler.publish('nobody', 'x')).toBe(0);
    expect(handler.stats().publishes).toBe(5);
  });

  test("order: a subscriber sees one publisher's messages in publish order, and a connection's send() and publish() in the order made", async () => {
    class Mixed extends Room {
      override onText(text: string): void {
        for (let i = 0; i < 50; i++) {
          if (i % 3 === 0) this.sendText(`${text}-direct-${i}`);
          else this.publish(this.topic, `${text}-pub-${i}`, { self: true });
        }
      }
    }
    const handler = quietHandler({ '/rooms/:room': Mixed });
    const a = await join(handler, '/rooms/o');
    const b = await join(handler, '/rooms/o');
    await waitFor(() => handler.subscriberCount('room:o') === 2, 2000, 'two');
    a.sendText('m');
    const got: string[] = [];
    for (let i = 0; i < 50; i++) got.push((await a.nextMessage()) as string);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? `m-direct-${i}` : `m-pub-${i}`)));
    const atB: string[] = [];
    for (let i = 0; i < 50; i++) if (i % 3 !== 0) atB.push((await b.nextMessage()) as string);
    expect(atB).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `m-pub-${i}`));
  });

  test('many publishes made in one task outside any hook (a timer, an HTTP route) reach each subscriber in one write', async () => {
    const sockets: Duplex[] = [];
    class Sub extends Behavior {
      override onOpen(): void {
        this.subscribe('feed');
        sockets.push(this.request.socket);
      }
    }
    const { handler, port } = await mount({ '/s': Sub }, { pingInterval: 0 });
    const clients = [await connect(port, '/s'), await connect(port, '/s')];
    await waitFor(() => handler.subscriberCount('feed') === 2, 2000, 'two');
    const writes = sockets.map(countWrites);
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        for (let i = 0; i < 20; i++) handler.publish('feed', `m${i}`);
        resolve();
      }, 1),
    );
    for (const client of clients) {
      for (let i = 0; i < 20; i++) expect((await client.nextFrame(2000)).payload.toString()).toBe(`m${i}`);
    }
    expect(writes.map((w) => w.calls)).toEqual([1, 1]);
  });

  test("a slow subscriber is closed with 1008 under the 'close' policy (or skipped under 'drop') and the others keep receiving", async () => {
    for (const policy of ['close', 'drop'] as const) {
      class Sub extends Behavior {
        override onOpen(): void {
          this.subscribe('firehose');
        }
      }
      const { handler, port } = await mount({ '/s': Sub }, { pingInterval: 0, maxBackpressure: 256 * 1024, backpressure: policy });
      const slow = await connect(port, '/s');
      const fast = await connect(port, '/s');
      await waitFor(() => handler.subscriberCount('firehose') === 2, 2000, 'two');
      slow.socket.pause();
      const chunk = Buffer.alloc(16 * 1024, 7);
      const total = 1000; // 16 MiB: far past loopback's socket buffers and maxBackpressure
      let received = 0;
      // The fast one reads as it goes, so that only the slow one backs up.
      const reader = (async () => {
        while (received < total) {
          await fast.nextFrame(5000);
          received++;
        }
      })();
      for (let i = 0; i < total; i++) {
        handler.publish('firehose', chunk);
        if (i % 4 === 3) await sleep(1);
      }
      await reader;
      const stats = handler.stats();
      expect(stats.backpressureDrops).toBeGreaterThan(0);
      if (policy === 'close') {
        // Reading again, the slow one finds what got through, then the close frame.
        slow.socket.resume();
        let frame = await slow.nextFrame(5000);
        let before = 0;
        for (; frame.opcode !== 0x8; before++) frame = await slow.nextFrame(5000);
        expect(frame.payload.readUInt16BE(0)).toBe(1008);
        expect(frame.payload.subarray(2).toString()).toBe('slow consumer');
        expect(before).toBeLessThan(total);
        expect(stats.backpressureCloses).toBe(1);
      } else {
        expect(handler.subscriberCount('firehose')).toBe(2);
        expect(stats.backpressureCloses).toBe(0);
      }
      slow.destroy();
    }
  });
});

describe('scale in one process', () => {
  test('10,000 topics with one subscriber each, and one topic with 10,000 subscribers, both deliver; memory per subscription is reported', async () => {
    const handler = quietHandler({ '/rooms/:room': Room });
    const one = await join(handler, '/rooms/solo');
    let b: Behavior | undefined;
    for (const client of handler.clients) b = client;
    const behavior = b as Behavior;
    const names = Array.from({ length: 10_000 }, (_, i) => `t${i}`);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (const name of names) behavior.subscribe(name);
    gc();
    const perSubscription = (process.memoryUsage().heapUsed - before) / 10_000;
    expect(perSubscription).toBeGreaterThan(0);
    expect(handler.stats().topics).toBe(10_001);
    for (const i of [0, 4_999, 9_999]) {
      expect(handler.publish(`t${i}`, `to t${i}`)).toBe(1);
      expect(await one.nextMessage()).toBe(`to t${i}`);
    }
    console.log(`10,000 topics x 1 subscriber: ~${Math.round(perSubscription)} bytes of heap per subscription`);

    const many: TestClient[] = [];
    for (let i = 0; i < 10_000; i++) many.push(await connectInMemory(handler, '/rooms/big'));
    defer(() => {
      for (const c of many) c.terminate();
    });
    expect(handler.subscriberCount('room:big')).toBe(10_000);
    expect(handler.publish('room:big', 'to all ten thousand')).toBe(10_000);
    const got = await Promise.all(many.map((c) => c.nextMessage()));
    expect(new Set(got)).toEqual(new Set(['to all ten thousand']));
  }, 120_000);
});

/** A full garbage collection (exposed for this file only). */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
