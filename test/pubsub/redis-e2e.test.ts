/**
 * The Redis backplane end to end (issue 11), for each Redis client people use (ioredis and
 * node-redis): two handlers in two separate processes on one real redis-server, real WebSocket
 * clients on each. Topic traffic goes both ways, text and binary byte-exact; handler.publish()
 * reaches both processes; a process subscribes to a topic's channel only while it has a local
 * subscriber (PUBSUB NUMSUB, asked from a separate connection); a publisher's local subscribers
 * get each message once (own echoes dropped).
 */
import { Buffer } from 'node:buffer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useRedis } from '../helpers/redis.js';
import { Child, type ChildStats, useRedisChild } from './fixtures/redis-children.js';
import { ALL_BYTES, Admin, PAYLOADS, Peer, type Received, UTF8_TEXT, exchangePayloads, poll, sameMessages } from './fixtures/redis-peers.js';

const redis = useRedis();
const build = useRedisChild();

const peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});
async function open(child: Child, path: string, name: string): Promise<Peer> {
  const peer = await Peer.open(child.port, path, name);
  peers.push(peer);
  return peer;
}

for (const lib of ['ioredis', 'redis'] as const) {
  describe(`redisBackplane over ${lib === 'redis' ? 'node-redis' : 'ioredis'}, two processes`, () => {
    let a: Child;
    let b: Child;
    let admin: Admin;

    beforeAll(async () => {
      [a, b] = await Promise.all([Child.start(build().script, { lib, redisPort: redis().port }), Child.start(build().script, { lib, redisPort: redis().port })]);
      admin = new Admin(redis().port);
    });
    afterAll(async () => {
      admin?.close();
      await Promise.all([a?.stop(), b?.stop()]);
    });
    afterEach(async () => {
      // Nothing unhandled in either process, ever ('error' events, rejections).
      for (const child of [a, b]) {
        const s = await child.call<ChildStats>('stats');
        expect(s.unhandled).toEqual([]);
        expect(s.logs.filter((l) => l.level === 'error')).toEqual([]);
      }
    });

    it('carries topic traffic both ways, text as text and binary as binary, byte-exact (multi-byte UTF-8, all 256 byte values, > 64 KiB)', async () => {
      const a1 = await open(a, '/rooms/r1', 'a1');
      const b1 = await open(b, '/rooms/r1', 'b1');
      await admin.waitNumsub({ 'wsmount:room:r1': 2 });

      await exchangePayloads(a1, b1);
      sameMessages(b1.received, PAYLOADS, 'B got nothing of its own back');
    });

    it('handler.publish() in either process reaches the subscribers in both', async () => {
      const a1 = await open(a, '/rooms/news', 'a1');
      const b1 = await open(b, '/rooms/news', 'b1');
      await admin.waitNumsub({ 'wsmount:room:news': 2 });
      expect(await a.call<number>('publish', { topic: 'room:news', text: UTF8_TEXT })).toBe(1);
      expect(await b.call<number>('publish', { topic: 'room:news', base64: ALL_BYTES.toString('base64') })).toBe(1);
      await a1.waitFor(2);
      await b1.waitFor(2);
      // The two publishes race (one is local, the other crosses Redis): each once, in either order.
      const rank = (m: Received): number => (typeof m === 'string' ? 0 : 1);
      const textFirst = (got: Received[]): Received[] => [...got].sort((x, y) => rank(x) - rank(y));
      sameMessages(textFirst(a1.received), [UTF8_TEXT, ALL_BYTES], 'A');
      sameMessages(textFirst(b1.received), [UTF8_TEXT, ALL_BYTES], 'B');
    });

    it("a publisher's local subscribers get each message exactly once: its own echo from Redis is dropped", async () => {
      const a1 = await open(a, '/rooms/echo', 'a1');
      const a2 = await open(a, '/rooms/echo', 'a2');
      const b1 = await open(b, '/rooms/echo', 'b1');
      await admin.waitNumsub({ 'wsmount:room:echo': 2 });
      const sent = Array.from({ length: 20 }, (_v, i) => `m${i}`);
      for (const m of sent) a1.send(m);
      await b1.waitFor(sent.length);
      expect(await a.call<number>('publish', { topic: 'room:echo', text: 'from A' })).toBe(2);
      // B's marker is published after B received all of A's messages, so any echo of them (and of
      // 'from A') reaches process A before it: after the marker, nothing can still be on its way.
      await b1.waitFor(sent.length + 1);
      b1.send('marker');
      await a2.waitFor(sent.length + 2);
      await a1.waitFor(2);
      sameMessages(a2.received, [...sent, 'from A', 'marker'], 'a2 (local subscriber of the publisher)');
      sameMessages(a1.received, ['from A', 'marker'], 'a1 (the publisher)');
      sameMessages(b1.received, [...sent, 'from A'], 'b1');
      const stats = await a.call<ChildStats>('stats');
      expect(stats.backplane[0]?.messagesIn).toBeGreaterThanOrEqual(1);
    });

    it('a process subscribes to a topic on its first local subscriber and unsubscribes on its last (PUBSUB NUMSUB)', async () => {
      const channel = 'wsmount:room:solo';
      expect(await admin.numsub([channel])).toEqual([0]);
      const a1 = await open(a, '/rooms/solo', 'a1');
      await admin.waitNumsub({ [channel]: 1 });
      const a2 = await open(a, '/rooms/solo', 'a2');
      await poll(async () => (await a.call<number[]>('count', { topic: 'room:solo' }))[0] === 2, 'two local subscribers in A');
      // Still one Redis subscription for the topic, and B (no local subscriber) has none.
      expect(await admin.numsub([channel])).toEqual([1]);
      expect(await admin.channels('wsmount:room:solo*')).toEqual([channel]);
      const inBefore = (await b.call<ChildStats>('stats')).backplane[0]?.messagesIn;
      a1.send('only A subscribes');
      await a2.waitFor(1);
      expect((await b.call<ChildStats>('stats')).backplane[0]?.messagesIn).toBe(inBefore);

      await a1.close();
      await poll(async () => (await a.call<number[]>('count', { topic: 'room:solo' }))[0] === 1, 'one local subscriber left in A');
      expect(await admin.numsub([channel])).toEqual([1]);
      await a2.close();
      await admin.waitNumsub({ [channel]: 0 });
      expect(await admin.channels('wsmount:room:solo*')).toEqual([]);
    });
  });
}

describe('two handlers in one process sharing one redisBackplane', () => {
  for (const lib of ['ioredis', 'redis'] as const) {
    it(`hold one Redis subscription per topic between them, and reach each other through Redis (${lib})`, async () => {
      const child = await Child.start(build().script, { lib, redisPort: redis().port, twoHandlers: true, prefix: 'two:' });
      const admin = new Admin(redis().port);
      try {
        const x = await open(child, '/a/rooms/both', 'x');
        const y = await open(child, '/b/rooms/both', 'y');
        await poll(async () => (await child.call<number[]>('count', { topic: 'room:both' })).join() === '1,1', 'a subscriber in each handler');
        await admin.waitNumsub({ 'two:room:both': 1 });
        x.send('x to y');
        y.send(Buffer.from('y to x'));
        await x.waitFor(1);
        await y.waitFor(1);
        sameMessages(x.received, [Buffer.from('y to x')], 'x');
        sameMessages(y.received, ['x to y'], 'y');
        await x.close();
        await poll(async () => (await child.call<number[]>('count', { topic: 'room:both' })).join() === '0,1', 'x gone');
        expect(await admin.numsub(['two:room:both'])).toEqual([1]);
        await y.close();
        await admin.waitNumsub({ 'two:room:both': 0 });
        expect((await child.call<ChildStats>('stats')).unhandled).toEqual([]);
      } finally {
        admin.close();
        await child.stop();
      }
    });
  }
});
