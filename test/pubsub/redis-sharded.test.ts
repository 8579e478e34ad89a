/**
 * The Redis backplane in sharded mode (`sharded: true`: Redis 7 SPUBLISH/SSUBSCRIBE, for Redis
 * Cluster), end to end on a standalone redis-server 7, for ioredis and node-redis: two processes,
 * traffic both ways byte-exact, handler.publish(), and the shard channels subscribed only while a
 * process has a local subscriber (PUBSUB SHARDNUMSUB; nothing on plain channels).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useRedis } from '../helpers/redis.js';
import { Child, useRedisChild } from './fixtures/redis-children.js';
import { ALL_BYTES, Admin, PAYLOADS, Peer, exchangePayloads, poll, sameMessages } from './fixtures/redis-peers.js';

const redis = useRedis();
const build = useRedisChild();

const peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

for (const lib of ['ioredis', 'redis'] as const) {
  describe(`sharded redisBackplane over ${lib === 'redis' ? 'node-redis' : 'ioredis'}`, () => {
    let a: Child;
    let b: Child;
    let admin: Admin;
    beforeAll(async () => {
      const config = { lib, redisPort: redis().port, sharded: true, prefix: 'shard:' };
      [a, b] = await Promise.all([Child.start(build().script, config), Child.start(build().script, config)]);
      admin = new Admin(redis().port);
    });
    afterAll(async () => {
      admin?.close();
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('carries text and binary both ways byte-exact over SPUBLISH/SSUBSCRIBE, and handler.publish() reaches both', async () => {
      const a1 = await Peer.open(a.port, '/rooms/s1', 'a1');
      const b1 = await Peer.open(b.port, '/rooms/s1', 'b1');
      peers.push(a1, b1);
      await admin.waitNumsub({ 'shard:room:s1': 2 }, true);
      // Sharded only: no plain subscription to the channel.
      expect(await admin.numsub(['shard:room:s1'])).toEqual([0]);

      const back = await exchangePayloads(a1, b1);

      expect(await b.call<number>('publish', { topic: 'room:s1', base64: ALL_BYTES.toString('base64') })).toBe(1);
      await a1.waitFor(back.length + 1);
      await b1.waitFor(PAYLOADS.length + 1);
      sameMessages(a1.received, [...back, ALL_BYTES], 'A after handler.publish in B');
      sameMessages(b1.received, [...PAYLOADS, ALL_BYTES], 'B after handler.publish in B');

      const stats = (await a.call<{ unhandled: string[] }>('stats')).unhandled;
      expect(stats).toEqual([]);
    });

    it('subscribes a shard channel on the first local subscriber and unsubscribes on the last (PUBSUB SHARDNUMSUB)', async () => {
      const channel = 'shard:room:s2';
      expect(await admin.numsub([channel], true)).toEqual([0]);
      const a1 = await Peer.open(a.port, '/rooms/s2', 'a1');
      const a2 = await Peer.open(a.port, '/rooms/s2', 'a2');
      peers.push(a1, a2);
      await poll(async () => (await a.call<number[]>('count', { topic: 'room:s2' }))[0] === 2, 'two local subscribers in A');
      await admin.waitNumsub({ [channel]: 1 }, true);
      expect(await admin.channels('shard:room:s2*', true)).toEqual([channel]);
      await a1.close();
      await poll(async () => (await a.call<number[]>('count', { topic: 'room:s2' }))[0] === 1, 'one local subscriber left');
      expect(await admin.numsub([channel], true)).toEqual([1]);
      await a2.close();
      await admin.waitNumsub({ [channel]: 0 }, true);
    });
  });
}
