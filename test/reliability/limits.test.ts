/**
 * Connection and message limits, each driven over its edge, with the stats counters they move.
 *
 * - maxConnections (handler-wide) and a route's static maxConnections → 503 Service Unavailable
 *   with Retry-After before the 101 (upgrades still in verify() count); a freed place is reused.
 * - maxConnectionsPerIp → 429 Too Many Requests (RFC 6585 §4), per address: a client from
 *   127.0.0.2 still gets in while 127.0.0.1 is capped.
 * - rateLimit (token bucket: burst `messages`, refill `messages`/`interval`; data messages and
 *   pings count, pongs do not) → 1008 'message rate limit exceeded' (RFC 6455 §7.4.1).
 * - verifyTimeout → 503 VERIFY_TIMEOUT with Retry-After; the late verdict is ignored.
 * - maxPayload (1009) and maxFragments (1008) at their edge (the full set is in
 *   test/handler/limits.test.ts).
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { Behavior, type RateLimit } from '../../src/index.js';
import { echoes, expectCompleteRejection, fakeLogger, useFixture } from '../helpers/fixture.js';
import { RawClient, encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { canConnectFrom, dataFrames, gate, upgradeFrom } from './helpers.js';

const { serve, connect, keep } = useFixture();

let opens = 0;
const closeCodes: number[] = [];
function reset(): void {
  opens = 0;
  closeCodes.length = 0;
}

/** Echoes text; counts opens and records close codes. */
class Echoing extends Behavior {
  override onOpen(): void {
    opens++;
  }
  override onText(text: string): void {
    this.sendText(text);
  }
  override onClose(code: number): void {
    closeCodes.push(code);
  }
}

/** Expects an upgrade for `path` to be refused with `status` in one complete response with Retry-After. */
async function expectRefused(port: number, path: string, status: number): Promise<void> {
  const answer = await rawRequest(port, upgradeRequest(path));
  expectCompleteRejection(answer, status);
  expect(answer.headers['retry-after']).toBe('5');
}

/** Closes a client properly (close frame, echo, TCP close). */
async function leave(client: RawClient): Promise<void> {
  const closed = await client.close(1000, '', 3000);
  expect(closed.tcpClosed).toBe(true);
}

describe('maxConnections', () => {
  test('handler-wide: N connections (over all routes) are accepted, the next gets 503; after one leaves, a new one gets in', async () => {
    reset();
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/a': Echoing, '/b': Echoing }, { maxConnections: 3, logger, logLevel: 'info' });
    const handler = s.srv.handler;
    const first = await connect(s.port, '/a');
    await connect(s.port, '/b');
    await connect(s.port, '/a');
    await expectRefused(s.port, '/a', 503);
    await expectRefused(s.port, '/b', 503);
    expect(handler.stats().connections).toBe(3);
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ '503': 2 });
    expect(calls.some((c) => c.level === 'info' && c.message.includes('503') && c.message.includes('TOO_MANY_CONNECTIONS'))).toBe(true);

    await leave(first);
    await waitFor(() => handler.clients.size === 2, 2000, 'the first client left');
    const again = await connect(s.port, '/b');
    await echoes(again, 'in again');
    await expectRefused(s.port, '/a', 503);
    const st = handler.stats();
    expect(st.handshakesAccepted).toBe(4);
    expect(st.handshakesRejectedByStatus).toEqual({ '503': 3 });
    expect(opens).toBe(4);
  });

  test("a route's static maxConnections caps that route only; other routes are unaffected", async () => {
    reset();
    class Capped extends Echoing {
      static override maxConnections: number | undefined = 2;
    }
    const s = await serve({ '/capped': Capped, '/open': Echoing });
    const handler = s.srv.handler;
    await connect(s.port, '/capped');
    const second = await connect(s.port, '/capped');
    await expectRefused(s.port, '/capped', 503);
    for (let i = 0; i < 4; i++) await echoes(await connect(s.port, '/open'), `open ${i}`);
    await expectRefused(s.port, '/capped', 503);
    expect(handler.stats().connectionsByRoute).toEqual({ '/capped': 2, '/open': 4 });
    await leave(second);
    await waitFor(() => handler.clientsOf('/capped').size === 1, 2000, 'a place on /capped');
    await echoes(await connect(s.port, '/capped'), 'capped again');
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ '503': 2 });
  });

  test('upgrades still in an async verify() count toward the limit, and give their place back when refused', async () => {
    reset();
    const held = gate();
    class Checked extends Echoing {
      override async verify(): Promise<boolean> {
        await held.promise;
        return this.query.get('ok') === '1';
      }
    }
    const s = await serve({ '/checked': Checked, '/plain': Echoing }, { maxConnections: 2 });
    const handler = s.srv.handler;
    const accepted = RawClient.connect(s.port, '/checked?ok=1').then((c) => keep(c));
    const refused = rawRequest(s.port, upgradeRequest('/checked?ok=0'), 5000);
    await waitFor(() => handler.stats().pendingHandshakes === 2, 2000, 'two upgrades in verify()');
    expect(handler.stats().connections).toBe(0);
    await expectRefused(s.port, '/plain', 503);
    held.open();
    await echoes(await accepted, 'verified');
    expectCompleteRejection(await refused, 403);
    // The refused upgrade gave its place back: one more fits, then the limit holds again.
    await echoes(await connect(s.port, '/plain'), 'plain');
    await expectRefused(s.port, '/plain', 503);
    const st = handler.stats();
    expect(st.pendingHandshakes).toBe(0);
    expect(st.connections).toBe(2);
    expect(st.handshakesRejectedByStatus).toEqual({ '403': 1, '503': 2 });
  });
});

const altLoopback = await canConnectFrom('127.0.0.2');

describe.runIf(altLoopback)('maxConnectionsPerIp (this machine can bind 127.0.0.2)', () => {
  test('clients from 127.0.0.1 are capped with 429 while a client from 127.0.0.2 still gets in', async () => {
    reset();
    const s = await serve({ '/e': Echoing }, { maxConnectionsPerIp: 2 });
    const handler = s.srv.handler;
    const a = await connect(s.port, '/e');
    await connect(s.port, '/e');
    const answer = await rawRequest(s.port, upgradeRequest('/e'));
    expectCompleteRejection(answer, 429);
    expect(answer.headers['retry-after']).toBe('5');
    const other = await upgradeFrom(s.port, '/e', '127.0.0.2');
    keep(other.socket);
    expect(other.status).toBe(101);
    const otherSecond = await upgradeFrom(s.port, '/e', '127.0.0.2');
    keep(otherSecond.socket);
    expect(otherSecond.status).toBe(101);
    const otherThird = await upgradeFrom(s.port, '/e', '127.0.0.2');
    keep(otherThird.socket);
    expect(otherThird.status).toBe(429);
    await waitFor(() => handler.clients.size === 4, 2000, 'four open');
    expect([...handler.clients].map((c) => c.remoteAddress).sort()).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']);
    // A place freed on 127.0.0.1 is reused.
    await leave(a);
    await waitFor(() => handler.clients.size === 3, 2000, 'one left');
    await echoes(await connect(s.port, '/e'), 'back');
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ '429': 2 });
  });
});

describe('rateLimit', () => {
  test("a burst of `messages` passes; one more within the interval closes with 1008 'message rate limit exceeded'", async () => {
    reset();
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/e': Echoing }, { rateLimit: { messages: 5, interval: 60_000 }, logger, logLevel: 'warn' });
    const handler = s.srv.handler;
    // Exactly the burst: all five echoed, the connection stays.
    const edge = await connect(s.port, '/e');
    edge.sendRaw(Buffer.concat([0, 1, 2, 3, 4].map((i) => encodeClientFrame(0x1, `m${i}`))));
    for (let i = 0; i < 5; i++) expect((await edge.nextFrame(2000)).payload.toString()).toBe(`m${i}`);
    await sleep(100);
    expect(edge.pending()).toEqual([]);
    expect(edge.tcpClosed).toBe(false);
    // One over the burst.
    const over = await connect(s.port, '/e');
    over.sendRaw(Buffer.concat([0, 1, 2, 3, 4, 5].map((i) => encodeClientFrame(0x1, `m${i}`))));
    const closed = await over.expectClose(3000);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toBe('message rate limit exceeded');
    expect(dataFrames(closed.before).map((f) => f.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(closed.tcpClosed).toBe(true);
    await waitFor(() => closeCodes.length === 1, 2000, 'onClose');
    expect(closeCodes).toEqual([1008]);
    const st = handler.stats();
    expect(st.rateLimitCloses).toBe(1);
    expect(st.closesByCode).toEqual({ '1008': 1 });
    expect(st.connections).toBe(1);
    expect(calls.some((c) => c.level === 'warn' && c.message.includes('rate limit'))).toBe(true);
  });

  test('a client sending slower than the refill rate stays open well past the burst size', async () => {
    reset();
    // Burst 3, refill one token per 50 ms; the client sends one message per 100 ms.
    const s = await serve({ '/e': Echoing }, { rateLimit: { messages: 3, interval: 150 } });
    const client = await connect(s.port, '/e');
    for (let i = 0; i < 12; i++) {
      await echoes(client, `slow ${i}`);
      await sleep(100);
    }
    expect(client.tcpClosed).toBe(false);
    expect(s.srv.handler.stats().rateLimitCloses).toBe(0);
  });

  test('pings count toward the rate limit and pongs do not', async () => {
    reset();
    const s = await serve({ '/e': Echoing }, { rateLimit: { messages: 3, interval: 60_000 } });
    const handler = s.srv.handler;
    // Ten unsolicited pongs, then three messages: within the limit.
    const ponging = await connect(s.port, '/e');
    for (let i = 0; i < 10; i++) ponging.send(0xa, `pong ${i}`);
    for (let i = 0; i < 3; i++) await echoes(ponging, `m${i}`);
    expect(ponging.tcpClosed).toBe(false);
    // Three pings pass (each answered), the fourth closes the connection.
    const pinging = await connect(s.port, '/e');
    for (let i = 0; i < 3; i++) {
      pinging.send(0x9, `p${i}`);
      const pong = await pinging.nextFrame(2000);
      expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, `p${i}`]);
    }
    pinging.send(0x9, 'p3');
    const closed = await pinging.expectClose(3000);
    expect(closed.code).toBe(1008);
    expect(closed.before).toEqual([]);
    expect(handler.stats().rateLimitCloses).toBe(1);
  });

  test("a route's static rateLimit overrides the handler's, and false turns it off for the route", async () => {
    reset();
    class Unlimited extends Echoing {
      static override rateLimit: RateLimit | false | undefined = false;
    }
    class Strict extends Echoing {
      static override rateLimit: RateLimit | false | undefined = { messages: 1, interval: 60_000 };
    }
    const s = await serve({ '/default': Echoing, '/unlimited': Unlimited, '/strict': Strict }, { rateLimit: { messages: 2, interval: 60_000 } });
    const free = await connect(s.port, '/unlimited');
    for (let i = 0; i < 20; i++) await echoes(free, `free ${i}`);
    const strict = await connect(s.port, '/strict');
    await echoes(strict, 'one');
    strict.send(0x1, 'two');
    expect((await strict.expectClose(3000)).code).toBe(1008);
    const def = await connect(s.port, '/default');
    await echoes(def, 'one');
    await echoes(def, 'two');
    def.send(0x1, 'three');
    expect((await def.expectClose(3000)).code).toBe(1008);
    expect(free.tcpClosed).toBe(false);
    expect(s.srv.handler.stats().rateLimitCloses).toBe(2);
  });
});

describe('verifyTimeout', () => {
  const VERIFY_TIMEOUT = 300;

  test('a verify() still running at verifyTimeout → 503 with Retry-After; its later verdict is ignored and onOpen never runs; the place is given back', async () => {
    reset();
    const held = gate();
    let verified = 0;
    class Stalled extends Echoing {
      override async verify(): Promise<boolean> {
        if (this.query.get('stall') !== '1') return true;
        await held.promise;
        verified++;
        return true;
      }
    }
    const { calls, logger } = fakeLogger();
    const s = await serve({ '/v': Stalled }, { verifyTimeout: VERIFY_TIMEOUT, maxConnections: 1, logger, logLevel: 'warn' });
    const handler = s.srv.handler;
    const t0 = performance.now();
    const answer = await rawRequest(s.port, upgradeRequest('/v?stall=1'), VERIFY_TIMEOUT + 3000);
    const elapsed = performance.now() - t0;
    expectCompleteRejection(answer, 503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(elapsed).toBeGreaterThanOrEqual(VERIFY_TIMEOUT - 20);
    expect(elapsed).toBeLessThan(VERIFY_TIMEOUT + 1500);
    let st = handler.stats();
    expect(st.verifyTimeouts).toBe(1);
    expect(st.pendingHandshakes).toBe(0);
    expect(st.handshakesRejectedByStatus).toEqual({ '503': 1 });
    expect(calls.some((c) => c.level === 'warn' && c.message.includes('verifyTimeout'))).toBe(true);
    // The verdict arrives late: ignored.
    held.open();
    await waitFor(() => verified === 1, 2000, 'the late verdict');
    await sleep(50);
    expect(opens).toBe(0);
    st = handler.stats();
    expect(st.handshakesAccepted).toBe(0);
    expect(st.connections).toBe(0);
    // The timed-out upgrade gave back the only place, exactly once: one client fits, a second does not.
    await echoes(await connect(s.port, '/v'), 'in');
    await expectRefused(s.port, '/v', 503);
    expect(handler.stats().verifyTimeouts).toBe(1);
  });

  test('a verify() that finishes within verifyTimeout opens normally', async () => {
    reset();
    class Quick extends Echoing {
      override async verify(): Promise<void> {
        await sleep(VERIFY_TIMEOUT / 3);
      }
    }
    const s = await serve({ '/q': Quick }, { verifyTimeout: VERIFY_TIMEOUT });
    const client = await connect(s.port, '/q');
    await echoes(client, 'verified in time');
    // Still open after the verifyTimeout would have passed.
    await sleep(VERIFY_TIMEOUT);
    await echoes(client, 'still open');
    const st = s.srv.handler.stats();
    expect(st.verifyTimeouts).toBe(0);
    expect(st.handshakesAccepted).toBe(1);
    expect(opens).toBe(1);
  });
});

describe('message size limits at their edge', () => {
  test('maxPayload: a message of exactly maxPayload bytes passes, one byte more closes with 1009', async () => {
    reset();
    class Sink extends Echoing {
      override onBinary(bytes: Buffer): void {
        this.sendText(`got ${bytes.length}`);
      }
    }
    const s = await serve({ '/s': Sink }, { maxPayload: 4096 });
    const ok = await connect(s.port, '/s');
    ok.send(0x2, Buffer.alloc(4096));
    expect((await ok.nextFrame(2000)).payload.toString()).toBe('got 4096');
    const big = await connect(s.port, '/s');
    big.send(0x2, Buffer.alloc(4097));
    const closed = await big.expectClose(3000);
    expect(closed.code).toBe(1009);
    expect(closed.before).toEqual([]);
    await waitFor(() => closeCodes.length === 1, 2000, 'onClose');
    expect(s.srv.handler.stats().closesByCode).toEqual({ '1009': 1 });
  });

  test('maxFragments: a message in exactly maxFragments frames passes, one frame more closes with 1008', async () => {
    reset();
    const s = await serve({ '/e': Echoing }, { maxFragments: 3 });
    const frames = (n: number): Buffer =>
      Buffer.concat(Array.from({ length: n }, (_, i) => encodeClientFrame(i === 0 ? 0x1 : 0x0, `f${i}`, { fin: i === n - 1 })));
    const ok = await connect(s.port, '/e');
    ok.sendRaw(frames(3));
    expect((await ok.nextFrame(2000)).payload.toString()).toBe('f0f1f2');
    const over = await connect(s.port, '/e');
    over.sendRaw(frames(4));
    const closed = await over.expectClose(3000);
    expect(closed.code).toBe(1008);
    expect(closed.before).toEqual([]);
    await waitFor(() => closeCodes.length === 1, 2000, 'onClose');
    expect(s.srv.handler.stats().closesByCode).toEqual({ '1008': 1 });
    // The client that stayed within the limit is unaffected.
    await echoes(ok, 'fine');
    expect((await ok.close(1000, '', 3000)).code).toBe(1000);
  });
});
