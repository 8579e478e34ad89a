/**
 * Zip bombs (research/wave2.md §1.8.5; ws #1720): a compressed message counts
 * its inflated bytes against maxPayload for the whole message, across fragments, while
 * inflating, and the connection fails with 1009 before memory past the limit is allocated.
 *
 * A raw client sends bombs of up to 4 GiB inflated (about 4 MiB on the wire) to a server in a
 * fresh child process per case (fixtures/deflate-server-child.ts, `node --expose-gc`), on each
 * inflate path:
 * synchronous (`/small`, maxPayload 128 KiB, under the 256 KiB synchronous output budget), the
 * synchronous start handed over to the thread pool (a 62 KiB bomb on `/echo`, maxPayload 1 MiB),
 * and the thread pool from the start (over 64 KiB compressed: `/echo` 1 MiB, `/big` 64 MiB),
 * as one frame and as many fragments (RSV1 on the first only), with the client's context kept
 * (the server inflates on the connection's own stream) and reset (one shared inflater).
 *
 * What is bounded, as in control-flood.test.ts: what the server holds after a GC (heap +
 * external) must be back near its baseline, and its peak RSS — the kernel's high-water mark, so
 * a spike between two samples counts — may grow by the limit plus the compressed message (held
 * twice while its fragments are joined) plus slack, never by anything like the bomb's size.
 * Meanwhile another client on the same server keeps getting compressed echoes.
 */
import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HandlerStats } from '../../src/index.js';
import { Child, buildForChildren, type Build } from './fixtures/children.js';
import { Rng } from './fixtures/prng.js';
import type { RawClient } from '../helpers/raw.js';
import { answerClose } from './helpers.js';
import {
  OFFER_NO_TAKEOVER,
  OFFER_TAKEOVER,
  bomb,
  compress,
  compressedFrame,
  connectDeflate,
  evenCuts,
  fragmentedFrames,
  halfCompressible,
  nextMessage,
} from './deflate-helpers.js';

const MiB = 1 << 20;
/** The handler's maxPayload (the default), `/echo`'s. */
const DEFAULT_MAX_PAYLOAD = MiB;
/** `/small`'s and `/big`'s maxPayload (the child reports its own; checked when it starts). */
const SMALL_MAX_PAYLOAD = 128 * 1024;
const BIG_MAX_PAYLOAD = 64 * MiB;
/**
 * What the server may still hold after a GC once the bomb's connection is gone. Measured here:
 * +0.2–0.8 MiB. A kept inflate output would be the limit itself (1–64 MiB).
 */
const HELD_SLACK = 4 * MiB;
/**
 * Room in the peak for the first connections' and zlib's own buffers, garbage not yet collected
 * and the allocator's slack. Measured here, in a fresh process: the limit + the compressed
 * message twice + 1–3 MiB (+0.8 to +4.6 MiB on the 128 KiB and 1 MiB routes, +71.9 MiB on the
 * 64 MiB route with a 4 MiB bomb).
 */
const PEAK_SLACK = 24 * MiB;
/**
 * The server's closeTimeout: far longer than a case waits for the server to let go of the
 * bomb's connection, so that only the closing handshake can release it (after a failure decided
 * on the thread pool the socket used to stay paused until closeTimeout).
 */
const CLOSE_TIMEOUT = 60_000;

interface Report {
  stats: HandlerStats;
  clients: number;
  asyncJobs: { running: number; waiting: number };
}
interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

/** A compressed text message of 2 KiB (over the 1 KiB threshold: the echo comes back compressed too). */
function probe(label: string): string {
  return `${label}:${halfCompressible(label.length, 2048 - label.length - 1).toString('latin1')}`;
}

/** Sends a compressed text message and expects it back compressed and equal. */
async function echoes(client: RawClient, text: string): Promise<void> {
  client.sendRaw(compressedFrame(0x1, compress(text)));
  const m = await nextMessage(client, { timeout: 10_000 });
  expect(m.opcode).toBe(0x1);
  expect(m.compressed).toBe(true);
  expect(m.data.toString('utf8')).toBe(text);
}

interface Case {
  name: string;
  route: '/small' | '/echo' | '/big';
  limit: number;
  /** Inflated MiB. */
  mib: number;
  /** How the server inflates it. */
  path: string;
  /** Fragments for the fragmented variant. */
  fragments: number;
}

const CASES: Case[] = [
  { name: 'a 62 KiB bomb (60 MiB) on a 128 KiB route', route: '/small', limit: SMALL_MAX_PAYLOAD, mib: 60, path: 'synchronous', fragments: 40 },
  { name: 'a 62 KiB bomb (60 MiB) on a 1 MiB route', route: '/echo', limit: DEFAULT_MAX_PAYLOAD, mib: 60, path: '256 KiB synchronous, then the thread pool', fragments: 40 },
  { name: 'a 1.1 MiB bomb (1.1 GiB) on a 1 MiB route', route: '/echo', limit: DEFAULT_MAX_PAYLOAD, mib: 1100, path: 'thread pool', fragments: 300 },
  { name: 'a 4.1 MiB bomb (4 GiB) on a 64 MiB route', route: '/big', limit: BIG_MAX_PAYLOAD, mib: 4096, path: 'thread pool', fragments: 1000 },
];

function closesWith(r: Report, code: number): number {
  return r.stats.closesByCode[String(code)] ?? 0;
}

/**
 * Waits (at most 5 s, far below CLOSE_TIMEOUT) until the server has let go of every connection
 * and counted their closes — two more than `before` — and returns its report.
 */
async function quiet(server: Child, before: Report): Promise<Report> {
  const total = (r: Report): number => Object.values(r.stats.closesByCode).reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await server.call<Report>('stats');
    if (r.clients === 0 && total(r) >= total(before) + 2) return r;
    if (Date.now() > deadline) throw new Error(`the server still holds ${r.clients} connection(s): ${JSON.stringify(r.stats.closesByCode)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `n` fragments at seeded random cut points (no empty ones). */
function randomCuts(length: number, n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(rng.range(1, length - 1));
  return [...cuts].sort((a, b) => a - b);
}

describe('zip bombs: inflated bytes count against maxPayload while inflating (close 1009), memory stays flat', () => {
  let build: Build;
  const bombs = new Map<number, { payload: Buffer; inflated: number }>();

  beforeAll(async () => {
    for (const c of CASES) if (!bombs.has(c.mib)) bombs.set(c.mib, bomb(c.mib));
    build = await buildForChildren();
  }, 120_000);

  afterAll(async () => {
    await build?.remove();
  });

  /**
   * A fresh server process per case: its peak RSS then says what this bomb cost, not what the
   * allocator kept from an earlier case (freed memory stays in RSS and would be reused unseen).
   */
  async function startServer(): Promise<{ server: Child; port: number }> {
    const server = await Child.start(build.fixture('deflate-server-child'));
    try {
      const started = await server.call<{ port: number; limits: Record<string, number> }>('start', { options: { perMessageDeflate: true, pingInterval: 0, closeTimeout: CLOSE_TIMEOUT } });
      expect(started.limits).toEqual({ '/echo': DEFAULT_MAX_PAYLOAD, '/small': SMALL_MAX_PAYLOAD, '/big': BIG_MAX_PAYLOAD });
      return { server, port: started.port };
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  async function stopServer(server: Child): Promise<void> {
    await server.call('close', { timeout: 500 }).catch(() => {});
    await server.stop();
  }

  test('the bombs are what they say: 60 MiB of zeros from 62 KiB (checked with node:zlib)', async () => {
    const { payload, inflated } = bomb(60);
    expect(payload.length).toBeLessThan(64 * 1024);
    const zlib = await import('node:zlib');
    const out = zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(out.length).toBe(inflated);
    expect(out.every((b) => b === 0)).toBe(true);
    // The big ones are the same unit repeated: 1.1 GiB and 4 GiB fit their routes' wire limits
    // (maxPayload + 1/8 + 1 KiB for a compressed message) and pass the 64 KiB synchronous input.
    expect((bombs.get(1100) as { payload: Buffer }).payload.length).toBeLessThan(DEFAULT_MAX_PAYLOAD * 1.125);
    expect((bombs.get(1100) as { payload: Buffer }).payload.length).toBeGreaterThan(64 * 1024);
    expect((bombs.get(4096) as { payload: Buffer }).payload.length).toBeLessThan(5 * MiB);
  });

  let seed = 0x2b0b;
  for (const c of CASES) {
    for (const shape of ['one frame', 'fragments'] as const) {
      for (const [context, offer] of [
        ['client context kept', OFFER_TAKEOVER],
        ['client_no_context_takeover', OFFER_NO_TAKEOVER],
      ] as const) {
        const caseSeed = seed++;
        const title = `${c.name} (${c.path}), ${shape === 'one frame' ? 'one frame' : `${c.fragments} fragments`}, ${context}: 1009, the server's memory stays flat, another client is served`;
        test(title, async () => {
          const { payload, inflated } = bombs.get(c.mib) as { payload: Buffer; inflated: number };
          const wire =
            shape === 'one frame' ? compressedFrame(0x2, payload) : fragmentedFrames(0x2, payload, c.fragments > 40 ? evenCuts(payload.length, c.fragments) : randomCuts(payload.length, c.fragments, caseSeed));
          const { server, port } = await startServer();
          try {
            const before = await server.call<Report>('stats');
            const base = await server.call<Memory>('watchRss');
            const other = await connectDeflate(port, '/echo', OFFER_TAKEOVER);
            const bomber = await connectDeflate(port, c.route, offer);
            try {
              await echoes(other, probe('before'));
              bomber.sendRaw(wire);
              const closed = await answerClose(bomber, 30_000);
              expect(closed.code).toBe(1009);
              expect(closed.data).toEqual([]);
              expect(closed.tcpClosed).toBe(true);
              // The other client is served at once, compressed both ways.
              await echoes(other, probe('after'));
              expect((await other.close(1000)).code).toBe(1000);
            } finally {
              bomber.destroy();
              other.destroy();
            }
            const { peak } = await server.call<{ peak: number }>('peakRss');
            const after = await quiet(server, before);
            const settled = await server.call<Memory>('memory');
            const held = settled.heapUsed + settled.external - (base.heapUsed + base.external);
            const grew = peak - base.rss;
            console.log(
              `zip bomb: ${c.route} ${(payload.length / 1024).toFixed(0)} KiB → ${inflated / MiB} MiB, ${shape}, ${context}: peak RSS +${(grew / MiB).toFixed(1)} MiB, +${(held / MiB).toFixed(2)} MiB held after GC (limit ${c.limit / MiB} MiB)`,
            );
            expect(held).toBeLessThan(HELD_SLACK);
            // The limit, the compressed message twice (its frames, then joined), slack: not the bomb.
            expect(grew).toBeLessThan(c.limit + 2 * payload.length + PEAK_SLACK);

            const inBefore = before.stats.compression;
            const inAfter = after.stats.compression;
            // Counted as a compressed message in; its inflated bytes never (only the probes' are).
            expect(inAfter.messagesIn - inBefore.messagesIn).toBe(3);
            expect(inAfter.compressedBytesIn - inBefore.compressedBytesIn).toBeGreaterThanOrEqual(payload.length);
            expect(inAfter.inflatedBytesIn - inBefore.inflatedBytesIn).toBe(2 * 2048);
            expect(closesWith(after, 1009) - closesWith(before, 1009)).toBe(1);
            expect(closesWith(after, 1000) - closesWith(before, 1000)).toBe(1);
            expect(after.asyncJobs).toEqual({ running: 0, waiting: 0 });
            expect(inAfter.connections).toBe(0);
          } finally {
            await stopServer(server);
          }
        }, 60_000);
      }
    }
  }
});
