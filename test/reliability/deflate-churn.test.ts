/**
 * Compressed connection churn: rounds of 1,000 clients that agree permessage-deflate with their
 * context kept (Chrome's offer), so the server inflates each one's messages on a stream of its
 * own, allocated on its first compressed message. All 1,000 are open at once; each sends one
 * compressed message and gets the echo — most of them 2 KiB (inflated and compressed on the event
 * loop), some 150 KiB (both on the thread pool), and some send 150 KiB and leave at once, while
 * the server is inflating it — then all close. Afterwards nothing may be left behind: no
 * compressed connection in stats(), no zlib job running or waiting (zlib-sync.ts asyncJobs()),
 * every onOpen paired with one onClose, and the server's heap + external memory (where Node
 * counts zlib's own allocations) back near where it started, after a GC.
 *
 * `process.getActiveResourcesInfo()` is compared too, but Node 20 does not list zlib streams or
 * their thread-pool work there (checked: an idle or busy InflateRaw adds nothing), so the memory
 * figure is what would show a zlib stream left behind (~30-40 KiB each once used).
 *
 * The server runs in a child process (`node --expose-gc`, fixtures/deflate-server-child.ts) so
 * that its memory is measured alone.
 */
import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HandlerStats } from '../../src/index.js';
import type { RawClient } from '../helpers/raw.js';
import { Child, buildForChildren, type Build } from './fixtures/children.js';
import { Rng } from './fixtures/prng.js';
import { ClientInflater, OFFER_TAKEOVER, compress, compressedFrame, connectDeflate, halfCompressible, nextMessage } from './deflate-helpers.js';

const SEED = 0xdef1a7e;
const CLIENTS = 1000;
/** Handshakes, messages and closes in flight at once. */
const BATCH = 100;
const ROUNDS = 3;
const MiB = 1024 * 1024;
/**
 * Growth of heap + external allowed over ROUNDS rounds after a warm-up round (measured here:
 * well under 1 MiB). An inflate stream left behind per connection would be ~30 MiB a round.
 */
const MEMORY_BOUND = 4 * MiB;
const SMALL = 2048;
const BIG = 150 * 1024;

interface Report {
  stats: HandlerStats;
  clients: number;
  httpConnections: number;
  track: { opens: number; closes: number; live: number; errors: number };
  asyncJobs: { running: number; waiting: number };
  activeResources: string[];
}
interface Memory {
  heapUsed: number;
  external: number;
  rss: number;
}

type Kind = 'small' | 'big' | 'bigThenGone';

/** How many of each kind a round had. */
type Tally = Record<Kind, number>;

/** Runs `fn` over `items`, BATCH at a time. */
async function inBatches<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(...(await Promise.all(items.slice(i, i + BATCH).map((item, k) => fn(item, i + k)))));
  return out;
}

/** Counts of each entry of getActiveResourcesInfo(). */
function census(resources: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of resources) out[r] = (out[r] ?? 0) + 1;
  return out;
}

describe('1,000 compressed clients churning: nothing left behind', () => {
  let build: Build;
  let server: Child;
  let port = 0;

  beforeAll(async () => {
    build = await buildForChildren();
    server = await Child.start(build.fixture('deflate-server-child'));
    ({ port } = await server.call<{ port: number }>('start', { options: { perMessageDeflate: true, pingInterval: 0, closeTimeout: 2000 } }));
  }, 120_000);

  afterAll(async () => {
    await server?.call('close', { timeout: 500 }).catch(() => {});
    await server?.stop();
    await build?.remove();
  });

  /** Polls until the server holds no connection and no zlib job; returns its report. */
  async function settled(what: string): Promise<Report> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await server.call<Report>('stats');
      const idle =
        r.clients === 0 && r.httpConnections === 0 && r.track.live === 0 && r.stats.compression.connections === 0 && r.asyncJobs.running === 0 && r.asyncJobs.waiting === 0;
      if (idle) return r;
      if (Date.now() > deadline) {
        throw new Error(
          `${what}: still busy after 15 s: ${JSON.stringify({ clients: r.clients, tcp: r.httpConnections, live: r.track.live, compressed: r.stats.compression.connections, jobs: r.asyncJobs })}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** One round: CLIENTS connect, each sends one compressed message and (most) get the echo, all leave. */
  async function round(rng: Rng, label: string): Promise<Tally> {
    const tally: Tally = { small: 0, big: 0, bigThenGone: 0 };
    // A few big payloads per round (generating 150 KiB per client would dominate the run time).
    const bigs = Array.from({ length: 4 }, (_, i) => {
      const plain = halfCompressible(rng.u32() + i, BIG);
      return { plain, wire: compressedFrame(0x2, compress(plain)) };
    });
    const clients = await inBatches(Array.from({ length: CLIENTS }, (_, i) => i), () => connectDeflate(port, '/echo', OFFER_TAKEOVER));
    try {
      const open = await server.call<Report>('stats');
      expect(open.stats.compression.connections).toBe(CLIENTS);
      const kinds: Kind[] = clients.map(() => rng.weighted({ small: 90, big: 5, bigThenGone: 5 }));
      await inBatches(clients, async (client: RawClient, i: number) => {
        const kind = kinds[i] as Kind;
        tally[kind]++;
        if (kind === 'small') {
          const text = `${label} client ${i} `.padEnd(SMALL, String.fromCharCode(0x61 + (i % 26)));
          client.sendRaw(compressedFrame(0x1, compress(text)));
          const m = await nextMessage(client, { timeout: 15_000, inflater: new ClientInflater() });
          if (m.opcode !== 0x1 || !m.compressed || m.data.toString() !== text) throw new Error(`client ${i}: wrong echo`);
          return;
        }
        const big = bigs[i % bigs.length] as { plain: Buffer; wire: Buffer };
        client.sendRaw(big.wire);
        if (kind === 'bigThenGone') {
          // Gone while the server inflates it on the thread pool (or has not read it all yet).
          client.socket.resetAndDestroy();
          return;
        }
        const m = await nextMessage(client, { timeout: 15_000, inflater: new ClientInflater() });
        if (m.opcode !== 0x2 || !m.compressed || !m.data.equals(big.plain)) throw new Error(`client ${i}: wrong big echo`);
      });
      await inBatches(clients, async (client: RawClient, i: number) => {
        if (kinds[i] === 'bigThenGone') return;
        const closed = await client.close(1000, '', 15_000);
        if (closed.code !== 1000) throw new Error(`client ${i}: close answered ${closed.code}`);
      });
    } finally {
      for (const c of clients) c.destroy();
    }
    return tally;
  }

  test(`${ROUNDS} rounds of ${CLIENTS} clients after a warm-up round: stats().compression.connections 0, no zlib job, onOpen/onClose paired, memory back near the baseline`, async () => {
    const rng = new Rng(SEED);
    await round(rng, 'warm-up');
    const start = await settled('after the warm-up');
    const base = await server.call<Memory>('memory');
    const resourcesBefore = census((await server.call<Report>('stats')).activeResources);
    const tallies: Tally[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      tallies.push(await round(rng, `round ${r}`));
      const after = await settled(`after round ${r}`);
      expect(after.asyncJobs).toEqual({ running: 0, waiting: 0 });
    }
    const end = await settled('at the end');
    const mem = await server.call<Memory>('memory');
    const resourcesAfter = census(end.activeResources);
    const grew = mem.heapUsed + mem.external - (base.heapUsed + base.external);
    const opened = end.track.opens - start.track.opens;
    const c0 = start.stats.compression;
    const c1 = end.stats.compression;
    console.log(
      `compressed churn: ${ROUNDS} × ${CLIENTS} clients (${JSON.stringify(tallies)}); ${c1.messagesIn - c0.messagesIn} compressed messages in, ${c1.messagesOut - c0.messagesOut} out; heap+external ${grew >= 0 ? '+' : ''}${(grew / MiB).toFixed(2)} MiB (heap ${((mem.heapUsed - base.heapUsed) / MiB).toFixed(2)}, external ${((mem.external - base.external) / MiB).toFixed(2)}), RSS ${((mem.rss - base.rss) / MiB).toFixed(1)} MiB; active resources ${JSON.stringify(resourcesAfter)}`,
    );
    expect(end.stats.compression.connections).toBe(0);
    expect(end.asyncJobs).toEqual({ running: 0, waiting: 0 });
    expect(opened).toBe(ROUNDS * CLIENTS);
    expect(end.track.closes - start.track.closes).toBe(opened);
    expect(end.track.live).toBe(0);
    expect(end.track.errors).toBe(start.track.errors);
    // Every message arrived compressed and every echo went out compressed, except those of the
    // clients that left at once (the server may still have read, inflated and answered some).
    const gone = tallies.reduce((n, t) => n + t.bigThenGone, 0);
    for (const counted of [c1.messagesIn - c0.messagesIn, c1.messagesOut - c0.messagesOut]) {
      expect(counted).toBeGreaterThanOrEqual(ROUNDS * CLIENTS - gone);
      expect(counted).toBeLessThanOrEqual(ROUNDS * CLIENTS);
    }
    expect(resourcesAfter).toEqual(resourcesBefore);
    expect(end.activeResources.filter((r) => /zlib/i.test(r))).toEqual([]);
    expect(grew).toBeLessThan(MEMORY_BOUND);
  }, 180_000);
});
