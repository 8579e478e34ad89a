/**
 * Many idle connections: thousands of clients held open against a server in a child process with
 * a short heartbeat, so pings really flow for a few intervals. Clients (in a second child
 * process, answering every ping with a pong) must all stay open: no pong timeout, no close. Then
 * the server's heap and RSS per connection are measured (after gc(), minus a baseline taken
 * before connecting) and printed; only a generous bound is asserted. Then everything closes and
 * nothing is left.
 *
 * File descriptors: one per connection in each child. Both children raise their soft limit to
 * the hard limit (at most 65,536) through bash's `ulimit -n`; the connection count is 5,000, or
 * less if that limit is lower (the test is skipped under 500).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Child, buildForChildren, type Build, hardFileLimit, type ServerReport, settled } from './fixtures/children.js';

const hard = await hardFileLimit();
const FILE_LIMIT = Math.min(hard ?? 1024, 65_536);
const COUNT = Math.min(5000, FILE_LIMIT - 300);
const PING_INTERVAL = 1000;
/** Longer than the interval so a loaded CI machine does not miss a pong by a scheduling hiccup. */
const PONG_TIMEOUT = 2000;
/** How long every connection is held after the last one opened: three ping intervals and a half. */
const HOLD = 3500;
const WARMUP = 200;
/** A generous bound on server heap per idle connection. */
const HEAP_PER_CONNECTION = 20 * 1024;

interface Memory {
  heapUsed: number;
  rss: number;
}
interface ClientStatus {
  clients: number;
  open: number;
  minPings: number;
  maxPings: number;
  pings: number;
  pongsSent: number;
  closeFrames: number;
  dataFrames: number;
}
interface Opened {
  opened: number;
  failed: number;
  firstError: string;
}
interface Closed {
  clients: number;
  closed: number;
  echoed1000: number;
}

describe.runIf(COUNT >= 500)('many idle connections', () => {
  let build: Build;
  let server: Child;
  let clients: Child;
  let port = 0;

  beforeAll(async () => {
    build = await buildForChildren();
    [server, clients] = await Promise.all([
      Child.start(build.fixture('server-child'), { fileLimit: FILE_LIMIT }),
      Child.start(build.fixture('idle-clients'), { fileLimit: FILE_LIMIT }),
    ]);
    for (const child of [server, clients]) {
      const limit = child.ready['fileLimit'];
      if (typeof limit === 'number' && limit < COUNT + 100) {
        throw new Error(`a child's open-file limit is ${limit}, too low for ${COUNT} connections (wanted ${FILE_LIMIT})`);
      }
    }
    ({ port } = await server.call<{ port: number }>('start', {
      options: { pingInterval: PING_INTERVAL, pongTimeout: PONG_TIMEOUT, closeTimeout: 2000 },
    }));
  }, 60_000);

  afterAll(async () => {
    await clients?.stop();
    await server?.call('close', { timeout: 1000 }, 5000).catch(() => {});
    await server?.stop();
    await build?.remove();
  });


  test(`${COUNT} idle connections answer the heartbeat (${PING_INTERVAL} ms) and all stay open; memory per connection is printed`, async () => {
    // Warm-up: code paths compiled and pools filled before the baseline.
    const warm = await clients.call<Opened>('open', { port, count: WARMUP }, 30_000);
    expect(warm.opened).toBe(WARMUP);
    await clients.call<Closed>('closeAll', {}, 15_000);
    await settled(server, 'after the warm-up');
    const base = await server.call<Memory>('memory');
    const startStats = (await server.call<ServerReport>('stats')).stats;

    const opening = Date.now();
    const opened = await clients.call<Opened>('open', { port, count: COUNT, concurrency: 100 }, 60_000);
    const openMs = Date.now() - opening;
    expect(opened, opened.firstError).toMatchObject({ opened: COUNT, failed: 0 });
    await delay(HOLD);

    const r = await server.call<ServerReport>('stats');
    const c = await clients.call<ClientStatus>('status');
    const mem = await server.call<Memory>('memory');
    const heapPer = (mem.heapUsed - base.heapUsed) / COUNT;
    const rssPer = (mem.rss - base.rss) / COUNT;
    const pingsSent = r.stats.pingsSent - startStats.pingsSent;
    console.log(
      `idle: ${COUNT} connections, heap ${Math.round(heapPer)} B/conn, rss ${Math.round(rssPer)} B/conn ` +
        `(server heap ${base.heapUsed} → ${mem.heapUsed} B, rss ${base.rss} → ${mem.rss} B; opened in ${openMs} ms, ` +
        `held ${HOLD} ms: ${pingsSent} pings sent, ${c.pongsSent} pongs, pings per client ${c.minPings}–${c.maxPings}, ` +
        `pong timeouts ${r.stats.pongTimeouts})`,
    );

    // Nobody was dropped: every client open on both sides, no pong missed, no close frame.
    expect(r.stats.pongTimeouts).toBe(0);
    expect(r.clients).toBe(COUNT);
    expect(r.stats.connections).toBe(COUNT);
    expect(c.open).toBe(COUNT);
    expect(c.closeFrames).toBe(0);
    expect(c.dataFrames).toBe(0);
    // Pings really flowed: every client answered at least two of them.
    expect(c.minPings).toBeGreaterThanOrEqual(2);
    expect(pingsSent).toBeGreaterThanOrEqual(2 * COUNT);
    expect(c.pongsSent).toBe(c.pings);
    expect(heapPer).toBeLessThan(HEAP_PER_CONNECTION);

    // Close them all: every client gets its 1000 back and the server lets go of everything.
    const closed = await clients.call<Closed>('closeAll', { timeout: 15_000 }, 20_000);
    expect(closed).toEqual({ clients: COUNT, closed: COUNT, echoed1000: COUNT });
    const end = await settled(server, 'after closing');
    expect(end.track.closes).toBe(end.track.opens);
    expect(end.track.doubleCloses).toBe(0);
    expect(end.stats.closesByCode).toEqual({ 1000: COUNT + WARMUP });
    const after = await server.call<Memory>('memory');
    console.log(`idle: after closing all, server heap ${after.heapUsed} B (${after.heapUsed - base.heapUsed >= 0 ? '+' : ''}${after.heapUsed - base.heapUsed} B from the baseline)`);
  }, 90_000);
});
