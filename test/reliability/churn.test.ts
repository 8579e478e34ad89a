/**
 * Connection churn: thousands of connect/send/disconnect cycles against one server, mixing every
 * way a client can leave (close handshake, reset mid-frame, gone mid-handshake, gone while an
 * async verify() or onOpen() runs). Afterwards nothing may be left behind: no client, no pending
 * handshake, no socket, no connection slot (maxConnections still admits exactly its number), every
 * onOpen paired with exactly one onClose, and the server's heap back near where it started.
 *
 * The server runs in a child process (`node --expose-gc`, fixtures/server-child.ts) so that its
 * heap is measured after gc() with no test runner or client in it.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Child, buildForChildren, type Build, settled } from './fixtures/children.js';
import { Rng, caseSeed, hexSeed } from './fixtures/prng.js';
import { WireClient } from './fixtures/wire-client.js';
import { encodeFrame, upgradeRequest } from './fixtures/wire.js';

const SEED = 0x5eed_c4a2;
const WARMUP_CYCLES = 1000;
const CYCLES = 4000;
const CONCURRENCY = 50;
/** The server's maxConnections (and per-IP limit): far above the churn's concurrency. */
const CAPACITY = 400;
/**
 * Heap growth allowed over CYCLES cycles (measured here: 0.3–0.7 MB, which is noise: more rounds
 * of 4,000 cycles move it up and down by ±0.2 MB). A leak of 1 KiB per opened connection
 * (about 3,000 of the 4,000 cycles open one) would add 3 MB.
 */
const HEAP_BOUND = 2 * 1024 * 1024;

interface Memory {
  heapUsed: number;
  rss: number;
}

const KINDS = {
  /** Handshake, 1–3 echoes, close handshake (1000). */
  normal: 30,
  /** Handshake, one echo, then the TCP connection destroyed with no close frame. */
  abrupt: 8,
  /** Handshake, then half of a frame, then destroy (FIN) … */
  midFrame: 10,
  /** … or reset (RST). */
  midFrameReset: 5,
  /** A partial HTTP request, then gone. */
  partialHttp: 10,
  /** The whole upgrade request, then gone before the 101 is read. */
  requestThenGone: 10,
  /** An upgrade on /slow (async verify), gone while verify() runs. */
  verifyLeave: 12,
  /** An upgrade on /slow that waits for the 101, echoes and closes. */
  verifyNormal: 5,
  /** An upgrade on /async-open, a message, then gone while onOpen() is pending. */
  asyncOpenLeave: 5,
  /** An upgrade on /async-open, a message echoed after onOpen(), close handshake. */
  asyncOpenNormal: 5,
} as const;
type Kind = keyof typeof KINDS;
/** The kinds that must end in a clean close handshake. */
const CLEAN: ReadonlySet<Kind> = new Set<Kind>(['normal', 'verifyNormal', 'asyncOpenNormal']);

function payloadFor(rng: Rng): { opcode: number; payload: Buffer } {
  const size = rng.chance(0.8) ? rng.int(126) : rng.range(126, 3000);
  if (rng.chance(0.5)) return { opcode: 0x2, payload: rng.bytes(size) };
  return { opcode: 0x1, payload: Buffer.from('é€'.repeat(size).slice(0, size), 'utf8') };
}

async function echo(client: WireClient, rng: Rng): Promise<void> {
  const { opcode, payload } = payloadFor(rng);
  client.send(opcode, payload);
  const f = await client.nextFrame(5000);
  if (f.opcode !== opcode || !f.payload.equals(payload)) throw new Error(`wrong echo: opcode ${f.opcode}, ${f.payload.length} bytes`);
}

/** Leaves by FIN (destroy after end), plain destroy, or RST. */
function leave(socket: net.Socket, rng: Rng): void {
  const how = rng.int(3);
  if (how === 0) socket.resetAndDestroy();
  else if (how === 1) socket.destroy();
  else socket.end(() => socket.destroy());
}

/** A raw TCP connection that writes `bytes` once connected, waits `wait` ms, then leaves. */
async function writeAndLeave(port: number, bytes: Buffer, wait: number, rng: Rng): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(bytes);
  if (wait > 0) await delay(wait);
  else if (rng.chance(0.5)) await new Promise((r) => setImmediate(r));
  leave(socket, rng);
  await closed;
}

/** One cycle. Throws only when a clean kind does not end cleanly. */
async function cycle(kind: Kind, rng: Rng, port: number): Promise<void> {
  switch (kind) {
    case 'normal':
    case 'verifyNormal':
    case 'asyncOpenNormal': {
      const path = kind === 'normal' ? '/echo' : kind === 'verifyNormal' ? '/slow' : '/async-open';
      const client = await WireClient.open(port, path);
      try {
        const n = kind === 'normal' ? rng.range(1, 3) : 1;
        for (let i = 0; i < n; i++) await echo(client, rng);
        const code = await client.close(1000, 5000);
        if (code !== 1000) throw new Error(`close answered ${code}`);
      } finally {
        client.destroy();
      }
      return;
    }
    case 'abrupt': {
      const client = await WireClient.open(port, '/echo');
      try {
        await echo(client, rng);
      } finally {
        leave(client.socket, rng);
      }
      return;
    }
    case 'midFrame':
    case 'midFrameReset': {
      const client = await WireClient.open(port, '/echo');
      const { opcode, payload } = payloadFor(rng);
      const frame = encodeFrame(opcode, Buffer.concat([payload, Buffer.from('xx')]), { key: rng.bytes(4) });
      client.write(frame.subarray(0, rng.range(1, frame.length - 1)));
      await new Promise((r) => setImmediate(r));
      if (kind === 'midFrameReset') client.socket.resetAndDestroy();
      else client.destroy();
      await client.waitClosed(5000);
      return;
    }
    case 'partialHttp': {
      const request = Buffer.from(upgradeRequest(rng.chance(0.5) ? '/echo' : '/slow', rng.bytes(16).toString('base64')), 'latin1');
      await writeAndLeave(port, request.subarray(0, rng.range(1, request.length - 2)), rng.int(3), rng);
      return;
    }
    case 'requestThenGone': {
      const request = Buffer.from(upgradeRequest('/echo', rng.bytes(16).toString('base64')), 'latin1');
      await writeAndLeave(port, request, rng.int(2), rng);
      return;
    }
    case 'verifyLeave': {
      const request = Buffer.from(upgradeRequest('/slow', rng.bytes(16).toString('base64')), 'latin1');
      // Sometimes with a frame right behind the request: bytes that arrive during verify().
      const early = rng.chance(0.3) ? encodeFrame(0x1, 'early', { key: rng.bytes(4) }) : Buffer.alloc(0);
      await writeAndLeave(port, Buffer.concat([request, early]), rng.range(1, 15), rng);
      return;
    }
    case 'asyncOpenLeave': {
      const client = await WireClient.open(port, '/async-open');
      client.send(0x1, 'queued behind onOpen');
      leave(client.socket, rng);
      await client.waitClosed(5000);
      return;
    }
  }
}

/** Runs `total` cycles, `concurrency` at a time; returns the failures of clean kinds. */
async function churn(port: number, seed: number, first: number, total: number, counts: Record<Kind, number>): Promise<string[]> {
  const failures: string[] = [];
  let next = first;
  const end = first + total;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const i = next++;
      const rng = new Rng(caseSeed(seed, i));
      const kind = rng.weighted(KINDS);
      counts[kind]++;
      try {
        await cycle(kind, rng, port);
      } catch (error) {
        if (CLEAN.has(kind)) failures.push(`cycle ${i} (${kind}): ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failures;
}

let build: Build;
let server: Child;
let port = 0;

beforeAll(async () => {
  build = await buildForChildren();
  server = await Child.start(build.fixture('server-child'));
  ({ port } = await server.call<{ port: number }>('start', {
    options: { maxConnections: CAPACITY, maxConnectionsPerIp: CAPACITY, closeTimeout: 2000, verifyTimeout: 5000 },
    slowVerifyMs: 100,
    asyncOpenMs: 20,
  }));
}, 60_000);

afterAll(async () => {
  await server?.call('close', { timeout: 1000 }, 5000).catch(() => {});
  await server?.stop();
  await build?.remove();
});


describe('churn', () => {
  test(`${CYCLES} connect/send/disconnect cycles (${CONCURRENCY} at a time) leave no client, socket, slot or heap behind`, async () => {
    const counts = Object.fromEntries(Object.keys(KINDS).map((k) => [k, 0])) as Record<Kind, number>;
    const warmupFailures = await churn(port, SEED, 0, WARMUP_CYCLES, counts);
    expect(warmupFailures).toEqual([]);
    await settled(server, 'after the warm-up');
    const before = await server.call<Memory>('memory');

    const started = Date.now();
    const failures = await churn(port, SEED, WARMUP_CYCLES, CYCLES, counts);
    const churnMs = Date.now() - started;
    expect(failures.slice(0, 5), `${failures.length} clean cycles failed (seed ${hexSeed(SEED)})`).toEqual([]);

    const r = await settled(server, 'after the churn');
    const after = await server.call<Memory>('memory');
    const growth = after.heapUsed - before.heapUsed;
    const t = r.track;
    console.log(
      `churn: ${WARMUP_CYCLES}+${CYCLES} cycles in ${churnMs} ms (seed ${hexSeed(SEED)}), ${t.opens} opened, ` +
        `${t.verifies} async verifies (${t.leftDuringVerify} left during verify), ${t.closedDuringOpen} closed during async onOpen; ` +
        `closes by code ${JSON.stringify(r.stats.closesByCode)}; server heap ${before.heapUsed} → ${after.heapUsed} B ` +
        `(${growth >= 0 ? '+' : ''}${growth} B, ${(growth / CYCLES).toFixed(1)} B/cycle), rss ${before.rss} → ${after.rss} B; ` +
        `kinds ${JSON.stringify(counts)}`,
    );

    // Every onOpen had exactly one onClose, and nothing opened for a client that left in verify().
    expect(t.doubleCloses).toBe(0);
    expect(t.closesWithoutOpen).toBe(0);
    expect(t.opensAfterLeaving).toBe(0);
    expect(t.closes).toBe(t.opens);
    expect(r.stats.handshakesAccepted).toBe(t.opens);
    const closed = Object.values(r.stats.closesByCode).reduce((a, b) => a + b, 0);
    expect(closed).toBe(t.opens);
    const clean = counts.normal + counts.verifyNormal + counts.asyncOpenNormal;
    expect(r.stats.closesByCode['1000'] ?? 0).toBeGreaterThanOrEqual(clean);
    // No limit was ever hit: no slot leaked on the way.
    expect(r.stats.handshakesRejectedByStatus).toEqual({});
    // The leave-during-verify and close-during-onOpen paths really ran.
    expect(t.leftDuringVerify).toBeGreaterThanOrEqual(Math.floor(counts.verifyLeave / 4));
    expect(t.closedDuringOpen).toBeGreaterThan(0);
    expect(growth, `server heap grew ${growth} B over ${CYCLES} cycles`).toBeLessThan(HEAP_BOUND);
  }, 90_000);

  test(`afterwards maxConnections (${CAPACITY}) admits exactly ${CAPACITY} clients: no connection slot leaked`, async () => {
    const clients: WireClient[] = [];
    try {
      for (let i = 0; i < CAPACITY; i += 50) {
        clients.push(...(await Promise.all(Array.from({ length: Math.min(50, CAPACITY - i) }, () => WireClient.open(port, '/echo')))));
      }
      const refused = WireClient.connect(port);
      refused.write(Buffer.from(upgradeRequest('/echo', Buffer.alloc(16, 7).toString('base64')), 'latin1'));
      const head = await refused.waitHead(5000);
      refused.destroy();
      expect(head.status).toBe(503);
    } finally {
      for (const c of clients) c.destroy();
    }
    const r = await settled(server, 'after the capacity probe');
    expect(r.track.closes).toBe(r.track.opens);
  }, 60_000);
});
