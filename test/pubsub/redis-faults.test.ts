/**
 * The Redis backplane when Redis dies (issue 11, faults): redis-server is killed with SIGKILL
 * mid-stream and started again on the same port, under two server processes per client library.
 *
 * Throughout: no crash, no unhandled 'error' event or rejection, local delivery goes on. Then the
 * subscriptions come back by themselves and cross-process traffic resumes; stats().backplane
 * counts the outage and the publishes dropped while down; one warning per outage, not per
 * message.
 *
 * Subscriptions the backplane must restore itself: one held by Redis before the crash (both
 * libraries restore those too), one made while Redis was down, and one whose SUBSCRIBE was in
 * flight when Redis died (Redis paused with CLIENT PAUSE, then killed): node-redis drops that one
 * for good (its listener is added only on the reply), so this test fails on node-redis for a
 * backplane that trusts the library to resubscribe. Plain and sharded (SSUBSCRIBE) pub/sub.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useRedis } from '../helpers/redis.js';
import { type BackplaneStats, Child, type ChildStats, useRedisChild } from './fixtures/redis-children.js';
import { Admin, Peer, poll, sameMessages } from './fixtures/redis-peers.js';

const redis = useRedis();
const build = useRedisChild();

const peers: Peer[] = [];
const children: Child[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
  // A failed test may leave Redis down: the next one starts with it up.
  if (redis().pid === undefined) await redis().start();
});

async function open(child: Child, room: string, name: string): Promise<Peer> {
  const peer = await Peer.open(child.port, `/rooms/${room}`, name);
  peers.push(peer);
  return peer;
}
async function stats(child: Child): Promise<BackplaneStats> {
  return (await child.call<ChildStats>('stats')).backplane[0] as BackplaneStats;
}

for (const [lib, sharded] of [['ioredis', false], ['redis', false], ['ioredis', true], ['redis', true]] as const) {
  describe(`Redis killed and restarted under ${lib === 'redis' ? 'node-redis' : 'ioredis'}${sharded ? ', sharded' : ''}`, () => {
    it('no crash, local delivery throughout, subscriptions restored by the backplane, traffic resumes, the outage counted and logged once', async () => {
      const [a, b] = await Promise.all([Child.start(build().script, { lib, redisPort: redis().port, sharded }), Child.start(build().script, { lib, redisPort: redis().port, sharded })]);
      children.push(a, b);
      const admin = new Admin(redis().port);
      try {
        // Before: a room with two clients on A and one on B, traffic both ways.
        const a1 = await open(a, 'f', 'a1');
        const a2 = await open(a, 'f', 'a2');
        const b1 = await open(b, 'f', 'b1');
        await admin.waitNumsub({ 'wsmount:room:f': 2 }, sharded);
        a1.send('before from a1');
        await b1.waitFor(1);
        b1.send('before from b1');
        await a1.waitFor(1);
        await a2.waitFor(2);

        // A SUBSCRIBE in flight when Redis dies: Redis holds every command from now on.
        await admin.redis.call('CLIENT', 'PAUSE', '30000', 'ALL');
        const a4 = await open(a, 'inflight', 'a4');
        await poll(async () => (await a.call<number[]>('count', { topic: 'room:inflight' }))[0] === 1, 'a4 subscribed in A');
        await a.call('stats'); // one more turn of A's event loop: the SUBSCRIBE is written

        // Redis dies mid-stream.
        await redis().kill();
        await poll(async () => !(await stats(a)).connected && !(await stats(b)).connected, 'both processes to see the outage');

        // Local delivery goes on; cross-process publishes are dropped and counted.
        const during = ['d1', 'd2', 'd3', 'd4', 'd5'];
        for (const m of during) a1.send(m);
        await a2.waitFor(2 + during.length);
        expect(await a.call<number>('publish', { topic: 'room:f', text: 'handler during' })).toBe(2);
        await a1.waitFor(2);
        await a2.waitFor(2 + during.length + 1);
        // A topic's first subscribers arrive while Redis is down.
        const a3 = await open(a, 'late', 'a3');
        const b3 = await open(b, 'late', 'b3');
        const droppedA = (await stats(a)).droppedWhileDisconnected;
        expect(droppedA).toBeGreaterThanOrEqual(during.length + 1);

        // Redis is back on the same port: every subscription comes back, by the backplane's doing.
        await redis().start();
        await poll(async () => (await stats(a)).connected && (await stats(b)).connected, 'both processes to be connected again', 20_000);
        await admin.waitNumsub({ 'wsmount:room:f': 2, 'wsmount:room:late': 2, 'wsmount:room:inflight': 1 }, sharded, 15_000);

        // Cross-process traffic resumes, both ways, on every topic.
        b1.send('after from b1');
        await a1.waitFor(3);
        a1.send('after from a1');
        b3.send('late from b3');
        a3.send('late from a3');
        expect(await b.call<number>('publish', { topic: 'room:inflight', text: 'to a4' })).toBe(0);
        await b1.waitFor(2);
        await a1.waitFor(3);
        await a2.waitFor(2 + during.length + 3);
        await a3.waitFor(1);
        await b3.waitFor(1);
        await a4.waitFor(1);
        // b1 got nothing published while Redis was down (at most once): before and after only.
        sameMessages(b1.received, ['before from a1', 'after from a1'], 'b1');
        sameMessages(a1.received, ['before from b1', 'handler during', 'after from b1'], 'a1');
        sameMessages(a2.received, ['before from a1', 'before from b1', ...during, 'handler during', 'after from b1', 'after from a1'], 'a2');
        sameMessages(a3.received, ['late from b3'], 'a3');
        sameMessages(b3.received, ['late from a3'], 'b3');
        sameMessages(a4.received, ['to a4'], 'a4');

        // Counted and logged: one outage, one warning when it began and one when it ended.
        for (const [name, child] of [['A', a] as const, ['B', b] as const]) {
          const s = await child.call<ChildStats>('stats');
          const bp = s.backplane[0] as BackplaneStats;
          expect(s.unhandled, `${name}: nothing unhandled`).toEqual([]);
          expect(child.alive, `${name} alive`).toBe(true);
          expect(bp.outages, `${name} outages`).toBe(1);
          const warns = s.logs.filter((l) => l.level === 'warn').map((l) => l.message);
          expect(warns.filter((w) => w.includes('backplane is down')), `${name}: warnings that it is down`).toHaveLength(1);
          expect(warns.filter((w) => w.includes('backplane is back')), `${name}: warnings that it is back`).toHaveLength(1);
          expect(s.logs.filter((l) => l.level === 'error'), `${name}: no error logs`).toEqual([]);
        }
        const sa = await stats(a);
        expect(sa.droppedWhileDisconnected).toBe(droppedA);
        expect(sa.droppedWhileDisconnected).toBeGreaterThanOrEqual(during.length + 1);
      } finally {
        admin.close();
      }
    });
  });
}
