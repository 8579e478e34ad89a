/**
 * The node:cluster backplane with real forked workers. The test starts the app's primary as a
 * child (test/pubsub/fixtures/cluster-app.ts, compiled from the current source), so this process
 * is never the primary; each worker serves `/rooms/:room` on a loopback port of its own, and
 * Node's built-in WebSocket clients connect to a chosen worker. Every wait is a bounded poll;
 * every process is stopped by pid (the primary, whose workers must then exit by themselves).
 */
import { Buffer } from 'node:buffer';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HandlerStats } from '../../src/index.js';
import { CLUSTER_MESSAGE_KEY, type ClusterRelayStats, clusterBackplane, setupClusterPrimary } from '../../src/index.js';
import { type ClusterBuild, Primary, alive, buildClusterApp, runAlone, until } from './fixtures/cluster-children.js';

/** A WebSocket client on one worker that keeps what it receives. */
class Peer {
  readonly got: (string | Buffer)[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (event) => {
      const data: unknown = event.data;
      this.got.push(typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer));
    });
  }

  static async open(port: number, room: string): Promise<Peer> {
    const peer = new Peer(new WebSocket(`ws://127.0.0.1:${port}/rooms/${room}`));
    await new Promise<void>((resolve, reject) => {
      peer.ws.addEventListener('open', () => resolve());
      peer.ws.addEventListener('error', () => reject(new Error(`could not open a WebSocket to port ${port}`)));
    });
    return peer;
  }

  texts(): string[] {
    return this.got.filter((m): m is string => typeof m === 'string');
  }
}

let build: ClusterBuild;
const primaries: Primary[] = [];
const peers: Peer[] = [];

beforeAll(async () => {
  build = await buildClusterApp();
}, 120_000);

afterAll(async () => {
  await build?.remove();
});

afterEach(async () => {
  for (const p of peers.splice(0)) p.ws.close();
  for (const p of primaries.splice(0)) await p.stop();
});

async function start(mode: string, workers: number): Promise<Primary> {
  const primary = await Primary.start(build.script, mode, workers);
  primaries.push(primary);
  return primary;
}

async function open(primary: Primary, index: number, room: string, second = false): Promise<Peer> {
  const port = second ? primary.workers[index]?.port2 : primary.workers[index]?.port;
  if (port === undefined) throw new Error(`worker ${index} has no port: ${JSON.stringify(primary.workers[index])}`);
  const peer = await Peer.open(port, room);
  peers.push(peer);
  return peer;
}

const relay = (primary: Primary): Promise<ClusterRelayStats> => primary.call<ClusterRelayStats>('relay');
const backplaneOf = async (primary: Primary, index: number) => {
  const stats = await primary.worker<HandlerStats>(index, 'stats');
  if (stats.backplane === null) throw new Error(`worker ${index} has no backplane`);
  return stats.backplane;
};

/** Stops the primary by pid and checks that none of its workers is left. */
async function stopAll(primary: Primary): Promise<void> {
  primaries.splice(primaries.indexOf(primary), 1);
  const left = await primary.stop();
  expect(left, 'workers left alive after their primary was killed').toEqual([]);
  expect(primary.running).toBe(false);
  for (const w of primary.workers) expect(alive(w.pid)).toBe(false);
}

describe('clusterBackplane() with real node:cluster workers', () => {
  it('carries topic traffic both ways between workers, text and binary byte-exact, and handler.publish() from a worker reaches all', async () => {
    const primary = await start('relay', 3);
    expect(primary.workers.map((w) => w.error)).toEqual([undefined, undefined, undefined]);
    const a = await open(primary, 0, 'a');
    const b = await open(primary, 1, 'a');
    const c = await open(primary, 2, 'b');
    await until('3 subscriptions at the primary', async () => (await relay(primary)).subscriptions === 3);

    const text = 'héllo ☃ 🎉 — über the cluster';
    a.ws.send(text);
    await until('b gets a text', () => b.got.length >= 1);
    const bytes = Buffer.concat([Buffer.from([0, 255, 0x80, 0xc3]), randomBytes(70_000)]);
    b.ws.send(bytes);
    await until('a gets the binary', () => a.got.length >= 1);

    // handler.publish() from worker 2, which has no subscriber of room:a: reaches both others.
    const binary = randomBytes(300);
    expect(await primary.worker<number>(2, 'publish', { topic: 'room:a', text: 'from worker 2 ✓' })).toBe(0);
    expect(await primary.worker<number>(2, 'publish', { topic: 'room:a', base64: binary.toString('base64') })).toBe(0);
    await until('a and b get worker 2 publishes', () => a.got.length >= 3 && b.got.length >= 3);

    // Exactly these, byte-exact and as sent (text as text, binary as binary); a sender never gets its own back.
    expect(b.got.length).toBe(3);
    expect(b.got[0]).toBe(text);
    expect(a.got.length).toBe(3);
    expect(Buffer.isBuffer(a.got[0])).toBe(true);
    expect((a.got[0] as Buffer).equals(bytes)).toBe(true);
    for (const peer of [a, b]) {
      expect(peer.got[1]).toBe('from worker 2 ✓');
      expect(Buffer.isBuffer(peer.got[2])).toBe(true);
      expect((peer.got[2] as Buffer).equals(binary)).toBe(true);
    }
    expect(c.got).toEqual([]); // room:b heard nothing

    const w2 = await backplaneOf(primary, 2);
    expect(w2).toMatchObject({ connected: true, messagesOut: 2, messagesIn: 0, droppedWhileDisconnected: 0, malformed: 0 });
    // The app's own 'message' listeners in the primary kept working (every command above), beside wsmount's messages.
    expect(await primary.call<number>('appSaw')).toBeGreaterThan(0);
    await stopAll(primary);
  });

  it('a worker receives only the topics it has subscribers for (subscribe on the first, the primary relays by topic)', async () => {
    const primary = await start('relay', 3);
    const a = await open(primary, 0, 'a');
    const b = await open(primary, 1, 'a');
    await open(primary, 2, 'b');
    await until('3 subscriptions at the primary', async () => (await relay(primary)).subscriptions === 3);

    const n = 20;
    for (let i = 0; i < n; i++) {
      a.ws.send(`a${i}`);
      b.ws.send(`b${i}`);
    }
    await until('both sides get every message', () => a.got.length === n && b.got.length === n);
    expect(a.texts()).toEqual(Array.from({ length: n }, (_, i) => `b${i}`));
    expect(b.texts()).toEqual(Array.from({ length: n }, (_, i) => `a${i}`));

    // Worker 2 (only room:b) was sent none of it; each publish went to exactly one other worker.
    expect((await backplaneOf(primary, 2)).messagesIn).toBe(0);
    expect(await relay(primary)).toMatchObject({ messagesIn: 2 * n, messagesOut: 2 * n, dropped: 0, topics: 2 });
    expect((await backplaneOf(primary, 0)).messagesIn).toBe(n);

    // Once worker 2 has a subscriber of room:a, it receives room:a.
    const d = await open(primary, 2, 'a');
    await until('4 subscriptions at the primary', async () => (await relay(primary)).subscriptions === 4);
    a.ws.send('now three workers');
    await until('b and d get it', () => b.got.length === n + 1 && d.got.length === 1);
    expect(d.got).toEqual(['now three workers']);
    expect((await backplaneOf(primary, 2)).messagesIn).toBe(1);

    // And when that subscriber leaves, worker 2 unsubscribes at the primary.
    d.ws.close();
    await until('back to 3 subscriptions', async () => (await relay(primary)).subscriptions === 3);
    await stopAll(primary);
  });

  it('two handlers in one worker on one backplane reach each other without the primary, and the other workers', async () => {
    const primary = await start('relay', 2);
    const a = await open(primary, 0, 'a');
    const x = await open(primary, 0, 'a', true);
    const b = await open(primary, 1, 'a');
    await until('2 subscriptions at the primary (one per worker)', async () => (await relay(primary)).subscriptions === 2);

    a.ws.send('from a');
    await until('x and b get it', () => x.got.length >= 1 && b.got.length >= 1);
    x.ws.send(Buffer.from([1, 2, 3]));
    await until('a and b get it', () => a.got.length >= 1 && b.got.length >= 2);
    b.ws.send('from b');
    await until('a and x get it', () => a.got.length >= 2 && x.got.length >= 2);
    expect(x.got).toEqual(['from a', 'from b']);
    expect(a.got).toEqual([Buffer.from([1, 2, 3]), 'from b']);
    expect(b.got).toEqual(['from a', Buffer.from([1, 2, 3])]);
    // Worker 0's publishes went to worker 1 only (never back to worker 0); worker 1's to worker 0 once, for both its handlers.
    expect(await relay(primary)).toMatchObject({ messagesIn: 3, messagesOut: 3, dropped: 0 });
    expect((await primary.worker<HandlerStats>(0, 'stats2')).backplane).toMatchObject({ messagesIn: 2, messagesOut: 1 });
    await stopAll(primary);
  });

  it('a worker killed (SIGKILL) mid-stream: the others go on exchanging messages and the primary survives', async () => {
    const primary = await start('relay', 3);
    const a = await open(primary, 0, 'k');
    const b = await open(primary, 1, 'k');
    const e = await open(primary, 2, 'k');
    await until('3 subscriptions at the primary', async () => (await relay(primary)).subscriptions === 3);

    const total = 200;
    let killed: { code: number | null; signal: string | null } | undefined;
    for (let i = 0; i < total; i++) {
      a.ws.send(`m${i}`);
      if (i % 10 === 9) await delay(1);
      if (i === 60) {
        await until('b is receiving', () => b.got.length > 0);
        killed = await primary.call('kill', { index: 1 });
      }
    }
    expect(killed).toMatchObject({ signal: 'SIGKILL' });
    e.ws.send('from e, after the kill');
    await until('e gets the whole stream and a gets e', () => e.texts().includes(`m${total - 1}`) && a.texts().includes('from e, after the kill'));
    // Worker 2 never missed a message, in order.
    expect(e.texts()).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));

    expect(primary.running).toBe(true);
    const after = await relay(primary);
    expect(after).toMatchObject({ workers: 2, subscriptions: 2, topics: 1 });
    expect(await primary.call('exits')).toEqual([{ index: 1, code: null, signal: 'SIGKILL' }]);
    // Both survivors still answer, and keep talking.
    expect((await backplaneOf(primary, 0)).connected).toBe(true);
    a.ws.send('still here');
    await until('e gets it', () => e.texts().includes('still here'));
    await stopAll(primary);
  });

  it('a worker forked without setupClusterPrimary() (JSON IPC) gets a TypeError that says to call it before cluster.fork()', async () => {
    const primary = await start('no-setup', 1);
    const error = primary.workers[0]?.error;
    expect(error?.name).toBe('TypeError');
    expect(error?.message).toContain('setupClusterPrimary()');
    expect(error?.message).toContain('before cluster.fork()');
    await stopAll(primary);
  });

  it("a worker whose primary set serialization: 'advanced' itself but never called setupClusterPrimary() (nothing would relay) gets the TypeError", async () => {
    const primary = await start('advanced-no-setup', 1);
    const error = primary.workers[0]?.error;
    expect(error?.name).toBe('TypeError');
    expect(error?.message).toContain('the primary did not call setupClusterPrimary()');
    expect(error?.message).toContain('before cluster.fork()');
    await stopAll(primary);
  });

  it("a worker forked after serialization was set back to 'json' gets the TypeError too (the channel's mode is checked, not only the set-up)", async () => {
    const primary = await start('json-after-setup', 1);
    const error = primary.workers[0]?.error;
    expect(error?.name).toBe('TypeError');
    expect(error?.message).toContain('JSON IPC serialization');
    expect(error?.message).toContain('call setupClusterPrimary() in the primary before cluster.fork()');
    await stopAll(primary);
  });

  it('the IPC channel closing in a worker: status(false) once, publish() returns false, no crash', async () => {
    const primary = await start('relay', 1);
    expect(await primary.worker(0, 'disconnect')).toBe('disconnecting');
    // The worker checks what its node saw and exits with 42 when it is right (3 otherwise).
    expect(await primary.call('waitExit', { index: 0 })).toEqual({ index: 0, code: 42, signal: null });
    expect(primary.running).toBe(true);
    expect((await relay(primary)).subscriptions).toBe(0);
    await stopAll(primary);
  });

  it('bytes in flight to the primary are capped: a burst beyond maxBackpressure is dropped (publish() false), warned once, and publishing resumes', async () => {
    const primary = await start('relay', 1);
    const before = (await relay(primary)).messagesIn;
    const size = 64 << 10;
    const cap = 1 << 20;
    const r = await primary.worker<{ accepted: number; again: boolean; statuses: boolean[]; warnings: number }>(0, 'burst', { maxBackpressure: cap, count: 100, size });
    expect(r.accepted).toBeGreaterThanOrEqual(1);
    expect(r.accepted * size).toBeLessThanOrEqual(cap);
    expect(r.again).toBe(true);
    expect(r.warnings).toBe(1);
    expect(r.statuses).toEqual([]); // a backlog is not an outage
    await until('the primary got every accepted publish', async () => (await relay(primary)).messagesIn === before + r.accepted + 1);
    await stopAll(primary);
  });

  it('setupClusterPrimary() is idempotent, keeps the other cluster settings, and does not keep the primary alive', async () => {
    const r = await runAlone(build.script, 'idle');
    expect(r.exitedByItself).toBe(true);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ same: true, serialization: 'advanced', args: ['--kept'], silent: true, listeners: 1 });
  });
});

describe('clusterBackplane() and setupClusterPrimary() outside their process', () => {
  it('clusterBackplane() outside a cluster worker throws, saying where it runs', () => {
    expect(() => clusterBackplane()).toThrow(/runs in a node:cluster worker, and this process is not one/);
  });

  it('options are checked', () => {
    expect(() => clusterBackplane({ maxBackpressure: 0 })).toThrow(RangeError);
    expect(() => clusterBackplane({ maxBackPressure: 1 } as never)).toThrow(/no option 'maxBackPressure'/);
    expect(() => setupClusterPrimary({ maxBackpressure: -1 })).toThrow(RangeError);
  });

  it('close() removes the relay; a later call starts a new one', () => {
    const listeners = cluster.listenerCount('message');
    const relay = setupClusterPrimary();
    try {
      expect(setupClusterPrimary()).toBe(relay);
      expect(cluster.listenerCount('message')).toBe(listeners + 1);
      expect(process.env.WSMOUNT_CLUSTER_PRIMARY).toBe('1');
      expect(relay.stats()).toEqual({ workers: 0, topics: 0, subscriptions: 0, messagesIn: 0, messagesOut: 0, dropped: 0 });
    } finally {
      relay.close();
    }
    expect(cluster.listenerCount('message')).toBe(listeners);
    expect(process.env.WSMOUNT_CLUSTER_PRIMARY).toBeUndefined();
    const next = setupClusterPrimary();
    expect(next).not.toBe(relay);
    next.close();
  });

  it('wsmount messages carry one tag key', () => {
    expect(CLUSTER_MESSAGE_KEY).toBe('wsmount:cluster:1');
  });
});
