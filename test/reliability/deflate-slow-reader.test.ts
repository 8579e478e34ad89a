/**
 * A slow reader with compression: a client that agreed permessage-deflate and stops reading
 * (its raw socket paused) while one behavior sends large compressed messages in a loop — sizes
 * compressed on the event loop (8 KiB) and on the thread pool (256 KiB, over every synchronous
 * cut-off), and the two mixed. Compressed frames still on the thread pool wait in order
 * (connection/ordered.ts) and count toward `maxBackpressure` with their uncompressed length, so
 * the backlog — `bufferedAmount`, the socket's plus what waits to be compressed — stays within
 * the limit, and then the policy applies: `'close'` closes with 1008 'slow consumer' behind every
 * accepted message; `'drop'` returns `'dropped'` and keeps the connection, whose reader, once it
 * resumes, gets every accepted message intact and in order, and later ones.
 *
 * Memory, with the server in a child process (fixtures/deflate-server-child.ts) as in
 * control-flood.test.ts: what the server holds after a GC while the reader is paused stays
 * within maxBackpressure plus a constant, however many messages the loop tries to send — with
 * `'drop'` too, where a dropped message must not be compressed (nor held until it is).
 *
 * And two things the backlog accounting must not break: the README's send loop ("on 'queued',
 * await drained()") to a client that reads everything delivers every message, thread-pool sizes
 * included (not a 1008 'slow consumer'); and under `'drop'` with the server's context kept, a
 * dropped message never enters the compressor, so later messages still inflate to what was sent.
 * (These failed before 4ae2235, as did the `'drop'` memory run with 256 KiB messages: +100 MiB.)
 *
 * On loopback the kernel takes about 4 MB for a paused reader before anything stays in the
 * socket's own buffer, so the loops are long enough to pass that, and bounded.
 */
import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type BackpressurePolicy, Behavior, type Client, type HandlerStats, ReadyState, type SendStatus, type WebSocketHandler } from '../../src/index.js';
import { asyncJobs } from '../../src/extensions/permessage-deflate/zlib-sync.js';
import { useFixture } from '../helpers/fixture.js';
import type { RawClient } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import { Child, buildForChildren, type Build } from './fixtures/children.js';
import { ClientInflater, OFFER_TAKEOVER, compress, compressedFrame, connectDeflate, halfCompressible, nextMessage } from './deflate-helpers.js';
import { answerClose } from './helpers.js';

const { serve } = useFixture();

const KiB = 1024;
const MiB = 1024 * KiB;
/** Compressed on the event loop whatever the level (the synchronous cut-off is 16 or 64 KiB). */
const SMALL = 8 * KiB;
/** Compressed on the thread pool whatever the level. */
const LARGE = 256 * KiB;
/** maxBackpressure for the in-process tests: four LARGE messages, not a multiple of SMALL's frames. */
const LIMIT = MiB;
/** A frame header and the slack slow-reader.test.ts allows over the limit. */
const HEADER_SLACK = 64;

/** Message `index` of `size` bytes: compresses to about half, its index in its first 4 bytes. */
function numbered(index: number, size: number): Buffer {
  const b = halfCompressible(index + 1, size);
  b.writeUInt32BE(index, 0);
  return b;
}

interface Step {
  /** At most this many messages… */
  count: number;
  size: number;
  /** …and only while bufferedAmount is under this (the socket's own backlog then holds this much). */
  untilBuffered?: number;
}

interface PumpLog {
  /** What each send returned, in order, and the message's index. */
  results: SendStatus[];
  /** bufferedAmount after each send made while the connection was open. */
  buffered: number[];
  /** Index and size of each message accepted ('sent' or 'queued'). */
  accepted: { index: number; size: number }[];
}

/**
 * On a text 'go', sends the messages of `Pump.plan` in one synchronous loop (from a timer turn,
 * as an app's producer would; inside onText the socket is corked), stopping once the connection
 * is no longer open or after `stopAfterDrops` dropped sends.
 */
class Pump extends Behavior {
  static plan: Step[] = [];
  static stopAfterDrops = 10;
  static log: PumpLog | null = null;

  override onText(text: string): void {
    if (text !== 'go') {
      this.sendText(text);
      return;
    }
    setImmediate(() => this.pump());
  }

  private pump(): void {
    const log: PumpLog = { results: [], buffered: [], accepted: [] };
    let index = 0;
    let drops = 0;
    outer: for (const step of Pump.plan) {
      for (let i = 0; i < step.count; i++, index++) {
        if (this.readyState !== ReadyState.OPEN || drops >= Pump.stopAfterDrops) break outer;
        if (step.untilBuffered !== undefined && this.bufferedAmount >= step.untilBuffered) break;
        const status = this.sendBinary(numbered(index, step.size));
        log.results.push(status);
        if (status === 'dropped') drops++;
        else log.accepted.push({ index, size: step.size });
        if (this.readyState === ReadyState.OPEN) log.buffered.push(this.bufferedAmount);
      }
    }
    Pump.log = log;
  }
}

class DropPump extends Pump {
  static override backpressure: BackpressurePolicy | undefined = 'drop';
}

/** The server side of `client` (matched by port). */
function behaviorOf(handler: WebSocketHandler, client: RawClient): Client {
  const b = [...handler.clients].find((c) => c.remotePort === client.socket.localPort);
  if (b === undefined) throw new Error('no behavior for that client');
  return b;
}

/** Connects with compression, stops reading, says 'go', and waits for the pump's loop. */
async function pumpTo(port: number, path: string, plan: Step[]): Promise<{ client: RawClient; log: PumpLog }> {
  Pump.plan = plan;
  Pump.log = null;
  const client = await connectDeflate(port, path, OFFER_TAKEOVER);
  client.socket.pause();
  client.send(0x1, 'go');
  await waitFor(() => Pump.log !== null, 20_000, 'the pump ran');
  return { client, log: Pump.log as unknown as PumpLog };
}

/** Reads `accepted.length` messages and checks each is the accepted message, intact and in order. */
async function readAccepted(client: RawClient, accepted: PumpLog['accepted'], inflater: ClientInflater): Promise<void> {
  for (const [k, { index, size }] of accepted.entries()) {
    const m = await nextMessage(client, { timeout: 20_000, inflater });
    if (m.opcode !== 0x2 || !m.data.equals(numbered(index, size))) {
      throw new Error(`message ${k}: expected #${index} (${size} bytes), got opcode ${m.opcode}, ${m.data.length} bytes, #${m.data.length >= 4 ? m.data.readUInt32BE(0) : -1}`);
    }
    // Messages this long are always compressed (threshold 1 KiB).
    expect(m.compressed).toBe(true);
  }
}

const PLANS: { name: string; plan: Step[] }[] = [
  // 3,000 × ~4.4 KiB on the wire: past the ~4 MB the kernel takes, then the socket's own buffer.
  { name: '8 KiB messages (compressed on the event loop)', plan: [{ count: 3000, size: SMALL }] },
  { name: '256 KiB messages (compressed on the thread pool)', plan: [{ count: 60, size: LARGE }] },
  // The kernel and half the limit in the socket's own buffer filled first; then frames wait for
  // the pool on top of that backlog.
  {
    name: '8 KiB messages up to half the limit in the socket, then 256 KiB ones (socket backlog plus frames being compressed)',
    plan: [
      { count: 3000, size: SMALL, untilBuffered: LIMIT / 2 },
      { count: 60, size: LARGE },
    ],
  },
];

describe('a paused reader with compression: the backlog stays within maxBackpressure and the policy applies', () => {
  for (const { name, plan } of PLANS) {
    test(`'close': ${name}: bufferedAmount ≤ maxBackpressure; 1008 'slow consumer' behind exactly the accepted messages, intact and in order`, async () => {
      const s = await serve({ '/pump': Pump }, { perMessageDeflate: true, maxBackpressure: LIMIT, pingInterval: 0, closeTimeout: 20_000 });
      const handler = s.srv.handler;
      const { client, log } = await pumpTo(s.port, '/pump', plan);
      // Every step was reached (the last one's messages were accepted up to the limit).
      expect(log.accepted.at(-1)?.size).toBe(plan.at(-1)?.size);
      // Accepted until the limit, then one 'dropped' that closed the connection.
      expect(log.results.at(-1)).toBe('dropped');
      expect(log.results.filter((r) => r === 'dropped')).toHaveLength(1);
      expect(Math.max(...log.buffered)).toBeLessThanOrEqual(LIMIT + HEADER_SLACK);
      // The limit decided: the backlog came within a message of it.
      const last = log.accepted.at(-1)?.size ?? 0;
      expect(Math.max(...log.buffered)).toBeGreaterThan(LIMIT - 2 * Math.max(last, plan.at(-1)?.size ?? 0));
      const st = handler.stats();
      expect(st.backpressureCloses).toBe(1);
      expect(st.backpressureDrops).toBe(1);

      client.socket.resume();
      const inflater = new ClientInflater();
      await readAccepted(client, log.accepted, inflater);
      const closed = await answerClose(client, 20_000);
      expect(closed.data).toEqual([]);
      expect([closed.code, closed.reason]).toEqual([1008, 'slow consumer']);
      expect(closed.tcpClosed).toBe(true);
      await waitFor(() => handler.clients.size === 0, 5000, 'the connection closed');
      expect(handler.stats().closesByCode['1008']).toBe(1);
      expect(handler.stats().compression.connections).toBe(0);
      await waitFor(() => asyncJobs().running === 0 && asyncJobs().waiting === 0, 10_000, 'no zlib job left');
    }, 60_000);

    test(`'drop': ${name}: bufferedAmount ≤ maxBackpressure; sends return 'dropped', the connection stays, and once the reader resumes it gets the accepted messages intact and in order, then later ones`, async () => {
      const s = await serve({ '/pump': DropPump }, { perMessageDeflate: true, maxBackpressure: LIMIT, pingInterval: 0 });
      const handler = s.srv.handler;
      DropPump.stopAfterDrops = 10;
      const { client, log } = await pumpTo(s.port, '/pump', plan);
      const drops = log.results.filter((r) => r === 'dropped').length;
      expect(drops).toBe(10);
      expect(log.accepted.at(-1)?.size).toBe(plan.at(-1)?.size);
      expect(Math.max(...log.buffered)).toBeLessThanOrEqual(LIMIT + HEADER_SLACK);
      const b = behaviorOf(handler, client);
      expect(b.readyState).toBe(ReadyState.OPEN);
      const st: HandlerStats = handler.stats();
      expect(st.backpressureDrops).toBe(drops);
      expect(st.backpressureCloses).toBe(0);

      client.socket.resume();
      const inflater = new ClientInflater();
      await readAccepted(client, log.accepted, inflater);
      await waitFor(() => b.bufferedAmount === 0, 20_000, 'the backlog flushed');
      // Caught up: later messages of both sizes arrive, and an echo.
      for (const size of [SMALL, LARGE]) expect(b.sendBinary(numbered(100_000 + size, size))).not.toBe('dropped');
      await readAccepted(client, [{ index: 100_000 + SMALL, size: SMALL }, { index: 100_000 + LARGE, size: LARGE }], inflater);
      const text = `still open ${'.'.repeat(2000)}`;
      client.sendRaw(compressedFrame(0x1, compress(text)));
      expect((await nextMessage(client, { inflater })).data.toString()).toBe(text);
      expect(handler.stats().backpressureDrops).toBe(drops);
      expect(client.pending()).toEqual([]);
    }, 60_000);
  }
});

describe("the README's send loop to a client that reads everything", () => {
  const results: SendStatus[] = [];
  /** On 'go', sends `count` messages of `size`, awaiting drained() whenever a send says 'queued'. */
  class Stream extends Behavior {
    static size = 0;
    static count = 0;
    override onText(): void {
      setImmediate(() => void this.run());
    }
    private async run(): Promise<void> {
      for (let i = 0; i < Stream.count && this.readyState === ReadyState.OPEN; i++) {
        const status = this.sendBinary(numbered(i, Stream.size));
        results.push(status);
        if (status === 'queued' && !(await this.drained())) return;
      }
    }
  }

  for (const size of [SMALL, LARGE, 1024 * KiB]) {
    test(`${size / KiB} KiB messages, 64 of them, default maxBackpressure: every message delivered intact and in order, none dropped, no 1008`, async () => {
      results.length = 0;
      Stream.size = size;
      Stream.count = 64;
      const s = await serve({ '/': Stream }, { perMessageDeflate: true, pingInterval: 0 });
      const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
      client.send(0x1, 'go');
      await readAccepted(client, Array.from({ length: 64 }, (_, index) => ({ index, size })), new ClientInflater());
      expect(results).toHaveLength(64);
      expect(results.filter((r) => r === 'dropped')).toEqual([]);
      expect(s.srv.handler.stats().backpressureCloses).toBe(0);
    }, 60_000);
  }
});

describe("'drop' with the server's context kept: a dropped message never enters the compressor", () => {
  class KeptPump extends Behavior {
    static override backpressure: BackpressurePolicy | undefined = 'drop';
    static size = 0;
    static accepted: number[] = [];
    static done = false;
    /** On '<from> <count>', sends messages from..from+count-1 in one synchronous loop. */
    override onText(text: string): void {
      const [from, count] = text.split(' ').map(Number) as [number, number];
      setImmediate(() => {
        for (let i = from; i < from + count; i++) if (this.sendBinary(numbered(i, KeptPump.size)) !== 'dropped') KeptPump.accepted.push(i);
        KeptPump.done = true;
      });
    }
  }

  for (const [size, count] of [
    [SMALL, 3000],
    [LARGE, 60],
  ] as const) {
    test(`${size / KiB} KiB messages: paused reader, drops, resume, more messages: every message received is the one sent`, async () => {
      KeptPump.size = size;
      KeptPump.accepted = [];
      KeptPump.done = false;
      const s = await serve({ '/': KeptPump }, { perMessageDeflate: { serverNoContextTakeover: false }, maxBackpressure: LIMIT, pingInterval: 0 });
      const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
      expect(client.headers['sec-websocket-extensions']).not.toContain('server_no_context_takeover');
      client.socket.pause();
      client.send(0x1, `0 ${count}`);
      await waitFor(() => KeptPump.done, 20_000, 'the first loop');
      expect(KeptPump.accepted.length).toBeGreaterThan(0);
      expect(KeptPump.accepted.length).toBeLessThan(count); // some were dropped
      client.socket.resume();
      // The server kept its context: the client inflates with its window too.
      const inflater = new ClientInflater(true);
      await readAccepted(client, KeptPump.accepted.splice(0).map((index) => ({ index, size })), inflater);
      KeptPump.done = false;
      // Three more in one loop: within the limit (3 × 256 KiB < 1 MiB), so all accepted.
      client.send(0x1, '100000 3');
      await waitFor(() => KeptPump.done, 20_000, 'the second loop');
      expect(KeptPump.accepted).toEqual([100_000, 100_001, 100_002]);
      await readAccepted(client, KeptPump.accepted.splice(0).map((index) => ({ index, size })), inflater);
    }, 60_000);
  }
});

describe('memory: what the server holds for a paused compressed reader (server in a child process)', () => {
  /** The child's maxBackpressure: the default. */
  const MAX_BACKPRESSURE = 4 * MiB;
  /** Parser and zlib buffers, one connection's state, the garbage of a GC cycle's timing. */
  const SLACK = 12 * MiB;
  let build: Build;

  beforeAll(async () => {
    build = await buildForChildren();
  }, 120_000);

  afterAll(async () => {
    await build?.remove();
  });

  const RUNS: { policy: BackpressurePolicy; count: number; size: number }[] = [
    { policy: 'close', count: 20_000, size: SMALL },
    { policy: 'close', count: 800, size: LARGE },
    { policy: 'drop', count: 20_000, size: SMALL },
    { policy: 'drop', count: 800, size: LARGE },
  ];

  for (const run of RUNS) {
    const tried = (run.count * run.size) / MiB;
    test(`'${run.policy}', ${run.count} × ${run.size / KiB} KiB (${tried} MiB tried): held after GC within 2 × maxBackpressure + ${SLACK / MiB} MiB`, async () => {
      const server = await Child.start(build.fixture('deflate-server-child'));
      try {
        const { port } = await server.call<{ port: number }>('start', { options: { perMessageDeflate: true, backpressure: run.policy, pingInterval: 0, closeTimeout: 20_000 } });
        const base = await server.call<{ rss: number; heapUsed: number; external: number }>('watchRss');
        const client = await connectDeflate(port, '/pump', OFFER_TAKEOVER);
        try {
          client.socket.pause();
          client.send(0x1, `go ${run.count} ${run.size}`);
          let log: { done: boolean; attempts: number; sent: number; queued: number; dropped: number; maxBuffered: number } | null = null;
          const deadline = Date.now() + 60_000;
          while (log?.done !== true && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
            log = await server.call('pumpLog');
          }
          if (log === null || !log.done) throw new Error('the pump did not finish');
          const held = await server.call<{ heapUsed: number; external: number }>('memory');
          const { peak } = await server.call<{ peak: number }>('peakRss');
          const heldBytes = held.heapUsed + held.external - (base.heapUsed + base.external);
          console.log(
            `paused compressed reader, '${run.policy}', ${run.count} × ${run.size / KiB} KiB: ${log.sent} sent, ${log.queued} queued, ${log.dropped} dropped, max bufferedAmount ${(log.maxBuffered / MiB).toFixed(2)} MiB; server +${(heldBytes / MiB).toFixed(1)} MiB held after GC, peak RSS +${((peak - base.rss) / MiB).toFixed(1)} MiB`,
          );
          expect(log.maxBuffered).toBeLessThanOrEqual(MAX_BACKPRESSURE + HEADER_SLACK);
          expect(log.dropped).toBeGreaterThan(0);
          if (run.policy === 'close') expect(log.dropped).toBe(1);
          // The backlog's frames may sit in larger backing stores than their bytes (pooled
          // slabs): Node 24 held 13.2 MiB here where Node 20 held 4.8 MiB, for the same 4 MiB.
          expect(heldBytes).toBeLessThan(2 * MAX_BACKPRESSURE + SLACK);
          // No runaway: the loop tried 156-200 MiB, and holding it would show here. Not tighter:
          // the peak counts garbage not yet collected (the 'drop' loop makes a message's bytes
          // per attempt), which Node 24 lets grow to ~95 MiB where Node 20 stays near 40 MiB;
          // what is really held is the bound above, after a GC.
          expect(peak - base.rss).toBeLessThan(0.75 * run.count * run.size);
        } finally {
          client.destroy();
        }
      } finally {
        await server.call('close', { timeout: 500 }).catch(() => {});
        await server.stop();
      }
    }, 120_000);
  }
});
