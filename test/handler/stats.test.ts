/**
 * handler.stats(): a snapshot of the handler's counters. Every field moves as documented:
 * connections (in all and per route pattern), pending handshakes, handshakes accepted and
 * rejected by status, data messages and wire bytes in and out (frame headers and masks included,
 * RFC 6455 §5.2), closes by the code onClose saw. The heartbeat, idle, rate-limit, backpressure
 * and verify-timeout counters are checked beside their features (heartbeat, backpressure,
 * connection-limits tests).
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, DURATION_BOUNDS, type HandlerStats, MAX_CLOSE_CODES, type RouteStats } from '../../src/index.js';
import { Counters } from '../../src/stats.js';
import { Echo, useFixture } from '../helpers/fixture.js';
import { encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { routeStats } from '../helpers/stats.js';

const { mount, connect, keep, defer } = useFixture();

const made: Behavior[] = [];
class Held extends Echo {
  override onOpen(): void {
    made.push(this);
  }
}

/** Subtracts the numeric counters of two snapshots. */
function delta(after: HandlerStats, before: HandlerStats, keys: (keyof HandlerStats)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (after[k] as number) - (before[k] as number);
  return out;
}

const traffic: (keyof HandlerStats)[] = ['messagesIn', 'messagesOut', 'bytesIn', 'bytesOut'];

const emptyRoute: RouteStats = routeStats();

describe('stats()', () => {
  test('a new handler: zero everywhere, every route listed with 0 connections, empty maps', async () => {
    const { handler } = await mount({ '/a': Echo, '/rooms/:id': Echo });
    expect(handler.stats()).toEqual({
      connections: 0,
      connectionsByRoute: { '/a': 0, '/rooms/:id': 0 },
      pendingHandshakes: 0,
      handshakesAccepted: 0,
      handshakesRejected: 0,
      handshakesRejectedByStatus: {},
      messagesIn: 0,
      messagesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      closesByCode: {},
      backpressureDrops: 0,
      backpressureCloses: 0,
      pingsSent: 0,
      pongTimeouts: 0,
      idleCloses: 0,
      rateLimitCloses: 0,
      verifyTimeouts: 0,
      heartbeatRtt: { bounds: DURATION_BOUNDS, counts: new Array(DURATION_BOUNDS.length + 1).fill(0), count: 0, sum: 0 },
      routes: { '/a': emptyRoute, '/rooms/:id': emptyRoute },
      topics: 0,
      subscriptions: 0,
      publishes: 0,
      backplane: null,
      compression: {
        connections: 0,
        messagesIn: 0,
        compressedBytesIn: 0,
        inflatedBytesIn: 0,
        messagesOut: 0,
        uncompressedBytesOut: 0,
        compressedBytesOut: 0,
      },
    });
  });

  test('messages and bytes in/out count data messages and their wire bytes, headers and masks included (7-, 16-, 64-bit lengths)', async () => {
    const { handler, port } = await mount({ '/e': Held });
    const client = await connect(port, '/e');
    const cases: [string, () => void, number, number][] = [
      // [what, send, bytes in (client frames: header + 4-byte mask + payload), bytes out (server echo: header + payload)]
      ['5-byte text', () => client.send(0x1, 'hello'), 2 + 4 + 5, 2 + 5],
      ['125-byte text (largest 7-bit length)', () => client.send(0x1, 'x'.repeat(125)), 2 + 4 + 125, 2 + 125],
      ['126-byte text (16-bit length)', () => client.send(0x1, 'y'.repeat(126)), 4 + 4 + 126, 4 + 126],
      ['70,000-byte text (64-bit length)', () => client.send(0x1, 'z'.repeat(70_000)), 10 + 4 + 70_000, 10 + 70_000],
      ['empty text', () => client.send(0x1, ''), 2 + 4, 2],
    ];
    for (const [what, send, bytesIn, bytesOut] of cases) {
      const before = handler.stats();
      send();
      await client.nextFrame(3000);
      expect({ what, ...delta(handler.stats(), before, traffic) }).toEqual({ what, messagesIn: 1, messagesOut: 1, bytesIn, bytesOut });
    }
  });

  test('a fragmented message counts once, with every frame’s bytes; binary counts the same way', async () => {
    const got: number[] = [];
    class Sink extends Behavior {
      override onText(text: string): void {
        got.push(text.length);
      }
      override onBinary(bytes: Buffer): void {
        got.push(bytes.length);
        this.sendBinary(bytes.subarray(0, 3));
      }
    }
    const { handler, port } = await mount({ '/s': Sink });
    const client = await connect(port, '/s');
    const before = handler.stats();
    client.send(0x1, 'ab', { fin: false });
    client.send(0x0, 'cd', { fin: false });
    client.send(0x0, 'e', { fin: true });
    await waitFor(() => got.length === 1, 2000, 'the message');
    expect(delta(handler.stats(), before, traffic)).toEqual({ messagesIn: 1, messagesOut: 0, bytesIn: 8 + 8 + 7, bytesOut: 0 });
    const mid = handler.stats();
    client.send(0x2, Buffer.alloc(300));
    await client.nextFrame(2000);
    expect(delta(handler.stats(), mid, traffic)).toEqual({ messagesIn: 1, messagesOut: 1, bytesIn: 4 + 4 + 300, bytesOut: 2 + 3 });
  });

  test('bytesIn counts every byte read after the handshake: control frames, and frames that came in the same packet as the upgrade request', async () => {
    class Quiet extends Behavior {
      override onOpen(): void {
        made.push(this);
      }
    }
    made.length = 0;
    const { handler, port } = await mount({ '/q': Quiet });
    const socket = keep(net.connect(port, '127.0.0.1'));
    socket.on('error', () => {});
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/q')), encodeClientFrame(0x1, 'early'), encodeClientFrame(0x9, 'pi')]));
    await waitFor(() => handler.stats().messagesIn === 1, 2000, 'the early message');
    expect(handler.stats().bytesIn).toBe(2 + 4 + 5 + (2 + 4 + 2));
  });

  test('a broadcast counts one message and its bytes per recipient', async () => {
    made.length = 0;
    const { handler, port } = await mount({ '/e': Held });
    const clients = [await connect(port, '/e'), await connect(port, '/e'), await connect(port, '/e')];
    await waitFor(() => made.length === 3, 2000, 'three open');
    const before = handler.stats();
    expect(handler.broadcast('hi')).toBe(3);
    expect(handler.broadcast(Buffer.alloc(200))).toBe(3);
    for (const c of clients) await c.nextFrame(2000);
    expect(delta(handler.stats(), before, traffic)).toEqual({ messagesIn: 0, messagesOut: 6, bytesIn: 0, bytesOut: 3 * (2 + 2) + 3 * (4 + 200) });
  });

  test('connections and connectionsByRoute follow opens and closes; closesByCode counts the code each onClose saw', async () => {
    made.length = 0;
    class Room extends Held {}
    const { handler, port } = await mount({ '/a': Held, '/rooms/:id': Room });
    const a1 = await connect(port, '/a');
    const a2 = await connect(port, '/a');
    const r = await connect(port, '/rooms/x');
    await waitFor(() => made.length === 3, 2000, 'three open');
    expect(handler.stats()).toMatchObject({ connections: 3, connectionsByRoute: { '/a': 2, '/rooms/:id': 1 }, handshakesAccepted: 3 });

    await a1.close(1000);
    await waitFor(() => handler.stats().connections === 2, 2000, 'first close');
    expect(handler.stats()).toMatchObject({ connectionsByRoute: { '/a': 1, '/rooms/:id': 1 }, closesByCode: { 1000: 1 } });
    a2.destroy();
    const room = made[2] as Behavior;
    room.close(4001, 'bye');
    await r.close(4001, 'bye'); // answers the server's close frame
    await waitFor(() => handler.stats().connections === 0, 2000, 'all closed');
    expect(handler.stats()).toMatchObject({
      connections: 0,
      connectionsByRoute: { '/a': 0, '/rooms/:id': 0 },
      closesByCode: { 1000: 1, 1006: 1, 4001: 1 },
    });
  });

  test('handshakesRejected and handshakesRejectedByStatus count every refusal by status, including 404 for an unmatched path the handler answers', async () => {
    class Picky extends Behavior {
      override verify(): boolean {
        return this.query.get('ok') === 'yes';
      }
    }
    const { handler, port } = await mount({ '/p': Picky }, { maxConnections: 1 });
    expect((await rawRequest(port, upgradeRequest('/p'))).status).toBe(403);
    expect((await rawRequest(port, upgradeRequest('/p'))).status).toBe(403);
    expect((await rawRequest(port, upgradeRequest('/nowhere'))).status).toBe(404);
    expect((await rawRequest(port, upgradeRequest('/p?ok=yes', { 'Sec-WebSocket-Version': '8' }))).status).toBe(426);
    expect((await rawRequest(port, upgradeRequest('/p?ok=yes', { 'Sec-WebSocket-Key': '' }))).status).toBe(400);
    await connect(port, '/p?ok=yes');
    expect((await rawRequest(port, upgradeRequest('/p?ok=yes'))).status).toBe(503);
    expect(handler.stats()).toMatchObject({
      handshakesAccepted: 1,
      handshakesRejected: 6,
      handshakesRejectedByStatus: { 400: 1, 403: 2, 404: 1, 426: 1, 503: 1 },
    });
  });

  test('pendingHandshakes counts upgrades whose async verify() is running', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    defer(() => release());
    let entered = 0;
    class Slow extends Behavior {
      override async verify(): Promise<void> {
        entered++;
        await gate;
      }
    }
    const { handler, port } = await mount({ '/s': Slow });
    for (let i = 0; i < 2; i++) {
      const s = keep(net.connect(port, '127.0.0.1'));
      s.on('error', () => {});
      s.write(upgradeRequest('/s'));
    }
    await waitFor(() => entered === 2, 2000, 'both in verify()');
    expect(handler.stats()).toMatchObject({ pendingHandshakes: 2, connections: 0 });
    release();
    await waitFor(() => handler.stats().connections === 2, 2000, 'both open');
    expect(handler.stats()).toMatchObject({ pendingHandshakes: 0, handshakesAccepted: 2 });
  });

  test('a snapshot is a new plain object each time: changing one changes nothing', async () => {
    const { handler, port } = await mount({ '/e': Echo });
    const first = handler.stats();
    first.connections = 99;
    first.connectionsByRoute['/e'] = 99;
    first.closesByCode['1000'] = 5;
    const client = await connect(port, '/e');
    await client.close(1000);
    await waitFor(() => handler.stats().connections === 0 && handler.stats().handshakesAccepted === 1, 2000, 'the round trip');
    await sleep(10);
    const second = handler.stats();
    expect(second).not.toBe(first);
    expect(second.connectionsByRoute).toEqual({ '/e': 0 });
    expect(second.closesByCode).toEqual({ 1000: 1 });
  });

  test('routes: each route counts its own traffic, opens and closes; the totals are their sums', async () => {
    made.length = 0;
    class Other extends Held {}
    const { handler, port } = await mount({ '/a': Held, '/b': Other, '/idle': Echo });
    const a = await connect(port, '/a');
    const b1 = await connect(port, '/b');
    const b2 = await connect(port, '/b');
    await waitFor(() => made.length === 3, 2000, 'three open');
    a.send(0x1, 'hello'); // 11 bytes in, 7 out
    await a.nextFrame(2000);
    for (const b of [b1, b2]) {
      b.send(0x1, 'x'.repeat(200)); // 4 + 4 + 200 in, 4 + 200 out
      await b.nextFrame(2000);
    }
    await b1.close(4002);
    await waitFor(() => handler.stats().connections === 2, 2000, 'b1 closed');
    const s = handler.stats();
    expect(s.routes['/a']).toMatchObject({ connections: 1, handshakesAccepted: 1, messagesIn: 1, messagesOut: 1, bytesIn: 11, bytesOut: 7, closesByCode: {} });
    // b1's close frame (2 + 4 + 2 bytes) counts in bytesIn, the server's answer (2 + 2) in bytesOut.
    expect(s.routes['/b']).toMatchObject({ connections: 1, handshakesAccepted: 2, messagesIn: 2, messagesOut: 2, bytesIn: 2 * 208 + 8, bytesOut: 2 * 204 + 4, closesByCode: { 4002: 1 } });
    expect(s.routes['/idle']).toEqual(emptyRoute);
    for (const k of ['messagesIn', 'messagesOut', 'bytesIn', 'bytesOut', 'handshakesAccepted'] as const) {
      expect({ k, total: s[k] }).toEqual({ k, total: (s.routes['/a'] as RouteStats)[k] + (s.routes['/b'] as RouteStats)[k] });
    }
    expect(s.closesByCode).toEqual({ 4002: 1 });
  });

  test('heartbeatRtt: every answered heartbeat ping lands in one bucket; per route and in all; sum in seconds', async () => {
    made.length = 0;
    const { handler, port } = await mount({ '/h': Held, '/quiet': Echo }, { pingInterval: 50, pongTimeout: 1000 });
    const client = await connect(port, '/h');
    let answered = 0;
    for (let i = 0; i < 3; i++) {
      const frame = await client.nextFrame(3000);
      expect(frame.opcode).toBe(0x9);
      client.send(0xa, frame.payload);
      answered++;
      await waitFor(() => handler.stats().heartbeatRtt.count === answered, 2000, `round trip ${answered}`);
    }
    const s = handler.stats();
    const h = s.heartbeatRtt;
    expect(h.counts.length).toBe(DURATION_BOUNDS.length + 1);
    expect(h.counts.reduce((x, y) => x + y, 0)).toBe(3);
    expect(h.sum).toBeGreaterThan(0);
    expect(h.sum).toBeLessThan(3 * 3); // three answers, each within the 3 s wait, in seconds (not ms)
    expect(s.routes['/h']?.heartbeatRtt).toEqual(h);
    expect(s.routes['/h']?.pingsSent).toBeGreaterThanOrEqual(3);
    expect(s.routes['/quiet']?.heartbeatRtt.count).toBe(0);
    // The latency the behavior reports is the last round trip, and lies in a bucket that counted.
    const latency = (made[0] as Behavior).latency as number;
    const bucket = DURATION_BOUNDS.findIndex((bound) => latency / 1000 <= bound);
    expect(h.counts[bucket === -1 ? DURATION_BOUNDS.length : bucket]).toBeGreaterThan(0);
  });

  test(`closesByCode stays bounded: past ${MAX_CLOSE_CODES} distinct codes on a route, new ones count under "other"`, async () => {
    const { handler, port } = await mount({ '/e': Echo });
    const codes = Array.from({ length: MAX_CLOSE_CODES + 5 }, (_, i) => 4000 + i);
    for (const code of codes) {
      const c = await connect(port, '/e');
      await c.close(code);
    }
    // A code already counted keeps counting as itself.
    const again = await connect(port, '/e');
    await again.close(4000);
    await waitFor(() => handler.stats().connections === 0 && Object.values(handler.stats().closesByCode).reduce((x, y) => x + y, 0) === codes.length + 1, 3000, 'every close');
    const byCode = handler.stats().closesByCode;
    expect(Object.keys(byCode).length).toBe(MAX_CLOSE_CODES + 1);
    expect(byCode.other).toBe(5);
    expect(byCode['4000']).toBe(2);
    expect(byCode[String(4000 + MAX_CLOSE_CODES - 1)]).toBe(1);
    expect(byCode[String(4000 + MAX_CLOSE_CODES)]).toBeUndefined();
  });

  test('the totals add every counter a route keeps: Counters.add() leaves out no field (a counter added later must be summed too)', () => {
    const route = new Counters();
    const numeric = Object.keys(route).filter((k) => typeof (route as unknown as Record<string, unknown>)[k] === 'number');
    expect(numeric.length).toBeGreaterThan(15);
    for (const [i, k] of numeric.entries()) (route as unknown as Record<string, number>)[k] = i + 1;
    route.roundTrip(3);
    route.roundTrip(20_000);
    route.closedWith(1000);
    route.rejectedWith(403);
    const total = new Counters();
    total.add(route);
    total.add(route);
    for (const k of numeric) {
      expect({ k, v: (total as unknown as Record<string, number>)[k] }).toEqual({ k, v: 2 * ((route as unknown as Record<string, number>)[k] ?? NaN) });
    }
    expect(total.rtt).toEqual(route.rtt.map((n) => 2 * n));
    expect([...total.closes]).toEqual([[1000, 2]]);
    expect([...total.rejected]).toEqual([[403, 2]]);
  });
});
