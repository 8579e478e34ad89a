/**
 * Graceful shutdown (handler.close, Symbol.asyncDispose) and the per-connection closeTimeout:
 * no shutdown leaves sockets open, and the host's server.close() then completes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, type BehaviorClass, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { defer, mount, connect } = useFixture();

function closeHttp(server: http.Server, limit = 3000): Promise<'closed' | 'hung'> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve('closed');
      return;
    }
    const t = setTimeout(() => resolve('hung'), limit);
    server.close(() => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

function tracked(): { cls: BehaviorClass; closes: number[] } {
  const closes: number[] = [];
  class T extends Behavior {
    override onClose(code: number): void {
      closes.push(code);
    }
  }
  return { cls: T, closes };
}

async function closeFrame(client: RawClient): Promise<{ code: number | undefined; reason: string }> {
  const f = await client.nextFrame(2000);
  expect(f.opcode).toBe(0x8);
  return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, reason: f.payload.subarray(2).toString() };
}

describe('handler.close()', () => {
  test('sends 1001 to every client, waits for their close frames, and resolves once every socket is gone', async () => {
    const t = tracked();
    const { handler, port } = await mount({ '/a': t.cls, '/b': t.cls }, { closeTimeout: 5000 });
    const clients = [await connect(port, '/a'), await connect(port, '/a'), await connect(port, '/b')];
    await waitFor(() => handler.clients.size === 3, 2000, 'three');

    let resolved = false;
    const closing = handler.close({ timeout: 5000 }).then(() => {
      resolved = true;
    });
    for (const c of clients) expect(await closeFrame(c)).toEqual({ code: 1001, reason: '' });
    await sleep(150);
    expect(resolved).toBe(false); // still waiting for the clients' close frames

    const t0 = Date.now();
    for (const c of clients) c.send(0x8, closePayload(1001));
    await within(closing, 3000, 'close');
    expect(Date.now() - t0).toBeLessThan(1000);
    for (const c of clients) expect(await c.waitClosed(1000)).toBe(true);
    expect(handler.clients.size).toBe(0);
    expect(t.closes).toEqual([1001, 1001, 1001]);
  });

  test('a code and reason can be given', async () => {
    const { handler, port } = await mount({ '/a': Behavior });
    const client = await connect(port, '/a');
    const closing = handler.close({ code: 1012, reason: 'restarting', timeout: 2000 });
    expect(await closeFrame(client)).toEqual({ code: 1012, reason: 'restarting' });
    client.send(0x8, closePayload(1012));
    await within(closing, 3000, 'close');
  });

  test('a client that never answers the close frame is destroyed after the timeout (300 ms) and the promise still resolves', async () => {
    const t = tracked();
    const { handler, port } = await mount({ '/a': t.cls }, { closeTimeout: 10_000 });
    const polite = await connect(port, '/a');
    const mute = await connect(port, '/a');
    await waitFor(() => handler.clients.size === 2, 2000, 'two');
    const t0 = Date.now();
    const closing = handler.close({ timeout: 300 });
    expect((await closeFrame(polite)).code).toBe(1001);
    polite.send(0x8, closePayload(1001));
    expect((await closeFrame(mute)).code).toBe(1001);
    await within(closing, 3000, 'close');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(await mute.waitClosed(1000)).toBe(true);
    expect(handler.clients.size).toBe(0);
    expect([...t.closes].sort()).toEqual([1001, 1006]);
  });

  test('calling close() twice returns the same promise', async () => {
    const { handler, port } = await mount({ '/a': Behavior });
    const client = await connect(port, '/a');
    const first = handler.close({ timeout: 300 });
    const second = handler.close({ timeout: 10_000, code: 4000 });
    expect(second).toBe(first);
    expect((await closeFrame(client)).code).toBe(1001);
    client.send(0x8, closePayload(1001));
    await within(first, 3000, 'close');
    expect(handler.close()).toBe(first);
  });

  test('with no clients it resolves at once', async () => {
    const { handler } = await mount({ '/a': Behavior }, { closeTimeout: 10_000 });
    const t0 = Date.now();
    await within(handler.close(), 3000, 'close');
    expect(Date.now() - t0).toBeLessThan(200);
  });

  test('handler[Symbol.asyncDispose]() closes every client like close()', async () => {
    const t = tracked();
    const { handler, port } = await mount({ '/a': t.cls }, { closeTimeout: 300 });
    const client = await connect(port, '/a');
    await waitFor(() => handler.clients.size === 1, 2000, 'one');
    const disposing = handler[Symbol.asyncDispose]();
    expect((await closeFrame(client)).code).toBe(1001);
    client.send(0x8, closePayload(1001));
    await within(disposing, 3000, 'close');
    expect(handler.clients.size).toBe(0);
    expect(t.closes).toEqual([1001]);
    expect(handler.close()).toBe(disposing);
  });

  test('`await using` closes the handler at the end of the scope', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(async () => {
      server.closeAllConnections();
      await closeHttp(server);
    });
    const port = (server.address() as AddressInfo).port;
    let client: RawClient | undefined;
    let scoped: WebSocketHandler | undefined;
    {
      await using handler = createWebSocketHandler({ '/a': Behavior }, { logLevel: 'silent', closeTimeout: 300 });
      handler.attach(server);
      scoped = handler;
      client = await connect(port, '/a');
      await waitFor(() => handler.clients.size === 1, 2000, 'one');
    }
    expect(scoped.clients.size).toBe(0);
    expect(await client.waitClosed(1000)).toBe(true);
  });

  test("after handler.close(), the host's server.close() completes instead of hanging", async () => {
    const { handler, server, port } = await mount({ '/a': Behavior }, { closeTimeout: 300 });
    const a = await connect(port, '/a');
    const b = await connect(port, '/a');
    await waitFor(() => handler.clients.size === 2, 2000, 'two');
    a.send(0x8, closePayload(1000)); // one leaves on its own, the other is told to
    await within(handler.close({ timeout: 300 }), 3000, 'close');
    expect(await b.waitClosed(1000)).toBe(true);
    expect(await closeHttp(server)).toBe('closed');
  });

  test('without handler.close(), server.close() waits on the upgraded sockets (why close() exists)', async () => {
    const { handler, server, port } = await mount({ '/a': Behavior });
    await connect(port, '/a');
    await waitFor(() => handler.clients.size === 1, 2000, 'one');
    expect(await closeHttp(server, 300)).toBe('hung');
    await within(handler.close({ timeout: 300 }), 3000, 'close');
  });
});

describe('closeTimeout', () => {
  test('a client that never answers our close() is destroyed after closeTimeout (200 ms) and onClose sees 1006', async () => {
    const closes: [number, number][] = [];
    let closedAt = 0;
    class Closer extends Behavior {
      override onText(): void {
        closedAt = Date.now();
        this.close(1000, 'bye');
      }
      override onClose(code: number): void {
        closes.push([code, Date.now() - closedAt]);
      }
    }
    const { port } = await mount({ '/c': Closer }, { closeTimeout: 200 });
    const client = await connect(port, '/c');
    client.send(0x1, 'close please');
    expect(await closeFrame(client)).toEqual({ code: 1000, reason: 'bye' });
    expect(await client.waitClosed(2000)).toBe(true);
    await waitFor(() => closes.length === 1, 1000, 'onClose');
    const [code, after] = closes[0] as [number, number];
    expect(code).toBe(1006);
    expect(after).toBeGreaterThanOrEqual(180);
    expect(after).toBeLessThan(1500);
  });

  test('a client that answers in time is not cut off: onClose sees its code', async () => {
    const closes: number[] = [];
    class Closer extends Behavior {
      override onText(): void {
        this.close(4100);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { port } = await mount({ '/c': Closer }, { closeTimeout: 200 });
    const client = await connect(port, '/c');
    client.send(0x1, 'close please');
    expect((await closeFrame(client)).code).toBe(4100);
    await sleep(50);
    client.send(0x8, closePayload(4100));
    expect(await client.waitClosed(2000)).toBe(true);
    await waitFor(() => closes.length === 1, 1000, 'onClose');
    expect(closes).toEqual([4100]);
  });
});
