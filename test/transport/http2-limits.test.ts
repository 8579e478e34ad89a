/**
 * Limits over HTTP/2 (RFC 8441), where many WebSockets share one connection (one session):
 *
 * - Admission limits apply per WebSocket as on HTTP/1.1 and answer as real HTTP/2 responses:
 *   429 past maxConnectionsPerIp (every stream of a session has the session's peer address),
 *   503 past maxConnections (handler-wide and per route); the session keeps serving.
 * - Backpressure is per stream: a WebSocket whose client stops reading fills its own stream's
 *   flow-control window, then its `bufferedAmount`; `send` says 'queued' and the route's
 *   maxBackpressure policy applies as on HTTP/1.1, while the other WebSockets of the same session
 *   keep echoing promptly. Resuming the reader drains it (`drained()` resolves true).
 * - 1,000 WebSockets on one session: all open, echo, count in stats(), close cleanly.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import { describe, expect, test } from 'vitest';
import { type Client, ReadyState, type SendStatus } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { type RawClient, type RawFrame, encodeClientFrame } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import { Echo2, type H2Mounted, closedWith, connectHeaders, echoes, h2Fixture, request } from './http2-helpers.js';

const fx = useFixture();
const { mountH2, session, ws } = h2Fixture(fx);

const TRANSPORTS = [
  { name: 'h2c', secure: false },
  { name: 'h2', secure: true },
] as const;

const app = (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
  res.end('app');
};

const opened: Client[] = [];
class Feed extends Echo2 {
  override onOpen(): void {
    opened.push(this);
  }
}
class Limited extends Echo2 {
  static override maxConnections = 2;
}

describe.each(TRANSPORTS)('over $name', ({ secure }) => {
  const mount = (options = {}, serverOptions: http2.ServerOptions = {}): Promise<H2Mounted> => {
    opened.length = 0;
    return mountH2({ '/feed': Feed, '/limited': Limited }, options, { secure, onRequest: app, serverOptions });
  };

  describe('admission limits answer as HTTP/2 responses and leave the session serving', () => {
    test('429 past maxConnectionsPerIp (the streams of a session share its address); a place freed is usable again', async () => {
      const m = await mount({ maxConnectionsPerIp: 2 });
      const s = await session(m);
      const a = await ws(m, s, '/feed');
      await ws(m, s, '/feed');
      const r = await request(s, connectHeaders(m, '/feed'));
      expect(r.status).toBe(429);
      expect(r.headers['retry-after']).toBe('5');
      expect(r.body).toMatch(/maxConnectionsPerIp/);
      expect(r.rstCode).toBe(0);
      // Another session from the same address counts too.
      const s2 = await session(m);
      expect((await request(s2, connectHeaders(m, '/feed'))).status).toBe(429);
      expect((await request(s, { ':path': '/' })).body).toBe('app');
      await a.close(1000);
      await waitFor(() => m.handler.stats().connections === 1, 2000, 'the close counted');
      await echoes(await ws(m, s2, '/feed'), 'a place again');
    });

    test('503 past maxConnections, handler-wide and per route; the session keeps serving', async () => {
      const m = await mount({ maxConnections: 3 });
      const s = await session(m);
      await ws(m, s, '/limited');
      await ws(m, s, '/limited');
      const route = await request(s, connectHeaders(m, '/limited'));
      expect(route.status).toBe(503);
      expect(route.body).toMatch(/\/limited is at its maxConnections \(2\)/);
      const c = await ws(m, s, '/feed');
      const all = await request(s, connectHeaders(m, '/feed'));
      expect(all.status).toBe(503);
      expect(all.body).toMatch(/maxConnections \(3\)/);
      expect(all.headers['retry-after']).toBe('5');
      await echoes(c, 'the open ones go on');
      expect((await request(s, { ':path': '/' })).body).toBe('app');
      expect(m.handler.stats().handshakesRejectedByStatus).toMatchObject({ 503: 2 });
    });
  });

  describe('backpressure is per stream', () => {
    const SIZE = 16 << 10;
    const LIMIT = 256 << 10;

    /** Sends SIZE-byte messages to `b` until `stop` says so (bounded), checking `other` echoes promptly all along. */
    async function flood(b: Client, other: RawClient, stop: (status: SendStatus, i: number) => boolean): Promise<{ statuses: SendStatus[]; maxBuffered: number }> {
      const statuses: SendStatus[] = [];
      let maxBuffered = 0;
      for (let i = 0; i < 400; i++) {
        const status = b.readyState === ReadyState.OPEN ? b.sendBinary(Buffer.alloc(SIZE, i & 0xff)) : 'dropped';
        statuses.push(status);
        if (b.readyState === ReadyState.OPEN) maxBuffered = Math.max(maxBuffered, b.bufferedAmount);
        if (stop(status, i)) break;
        // The other WebSocket on the session is served all along, within a bounded wait.
        if (i % 8 === 0) await echoes(other, `still served ${i}`, 1000);
      }
      return { statuses, maxBuffered };
    }

    test("a paused reader's stream backs up ('queued', bufferedAmount grows) and the 'drop' policy caps it at maxBackpressure, while another WebSocket on the session keeps echoing; resuming drains it", async () => {
      const m = await mount({ maxBackpressure: LIMIT, backpressure: 'drop' });
      const s = await session(m);
      const slow = await ws(m, s, '/feed');
      const fast = await ws(m, s, '/feed');
      await waitFor(() => opened.length === 2, 2000, 'both open');
      const slowB = opened[0] as Client;
      slow.stream?.pause();
      const run = await flood(slowB, fast, (status) => status === 'dropped');
      const accepted = run.statuses.filter((x) => x !== 'dropped').length;
      expect(run.statuses).toContain('queued');
      expect(run.statuses.at(-1)).toBe('dropped');
      // The write Node is still framing is not judged (it can hold bytes the peer has read): it
      // holds at most what waited when it began, so the backlog stays within twice the limit.
      expect(run.maxBuffered).toBeLessThanOrEqual(2 * LIMIT);
      expect(run.maxBuffered).toBeGreaterThan(LIMIT - SIZE - 64);
      expect(slowB.readyState).toBe(ReadyState.OPEN);
      expect(m.handler.stats().backpressureDrops).toBeGreaterThan(0);
      // Resume: everything accepted arrives, in order, and drained() resolves true.
      const drained = slowB.drained();
      slow.stream?.resume();
      expect(await within(drained, 3000, 'drained()')).toBe(true);
      const got: RawFrame[] = [];
      while (got.length < accepted) got.push(await slow.nextFrame(3000));
      expect(got.map((f) => [f.opcode, f.payload.length, f.payload[0]])).toEqual(Array.from({ length: accepted }, (_, i) => [0x2, SIZE, i & 0xff]));
      expect(slowB.bufferedAmount).toBe(0);
      await echoes(slow, 'reading again');
      await echoes(fast, 'fast too');
    });

    test("many busy WebSockets on one session are not taken for slow consumers: the write Node is still framing is not counted, though the peer may already have read part of it", async () => {
      // The session's flow-control window (the client's default 64 KiB) is the bottleneck: Node
      // frames each stream's pending write a piece at a time, and completes it (freeing its bytes
      // from writableLength) only when all of it is out, while the client has read its first
      // messages and sent more. Counted whole, those messages made healthy streams look like
      // slow consumers.
      const STREAMS = 8;
      const WINDOW = 16;
      const MESSAGES = 300;
      const unit = SIZE + 4;
      // Room for one window of echoes and one more message: all a client that reads can owe.
      const limit = (WINDOW + 1) * unit;
      let maxBuffered = 0;
      class Busy extends Echo2 {
        override onBinary(data: Buffer): void {
          maxBuffered = Math.max(maxBuffered, this.bufferedAmount);
          this.sendBinary(data);
        }
      }
      // The server's receive windows let every client keep its window of messages in flight.
      const m = await mountH2({ '/busy': Busy }, { maxBackpressure: limit, backpressure: 'close' }, { secure, serverOptions: { settings: { initialWindowSize: 1 << 20 } } });
      m.server.on('session', (ss: http2.ServerHttp2Session) => ss.setLocalWindowSize(8 << 20));
      const s = await session(m);
      const clients = await Promise.all(Array.from({ length: STREAMS }, () => ws(m, s, '/busy')));
      const frame = (i: number): Buffer => encodeClientFrame(0x2, Buffer.alloc(SIZE, i & 0xff));
      const run = (c: RawClient, k: number): Promise<number> =>
        new Promise((resolve, reject) => {
          // Reads the stream's bytes itself: each echo read sends the next message at once.
          const stream = c.stream as http2.ClientHttp2Stream;
          stream.removeAllListeners('data');
          let pending: Buffer = Buffer.alloc(0);
          let sent = 0;
          let got = 0;
          stream.on('data', (d: Buffer) => {
            pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
            while (pending.length >= 2) {
              // Anything but a SIZE-byte binary frame (a 1008 close above all) fails at once.
              const op = (pending[0] as number) & 0x0f;
              if (op !== 0x2 || ((pending[1] as number) & 0x7f) !== 126) {
                reject(new Error(`stream ${k}: frame ${op} (${pending.subarray(0, 16).toString('hex')}) after ${got} echoes`));
                return;
              }
              if (pending.length < 4 + SIZE) break;
              const len = pending.readUInt16BE(2);
              if (len !== SIZE || pending[4] !== ((k + got) & 0xff)) {
                reject(new Error(`stream ${k}: a frame of ${len} B after ${got} echoes`));
                return;
              }
              pending = pending.subarray(4 + len);
              got++;
              if (sent < MESSAGES) stream.write(frame(k + sent++));
              if (got === MESSAGES) resolve(got);
            }
          });
          stream.once('close', () => reject(new Error(`stream ${k} closed after ${got} echoes`)));
          for (; sent < WINDOW; sent++) stream.write(frame(k + sent));
        });
      const counts = await within(Promise.all(clients.map(run)), 30_000, 'every echo');
      expect(counts).toEqual(Array(STREAMS).fill(MESSAGES));
      expect(m.handler.stats().backpressureCloses).toBe(0);
      // The case did arise: some stream's writableLength counted more than the client can owe.
      expect(maxBuffered).toBeGreaterThan(limit);
    });

    test("the 'close' policy closes only the slow consumer (1008) after its backlog passed maxBackpressure; the other WebSocket and the session go on", async () => {
      const m = await mount({ maxBackpressure: LIMIT, backpressure: 'close', closeTimeout: 500 });
      const s = await session(m);
      const slow = await ws(m, s, '/feed');
      const fast = await ws(m, s, '/feed');
      await waitFor(() => opened.length === 2, 2000, 'both open');
      const slowB = opened[0] as Client;
      slow.stream?.pause();
      const run = await flood(slowB, fast, () => slowB.readyState !== ReadyState.OPEN);
      expect(slowB.readyState).not.toBe(ReadyState.OPEN);
      expect(run.maxBuffered).toBeLessThanOrEqual(2 * LIMIT);
      expect(m.handler.stats().backpressureCloses).toBe(1);
      // Reading again, the slow client gets what was accepted, then the 1008 close; answering it ends the stream cleanly.
      slow.stream?.resume();
      const before: RawFrame[] = [];
      for (let f = await slow.nextFrame(3000); ; f = await slow.nextFrame(3000)) {
        if (f.opcode === 0x8) {
          expect(f.payload.readUInt16BE(0)).toBe(1008);
          slow.send(0x8, f.payload);
          break;
        }
        before.push(f);
      }
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((f) => f.opcode === 0x2 && f.payload.length === SIZE)).toBe(true);
      expect(await closedWith(slow.stream as http2.ClientHttp2Stream)).toBe(0);
      await echoes(fast, 'fast is fine');
      expect((await request(s, { ':path': '/' })).body).toBe('app');
    });
  });
});

describe('per-stream flow control, the other way and across the session', () => {
  test.each(TRANSPORTS)("behaviors that stop reading (a slow async onText) hold back only their own streams: the client's writes wait on those streams while another WebSocket of the session echoes, also with more stuck streams than one connection window holds; every message arrives in order once they go on ($name)", async ({ secure }) => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
      fx.defer(resolve);
    });
    const got = new Map<number, string[]>();
    class Stuck extends Echo2 {
      override async onText(text: string): Promise<void> {
        await gate;
        const [who, i] = text.slice(0, text.indexOf('x')).split(':').map(Number) as [number, number];
        got.set(who, [...(got.get(who) ?? []), String(i)]);
      }
    }
    const m = await mountH2({ '/stuck': Stuck, '/feed': Feed }, {}, { secure, onRequest: app });
    const s = await session(m);
    const STUCK = 6; // 6 stream windows (64 KiB each) are more than the session's 64 KiB connection window
    const SIZE = 16 << 10;
    const COUNT = 40; // 640 KiB each: past the 16 messages a behavior queues before reading pauses, plus the stream window
    const stuck = [];
    for (let w = 0; w < STUCK; w++) stuck.push(await ws(m, s, '/stuck'));
    const other = await ws(m, s, '/feed');
    for (let i = 0; i < COUNT; i++) {
      stuck.forEach((c, w) => c.send(0x1, `${w}:${String(i).padStart(5, '0')}`.padEnd(SIZE, 'x')));
    }
    // The server stops reading those streams: their flow-control windows close, so most of what
    // we wrote waits on our side, while the other WebSocket of the session is served.
    for (let i = 0; i < 5; i++) await echoes(other, `other ${i}`, 1000);
    await waitFor(() => m.handler.stats().messagesIn >= STUCK * 17, 3000, 'each stuck behavior to queue up to its high-water mark');
    for (let i = 5; i < 10; i++) await echoes(other, `other ${i}`, 1000);
    for (const c of stuck) expect((c.stream as http2.ClientHttp2Stream).writableLength).toBeGreaterThan((COUNT * SIZE) / 2);
    expect(got.size).toBe(0);
    open();
    await waitFor(() => [...got.values()].reduce((n, l) => n + l.length, 0) === STUCK * COUNT, 5000, 'every message handled');
    for (let w = 0; w < STUCK; w++) expect(got.get(w)).toEqual(Array.from({ length: COUNT }, (_, i) => String(i)));
    await echoes(other, 'after');
  });

  test.each(TRANSPORTS)("paused readers' backlogs (4 x the default 4 MiB maxBackpressure, past the default 10 MB maxSessionMemory) do not stop the session: a new WebSocket still opens and plain requests are served ($name)", async ({ secure }) => {
    opened.length = 0;
    const m = await mountH2({ '/feed': Feed }, { backpressure: 'drop' }, { secure, onRequest: app });
    const s = await session(m);
    const K = 4;
    for (let i = 0; i < K; i++) (await ws(m, s, '/feed')).stream?.pause();
    await waitFor(() => opened.length === K, 2000, 'all open');
    let total = 0;
    for (const b of opened) {
      for (let i = 0; i < 200 && b.sendBinary(Buffer.alloc(64 << 10)) !== 'dropped'; i++) await new Promise((r) => setImmediate(r));
      total += b.bufferedAmount;
    }
    expect(total).toBeGreaterThan(10 * 1024 * 1024);
    const fresh = await ws(m, s, '/feed');
    await echoes(fresh, 'a new one opens');
    expect((await request(s, { ':path': '/' })).body).toBe('app');
    expect(s.destroyed).toBe(false);
  });
});

describe('1,000 WebSockets on one HTTP/2 session', () => {
  const N = 1000;

  test.each(TRANSPORTS)('all open, each echoes, stats().connections is 1000, all close cleanly ($name)', async ({ secure }) => {
    opened.length = 0;
    const m = await mountH2({ '/feed': Feed }, { maxConnections: N }, { secure, onRequest: app });
    const s = await session(m);
    // Node's client takes the server's SETTINGS_MAX_CONCURRENT_STREAMS (default 2^32-1).
    expect(s.remoteSettings.maxConcurrentStreams).toBeGreaterThanOrEqual(N);
    const clients: RawClient[] = [];
    for (let i = 0; i < N; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => ws(m, s, '/feed')))));
    }
    expect(clients.length).toBe(N);
    expect(m.handler.stats().connections).toBe(N);
    expect(m.sessions.length).toBe(1);
    for (let i = 0; i < N; i += 100) {
      await Promise.all(clients.slice(i, i + 100).map((c, j) => echoes(c, `socket ${i + j}`, 5000)));
    }
    for (let i = 0; i < N; i += 100) {
      const results = await Promise.all(clients.slice(i, i + 100).map((c) => c.close(1000, '', 5000)));
      expect(results.every((r) => r.code === 1000 && r.tcpClosed)).toBe(true);
    }
    for (const c of clients) expect(c.stream?.rstCode).toBe(0);
    await waitFor(() => m.handler.stats().connections === 0, 3000, 'all closed on the server');
    expect(m.handler.stats().closesByCode).toMatchObject({ 1000: N });
    expect(s.destroyed).toBe(false);
    expect((await request(s, { ':path': '/' })).body).toBe('app');
  });
});

