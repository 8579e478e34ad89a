/**
 * What a sample holds: slow consumers (largest backlog first, bounded, from one pass over the
 * clients; with real clients that stopped reading), the top routes, rates between two samples,
 * and the history's bound.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { createDashboard, type DashboardClient } from 'wsmount/dashboard';
import { Behavior, type HandlerStats } from '../../src/index.js';
import { Sampler, slowConsumers } from '../../src/dashboard/sampler.js';
import { Echo, useFixture } from '../helpers/fixture.js';
import type { RawClient } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { handlerStats, routeStats } from '../helpers/stats.js';

const fixture = useFixture();

function client(id: number, bufferedAmount: number, extra: Partial<DashboardClient> = {}): DashboardClient {
  return { id, route: '/r', remoteAddress: '10.0.0.1', bufferedAmount, latency: undefined, ...extra };
}

describe('slowConsumers(): one pass, the n largest backlogs', () => {
  test('largest first, ties in the order met, clients with nothing waiting left out, at most n; every backlogged client counted', () => {
    const clients = [client(1, 0), client(2, 500), client(3, 10), client(4, 500), client(5, 9000), client(6, 0), client(7, 20)];
    expect(slowConsumers(clients, 3)).toEqual({
      top: [
        { id: 5, route: '/r', remoteAddress: '10.0.0.1', bufferedAmount: 9000, latency: null },
        { id: 2, route: '/r', remoteAddress: '10.0.0.1', bufferedAmount: 500, latency: null },
        { id: 4, route: '/r', remoteAddress: '10.0.0.1', bufferedAmount: 500, latency: null },
      ],
      backlogged: 5,
    });
    expect(slowConsumers(clients, 10).top.map((c) => c.id)).toEqual([5, 2, 4, 7, 3]);
    expect(slowConsumers(clients, 0)).toEqual({ top: [], backlogged: 5 });
    expect(slowConsumers([], 10)).toEqual({ top: [], backlogged: 0 });
  });

  test('an unknown address and latency are null (JSON keeps them); each bufferedAmount is read once', () => {
    let reads = 0;
    const counted = {
      id: 9,
      route: '/x',
      remoteAddress: undefined,
      latency: 12.5,
      get bufferedAmount() {
        reads++;
        return 64;
      },
    };
    expect(slowConsumers([counted], 5).top).toEqual([{ id: 9, route: '/x', remoteAddress: null, bufferedAmount: 64, latency: 12.5 }]);
    expect(reads).toBe(1);
  });

  test('10,000 clients in ascending order (the worst case for insertion): still the top n, in order', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => client(i, i));
    const { top, backlogged } = slowConsumers(many, 100);
    expect(backlogged).toBe(9999);
    expect(top.map((c) => c.bufferedAmount)).toEqual(Array.from({ length: 100 }, (_, i) => 9999 - i));
  });
});

/** Sends whatever it is told to, to check what the peer has not read. */
class Feed extends Behavior {}

describe('slow consumers with real clients that stopped reading', () => {
  test('the clients with the most bytes waiting, largest first, as their own bufferedAmount says; a client that reads is not listed', async () => {
    const mounted = await fixture.mount({ '/feed': Feed, '/echo': Echo }, { maxBackpressure: 64 << 20 });
    const { handler, port } = mounted;
    const raws: RawClient[] = [];
    for (let i = 0; i < 3; i++) raws.push(await fixture.connect(port, '/feed'));
    const reader = await fixture.connect(port, '/feed');
    await waitFor(() => handler.clients.size === 4, 2000, 'four clients');
    for (const raw of raws) raw.socket.pause();
    // Each client's behavior, by the port it connected from.
    const behaviors = [...handler.clients] as Feed[];
    const behaviorOf = (raw: RawClient): Feed => behaviors.find((f) => f.remotePort === raw.socket.localPort) as Feed;
    const [fa, fb, fc, fr] = [...raws, reader].map(behaviorOf) as [Feed, Feed, Feed, Feed];
    // More than the kernel's socket buffers take (a few MiB on loopback), so a backlog stays:
    // b gets the most, then c, then a. One 1 MiB buffer, sent again and again (not copied).
    const mib = Buffer.alloc(1 << 20, 1);
    const send = (f: Feed, n: number) => {
      for (let i = 0; i < n; i++) f.sendBinary(mib);
    };
    send(fa, 16);
    send(fb, 40);
    send(fc, 28);
    send(fr, 1);
    // Let the kernel take what it takes; then the backlogs hold still.
    let last = '';
    for (let i = 0; i < 100; i++) {
      await sleep(30);
      const now = behaviors.map((f) => f.bufferedAmount).join();
      if (now === last && fr.bufferedAmount === 0) break;
      last = now;
    }
    expect(fr.bufferedAmount).toBe(0);
    const dashboard = createDashboard(handler, { slowConsumers: 2 });
    fixture.defer(() => dashboard.close());
    const { snapshot } = dashboard.state();
    // Read in the same turn as the sample: nothing moves a backlog in between.
    const live = new Map(behaviors.map((f) => [f.id, f.bufferedAmount]));
    expect(snapshot.slowConsumers.map((s) => s.id)).toEqual([fb.id, fc.id]);
    for (const s of snapshot.slowConsumers) {
      expect(s.bufferedAmount).toBe(live.get(s.id));
      expect(s.route).toBe('/feed');
      expect(s.remoteAddress).toBe('127.0.0.1');
    }
    expect(snapshot.backloggedClients).toBe(3);
    expect((live.get(fb.id) ?? 0) > (live.get(fc.id) ?? 0) && (live.get(fc.id) ?? 0) > (live.get(fa.id) ?? 0)).toBe(true);
  });
});

/** A stats() source whose numbers the test sets. */
function fakeStats(over: Partial<HandlerStats> = {}): HandlerStats {
  const route = (connections: number, messagesIn: number) =>
    routeStats({ connections, handshakesAccepted: connections, messagesIn, closesByCode: { '1000': 2, '1006': 1 } }, [1]);
  return handlerStats({ routes: { '/b': route(5, 0), '/a': route(5, 0), '/busy': route(1, 0), '/idle': route(0, 0) }, ...over }, [1]);
}

describe('Sampler', () => {
  test('rates are null on the first sample, then the difference over the time between samples; top routes: most connections, then most messages per second, then by name, at most topRoutes', async () => {
    let stats = fakeStats();
    const sampler = new Sampler({ stats: () => stats, clients: new Set() }, { interval: 1000, span: 60_000, topRoutes: 3, slowConsumers: 5 });
    // The sampler reads performance.now() inside sample(): the time between its two samples lies
    // between what is measured here inside and outside the two calls.
    const outerStart = performance.now();
    const first = sampler.sample(0);
    const innerStart = performance.now();
    expect(first.point.messagesInPerSecond).toBeNull();
    expect(first.routes.map((r) => r.pattern)).toEqual(['/a', '/b', '/busy']);
    expect(first.routeCount).toBe(4);
    expect(first.routes[0]?.closes).toBe(3);
    await sleep(50);
    stats = fakeStats({ messagesIn: 1000, routes: { ...fakeStats().routes, '/b': { ...(fakeStats().routes['/b'] as HandlerStats['routes'][string]), messagesIn: 1000 } } });
    const innerEnd = performance.now();
    const second = sampler.sample(2);
    const outerEnd = performance.now();
    const rate = second.point.messagesInPerSecond ?? 0;
    // 1,000 messages over the time between the two samples (a timer of 50 ms can fire a little
    // early by this clock, so the bounds are measured, not assumed).
    expect(rate).toBeGreaterThanOrEqual(1000 / ((outerEnd - outerStart) / 1000) - 1e-6);
    expect(rate).toBeLessThanOrEqual(1000 / ((innerEnd - innerStart) / 1000) + 1e-6);
    expect(second.routes.map((r) => r.pattern)).toEqual(['/b', '/a', '/busy']);
    expect(second.routes[0]?.messagesInPerSecond).toBe(rate);
    expect(second.viewers).toBe(2);
    // A counter that went back (another source) is not a negative rate.
    stats = fakeStats();
    expect(sampler.sample(0).point.messagesInPerSecond).toBe(0);
    expect(sampler.history()).toHaveLength(3);
  });

  test('the history keeps the points within span of the newest, and at most twice span / interval of them', () => {
    const sampler = new Sampler({ stats: () => fakeStats(), clients: new Set() }, { interval: 100, span: 1000, topRoutes: 10, slowConsumers: 10 });
    for (let i = 0; i < 100; i++) sampler.sample(0);
    // All taken within the same few milliseconds: the count bound holds.
    expect(sampler.history().length).toBe(21);
    const points = sampler.history();
    expect(points.at(-1)).toEqual(sampler.latest?.point);
  });
});
