/**
 * The heartbeat (RFC 6455 §5.5.2 ping, §5.5.3 pong) and the idle timeout: every pingInterval the
 * server sends an empty protocol ping; a peer that answers stays and gets a `latency`; one that
 * does not answer within pongTimeout is terminated (onClose sees 1006); an unsolicited pong
 * (allowed by §5.5.3) answers nothing. pingInterval 0 turns it off, per handler or per route. The
 * handler-wide sweep timer does not keep the process alive. idleTimeout closes with 1001
 * 'idle timeout' after no data message either way; pings and pongs do not count as activity.
 *
 * Intervals are short (100 ms) so the file runs fast; time assertions are only lower bounds
 * (nothing may happen early) and counts bounded by the elapsed time (nothing may happen too often).
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, type Routes, type WebSocketHandler } from '../../src/index.js';
import { connect as connectInMemory } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';
import type { RawClient, RawFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect, defer, handlerFor } = useFixture();

const made: Behavior[] = [];
const closes: [string, number, string][] = [];
const pongs: string[] = [];

class Held extends Behavior {
  override onOpen(): void {
    made.push(this);
  }
  override onPong(data: Buffer): void {
    pongs.push(data.toString());
  }
  override onClose(code: number, reason: string): void {
    closes.push([this.route, code, reason]);
  }
}

async function start(routes: Routes, options: HandlerOptions): Promise<{ handler: WebSocketHandler; port: number }> {
  made.length = 0;
  closes.length = 0;
  pongs.length = 0;
  return mount(routes, options);
}

interface Watch {
  /** performance.now() when each ping arrived. */
  pings: number[];
  frames: RawFrame[];
  others: RawFrame[];
  /** Answer pings with pongs (the same payload). */
  answer: boolean;
}

/** Reads the client's frames in the background, recording pings and answering them while `answer` is set. */
function watch(client: RawClient, answer: boolean): Watch {
  const w: Watch = { pings: [], frames: [], others: [], answer };
  let stop = false;
  defer(() => {
    stop = true;
  });
  void (async () => {
    while (!stop && !client.tcpClosed) {
      let f: RawFrame;
      try {
        f = await client.nextFrame(100);
      } catch {
        continue;
      }
      if (f.opcode === 0x9) {
        w.pings.push(performance.now());
        w.frames.push(f);
        if (w.answer) client.send(0xa, f.payload);
      } else {
        w.others.push(f);
      }
    }
  })();
  return w;
}

/** Reads frames up to the server's close frame, echoes it, and waits for TCP close. */
async function closeFrom(client: RawClient): Promise<{ code: number | undefined; reason: string; before: RawFrame[]; tcpClosed: boolean }> {
  const before: RawFrame[] = [];
  for (;;) {
    const f = await client.nextFrame(5000);
    if (f.opcode !== 0x8) {
      before.push(f);
      continue;
    }
    client.send(0x8, f.payload);
    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
    return { code, reason: f.payload.subarray(2).toString(), before, tcpClosed: await client.waitClosed(3000) };
  }
}

describe('heartbeat pings', () => {
  test('an empty protocol ping frame (opcode 0x9, FIN, unmasked) arrives every pingInterval, never sooner', async () => {
    const { handler, port } = await start({ '/h': Held }, { pingInterval: 100, pongTimeout: 100 });
    const t0 = performance.now();
    const client = await connect(port, '/h');
    const w = watch(client, true);
    await waitFor(() => w.pings.length >= 4, 5000, 'four pings');
    const elapsed = performance.now() - t0;
    // The n-th ping is sent no sooner than n intervals after the open.
    expect(elapsed).toBeGreaterThanOrEqual(4 * 100 - 5);
    expect(w.pings.length).toBeLessThanOrEqual(Math.floor(elapsed / 100));
    for (const f of w.frames.slice(0, 4)) expect(f).toMatchObject({ opcode: 0x9, fin: true, rsv: 0, masked: false, payload: Buffer.alloc(0) });
    expect(w.others).toEqual([]);
    expect(handler.stats().pingsSent).toBeGreaterThanOrEqual(4);
    // The client's answer to the 4th ping is still on its way to the server when it got that ping.
    await waitFor(() => pongs.length >= 4, 2000, 'four pongs at the server');
    expect(pongs.slice(0, 4)).toEqual(['', '', '', '']);
  });

  test('a peer that answers stays open across many pongTimeouts, and latency becomes a finite number ≥ 0', async () => {
    const { handler, port } = await start({ '/h': Held }, { pingInterval: 60, pongTimeout: 40 });
    const client = await connect(port, '/h');
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    expect(b.latency).toBeUndefined();
    const w = watch(client, true);
    await waitFor(() => w.pings.length >= 6, 5000, 'six answered pings');
    expect(b.readyState).toBe(1);
    expect(closes).toEqual([]);
    expect(typeof b.latency).toBe('number');
    expect(Number.isFinite(b.latency)).toBe(true);
    expect(b.latency).toBeGreaterThanOrEqual(0);
    expect(handler.stats().pongTimeouts).toBe(0);
  });

  test('a peer that does not answer is terminated after pongTimeout: no close frame, onClose sees 1006, stats count it', async () => {
    const { handler, port } = await start({ '/h': Held }, { pingInterval: 100, pongTimeout: 100 });
    const t0 = performance.now();
    const client = await connect(port, '/h');
    const w = watch(client, false);
    expect(await client.waitClosed(5000)).toBe(true);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(200 - 5); // one interval, then the pong timeout
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([['/h', 1006, '']]);
    // Exactly one ping went unanswered (no second ping while one waits), and no close frame came.
    expect(w.pings).toHaveLength(1);
    expect(w.others).toEqual([]);
    const stats = handler.stats();
    expect(stats.pongTimeouts).toBe(1);
    expect(stats.pingsSent).toBe(1);
    expect(stats.closesByCode).toEqual({ 1006: 1 });
  });

  test('an unsolicited pong before any ping sets no latency and does not answer the next ping: a peer that then stays silent is still terminated', async () => {
    const { port } = await start({ '/h': Held }, { pingInterval: 100, pongTimeout: 100 });
    const client = await connect(port, '/h');
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    client.send(0xa, 'unsolicited');
    await waitFor(() => pongs.length === 1, 2000, 'onPong');
    expect(pongs).toEqual(['unsolicited']);
    expect(b.latency).toBeUndefined();
    expect(b.readyState).toBe(1);
    const w = watch(client, false);
    expect(await client.waitClosed(5000)).toBe(true);
    expect(w.pings).toHaveLength(1);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes[0]?.[1]).toBe(1006);
    expect(b.latency).toBeUndefined();
  });

  test('pongs keep coming from a peer that sends them unasked: the connection is not confused (it stays open, pings go on)', async () => {
    const { port } = await start({ '/h': Held }, { pingInterval: 80, pongTimeout: 80 });
    const client = await connect(port, '/h');
    const w = watch(client, true);
    const spam = setInterval(() => client.send(0xa, 'beat'), 15);
    defer(() => clearInterval(spam));
    await waitFor(() => w.pings.length >= 4, 5000, 'four pings');
    clearInterval(spam);
    expect(made[0]?.readyState).toBe(1);
    expect(closes).toEqual([]);
    expect(pongs.filter((p) => p === 'beat').length).toBeGreaterThan(0);
  });
});

describe('heartbeat off, and per-route overrides', () => {
  test('pingInterval 0 sends no pings and terminates nobody', async () => {
    const { handler, port } = await start({ '/h': Held }, { pingInterval: 0 });
    const client = await connect(port, '/h');
    const w = watch(client, false);
    await sleep(350);
    expect(w.pings).toEqual([]);
    expect(made[0]?.readyState).toBe(1);
    expect(handler.stats().pingsSent).toBe(0);
  });

  test('a route with static pingInterval = 0 gets no pings while another route is pinged', async () => {
    class Quiet extends Held {
      static override pingInterval = 0;
    }
    const { port } = await start({ '/pinged': Held, '/quiet': Quiet }, { pingInterval: 80, pongTimeout: 80 });
    const quiet = await connect(port, '/quiet');
    const pinged = await connect(port, '/pinged');
    const wq = watch(quiet, false);
    const wp = watch(pinged, true);
    await waitFor(() => wp.pings.length >= 3, 5000, 'three pings on /pinged');
    expect(wq.pings).toEqual([]);
    expect(made.every((b) => b.readyState === 1)).toBe(true);
  });

  test('a route with static pingInterval turns the heartbeat on under a handler with it off', async () => {
    class Pinged extends Held {
      static override pingInterval = 80;
      static override pongTimeout = 80;
    }
    const { port } = await start({ '/off': Held, '/on': Pinged }, { pingInterval: 0 });
    const off = await connect(port, '/off');
    const on = await connect(port, '/on');
    const woff = watch(off, false);
    const won = watch(on, true);
    await waitFor(() => won.pings.length >= 3, 5000, 'three pings on /on');
    expect(woff.pings).toEqual([]);
  });

  test("a route's static pongTimeout overrides the handler's: its silent peer outlives the other route's", async () => {
    class Patient extends Held {
      static override pongTimeout = 10_000;
    }
    const { port } = await start({ '/strict': Held, '/patient': Patient }, { pingInterval: 60, pongTimeout: 60 });
    const strict = await connect(port, '/strict');
    const patient = await connect(port, '/patient');
    watch(strict, false);
    const wp = watch(patient, false);
    expect(await strict.waitClosed(5000)).toBe(true);
    await sleep(150);
    expect(patient.tcpClosed).toBe(false);
    expect(wp.pings).toHaveLength(1);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([['/strict', 1006, '']]);
  });
});

describe('the sweep timer', () => {
  test('does not keep the process alive: with a heartbeat running, no timer of ours holds the event loop', async () => {
    // In memory: no TCP handles either, so only timers could hold the loop.
    const handler = handlerFor({ '/h': Held }, { pingInterval: 40, pongTimeout: 40 });
    const client = await connectInMemory(handler, '/h');
    defer(async () => {
      await client.close().catch(() => {});
    });
    await waitFor(() => client.pings.length >= 2, 3000, 'two pings');
    // vitest may hold a timer of its own now and then: a ref'd sweep timer would show in every sample.
    let samplesWithoutTimers = 0;
    for (let i = 0; i < 10; i++) {
      await sleep(15);
      if (!process.getActiveResourcesInfo().includes('Timeout')) samplesWithoutTimers++;
    }
    expect(samplesWithoutTimers).toBeGreaterThan(0);
    expect(handler.stats().pingsSent).toBeGreaterThanOrEqual(2);
  });

  test('a handler with no connections sends nothing: no pings before the first connection, none after the last one leaves', async () => {
    const { handler, port } = await start({ '/h': Held }, { pingInterval: 40, pongTimeout: 5000 });
    await sleep(150);
    expect(handler.stats().pingsSent).toBe(0);
    const client = await connect(port, '/h');
    await waitFor(() => handler.stats().pingsSent >= 1, 3000, 'a ping');
    client.destroy();
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    const sent = handler.stats().pingsSent;
    await sleep(150);
    expect(handler.stats().pingsSent).toBe(sent);
  });
});

describe('idleTimeout', () => {
  test("closes a connection with no data message either way with 1001 'idle timeout', no sooner than idleTimeout", async () => {
    const { handler, port } = await start({ '/h': Held }, { idleTimeout: 200, pingInterval: 0 });
    const t0 = performance.now();
    const client = await connect(port, '/h');
    const end = await closeFrom(client);
    const elapsed = performance.now() - t0;
    expect(end).toMatchObject({ code: 1001, reason: 'idle timeout', before: [], tcpClosed: true });
    expect(elapsed).toBeGreaterThanOrEqual(200 - 5);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([['/h', 1001, 'idle timeout']]);
    expect(handler.stats().idleCloses).toBe(1);
  });

  test('incoming data messages keep it alive; once they stop, it closes', async () => {
    const { port } = await start({ '/h': Held }, { idleTimeout: 400, pingInterval: 0 });
    const client = await connect(port, '/h');
    for (let i = 0; i < 14; i++) {
      client.send(i % 2 === 0 ? 0x1 : 0x2, 'tick');
      await sleep(50);
    }
    expect(client.pending()).toEqual([]);
    expect(made[0]?.readyState).toBe(1);
    const end = await closeFrom(client);
    expect(end).toMatchObject({ code: 1001, reason: 'idle timeout' });
  });

  test('outgoing data messages keep it alive too', async () => {
    const { port } = await start({ '/h': Held }, { idleTimeout: 400, pingInterval: 0 });
    const client = await connect(port, '/h');
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    for (let i = 0; i < 14; i++) {
      b.sendText(`tick ${i}`);
      await sleep(50);
    }
    expect(b.readyState).toBe(1);
    const end = await closeFrom(client);
    expect(end.before).toHaveLength(14);
    expect(end).toMatchObject({ code: 1001, reason: 'idle timeout' });
  });

  test('pings and pongs (heartbeat ones and the peer’s own) do not keep it alive', async () => {
    const { port } = await start({ '/h': Held }, { idleTimeout: 250, pingInterval: 40, pongTimeout: 40 });
    const client = await connect(port, '/h');
    const t0 = performance.now();
    const w = watch(client, true);
    const beat = setInterval(() => {
      client.send(0x9, 'are you there');
      client.send(0xa, 'here');
    }, 20);
    defer(() => clearInterval(beat));
    await waitFor(() => w.others.some((f) => f.opcode === 0x8), 5000, 'the close frame');
    clearInterval(beat);
    const close = w.others.find((f) => f.opcode === 0x8) as RawFrame;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250 - 5);
    expect(close.payload.readUInt16BE(0)).toBe(1001);
    expect(close.payload.subarray(2).toString()).toBe('idle timeout');
    expect(w.pings.length).toBeGreaterThan(0);
  });

  test("a route's static idleTimeout overrides the handler's (0 turns it off for that route)", async () => {
    class Patient extends Held {
      static override idleTimeout = 0;
    }
    class Hasty extends Held {
      static override idleTimeout = 100;
    }
    const { port } = await start({ '/patient': Patient, '/hasty': Hasty }, { idleTimeout: 10_000, pingInterval: 0 });
    const patient = await connect(port, '/patient');
    const hasty = await connect(port, '/hasty');
    expect((await closeFrom(hasty)).code).toBe(1001);
    await sleep(150);
    expect(patient.pending()).toEqual([]);
    expect(patient.tcpClosed).toBe(false);
  });
});

