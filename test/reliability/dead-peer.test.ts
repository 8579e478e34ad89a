/**
 * Dead peers and idle connections: the heartbeat (RFC 6455 §5.5.2 ping, §5.5.3 pong) and
 * idleTimeout.
 *
 * - A peer that never answers pings is terminated within pingInterval + pongTimeout (+ a sweep
 *   tick and slack): `onClose` sees 1006, stats.pongTimeouts counts it.
 * - A peer that answers (Node's built-in WebSocket auto-pongs; a raw client answering with any
 *   pong) stays open across many intervals, and `latency` becomes a number.
 * - A half-open connection is cleaned up. A true half-open (peer gone, no FIN/RST ever arriving)
 *   cannot be made on loopback without root, since the kernel ACKs for a live socket. Two
 *   stand-ins: a client that stops reading and writing (raw socket paused, with the server's
 *   writes still stuck in its buffer), and a relay that destroys the client's side and then keeps
 *   the server's side connected and silent forever (no data, no FIN, no RST).
 * - While reading is paused by receive backpressure the pong check is suspended: the pong cannot
 *   be seen, and that is not the peer's fault.
 * - idleTimeout: 1001 'idle timeout' after no data message either way for that long; a data
 *   message either way keeps the connection open; pings and pongs do not.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { Behavior, type Client, ReadyState } from '../../src/index.js';
import { bounded, fakeLogger, useFixture } from '../helpers/fixture.js';
import { RawClient } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { answerClose, autoPong, blackholeProxy, dataFrames, gate } from './helpers.js';

const { serve, connect, defer, keep } = useFixture();

interface Seen {
  opened: Client[];
  closes: { id: number; code: number; at: number }[];
  latencyAtOpen: (number | undefined)[];
}
let seen: Seen = { opened: [], closes: [], latencyAtOpen: [] };
function reset(): Seen {
  seen = { opened: [], closes: [], latencyAtOpen: [] };
  return seen;
}

/** Records opens and closes; echoes text. */
class Watched extends Behavior {
  override onOpen(): void {
    seen.opened.push(this);
    seen.latencyAtOpen.push(this.latency);
  }
  override onText(text: string): void {
    this.sendText(text);
  }
  override onClose(code: number): void {
    seen.closes.push({ id: this.id, code, at: performance.now() });
  }
}

/** Opens Node's built-in WebSocket (undici) and waits for `open`; closed after the test. */
async function openWebSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  defer(() =>
    bounded(
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.addEventListener('close', () => resolve());
        ws.close();
      }),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('WebSocket failed to open')));
  });
  return ws;
}

const PING = 200;
const PONG = 300;
/** A sweep tick plus generous slack for a noisy 2-core machine. */
const SLACK = PING / 10 + 1500;

describe('heartbeat: dead peers', () => {
  test('a peer that never answers pings is terminated within pingInterval + pongTimeout: onClose 1006, no close frame, stats.pongTimeouts 1', async () => {
    const s0 = reset();
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/w': Watched }, { pingInterval: PING, pongTimeout: PONG, logger, logLevel: 'info' });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/w'); // reads, never pongs
    const t0 = performance.now();
    expect(await client.waitClosed(PING + PONG + SLACK)).toBe(true);
    const elapsed = performance.now() - t0;
    // Not before a ping was due and its pong overdue (timers never fire early).
    expect(elapsed).toBeGreaterThanOrEqual(PING + PONG - 20);
    const frames = client.pending();
    expect(frames.map((f) => f.opcode)).toEqual([0x9]);
    expect(frames[0]?.payload.length).toBe(0);
    await waitFor(() => s0.closes.length === 1, 2000, 'onClose');
    expect(s0.closes[0]?.code).toBe(1006);
    const st = handler.stats();
    expect(st.pongTimeouts).toBe(1);
    expect(st.pingsSent).toBe(1);
    expect(st.closesByCode).toEqual({ '1006': 1 });
    expect(st.connections).toBe(0);
    expect(handler.clients.size).toBe(0);
    expect(calls.some((c) => c.level === 'info' && c.message.includes('no pong'))).toBe(true);
  });

  test("Node's built-in WebSocket answers the pings itself: it stays open across many intervals and latency becomes a number", async () => {
    const s0 = reset();
    // A long pongTimeout: a stalled event loop on a busy machine must not look like a dead peer.
    const s = await serve({ '/w': Watched }, { pingInterval: 100, pongTimeout: 2000 });
    const handler = s.srv.handler;
    const ws = await openWebSocket(s.url('/w'));
    await waitFor(() => s0.opened.length === 1, 2000, 'onOpen');
    const b = s0.opened[0] as Client;
    expect(s0.latencyAtOpen).toEqual([undefined]);
    await waitFor(() => handler.stats().pingsSent >= 5, 5000, 'five heartbeat pings');
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(b.readyState).toBe(ReadyState.OPEN);
    expect(typeof b.latency).toBe('number');
    expect(b.latency).toBeGreaterThanOrEqual(0);
    expect(b.latency).toBeLessThan(2000);
    const st = handler.stats();
    expect(st.pongTimeouts).toBe(0);
    expect(st.connections).toBe(1);
    expect(s0.closes).toEqual([]);
  });

  test('a raw client answering every ping with a pong of its own (any pong answers) stays open across many intervals', async () => {
    const s0 = reset();
    const s = await serve({ '/w': Watched }, { pingInterval: 100, pongTimeout: 2000 });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/w');
    const ponger = autoPong(client, 'not the ping payload');
    await waitFor(() => ponger.pings >= 5, 5000, 'five pings answered');
    const b = s0.opened[0] as Client;
    expect(b.readyState).toBe(ReadyState.OPEN);
    expect(typeof b.latency).toBe('number');
    expect(handler.stats().pongTimeouts).toBe(0);
    expect(client.tcpClosed).toBe(false);
  });

  test('half-open stand-in 1: clients that stop reading and writing — one with the server\'s writes stuck in its buffer — are terminated, live ones stay; clients and stats.connections end at 0', async () => {
    const s0 = reset();
    const s = await serve({ '/w': Watched }, { pingInterval: PING, pongTimeout: PONG, maxBackpressure: 64 << 20 });
    const handler = s.srv.handler;
    const live = await connect(s.port, '/w');
    const ponger = autoPong(live);
    const dead: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await connect(s.port, '/w');
      c.socket.pause();
      dead.push(c);
    }
    await waitFor(() => s0.opened.length === 4, 2000, 'four open');
    // Fill the first dead client's path: the kernel takes ~4 MB, the rest stays in the socket.
    const stuck = s0.opened.find((b) => b.remotePort === dead[0]?.socket.localPort) as Client;
    const chunk = Buffer.alloc(256 << 10);
    for (let i = 0; i < 40 && stuck.bufferedAmount === 0; i++) {
      stuck.sendBinary(chunk);
      await sleep(1);
    }
    expect(stuck.bufferedAmount).toBeGreaterThan(0);

    await waitFor(() => handler.stats().pongTimeouts === 3, PING + PONG + SLACK, 'three dead peers terminated');
    await waitFor(() => s0.closes.length === 3, 2000, 'three onClose');
    expect(s0.closes.map((c) => c.code)).toEqual([1006, 1006, 1006]);
    expect([...handler.clients].map((c) => c.remotePort)).toEqual([live.socket.localPort]);
    expect(handler.stats().connections).toBe(1);
    expect(handler.stats().connectionsByRoute).toEqual({ '/w': 1 });
    // The server really closed their TCP connections (a paused socket sees it once it reads).
    for (const c of dead) c.socket.resume();
    for (const c of dead) expect(await c.waitClosed(3000)).toBe(true);
    expect(live.tcpClosed).toBe(false);
    expect(ponger.pings).toBeGreaterThanOrEqual(1);

    // The live one leaves properly: nothing is left.
    live.send(0x8, Buffer.from([0x03, 0xe8]));
    await waitFor(() => handler.clients.size === 0, 3000, 'the live client left');
    expect(handler.stats().connections).toBe(0);
    expect(handler.stats().closesByCode).toEqual({ '1000': 1, '1006': 3 });
  });

  test('half-open stand-in 2: the client vanishes behind a relay that keeps the server side connected and silent (no FIN, no RST); the heartbeat cleans it up', async () => {
    const s0 = reset();
    const s = await serve({ '/w': Watched }, { pingInterval: PING, pongTimeout: PONG });
    const handler = s.srv.handler;
    const relay = await blackholeProxy(s.port);
    defer(() => relay.close());
    const client = keep(await RawClient.connect(relay.port, '/w'));
    client.send(0x1, 'through the relay');
    expect((await client.nextFrame(2000)).payload.toString()).toBe('through the relay');
    relay.cut();
    expect(await client.waitClosed(2000)).toBe(true);
    // The server has heard nothing: the connection is still open.
    await sleep(50);
    expect(handler.clients.size).toBe(1);
    expect(s0.closes).toEqual([]);
    await waitFor(() => handler.clients.size === 0, PING + PONG + SLACK, 'the half-open connection cleaned up');
    await waitFor(() => s0.closes.length === 1, 2000, 'onClose');
    expect(s0.closes[0]?.code).toBe(1006);
    const st = handler.stats();
    expect(st.connections).toBe(0);
    expect(st.pongTimeouts).toBe(1);
  });

  test('reading paused by receive backpressure suspends the pong check: a live client whose messages wait behind a slow hook is not terminated', async () => {
    const held = gate();
    let delivered = 0;
    class Stuck extends Behavior {
      override async onText(): Promise<void> {
        delivered++;
        await held.promise;
      }
    }
    const s = await serve({ '/stuck': Stuck }, { pingInterval: 100, pongTimeout: 100 });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/stuck');
    const ponger = autoPong(client);
    // Let the heartbeat work first: pongs are answered and seen.
    await waitFor(() => ponger.pings >= 2, 3000, 'two pings answered');
    for (let i = 0; i < 40; i++) client.send(0x1, `m${i}`);
    await waitFor(() => handler.stats().messagesIn >= 16, 3000, 'the queue filled');
    // Several times pingInterval + pongTimeout with reading paused.
    await sleep(800);
    expect(handler.stats().pongTimeouts).toBe(0);
    expect(handler.clients.size).toBe(1);
    expect(client.tcpClosed).toBe(false);
    expect(delivered).toBe(1);
    held.open();
    await waitFor(() => delivered === 40, 3000, 'the waiting messages delivered');
    // Reading resumed: the heartbeat runs again and the peer still answers.
    const before = ponger.pings;
    await waitFor(() => ponger.pings >= before + 2, 3000, 'pings after the pause');
    expect(handler.stats().pongTimeouts).toBe(0);
    expect(client.tcpClosed).toBe(false);
  });
});

describe('idleTimeout', () => {
  const IDLE = 400;

  test("a silent connection is closed with 1001 'idle timeout' after idleTimeout; stats.idleCloses 1", async () => {
    const s0 = reset();
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/w': Watched }, { idleTimeout: IDLE, pingInterval: 0, logger, logLevel: 'info' });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/w');
    const t0 = performance.now();
    const closed = await answerClose(client, IDLE + 3000);
    const elapsed = performance.now() - t0;
    expect(closed.code).toBe(1001);
    expect(closed.reason).toBe('idle timeout');
    expect(closed.tcpClosed).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(IDLE - 20);
    expect(elapsed).toBeLessThan(IDLE + IDLE / 10 + 1500);
    await waitFor(() => s0.closes.length === 1, 2000, 'onClose');
    expect(s0.closes[0]?.code).toBe(1001);
    const st = handler.stats();
    expect(st.idleCloses).toBe(1);
    expect(st.closesByCode).toEqual({ '1001': 1 });
    expect(calls.some((c) => c.level === 'info' && c.message.includes('1001'))).toBe(true);
  });

  test('data messages either way keep it open — client → server, then server → client — and it closes idleTimeout after the traffic stops', async () => {
    const s0 = reset();
    class Quiet extends Watched {
      override onText(): void {}
    }
    const s = await serve({ '/q': Quiet }, { idleTimeout: IDLE, pingInterval: 0 });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/q');
    await waitFor(() => s0.opened.length === 1, 2000, 'onOpen');
    const b = s0.opened[0] as Client;
    // Client → server only (Quiet answers nothing), for 1.75 × idleTimeout.
    for (let i = 0; i < 7; i++) {
      client.send(0x1, `c${i}`);
      await sleep(100);
    }
    expect(client.pending()).toEqual([]);
    expect(b.readyState).toBe(ReadyState.OPEN);
    // Server → client only, for 1.75 × idleTimeout.
    let lastSent = 0;
    for (let i = 0; i < 7; i++) {
      expect(b.sendText(`s${i}`)).not.toBe('dropped');
      lastSent = performance.now();
      await sleep(100);
    }
    expect(b.readyState).toBe(ReadyState.OPEN);
    expect(handler.stats().idleCloses).toBe(0);
    // Silence: closed, idleTimeout after the last message at the earliest (measured from the send
    // itself, not from after a sleep that a loaded machine may stretch).
    const t0 = lastSent;
    const closed = await answerClose(client, IDLE + 3000);
    expect(closed.code).toBe(1001);
    expect(closed.data.map((f) => f.payload.toString())).toEqual(Array.from({ length: 7 }, (_, i) => `s${i}`));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(IDLE - 150);
    expect(handler.stats().idleCloses).toBe(1);
  });

  test('pings and pongs are not traffic: a client that pings every 100 ms and answers the heartbeat is still closed after idleTimeout', async () => {
    reset();
    const s = await serve({ '/w': Watched }, { idleTimeout: IDLE, pingInterval: 100, pongTimeout: 2000 });
    const handler = s.srv.handler;
    const client = await connect(s.port, '/w');
    const ponger = autoPong(client);
    const t0 = performance.now();
    let pinged = 0;
    while (!client.tcpClosed && performance.now() - t0 < IDLE + 3000) {
      if (ponger.frames.some((f) => f.opcode === 0x8)) break;
      client.send(0x9, `p${pinged++}`);
      await sleep(100);
    }
    const close = ponger.frames.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1001);
    expect(close?.payload.subarray(2).toString()).toBe('idle timeout');
    expect(pinged).toBeGreaterThanOrEqual(3);
    expect(ponger.pings).toBeGreaterThanOrEqual(1);
    // Our pings were answered, and no data frame came.
    expect(ponger.frames.filter((f) => f.opcode === 0xa).length).toBeGreaterThanOrEqual(3);
    expect(dataFrames(ponger.frames)).toEqual([]);
    expect(handler.stats().idleCloses).toBe(1);
  });
});
