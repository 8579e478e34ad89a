/**
 * Handler-wide limits reach every connection, and a route's static override wins
 * (RFC 6455 §7.4.1: 1009 message too big, 1008 policy violation).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, createWebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import type { RawClient } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { serve, connect } = useFixture();

const sizes: number[] = [];
class Sink extends Behavior {
  override onBinary(bytes: Buffer): void {
    sizes.push(bytes.length);
    this.sendText(`got ${bytes.length}`);
  }
}
class Roomy extends Sink {
  static override maxPayload = 4096;
}
class Choppy extends Sink {
  static override maxFragments = 2;
}

/** Connects a fresh client to `path` and sends one binary message of `size` bytes on it. */
async function sendBinary(port: number, path: string, size: number): Promise<RawClient> {
  const client = await connect(port, path);
  client.send(0x2, Buffer.alloc(size));
  return client;
}

describe('limits', () => {
  test('defaults are safe: maxPayload 1 MiB, maxFragments 1024, closeTimeout 10 s, unclaimedTimeout 2 s, maxBackpressure 4 MiB closing slow consumers, a 30 s / 20 s heartbeat, verifyTimeout 10 s', () => {
    const o = createWebSocketHandler({ '/s': Sink }).options;
    expect(o.maxPayload).toBe(1 << 20);
    expect(o.closeTimeout).toBe(10_000);
    expect(o.maxFragments).toBe(1024);
    expect(o.unclaimedTimeout).toBe(2000);
    expect(o.maxBackpressure).toBe(4 * 1024 * 1024);
    expect(o.backpressure).toBe('close');
    expect(o.pingInterval).toBe(30_000);
    expect(o.pongTimeout).toBe(20_000);
    expect(o.idleTimeout).toBe(0);
    expect(o.verifyTimeout).toBe(10_000);
    // Off by default, for reasons the docs give (proxies and NATs share addresses; fair rates differ by app).
    expect(o.maxConnections).toBe(Infinity);
    expect(o.maxConnectionsPerIp).toBe(Infinity);
    expect(o.rateLimit).toBeUndefined();
  });

  test('given options are kept as given in handler.options', () => {
    const rateLimit = { messages: 10, interval: 1000 };
    const o = createWebSocketHandler(
      { '/s': Sink },
      { maxBackpressure: 1, backpressure: 'drop', pingInterval: 0, pongTimeout: 1, idleTimeout: 5, verifyTimeout: 7, maxConnections: 0, maxConnectionsPerIp: 3, rateLimit },
    ).options;
    expect(o).toMatchObject({ maxBackpressure: 1, backpressure: 'drop', pingInterval: 0, pongTimeout: 1, idleTimeout: 5, verifyTimeout: 7, maxConnections: 0, maxConnectionsPerIp: 3, rateLimit });
  });

  test('the handler maxPayload closes an oversize message with 1009; a message at the limit passes', async () => {
    sizes.length = 0;
    const s = await serve({ '/s': Sink }, { maxPayload: 1000 });
    const ok = await sendBinary(s.port, '/s', 1000);
    expect((await ok.nextFrame(2000)).payload.toString()).toBe('got 1000');
    const big = await sendBinary(s.port, '/s', 1001);
    expect((await big.expectClose(2000)).code).toBe(1009);
    expect(sizes).toEqual([1000]);
  });

  test("a route's static maxPayload overrides the handler's", async () => {
    sizes.length = 0;
    const s = await serve({ '/small': Sink, '/roomy': Roomy }, { maxPayload: 100 });
    const roomy = await sendBinary(s.port, '/roomy', 4000);
    expect((await roomy.nextFrame(2000)).payload.toString()).toBe('got 4000');
    const small = await sendBinary(s.port, '/small', 101);
    expect((await small.expectClose(2000)).code).toBe(1009);
  });

  test("maxFragments (a route's override) closes a message in too many frames with 1008", async () => {
    sizes.length = 0;
    const s = await serve({ '/choppy': Choppy });
    const two = await connect(s.port, '/choppy');
    two.send(0x2, Buffer.from([1]), { fin: false });
    two.send(0x0, Buffer.from([2]), { fin: true });
    expect((await two.nextFrame(2000)).payload.toString()).toBe('got 2');
    const three = await connect(s.port, '/choppy');
    three.send(0x2, Buffer.from([1]), { fin: false });
    three.send(0x0, Buffer.from([2]), { fin: false });
    three.send(0x0, Buffer.from([3]), { fin: true });
    expect((await three.expectClose(2000)).code).toBe(1008);
    await waitFor(() => s.srv.handler.clients.size === 1, 2000, 'the cut client left');
  });
});

describe('option checks: bad values throw RangeError when the handler is built', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['maxBackpressure 0', { maxBackpressure: 0 }],
    ['maxBackpressure -1', { maxBackpressure: -1 }],
    ['maxBackpressure NaN', { maxBackpressure: Number.NaN }],
    ["maxBackpressure '100' (a string)", { maxBackpressure: '100' }],
    ["backpressure 'block'", { backpressure: 'block' }],
    ["backpressure 'CLOSE'", { backpressure: 'CLOSE' }],
    ['pingInterval -1', { pingInterval: -1 }],
    ['pingInterval NaN', { pingInterval: Number.NaN }],
    ['pongTimeout 0', { pongTimeout: 0 }],
    ['pongTimeout -5', { pongTimeout: -5 }],
    ['idleTimeout -1', { idleTimeout: -1 }],
    ['idleTimeout NaN', { idleTimeout: Number.NaN }],
    ['verifyTimeout 0', { verifyTimeout: 0 }],
    ['verifyTimeout -1', { verifyTimeout: -1 }],
    ['maxConnections -1', { maxConnections: -1 }],
    ['maxConnections NaN', { maxConnections: Number.NaN }],
    ['maxConnectionsPerIp -1', { maxConnectionsPerIp: -1 }],
    ['rateLimit.messages 0', { rateLimit: { messages: 0, interval: 1000 } }],
    ['rateLimit.messages -1', { rateLimit: { messages: -1, interval: 1000 } }],
    ['rateLimit.interval 0', { rateLimit: { messages: 5, interval: 0 } }],
    ['rateLimit.interval NaN', { rateLimit: { messages: 5, interval: Number.NaN } }],
    ['rateLimit without interval', { rateLimit: { messages: 5 } }],
  ];
  test.each(bad)('%s', (_what, options) => {
    const key = Object.keys(options)[0] as string;
    expect(() => createWebSocketHandler({ '/s': Sink }, options as HandlerOptions)).toThrow(RangeError);
    expect(() => createWebSocketHandler({ '/s': Sink }, options as HandlerOptions)).toThrow(new RegExp(`wsmount: ${key}`));
  });

  const badStatics: [string, Record<string, unknown>][] = [
    ['pingInterval -1', { pingInterval: -1 }],
    ['pongTimeout 0', { pongTimeout: 0 }],
    ['idleTimeout NaN', { idleTimeout: Number.NaN }],
    ['maxBackpressure 0', { maxBackpressure: 0 }],
    ['maxConnections -1', { maxConnections: -1 }],
    ["backpressure 'never'", { backpressure: 'never' }],
    ['rateLimit { messages: 0 }', { rateLimit: { messages: 0, interval: 1000 } }],
    ['rateLimit true', { rateLimit: true }],
  ];
  test.each(badStatics)('a route static %s (the message names the route)', (_what, statics) => {
    class Bad extends Sink {}
    Object.assign(Bad, statics);
    expect(() => createWebSocketHandler({ '/ok': Sink, '/bad/:id': Bad })).toThrow(RangeError);
    expect(() => createWebSocketHandler({ '/ok': Sink, '/bad/:id': Bad })).toThrow(/\/bad\/:id: /);
  });

  test('the edges that are allowed: 0 turns pingInterval, idleTimeout, maxConnections off or to zero; Infinity means no limit; statics may be 0 or false', () => {
    expect(() =>
      createWebSocketHandler({ '/s': Sink }, { pingInterval: 0, idleTimeout: 0, maxConnections: 0, maxConnectionsPerIp: 0, maxBackpressure: Infinity }),
    ).not.toThrow();
    class Statics extends Sink {
      static override pingInterval = 0;
      static override idleTimeout = 0;
      static override maxConnections = 0;
      static override rateLimit = false as const;
      static override backpressure = 'drop' as const;
    }
    expect(() => createWebSocketHandler({ '/s': Statics }, { rateLimit: { messages: 1, interval: 1 } })).not.toThrow();
    expect(() => createWebSocketHandler({ '/s': Sink }, { rateLimit: false })).not.toThrow();
  });
});

describe("rateLimit: false on the handler is off, as the route static's false is", () => {
  class Echo extends Behavior {
    override onText(text: string): void {
      this.sendText(text);
    }
  }
  class Limited extends Echo {
    static override rateLimit = { messages: 2, interval: 60_000 };
  }

  test('with the handler option false, a burst of 20 all arrive; a route with its own static limit is still limited', async () => {
    const s = await serve({ '/free': Echo, '/limited': Limited }, { rateLimit: false });
    const free = await connect(s.port, '/free');
    for (let i = 0; i < 20; i++) free.send(0x1, Buffer.from(`m${i}`));
    for (let i = 0; i < 20; i++) expect((await free.nextFrame(2000)).payload.toString()).toBe(`m${i}`);
    const limited = await connect(s.port, '/limited');
    for (let i = 0; i < 3; i++) limited.send(0x1, Buffer.from(`m${i}`));
    expect((await limited.nextFrame(2000)).payload.toString()).toBe('m0');
    expect((await limited.nextFrame(2000)).payload.toString()).toBe('m1');
    expect((await limited.expectClose(2000)).code).toBe(1008);
  });
});
