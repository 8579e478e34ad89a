/**
 * Topics across handlers through a backplane, with the in-memory one (`memoryBackplane()`):
 * publishes cross handlers, text stays text and binary stays binary, a handler drops its own
 * echoes, only topics with local subscribers reach a handler, an outage drops and counts
 * publishes and is logged once, and a closed handler leaves the bus. The same handler code runs
 * over Redis and node:cluster (redis.test.ts, cluster.test.ts).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import {
  type Backplane,
  type BackplaneLink,
  type BackplaneNode,
  Behavior,
  type Logger,
  type MemoryBackplane,
  type RouteParams,
  createWebSocketHandler,
  memoryBackplane,
} from '../../src/index.js';
import { type TestClient, connect } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';

const { defer } = useFixture();

class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  override onOpen(): void {
    this.subscribe(`room:${this.params.room}`);
  }
  override onText(text: string): void {
    this.publish(`room:${this.params.room}`, text);
  }
  override onBinary(bytes: Buffer): void {
    this.publish(`room:${this.params.room}`, bytes);
  }
}

function captureLog(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const none = (): void => {};
  return { warnings, logger: { error: none, info: none, debug: none, warn: (m: string) => warnings.push(m) } };
}

function node(bus: Backplane, logger?: Logger) {
  const handler = createWebSocketHandler({ '/rooms/:room': Room }, { backplane: bus, pingInterval: 0, logLevel: logger === undefined ? 'silent' : 'warn', ...(logger === undefined ? {} : { logger }) });
  defer(() => handler.close({ timeout: 300 }));
  return handler;
}

async function join(handler: Parameters<typeof connect>[0], path: string): Promise<TestClient> {
  const client = await connect(handler, path);
  defer(() => client.terminate());
  return client;
}

async function silent(client: TestClient): Promise<void> {
  await expect(client.nextMessage({ timeout: 150 })).rejects.toThrow();
}

describe('memoryBackplane', () => {
  test('a publish reaches subscribers on every linked handler, both ways, text and binary byte-exact, each exactly once', async () => {
    const bus = memoryBackplane();
    const one = node(bus);
    const two = node(bus);
    expect(bus.nodes).toBe(2);
    const a1 = await join(one, '/rooms/r');
    const b1 = await join(one, '/rooms/r');
    const a2 = await join(two, '/rooms/r');
    a1.sendText('from one ü😀');
    expect(await b1.nextMessage()).toBe('from one ü😀');
    expect(await a2.nextMessage()).toBe('from one ü😀');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    a2.sendBinary(bytes);
    for (const c of [a1, b1]) expect(Buffer.from((await c.nextMessage()) as Buffer)).toEqual(bytes);
    expect(two.publish('room:r', 'from the handler')).toBe(1);
    for (const c of [a1, b1, a2]) expect(await c.nextMessage()).toBe('from the handler');
    // Own echoes are dropped: nobody got anything twice.
    for (const c of [a1, b1, a2]) await silent(c);
    const s1 = one.stats().backplane;
    expect(s1).toMatchObject({ connected: true, messagesOut: 1, messagesIn: 2, droppedWhileDisconnected: 0, outages: 0, malformed: 0 });
  });

  test('a handler receives only the topics it has subscribers for, and leaves a topic with its last subscriber', async () => {
    const bus = memoryBackplane();
    const one = node(bus);
    const two = node(bus);
    const a = await join(one, '/rooms/here');
    two.publish('room:here', 'x');
    two.publish('room:nowhere', 'y');
    expect(await a.nextMessage()).toBe('x');
    await waitFor(() => (one.stats().backplane?.messagesIn ?? 0) === 1, 2000, 'one message in');
    await a.close();
    await waitFor(() => one.subscriberCount('room:here') === 0, 2000, 'left');
    two.publish('room:here', 'z');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(one.stats().backplane?.messagesIn).toBe(1);
  });

  test("order: a subscriber on another handler sees one publisher's messages in publish order", async () => {
    const bus = memoryBackplane();
    const one = node(bus);
    const two = node(bus);
    const far = await join(two, '/rooms/o');
    await join(one, '/rooms/o');
    for (let i = 0; i < 100; i++) one.publish('room:o', `m${i}`);
    for (let i = 0; i < 100; i++) expect(await far.nextMessage()).toBe(`m${i}`);
  });

  test('an outage: publishes are dropped and counted, local delivery goes on, one warning per outage; traffic resumes after', async () => {
    const bus: MemoryBackplane = memoryBackplane();
    const { logger, warnings } = captureLog();
    const one = node(bus, logger);
    const two = node(bus);
    const near = await join(one, '/rooms/f');
    const far = await join(two, '/rooms/f');
    bus.setConnected(false);
    for (let i = 0; i < 5; i++) expect(one.publish('room:f', `lost ${i}`)).toBe(1);
    for (let i = 0; i < 5; i++) expect(await near.nextMessage()).toBe(`lost ${i}`);
    await silent(far);
    expect(one.stats().backplane).toMatchObject({ connected: false, outages: 1, droppedWhileDisconnected: 5, messagesOut: 0 });
    bus.setConnected(true);
    one.publish('room:f', 'back');
    expect(await far.nextMessage()).toBe('back');
    expect(one.stats().backplane).toMatchObject({ connected: true, outages: 1, droppedWhileDisconnected: 5, messagesOut: 1 });
    expect(warnings.length).toBe(2);
    expect(warnings[0]).toMatch(/the backplane is down .*at-most-once/);
    expect(warnings[1]).toMatch(/the backplane is back after [\d.]+ s; 5 publishes to other processes were lost meanwhile/);
  });

  test('a closed handler leaves the bus; its publishes stay local from then on', async () => {
    const bus = memoryBackplane();
    const one = node(bus);
    const two = node(bus);
    await join(one, '/rooms/c');
    const far = await join(two, '/rooms/c');
    await one.close({ timeout: 300 });
    expect(bus.nodes).toBe(1);
    expect(one.publish('room:c', 'after close')).toBe(0);
    await silent(far);
    expect(one.stats().backplane?.messagesOut).toBe(0);
  });

  test('malformed messages from the bus are dropped and counted, never delivered', async () => {
    const links: BackplaneNode[] = [];
    const spy: Backplane = {
      connect(n: BackplaneNode): BackplaneLink {
        links.push(n);
        return { publish: () => true, subscribe() {}, unsubscribe() {}, close: () => Promise.resolve() };
      },
    };
    const handler = node(spy);
    const c = await join(handler, '/rooms/m');
    const n = links[0] as BackplaneNode;
    n.receive(Buffer.from([9, 9, 9]));
    n.receive(Buffer.from([2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0])); // version 2
    // A text payload that is not UTF-8.
    const topic = Buffer.from('room:m');
    const head = Buffer.from([1, 0, 9, 9, 9, 9, 9, 9, 9, 9, 0, topic.length]);
    n.receive(Buffer.concat([head, topic, Buffer.from([0xff, 0xfe])]));
    n.receive(Buffer.concat([head, topic, Buffer.from('fine')]));
    expect(await c.nextMessage()).toBe('fine');
    await silent(c);
    expect(handler.stats().backplane).toMatchObject({ malformed: 3, messagesIn: 1 });
  });

  test('a backplane option that is not a Backplane throws and names the fix', () => {
    const redisLike = { publish() {}, subscribe() {} };
    expect(() => createWebSocketHandler({ '/rooms/:room': Room }, { backplane: redisLike as unknown as Backplane })).toThrow(/backplane: redisBackplane\(client\)/);
    expect(() => createWebSocketHandler({ '/rooms/:room': Room }, { backplane: 'redis://x' as unknown as Backplane })).toThrow(TypeError);
    // ioredis and node-redis clients have a connect() method too: still not a Backplane.
    const withConnect = { connect() {}, publish() {}, duplicate() {} };
    expect(() => createWebSocketHandler({ '/rooms/:room': Room }, { backplane: withConnect as unknown as Backplane })).toThrow(/this is a Redis client: wrap it/);
    const linkless: Backplane = { connect: () => Promise.resolve() as unknown as BackplaneLink };
    expect(() => createWebSocketHandler({ '/rooms/:room': Room }, { backplane: linkless })).toThrow(/connect\(\) returned no BackplaneLink/);
  });
});
