/**
 * Slow readers, both ways.
 *
 * Send side: a client that stops reading (its raw socket paused) while the server broadcasts, or
 * while one behavior sends in a loop. A send that would take `bufferedAmount` past
 * `maxBackpressure` is dropped, so the server's backlog for that client stays within the limit;
 * then the policy applies — `'close'`: the slow consumer is closed with 1008 'slow consumer' after
 * everything accepted for it; `'drop'`: the send returns `'dropped'` and the connection stays —
 * while reading clients get every message. `onDrain` / `drained()` fire once the reader resumes.
 *
 * Receive side: an async `onText` gets messages one at a time, in order, while a client floods;
 * reading pauses at MESSAGES_HIGH_WATER_COUNT / _BYTES queued messages, so the queue stays bounded
 * (by the mark plus the messages of the one TCP chunk being parsed), and `onClose` comes after
 * every waiting message.
 *
 * On loopback the kernel takes about 4 MB for a paused reader before anything stays in the
 * socket's own buffer (measured here), so the loops below run until the policy fires, bounded.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import {
  type BackpressurePolicy,
  Behavior,
  type Client,
  MESSAGES_HIGH_WATER_BYTES,
  MESSAGES_HIGH_WATER_COUNT,
  ReadyState,
  type SendStatus,
  type WebSocketHandler,
} from '../../src/index.js';
import { echoes, fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { type RawClient, type RawFrame, closePayload, encodeClientFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { answerClose, indexOf, numbered, turn } from './helpers.js';

const { serve, connect } = useFixture();

/** Message size and backlog limit for the send-side tests: the limit is not a multiple of the size. */
const SIZE = 48 << 10;
const LIMIT = 256 << 10;

/** The server side of `client` (matched by port). */
function behaviorOf(handler: WebSocketHandler, client: RawClient): Client {
  const b = [...handler.clients].find((c) => c.remotePort === client.socket.localPort);
  if (b === undefined) throw new Error('no behavior for that client');
  return b;
}

/** Reads `n` more frames into `into`. */
async function readInto(client: RawClient, into: RawFrame[], n: number, timeout = 5000): Promise<void> {
  while (into.length < n) into.push(await client.nextFrame(timeout));
}

/** Echoes text; receives broadcasts. */
class Feed extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

interface BroadcastRun {
  /** Broadcasts made. */
  sent: number;
  /** Indexes of the broadcasts written to the slow client. */
  forSlow: number[];
  /** What broadcast() returned, per message. */
  counts: number[];
  /** The slow client's bufferedAmount after each broadcast while it was open. */
  maxBuffered: number;
  /** Frames the reading client got, in order. */
  fastGot: RawFrame[];
}

/**
 * Broadcasts numbered messages to a reading client and a paused one, paced by the reading client
 * (at most 4 messages ahead of it, so it never lags), until `done()` says so (bounded).
 */
async function broadcastUntil(handler: WebSocketHandler, fast: RawClient, slowB: Client, done: (run: BroadcastRun) => boolean): Promise<BroadcastRun> {
  const run: BroadcastRun = { sent: 0, forSlow: [], counts: [], maxBuffered: 0, fastGot: [] };
  for (let i = 0; i < 2000 && !done(run); i++) {
    const wasOpen = slowB.readyState === ReadyState.OPEN;
    const n = handler.broadcast(numbered(i, SIZE));
    run.sent++;
    run.counts.push(n);
    if (n === 2) run.forSlow.push(i);
    if (wasOpen && slowB.readyState === ReadyState.OPEN) run.maxBuffered = Math.max(run.maxBuffered, slowB.bufferedAmount);
    await readInto(fast, run.fastGot, run.sent - 4);
    await turn();
  }
  await readInto(fast, run.fastGot, run.sent);
  return run;
}

describe("send side: maxBackpressure with broadcast()", () => {
  test("'close' policy: the paused reader's backlog stays within maxBackpressure, it gets 1008 'slow consumer' after exactly the messages accepted for it, and the reading client gets every message", async () => {
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/feed': Feed }, { maxBackpressure: LIMIT, pingInterval: 0, closeTimeout: 10_000, logger, logLevel: 'warn' });
    const handler = s.srv.handler;
    const fast = await connect(s.port, '/feed');
    const slow = await connect(s.port, '/feed');
    slow.socket.pause();
    await waitFor(() => handler.clients.size === 2, 2000, 'both clients open');
    const slowB = behaviorOf(handler, slow);

    let closedAt = -1;
    const run = await broadcastUntil(handler, fast, slowB, (r) => {
      if (closedAt === -1 && slowB.readyState !== ReadyState.OPEN) closedAt = r.sent;
      return closedAt !== -1 && r.sent >= closedAt + 20;
    });
    expect(closedAt, 'the policy fired').toBeGreaterThan(0);

    // Backlog: never past the limit, and it did reach it (the limit decided, not something else).
    expect(run.maxBuffered).toBeLessThanOrEqual(LIMIT);
    expect(run.maxBuffered).toBeGreaterThan(LIMIT - SIZE - 64);
    // broadcast() counts only clients written to: 2 until the slow one is dropped, then 1.
    const k = run.forSlow.length;
    expect(k).toBeGreaterThan(0);
    expect(run.counts).toEqual([...Array<number>(k).fill(2), ...Array<number>(run.sent - k).fill(1)]);
    // The reading client got every message, in order.
    expect(run.fastGot.map((f) => [f.opcode, f.payload.length])).toEqual(Array.from({ length: run.sent }, () => [0x2, SIZE]));
    expect(run.fastGot.map((f) => indexOf(f.payload))).toEqual(Array.from({ length: run.sent }, (_, i) => i));

    const st = handler.stats();
    expect(st.backpressureCloses).toBe(1);
    expect(st.backpressureDrops).toBeGreaterThanOrEqual(1);
    expect(calls.some((c) => c.level === 'warn' && c.message.includes('slow consumer'))).toBe(true);

    // The slow client, once it reads: everything accepted for it, in order, then 1008.
    slow.socket.resume();
    const closed = await answerClose(slow, 10_000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('slow consumer');
    expect(closed.data.map((f) => indexOf(f.payload))).toEqual(run.forSlow);
    expect(run.forSlow).toEqual(Array.from({ length: k }, (_, i) => i));
    expect(closed.tcpClosed).toBe(true);
    await waitFor(() => handler.clients.size === 1, 3000, 'the slow client left');
    expect(handler.stats().closesByCode['1008']).toBe(1);
    // The reading client is untouched.
    await echoes(fast, 'still here');
  });

  test("'drop' policy: sends to the paused reader are dropped and counted, it stays open, and after it resumes it gets the accepted messages in order and every later one", async () => {
    const s = await serve({ '/feed': Feed }, { maxBackpressure: LIMIT, backpressure: 'drop', pingInterval: 0 });
    const handler = s.srv.handler;
    const fast = await connect(s.port, '/feed');
    const slow = await connect(s.port, '/feed');
    slow.socket.pause();
    await waitFor(() => handler.clients.size === 2, 2000, 'both clients open');
    const slowB = behaviorOf(handler, slow);

    const run = await broadcastUntil(handler, fast, slowB, (r) => r.sent - r.forSlow.length >= 10);
    const drops = run.sent - run.forSlow.length;
    expect(drops).toBe(10);
    expect(slowB.readyState).toBe(ReadyState.OPEN);
    expect(run.maxBuffered).toBeLessThanOrEqual(LIMIT);
    expect(run.maxBuffered).toBeGreaterThan(LIMIT - SIZE - 64);
    expect(run.counts.every((n) => n >= 1)).toBe(true);
    expect(run.fastGot.map((f) => indexOf(f.payload))).toEqual(Array.from({ length: run.sent }, (_, i) => i));
    const st = handler.stats();
    expect(st.backpressureDrops).toBe(drops);
    expect(st.backpressureCloses).toBe(0);

    slow.socket.resume();
    const got: RawFrame[] = [];
    await readInto(slow, got, run.forSlow.length);
    expect(got.map((f) => indexOf(f.payload))).toEqual(run.forSlow);
    await waitFor(() => slowB.bufferedAmount === 0, 3000, 'the backlog flushed');
    // Caught up: the next broadcasts reach both again.
    for (let i = 0; i < 5; i++) expect(handler.broadcast(numbered(10_000 + i, SIZE))).toBe(2);
    const later: RawFrame[] = [];
    await readInto(slow, later, 5);
    expect(later.map((f) => indexOf(f.payload))).toEqual([10_000, 10_001, 10_002, 10_003, 10_004]);
    await echoes(slow, 'kept');
    expect(handler.stats().backpressureDrops).toBe(drops);
  });
});

interface PumpLog {
  results: SendStatus[];
  buffered: number[];
  drains: number;
  drainedResult: boolean | undefined;
}

/** On 'go', sends 400 numbered messages in one synchronous loop (on the next turn), then waits for `drained()`. */
class Pump extends Behavior {
  static log: PumpLog | null = null;
  override onText(text: string): void {
    if (text !== 'go') {
      this.sendText(text);
      return;
    }
    // From a timer turn, as an app's producer would: inside onText the socket is corked (one
    // write per incoming chunk), so every byte would count as backlog until the hook returns.
    setImmediate(() => this.pump());
  }
  private pump(): void {
    const log: PumpLog = { results: [], buffered: [], drains: 0, drainedResult: undefined };
    Pump.log = log;
    for (let i = 0; i < 400; i++) {
      log.results.push(this.sendBinary(numbered(i, SIZE)));
      log.buffered.push(this.bufferedAmount);
    }
    void this.drained().then((drained) => {
      log.drainedResult = drained;
    });
  }
  override onDrain(): void {
    if (Pump.log !== null) Pump.log.drains++;
  }
}
class DropPump extends Pump {
  static override backpressure: BackpressurePolicy | undefined = 'drop';
}

/** Sends 'go' from a client that has stopped reading, and waits for the pump's loop. */
async function pumpTo(port: number, path: string): Promise<{ client: RawClient; log: PumpLog }> {
  Pump.log = null;
  const client = await connect(port, path);
  client.socket.pause();
  client.send(0x1, 'go');
  await waitFor(() => Pump.log !== null, 3000, 'the pump ran');
  return { client, log: Pump.log as unknown as PumpLog };
}

/**
 * 'sent' as s, 'queued' as q, 'dropped' as d. A 48 KiB write to a fresh loopback socket may
 * already be partly left in the socket (`'queued'`), so the pattern may start with q.
 */
function pattern(results: SendStatus[]): string {
  return results.map((r) => r[0]).join('');
}

describe('send side: one behavior sending in a loop', () => {
  test("'drop' (a route's static): 'sent'/'queued' until the backlog would pass the limit, then 'dropped'; bufferedAmount within maxBackpressure; the connection stays; onDrain and drained() fire once the reader resumes", async () => {
    const s = await serve({ '/pump': DropPump }, { maxBackpressure: LIMIT, pingInterval: 0 });
    const handler = s.srv.handler;
    const { client, log } = await pumpTo(s.port, '/pump');
    expect(pattern(log.results)).toMatch(/^s*q+d+$/);
    expect(Math.max(...log.buffered)).toBeLessThanOrEqual(LIMIT);
    const accepted = log.results.filter((r) => r !== 'dropped').length;
    const dropped = log.results.length - accepted;
    const b = behaviorOf(handler, client);
    expect(b.readyState).toBe(ReadyState.OPEN);
    expect(handler.stats().backpressureDrops).toBe(dropped);
    expect(handler.stats().backpressureCloses).toBe(0);
    await sleep(50);
    expect(log.drains).toBe(0);
    expect(log.drainedResult).toBeUndefined();

    client.socket.resume();
    const got: RawFrame[] = [];
    await readInto(client, got, accepted);
    expect(got.map((f) => indexOf(f.payload))).toEqual(Array.from({ length: accepted }, (_, i) => i));
    await waitFor(() => log.drainedResult !== undefined && log.drains > 0, 3000, 'onDrain and drained()');
    expect(log.drainedResult).toBe(true);
    expect(log.drains).toBe(1);
    // Nothing waits now: drained() resolves at once.
    expect(await within(b.drained(), 500, 'drained() with nothing waiting')).toBe(true);
    await echoes(client, 'still open');
    expect(client.pending()).toEqual([]);
  });

  test("'close' (the default): the first send over maxBackpressure returns 'dropped' and closes with 1008 behind every accepted message; later sends return 'dropped'", async () => {
    const s = await serve({ '/pump': Pump }, { maxBackpressure: LIMIT, pingInterval: 0, closeTimeout: 10_000 });
    const handler = s.srv.handler;
    const { client, log } = await pumpTo(s.port, '/pump');
    expect(pattern(log.results)).toMatch(/^s*q+d+$/);
    expect(Math.max(...log.buffered)).toBeLessThanOrEqual(LIMIT + 64);
    const accepted = log.results.filter((r) => r !== 'dropped').length;
    const st = handler.stats();
    expect(st.backpressureCloses).toBe(1);
    expect(st.backpressureDrops).toBe(1);

    client.socket.resume();
    const closed = await answerClose(client, 10_000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('slow consumer');
    expect(closed.data.map((f) => indexOf(f.payload))).toEqual(Array.from({ length: accepted }, (_, i) => i));
    await waitFor(() => handler.clients.size === 0, 3000, 'the connection closed');
    expect(handler.stats().closesByCode['1008']).toBe(1);
  });

  test('drained() resolves false and onDrain never runs when the reader leaves before the backlog is flushed', async () => {
    const s = await serve({ '/pump': DropPump }, { maxBackpressure: LIMIT, pingInterval: 0 });
    const handler = s.srv.handler;
    const { client, log } = await pumpTo(s.port, '/pump');
    expect(log.results).toContain('queued');
    await sleep(50);
    expect(log.drainedResult).toBeUndefined();
    client.destroy();
    await waitFor(() => log.drainedResult !== undefined, 3000, 'drained() settled');
    expect(log.drainedResult).toBe(false);
    await waitFor(() => handler.clients.size === 0, 3000, 'the connection closed');
    expect(log.drains).toBe(0);
  });
});

// ---- receive side -------------------------------------------------------------------------------

interface Inbound {
  seen: string[];
  inFlight: number;
  maxInFlight: number;
  /** Most messages parsed and not yet handed to onText (from stats().messagesIn). */
  maxQueued: number;
  events: string[];
}
let inbound: Inbound = { seen: [], inFlight: 0, maxInFlight: 0, maxQueued: 0, events: [] };
function resetInbound(): Inbound {
  inbound = { seen: [], inFlight: 0, maxInFlight: 0, maxQueued: 0, events: [] };
  return inbound;
}

/** An async onText that takes a millisecond per message and records how many overlap. */
class SlowText extends Behavior {
  override async onText(text: string): Promise<void> {
    await this.take(text);
  }
  override async onBinary(bytes: Buffer): Promise<void> {
    await this.take(String(indexOf(bytes)));
  }
  private async take(label: string): Promise<void> {
    const r = inbound;
    r.inFlight++;
    r.maxInFlight = Math.max(r.maxInFlight, r.inFlight);
    r.seen.push(label);
    r.events.push(label);
    r.maxQueued = Math.max(r.maxQueued, this.handler.stats().messagesIn - r.seen.length);
    await sleep(1);
    r.inFlight--;
  }
  override onClose(code: number): void {
    inbound.events.push(`close ${code}`);
  }
}

/** `n` text frames `i:xxxx…` of about `size` bytes, as one buffer for one write. */
function textFlood(n: number, size: number): { bytes: Buffer; labels: string[] } {
  const labels: string[] = [];
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const text = `${i}:${'x'.repeat(size)}`;
    labels.push(text);
    frames.push(encodeClientFrame(0x1, text));
  }
  return { bytes: Buffer.concat(frames), labels };
}

describe('receive side: async hooks while a client floods', () => {
  test('an async onText runs one message at a time, in order; reading pauses at MESSAGES_HIGH_WATER_COUNT, so at most the mark plus one chunk of messages wait', async () => {
    const r = resetInbound();
    const s = await serve({ '/slow': SlowText }, { pingInterval: 0 });
    const client = await connect(s.port, '/slow');
    const size = 16 << 10;
    const { bytes, labels } = textFlood(200, size);
    client.sendRaw(bytes);
    await waitFor(() => r.seen.length === 200, 15_000, 'every message delivered');
    expect(r.seen).toEqual(labels);
    expect(r.maxInFlight).toBe(1);
    // One socket read is at most 64 KiB: it completes at most 64 KiB / message size + 1 messages.
    const perChunk = Math.ceil((64 << 10) / size) + 1;
    expect(r.maxQueued).toBeGreaterThanOrEqual(MESSAGES_HIGH_WATER_COUNT - 1);
    expect(r.maxQueued).toBeLessThanOrEqual(MESSAGES_HIGH_WATER_COUNT + perChunk);
    await stillOpenAndQuiet(client);
  });

  test('reading also pauses at MESSAGES_HIGH_WATER_BYTES: big messages queue far fewer than the count mark', async () => {
    const r = resetInbound();
    const s = await serve({ '/slow': SlowText }, { pingInterval: 0 });
    const client = await connect(s.port, '/slow');
    const size = 200 << 10;
    client.sendRaw(Buffer.concat(Array.from({ length: 40 }, (_, i) => encodeClientFrame(0x2, numbered(i, size)))));
    await waitFor(() => r.seen.length === 40, 15_000, 'every message delivered');
    expect(r.seen).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
    expect(r.maxInFlight).toBe(1);
    // Paused once the queue holds ≥ 1 MiB: 6 messages of 200 KiB (+1 a chunk may complete).
    const bound = Math.ceil(MESSAGES_HIGH_WATER_BYTES / size) + 1;
    expect(bound).toBeLessThan(MESSAGES_HIGH_WATER_COUNT);
    expect(r.maxQueued).toBeLessThanOrEqual(bound);
  });

  test('a client that floods and then closes: every message reaches onText before onClose', async () => {
    const r = resetInbound();
    const s = await serve({ '/slow': SlowText }, { pingInterval: 0 });
    const client = await connect(s.port, '/slow');
    const { bytes, labels } = textFlood(40, 100);
    client.sendRaw(Buffer.concat([bytes, encodeClientFrame(0x8, closePayload(1000))]));
    const closed = await client.expectClose(10_000);
    expect(closed.code).toBe(1000);
    await waitFor(() => r.events.length === 41, 5000, 'onClose');
    expect(r.events).toEqual([...labels, 'close 1000']);
    expect(r.maxInFlight).toBe(1);
    expect(s.srv.handler.stats().connections).toBe(0);
  });

  test('a client that floods and vanishes (FIN, no close frame): every message still reaches onText, then onClose(1006)', async () => {
    const r = resetInbound();
    const s = await serve({ '/slow': SlowText }, { pingInterval: 0 });
    const client = await connect(s.port, '/slow');
    const { bytes, labels } = textFlood(40, 100);
    client.socket.end(bytes);
    await waitFor(() => r.events.length === 41, 10_000, 'onClose');
    expect(r.events).toEqual([...labels, 'close 1006']);
  });
});

/** The client got nothing but what it asked for (the slow route sends nothing), and is still open. */
async function stillOpenAndQuiet(client: RawClient): Promise<void> {
  expect(client.pending()).toEqual([]);
  expect(client.tcpClosed).toBe(false);
}
