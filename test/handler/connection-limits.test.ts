/**
 * Limits decided before the 101 — maxConnections over all routes and per route (503 with
 * Retry-After), maxConnectionsPerIp (429), verifyTimeout (503) — with upgrades waiting in
 * verify() counted and every refused or finished connection giving its place back; and the
 * per-connection message rate limit (a token bucket: data messages and pings count; over it the
 * connection is failed with 1008 'message rate limit exceeded', RFC 6455 §7.4.1).
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { Behavior, HandshakeRejection } from '../../src/index.js';
import { Echo, expectCompleteRejection, fakeLogger, useFixture } from '../helpers/fixture.js';
import { type RawClient, type RawFrame, encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect, keep, gate } = useFixture();

let opened: string[] = [];

class Open extends Behavior {
  override onOpen(): void {
    opened.push(this.route);
  }
}

/**
 * Sends an upgrade for `path` from `localAddress` and resolves with the status line's code once
 * the response head arrives; the socket stays open (a 101 keeps the connection) until teardown.
 */
function upgradeFrom(port: number, path: string, localAddress: string): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = keep(net.connect({ port, host: '127.0.0.1', localAddress }));
    let head = '';
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) resolve({ status: Number(head.split(' ')[1]), socket });
    });
    socket.write(upgradeRequest(path));
  });
}

/** Starts an upgrade and does not wait for an answer (for a verify() that is still running). */
function startUpgrade(port: number, path: string): net.Socket {
  const socket = keep(net.connect(port, '127.0.0.1'));
  socket.on('error', () => {});
  socket.write(upgradeRequest(path));
  return socket;
}


describe('maxConnections (all routes)', () => {
  test('one over the limit gets a complete 503 with Retry-After and never opens; a closed connection gives its place back', async () => {
    opened = [];
    const { port, handler } = await mount({ '/a': Open, '/b': Open }, { maxConnections: 2 });
    const a = await connect(port, '/a');
    await connect(port, '/b');
    const answer = await rawRequest(port, upgradeRequest('/a'));
    expectCompleteRejection(answer, 503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(answer.body).toMatch(/maxConnections \(2\)/);
    expect(opened).toEqual(['/a', '/b']);
    expect(handler.stats()).toMatchObject({ connections: 2, handshakesRejectedByStatus: { 503: 1 } });

    await a.close(1000);
    await waitFor(() => handler.stats().connections === 1, 2000, 'the close');
    await connect(port, '/a');
    expect(opened).toEqual(['/a', '/b', '/a']);
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/b')), 503);
  });

  test('upgrades still in an async verify() count toward the limit', async () => {
    opened = [];
    const g = gate();
    let entered = 0;
    class Slow extends Open {
      override async verify(): Promise<void> {
        entered++;
        await g.wait;
      }
    }
    const { port, handler } = await mount({ '/slow': Slow, '/fast': Open }, { maxConnections: 1 });
    const waiting = startUpgrade(port, '/slow');
    await waitFor(() => entered === 1, 2000, 'verify()');
    expect(handler.stats().pendingHandshakes).toBe(1);
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/fast')), 503);
    let head = '';
    waiting.on('data', (d: Buffer) => (head += d.toString('latin1')));
    g.open();
    await waitFor(() => head.includes('\r\n\r\n'), 2000, 'the 101');
    expect(head.startsWith('HTTP/1.1 101')).toBe(true);
    await waitFor(() => opened.length === 1, 2000, 'onOpen');
    expect(opened).toEqual(['/slow']);
  });

  test('every refused verify() gives its place back: after 10 refusals of each kind (false, HandshakeRejection, throw, client gone), a new connection still gets in', async () => {
    opened = [];
    let left = 0;
    class Picky extends Open {
      override async verify(): Promise<boolean | void> {
        const kind = this.query.get('kind');
        if (kind === 'false') return false;
        if (kind === 'reject') throw new HandshakeRejection(401, 'log in');
        if (kind === 'throw') throw new Error('bug');
        if (kind === 'leave') {
          // Settle only once the server has seen the client go.
          await waitFor(() => this.request.socket.destroyed, 2000, 'the client to leave');
          left++;
        }
      }
    }
    const { port, handler } = await mount({ '/p': Picky }, { maxConnections: 1, maxConnectionsPerIp: 1 });
    for (let i = 0; i < 10; i++) {
      expect((await rawRequest(port, upgradeRequest('/p?kind=false'))).status).toBe(403);
      expect((await rawRequest(port, upgradeRequest('/p?kind=reject'))).status).toBe(401);
      expect((await rawRequest(port, upgradeRequest('/p?kind=throw'))).status).toBe(500);
      // A client that leaves while verify() runs.
      const s = startUpgrade(port, '/p?kind=leave');
      await sleep(5);
      s.destroy();
      await waitFor(() => left === i + 1, 2000, 'the verify() of a client that left');
    }
    expect(handler.stats().pendingHandshakes).toBe(0);
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ 401: 10, 403: 10, 500: 10 });
    const client = await connect(port, '/p');
    expect(client.status).toBe(101);
    expect(opened).toEqual(['/p']);
    // It holds the only place.
    expect((await rawRequest(port, upgradeRequest('/p'))).status).toBe(503);
  });

  test('connections that end every way (close, vanish, terminate, server close) give their places back', async () => {
    const made: Behavior[] = [];
    class Kept extends Behavior {
      override onOpen(): void {
        made.push(this);
      }
    }
    const { port, handler } = await mount({ '/k': Kept }, { maxConnections: 1 });
    for (const end of ['close', 'destroy', 'terminate', 'server close'] as const) {
      const client = await connect(port, '/k');
      await waitFor(() => made.length > 0, 2000, 'open');
      const b = made.pop() as Behavior;
      if (end === 'close') await client.close(1000);
      else if (end === 'destroy') client.destroy();
      else if (end === 'terminate') b.terminate();
      else {
        b.close(4000);
        await client.close(4000);
      }
      await waitFor(() => handler.stats().connections === 0, 2000, `after ${end}`);
    }
    await connect(port, '/k');
    expect(handler.stats().connections).toBe(1);
  });
});

describe('maxConnections per route (static)', () => {
  test("a route's static maxConnections refuses that route only, with 503; the other routes go on", async () => {
    opened = [];
    class One extends Open {
      static override maxConnections = 1;
    }
    class Off extends Open {
      static override maxConnections = 0;
    }
    const { port } = await mount({ '/one': One, '/many': Open, '/off': Off });
    await connect(port, '/one');
    const answer = await rawRequest(port, upgradeRequest('/one'));
    expectCompleteRejection(answer, 503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(answer.body).toMatch(/\/one is at its maxConnections \(1\)/);
    for (let i = 0; i < 3; i++) await connect(port, '/many');
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/off')), 503);
    expect(opened).toEqual(['/one', '/many', '/many', '/many']);
  });

  test('the handler-wide limit counts every route together', async () => {
    class Roomy extends Open {
      static override maxConnections = 10;
    }
    const { port } = await mount({ '/x': Roomy, '/y': Roomy }, { maxConnections: 2 });
    await connect(port, '/x');
    await connect(port, '/y');
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/x')), 503);
  });
});

describe('maxConnectionsPerIp', () => {
  test('a second connection from the same address gets a complete 429 with Retry-After; another address gets in; the place comes back on close', async () => {
    opened = [];
    const { port, handler } = await mount({ '/a': Open }, { maxConnectionsPerIp: 1 });
    const first = await connect(port, '/a');
    const answer = await rawRequest(port, upgradeRequest('/a'));
    expectCompleteRejection(answer, 429);
    expect(answer.headers['retry-after']).toBe('5');
    expect(answer.body).toMatch(/too many connections from 127\.0\.0\.1/);
    expect((await upgradeFrom(port, '/a', '127.0.0.2')).status).toBe(101);
    expect((await upgradeFrom(port, '/a', '127.0.0.2')).status).toBe(429);
    await first.close(1000);
    await waitFor(() => handler.stats().connections === 1, 2000, 'the close');
    await connect(port, '/a');
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ 429: 2 });
  });
});

describe('verifyTimeout', () => {
  test('a verify() slower than verifyTimeout gets a complete 503 with Retry-After; its later verdict is ignored (no onOpen); its place comes back, once', async () => {
    opened = [];
    let verdicts = 0;
    const { calls, logger } = fakeLogger();
    class Slow extends Open {
      override async verify(): Promise<boolean> {
        await sleep(this.query.get('ms') === null ? 300 : Number(this.query.get('ms')));
        verdicts++;
        return true;
      }
    }
    const { port, handler } = await mount({ '/slow': Slow }, { verifyTimeout: 100, maxConnections: 1, logger, logLevel: 'debug' });
    const t0 = performance.now();
    const answer = await rawRequest(port, upgradeRequest('/slow'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100 - 5);
    expectCompleteRejection(answer, 503);
    expect(answer.headers['retry-after']).toBe('5');
    await waitFor(() => verdicts === 1, 2000, 'the late verdict');
    await sleep(30);
    expect(opened).toEqual([]);
    expect(handler.stats()).toMatchObject({ verifyTimeouts: 1, connections: 0, pendingHandshakes: 0, handshakesRejectedByStatus: { 503: 1 } });
    expect(calls.filter((c) => c.level === 'error')).toEqual([]);
    // The place is free again: a verify() within the limit opens.
    const client = await connect(port, '/slow?ms=10');
    expect(client.status).toBe(101);
    expect(opened).toEqual(['/slow']);
    // …exactly once: the late verdict did not give it back a second time.
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/slow?ms=10')), 503);
  });

  test('a verify() that rejects after the timeout is ignored too: no error logged, nothing unhandled', async () => {
    let rejected = false;
    const { calls, logger } = fakeLogger();
    class Late extends Open {
      override async verify(): Promise<void> {
        await sleep(150);
        rejected = true;
        throw new Error('too late');
      }
    }
    const { port } = await mount({ '/late': Late }, { verifyTimeout: 50, logger, logLevel: 'debug' });
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/late')), 503);
    await waitFor(() => rejected, 2000, 'the late rejection');
    await sleep(30);
    expect(calls.filter((c) => c.level === 'error')).toEqual([]);
  });
});

/** Reads frames until the server's close frame; returns it and the data frames before it. */
async function failedWith(client: RawClient): Promise<{ code: number | undefined; reason: string; before: RawFrame[] }> {
  const before: RawFrame[] = [];
  for (;;) {
    const f = await client.nextFrame(3000);
    if (f.opcode === 0x8) return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, reason: f.payload.subarray(2).toString(), before };
    before.push(f);
  }
}

function texts(payloads: string[]): Buffer {
  return Buffer.concat(payloads.map((p) => encodeClientFrame(0x1, p)));
}

describe('rateLimit (token bucket)', () => {
  test('a burst of exactly `messages` passes; one more fails the connection with 1008 "message rate limit exceeded" and is not delivered', async () => {
    const got: string[] = [];
    class Counted extends Echo {
      override onText(text: string): void {
        got.push(text);
        super.onText(text);
      }
    }
    const { port, handler } = await mount({ '/r': Counted }, { rateLimit: { messages: 5, interval: 60_000 } });
    const ok = await connect(port, '/r');
    ok.sendRaw(texts(['1', '2', '3', '4', '5']));
    await waitFor(() => got.length === 5, 2000, 'five');
    await sleep(30);
    expect(ok.pending().map((f) => f.payload.toString())).toEqual(['1', '2', '3', '4', '5']);
    expect(ok.tcpClosed).toBe(false);

    got.length = 0;
    const over = await connect(port, '/r');
    over.sendRaw(texts(['1', '2', '3', '4', '5', '6', '7', '8']));
    const end = await failedWith(over);
    expect(end.code).toBe(1008);
    expect(end.reason).toBe('message rate limit exceeded');
    expect(end.before.map((f) => f.payload.toString())).toEqual(['1', '2', '3', '4', '5']);
    expect(got).toEqual(['1', '2', '3', '4', '5']);
    expect(await over.waitClosed(3000)).toBe(true);
    expect(handler.stats().rateLimitCloses).toBe(1);
  });

  test('the bucket refills at messages/interval, up to `messages` and no more', async () => {
    // 2 messages per 200 ms: one token per 100 ms, at most 2.
    const { port } = await mount({ '/r': Echo }, { rateLimit: { messages: 2, interval: 200 } });
    const client = await connect(port, '/r');
    client.sendRaw(texts(['a', 'b']));
    await sleep(250);
    client.sendRaw(texts(['c', 'd']));
    await sleep(600); // would be 6 tokens without the cap
    client.sendRaw(texts(['e', 'f', 'g']));
    const end = await failedWith(client);
    expect(end.before.map((f) => f.payload.toString())).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(end).toMatchObject({ code: 1008, reason: 'message rate limit exceeded' });
  });

  test('pings count (each answered with a pong while within the limit); pongs do not', async () => {
    const { port } = await mount({ '/r': Echo }, { rateLimit: { messages: 3, interval: 60_000 } });
    const client = await connect(port, '/r');
    for (let i = 0; i < 10; i++) client.send(0xa, `pong ${i}`);
    client.send(0x9, 'p1');
    client.send(0x9, 'p2');
    client.send(0x1, 'text');
    client.send(0x9, 'p3');
    const end = await failedWith(client);
    expect(end.before.map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [0xa, 'p1'],
      [0xa, 'p2'],
      [0x1, 'text'],
    ]);
    expect(end.code).toBe(1008);
  });

  test('per-route statics: rateLimit = false turns it off for that route; a RateLimit object replaces the handler one', async () => {
    class Free extends Echo {
      static override rateLimit = false as const;
    }
    class Three extends Echo {
      static override rateLimit = { messages: 3, interval: 60_000 };
    }
    const { port } = await mount({ '/free': Free, '/three': Three, '/inherit': Echo }, { rateLimit: { messages: 1, interval: 60_000 } });
    const free = await connect(port, '/free');
    free.sendRaw(texts(Array.from({ length: 20 }, (_, i) => `m${i}`)));
    const echoed: string[] = [];
    while (echoed.length < 20) echoed.push((await free.nextFrame(2000)).payload.toString());
    expect(echoed).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));

    const three = await connect(port, '/three');
    three.sendRaw(texts(['1', '2', '3', '4']));
    const t = await failedWith(three);
    expect(t.before).toHaveLength(3);
    expect(t.code).toBe(1008);

    const inherit = await connect(port, '/inherit');
    inherit.sendRaw(texts(['1', '2']));
    const i = await failedWith(inherit);
    expect(i.before).toHaveLength(1);
    expect(i.code).toBe(1008);
    expect(free.tcpClosed).toBe(false);
  });
});
