/**
 * listen(): an ephemeral loopback server whose close() always finishes promptly, whatever the
 * clients do.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { connect, listen } from '../../src/testing/index.js';

class Echo extends Behavior {
  onText(text: string) {
    this.sendText(text);
  }
}
class SlowVerify extends Behavior {
  verify() {
    return new Promise<boolean>(() => {}); // never settles
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function rawSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    cleanups.push(() => {
      s.destroy();
    });
  });
}

async function timed(p: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

describe('listen()', () => {
  test('serves routes on 127.0.0.1 with an ephemeral port; url() builds ws:// URLs', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo }, { handlerOptions: { logLevel: 'silent' } });
    cleanups.push(() => server.close());
    expect(server.port).toBeGreaterThan(0);
    expect(server.url('/echo?x=1')).toBe(`ws://127.0.0.1:${server.port}/echo?x=1`);
    expect(server.url('echo')).toBe(`ws://127.0.0.1:${server.port}/echo`);
    const client = await connect(server.url('/echo'));
    client.sendText('a');
    expect(await client.nextMessage()).toBe('a');
    await client.close();
  });

  test('plain HTTP requests get 426', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo });
    cleanups.push(() => server.close());
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http.get(`http://127.0.0.1:${server.port}/`, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
    expect(status).toBe(426);
  });

  test('close() sends 1001 to open clients and they close cleanly', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo }, { handlerOptions: { logLevel: 'silent' } });
    const a = await connect(server, '/echo');
    const b = await connect(server, '/echo');
    expect(await timed(server.close())).toBeLessThan(400);
    expect(await a.closed).toEqual({ code: 1001, reason: '' });
    expect(await b.closed).toEqual({ code: 1001, reason: '' });
    expect(server.server.listening).toBe(false);
  });

  test('close() does not hang on a client that never answers the close frame', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo }, { closeTimeout: 200, handlerOptions: { logLevel: 'silent' } });
    // A raw socket: completes the handshake by hand, then ignores everything.
    const s = await rawSocket(server.port);
    s.write('GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await new Promise((r) => s.once('data', r));
    expect(server.handler.clients.size).toBe(1);
    const gone = new Promise((r) => s.once('close', r));
    const ms = await timed(server.close());
    expect(ms).toBeLessThan(1500);
    await gone;
    expect(server.handler.clients.size).toBe(0);
  });

  test('close() does not hang on a client half-way through its handshake', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo }, { closeTimeout: 200 });
    const s = await rawSocket(server.port);
    s.write('GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: webs');
    const gone = new Promise((r) => s.once('close', r));
    expect(await timed(server.close())).toBeLessThan(1500);
    await gone;
  });

  test('close() does not hang on an upgrade whose verify() never settles', { timeout: 5000 }, async () => {
    const server = await listen({ '/slow': SlowVerify }, { closeTimeout: 200 });
    const client = connect(server, '/slow', { timeout: 3000 }).catch((e: unknown) => e);
    await expect.poll(() => server.server.listenerCount('upgrade')).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await timed(server.close())).toBeLessThan(1500);
    expect(await client).toBeInstanceOf(Error);
  });

  test('close() does not hang on a client that opened a TCP connection and said nothing', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo }, { closeTimeout: 200 });
    await rawSocket(server.port);
    expect(await timed(server.close())).toBeLessThan(1500);
  });

  test('close() twice returns the same promise; asyncDispose closes', { timeout: 5000 }, async () => {
    const server = await listen({ '/echo': Echo });
    expect(server.close()).toBe(server.close());
    await server.close();
    const other = await listen({ '/echo': Echo });
    await other[Symbol.asyncDispose]();
    expect(other.server.listening).toBe(false);
  });

  test('a handler passed in stays usable after close(); its in-memory clients are untouched', { timeout: 5000 }, async () => {
    const handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
    cleanups.push(() => handler.close({ timeout: 200 }));
    const first = await listen(handler);
    const tcp = await connect(first, '/echo');
    const memory = await connect(handler, '/echo');
    await first.close();
    expect((await tcp.closed).code).toBe(1001);
    expect(memory.state).toBe('open');
    const second = await listen(handler);
    cleanups.push(() => second.close());
    const again = await connect(second, '/echo');
    again.sendText('still here');
    expect(await again.nextMessage()).toBe('still here');
    memory.sendText('me too');
    expect(await memory.nextMessage()).toBe('me too');
    await again.close();
    await memory.close();
  });

  test('options.server: attaches to an existing server; starts it if it was not listening', { timeout: 5000 }, async () => {
    const app = http.createServer((_req, res) => res.end('app'));
    const server = await listen({ '/echo': Echo }, { server: app });
    expect(app.listening).toBe(true);
    const client = await connect(server, '/echo');
    await server.close();
    expect((await client.closed).code).toBe(1001);
    expect(app.listening).toBe(false);
    expect(app.listenerCount('upgrade')).toBe(0);
  });

  test('options.server already listening: close() leaves it listening and detaches', { timeout: 5000 }, async () => {
    const app = http.createServer((_req, res) => res.end('app'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { app.close(() => r()); app.closeAllConnections(); }));
    const server = await listen({ '/echo': Echo }, { server: app });
    expect(server.port).toBe((app.address() as net.AddressInfo).port);
    const client = await connect(server, '/echo');
    expect(await timed(server.close())).toBeLessThan(1500);
    expect((await client.closed).code).toBe(1001);
    expect(app.listening).toBe(true);
    expect(app.listenerCount('upgrade')).toBe(0);
  });
});
