/**
 * redisBackplane() against a real redis-server, through the Backplane contract (a fake node in
 * place of a handler: what the backplane hands on and reports is recorded), for ioredis and
 * node-redis: bytes carried exactly as Buffers, one Redis subscription per topic however many
 * handlers share the backplane, publish() false at once while the client is not ready, status
 * reported once per drop and once when every topic is back, subscribe and publish failures
 * reported (never unhandled rejections), close() leaving the user's client as it found it. Plus
 * the TypeErrors a wrong argument gets.
 */
import { Buffer } from 'node:buffer';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackplaneLink, BackplaneNode, BackplaneStage } from '../../src/pubsub/backplane.js';
import { type RedisBackplaneClient, redisBackplane } from '../../src/pubsub/redis.js';
import { useRedis } from '../helpers/redis.js';
import { ALL_BYTES, Admin, BIG_BINARY, poll } from './fixtures/redis-peers.js';

const redis = useRedis();

/** A node as a handler would be, recording what the backplane does to it. */
class FakeNode implements BackplaneNode {
  readonly id: string;
  readonly received: Buffer[] = [];
  readonly statuses: { up: boolean; reason: unknown }[] = [];
  readonly errors: { error: unknown; stage: BackplaneStage }[] = [];
  readonly warns: string[] = [];
  readonly log = {
    error: () => {},
    warn: (message: string) => void this.warns.push(message),
    info: () => {},
    debug: () => {},
  };
  constructor(id: string) {
    this.id = id;
  }
  receive(message: Uint8Array): void {
    // Buffers, never strings (and never a view that changes later: copied here to check).
    expect(Buffer.isBuffer(message)).toBe(true);
    this.received.push(Buffer.from(message));
  }
  status(up: boolean, reason?: unknown): void {
    this.statuses.push({ up, reason });
  }
  error(error: unknown, stage: BackplaneStage): void {
    this.errors.push({ error, stage });
  }
}

type Lib = 'ioredis' | 'redis';
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A user's client, connected (or not, with `connect: false`), quit after the test. */
async function userClient(lib: Lib, options: { connect?: boolean; username?: string } = {}): Promise<RedisBackplaneClient> {
  const port = redis().port;
  const connect = options.connect ?? true;
  if (lib === 'ioredis') {
    const io = new Redis({ host: '127.0.0.1', port, lazyConnect: !connect, ...(options.username === undefined ? {} : { username: options.username, password: 'x' }) });
    cleanups.push(() => (io.status === 'ready' ? io.quit().catch(() => {}) : io.disconnect()));
    if (connect && io.status !== 'ready') await new Promise((resolve) => io.once('ready', resolve));
    return io;
  }
  const nr = createClient({ url: `redis://127.0.0.1:${port}`, ...(options.username === undefined ? {} : { username: options.username, password: 'x' }) });
  cleanups.push(() => (nr.isOpen ? nr.close().catch(() => {}) : undefined));
  if (connect) await nr.connect();
  return nr;
}

function admin(): Admin {
  const a = new Admin(redis().port);
  cleanups.push(() => a.close());
  return a;
}

/** The ids of the connections Redis has now (CLIENT LIST), to see a subscriber come and go. */
async function connections(a: Admin): Promise<Set<string>> {
  const list = String(await a.redis.call('CLIENT', 'LIST'));
  return new Set(list.split('\n').flatMap((line) => /^id=(\d+) /.exec(line)?.[1] ?? []));
}

const EVENTS = ['ready', 'error', 'close', 'end', 'reconnecting', 'messageBuffer', 'smessageBuffer'];
function listenerCounts(client: RedisBackplaneClient): number[] {
  const emitter = client as unknown as { listenerCount(event: string): number };
  return EVENTS.map((event) => emitter.listenerCount(event));
}

describe('redisBackplane() arguments', () => {
  it('throws a TypeError saying what to pass for something that is not a Redis client', () => {
    const call = redisBackplane as (client: unknown, options?: unknown) => unknown;
    expect(() => call('redis://127.0.0.1:6379')).toThrow(/redisBackplane\(\): the client is an ioredis client \(new Redis\(url\)\) or a node-redis client .*not string/);
    expect(() => call({})).toThrow(TypeError);
    expect(() => call(null)).toThrow(/not null/);
    expect(() => call(new Map())).toThrow(/not a Map/);
  });

  it('checks the options', async () => {
    const io = await userClient('ioredis', { connect: false });
    const call = redisBackplane as (client: unknown, options?: unknown) => unknown;
    expect(() => call(io, { prefix: 1 })).toThrow(/prefix is a string/);
    expect(() => call(io, { sharded: 'yes' })).toThrow(/sharded is true or false/);
    expect(() => call(io, { subscriber: 'redis://' })).toThrow(/options.subscriber is an ioredis client/);
    expect(() => call(io, { subscriber: io })).toThrow(/another connection than the client/);
    // Something shaped like an old client without sharded pub/sub.
    const old = { status: 'ready', duplicate() {}, publish() {}, subscribe() {}, on() {}, removeListener() {} };
    expect(() => call(old, { sharded: true })).toThrow(/sharded: true needs .* no spublish, ssubscribe, sunsubscribe/);
  });
});

for (const lib of ['ioredis', 'redis'] as const) {
  describe(`redisBackplane over ${lib === 'redis' ? 'node-redis' : 'ioredis'} (fake nodes)`, () => {
    it('carries exact bytes as Buffers to every node subscribed to the topic, one Redis subscription per topic', async () => {
      const a = admin();
      const one = redisBackplane(await userClient(lib), { prefix: 'unit:' });
      const two = redisBackplane(await userClient(lib), { prefix: 'unit:' });
      const n1 = new FakeNode('n1');
      const n2 = new FakeNode('n2');
      const n3 = new FakeNode('n3');
      const l1 = one.connect(n1);
      const l2 = one.connect(n2); // a second handler in the same process
      const l3 = two.connect(n3);
      cleanups.push(() => Promise.all([l1.close(), l2.close(), l3.close()]));
      l1.subscribe('t');
      l2.subscribe('t');
      l2.subscribe('t'); // twice: a no-op
      l3.subscribe('t');
      await a.waitNumsub({ 'unit:t': 2 });
      expect(await a.channels('unit:*')).toEqual(['unit:t']);

      expect(l3.publish('t', ALL_BYTES)).toBe(true);
      expect(l3.publish('t', BIG_BINARY)).toBe(true);
      expect(l3.publish('t', new Uint8Array([1, 2, 3]))).toBe(true);
      for (const n of [n1, n2, n3]) await poll(() => n.received.length === 3, `${n.id} to get 3 messages`);
      for (const n of [n1, n2, n3]) {
        expect(n.received[0]?.equals(ALL_BYTES)).toBe(true);
        expect(n.received[1]?.equals(BIG_BINARY)).toBe(true);
        expect([...(n.received[2] ?? [])]).toEqual([1, 2, 3]);
      }

      // The last node of a topic leaving its Redis subscription ends it; not before.
      l1.unsubscribe('t');
      await poll(async () => {
        l3.publish('t', Buffer.from('x'));
        return n2.received.length >= 4;
      }, 'n2 to get a message after n1 left');
      expect(await a.numsub(['unit:t'])).toEqual([2]);
      expect(n1.received).toHaveLength(3);
      l2.unsubscribe('t');
      await a.waitNumsub({ 'unit:t': 1 });
      for (const n of [n1, n2, n3]) expect(n.errors).toEqual([]);
    });

    it('publish() is false at once while the client is not connected (no offline queue), with one warning', async () => {
      const client = await userClient(lib, { connect: false });
      const backplane = redisBackplane(client);
      const node = new FakeNode('n');
      const link = backplane.connect(node);
      cleanups.push(() => link.close());
      expect(link.publish('t', Buffer.from('lost'))).toBe(false);
      expect(link.publish('t', Buffer.from('lost'))).toBe(false);
      expect(node.warns).toHaveLength(1);
      expect(node.warns[0]).toMatch(/not connecting/);
    });

    it('reports status once when the subscriber connection drops, and once more when every topic is subscribed again', async () => {
      const a = admin();
      const backplane = redisBackplane(await userClient(lib), { prefix: 'kill:' });
      const node = new FakeNode('n');
      const link = backplane.connect(node);
      cleanups.push(() => link.close());
      link.subscribe('x');
      link.subscribe('y');
      await a.waitNumsub({ 'kill:x': 1, 'kill:y': 1 });
      expect(node.statuses).toEqual([]);
      // Redis drops the subscriber's connection (and only it).
      await a.redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await poll(() => node.statuses.length === 2, () => `two status reports (has ${JSON.stringify(node.statuses)})`);
      expect(node.statuses.map((s) => s.up)).toEqual([false, true]);
      expect(String(node.statuses[0]?.reason)).toMatch(/subscriber/);
      expect(await a.numsub(['kill:x', 'kill:y'])).toEqual([1, 1]);
      link.subscribe('z');
      await a.waitNumsub({ 'kill:z': 1 });
    });

    it('reports failed subscribes and publishes to node.error (never an unhandled rejection)', async () => {
      const a = admin();
      // A user allowed every command but no channel (Redis 7's default: resetchannels).
      await a.redis.call('ACL', 'SETUSER', `nochannels-${lib}`, 'on', 'nopass', '~*', '+@all', 'resetchannels');
      cleanups.push(() => a.redis.call('ACL', 'DELUSER', `nochannels-${lib}`));
      const backplane = redisBackplane(await userClient(lib, { username: `nochannels-${lib}` }));
      const node = new FakeNode('n');
      const link = backplane.connect(node);
      cleanups.push(() => link.close());
      link.subscribe('t');
      expect(link.publish('t', Buffer.from('m'))).toBe(true);
      await poll(() => node.errors.some((e) => e.stage === 'subscribe') && node.errors.some((e) => e.stage === 'publish'), () => `a subscribe and a publish error (has ${node.errors.map((e) => e.stage).join()})`);
      expect(String(node.errors.find((e) => e.stage === 'subscribe')?.error)).toMatch(/NOPERM/);
    });

    it('close() unsubscribes, quits the subscriber it made, and leaves the user client open with its own listeners only', async () => {
      const a = admin();
      const client = await userClient(lib);
      const before = listenerCounts(client);
      const baseline = await connections(a);
      const backplane = redisBackplane(client, { prefix: 'close:' });
      const n1 = new FakeNode('n1');
      const n2 = new FakeNode('n2');
      const l1 = backplane.connect(n1);
      const l2 = backplane.connect(n2);
      l1.subscribe('t');
      l2.subscribe('u');
      await a.waitNumsub({ 'close:t': 1, 'close:u': 1 });
      // One subscriber connection for both nodes (connections closing from earlier tests may leave).
      const added = [...(await connections(a))].filter((id) => !baseline.has(id));
      expect(added).toHaveLength(1);
      await l1.close();
      await a.waitNumsub({ 'close:t': 0, 'close:u': 1 });
      expect(l1.publish('u', Buffer.from('closed'))).toBe(false);
      await l2.close();
      await poll(async () => !(await connections(a)).has(added[0] as string), 'the subscriber connection to be gone');
      expect(await a.numsub(['close:u'])).toEqual([0]);
      expect(listenerCounts(client)).toEqual(before);
      // The user's client is untouched and usable.
      expect(lib === 'ioredis' ? (client as Redis).status : String((client as { isReady: boolean }).isReady)).toBe(lib === 'ioredis' ? 'ready' : 'true');
      expect(await client.publish('close:u', Buffer.from('still works'))).toBe(0);

      // A later handler starts over with a new subscriber.
      const n3 = new FakeNode('n3');
      const l3: BackplaneLink = backplane.connect(n3);
      cleanups.push(() => l3.close());
      l3.subscribe('t');
      await a.waitNumsub({ 'close:t': 1 });
      expect(l3.publish('t', Buffer.from('again'))).toBe(true);
      await poll(() => n3.received.length === 1, 'n3 to get its own publish back');
    });

    it('a backplane joined while Redis is down reports the outage, then comes up with its topics when Redis does', async () => {
      const client = await userClient(lib);
      // The user's client must not crash the test process while Redis is down, before the backplane listens.
      (client as { on(event: string, listener: () => void): unknown }).on('error', () => {});
      await redis().kill();
      try {
        await poll(() => !(lib === 'ioredis' ? (client as Redis).status === 'ready' : (client as { isReady: boolean }).isReady), 'the client to see Redis gone');
        const backplane = redisBackplane(client, { prefix: 'late:' });
        const node = new FakeNode('n');
        const link = backplane.connect(node);
        cleanups.push(() => link.close());
        link.subscribe('t');
        expect(link.publish('t', Buffer.from('lost'))).toBe(false);
        await poll(() => node.statuses.length === 1, 'the outage to be reported');
        expect(node.statuses[0]?.up).toBe(false);
        await redis().start();
        await poll(() => node.statuses.length === 2, () => `the end of the outage (has ${JSON.stringify(node.statuses)})`, 15_000);
        expect(node.statuses[1]?.up).toBe(true);
        expect(link.publish('t', Buffer.from('after'))).toBe(true);
        await poll(() => node.received.length === 1, 'the publish made after Redis came back');
        expect(node.received[0]?.toString()).toBe('after');
      } finally {
        if (redis().pid === undefined) await redis().start();
      }
    });

    it('subscribes on options.subscriber when given, and on close() leaves it connected with its own listeners only', async () => {
      const a = admin();
      const client = await userClient(lib);
      const subscriber = await userClient(lib);
      const before = listenerCounts(subscriber);
      const baseline = await connections(a);
      const backplane = redisBackplane(client, { prefix: 'own:', subscriber });
      const node = new FakeNode('n');
      const link = backplane.connect(node);
      link.subscribe('t');
      await a.waitNumsub({ 'own:t': 1 });
      expect([...(await connections(a))].filter((id) => !baseline.has(id))).toEqual([]); // no duplicate made
      expect(link.publish('t', ALL_BYTES)).toBe(true);
      await poll(() => node.received.length === 1, 'the message through the given subscriber');
      expect(node.received[0]?.equals(ALL_BYTES)).toBe(true);
      await link.close();
      await a.waitNumsub({ 'own:t': 0 });
      expect(listenerCounts(subscriber)).toEqual(before);
      expect(lib === 'ioredis' ? (subscriber as Redis).status : String((subscriber as { isReady: boolean }).isReady)).toBe(lib === 'ioredis' ? 'ready' : 'true');
    });
  });
}

it("sharded over ioredis with a keyPrefix: ioredis prefixes shard channels (it takes them for keys), and messages still reach their topic", async () => {
  const a = admin();
  const client = new Redis({ host: '127.0.0.1', port: redis().port, keyPrefix: 'kp:' });
  cleanups.push(() => client.quit().catch(() => {}));
  const backplane = redisBackplane(client, { sharded: true, prefix: 'sp:' });
  const node = new FakeNode('n');
  const link = backplane.connect(node);
  cleanups.push(() => link.close());
  link.subscribe('t');
  await a.waitNumsub({ 'kp:sp:t': 1 }, true);
  await poll(() => client.status === 'ready', 'the client to be ready');
  expect(link.publish('t', Buffer.from('prefixed'))).toBe(true);
  await poll(() => node.received.length === 1, 'the message on the prefixed shard channel');
  expect(node.received[0]?.toString()).toBe('prefixed');
});
