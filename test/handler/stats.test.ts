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
import { Behavior, type HandlerStats } from '../../src/index.js';
import { Echo, useFixture } from '../helpers/fixture.js';
import { encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

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
});
