/**
 * createWebSocketServer: the seed's standalone WebsocketServer, built on the same handler.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { type WebSocketServer, createWebSocketServer } from '../../src/index.js';
import { Echo, bounded, useFixture, within } from '../helpers/fixture.js';
import { closePayload, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { defer, connect } = useFixture();

function make(...args: Parameters<typeof createWebSocketServer>): WebSocketServer {
  const srv = createWebSocketServer(args[0], { logLevel: 'silent', ...args[1] });
  defer(() => bounded(srv.close({ timeout: 300 })));
  return srv;
}

// Minimal typing for Node 20's global (undici) WebSocket.
interface WsLike {
  send(data: string): void;
  close(): void;
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
}
const WS = (globalThis as unknown as { WebSocket: new (url: string) => WsLike }).WebSocket;

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('createWebSocketServer(routes, { port: 0 })', () => {
  test('listen() resolves with a real port; port and url(path) follow it', async () => {
    const srv = make({ '/echo': Echo }, { port: 0 });
    expect(srv.port).toBeUndefined();
    expect(() => srv.url('/echo')).toThrow(/not listening/);
    const port = await srv.listen();
    expect(Number.isInteger(port) && port > 0).toBe(true);
    expect(srv.port).toBe(port);
    expect(srv.server.listening).toBe(true);
    expect(srv.url('/echo')).toBe(`ws://127.0.0.1:${port}/echo`);
    expect(srv.url('echo')).toBe(`ws://127.0.0.1:${port}/echo`);
    expect(srv.url()).toBe(`ws://127.0.0.1:${port}/`);
    expect(srv.handler.patterns()).toEqual(['/echo']);
  });

  test('a real WebSocket client (Node 20 undici) connects to url() and gets its echo', async () => {
    const srv = make({ '/echo': Echo });
    await srv.listen();
    const ws = new WS(srv.url('/echo'));
    defer(() => ws.close());
    const echoed = await new Promise<unknown>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no echo')), 3000);
      ws.addEventListener('open', () => ws.send('ping from undici'));
      ws.addEventListener('message', (e) => {
        clearTimeout(t);
        resolve(e.data);
      });
      ws.addEventListener('error', () => reject(new Error('ws error')));
    });
    expect(echoed).toBe('ping from undici');
    expect(srv.handler.clients.size).toBe(1);
  });

  test('a plain HTTP GET gets a complete 426 Upgrade Required', async () => {
    const srv = make({ '/echo': Echo });
    const port = await srv.listen();
    const answer = await rawRequest(port, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(426);
    expect(answer.headers['upgrade']).toBe('websocket');
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(426);
    await res.text();
  });

  test('the onRequest option serves pages; upgrades still reach the routes', async () => {
    const srv = make(
      { '/echo': Echo },
      {
        onRequest: (req, res) => {
          const body = req.url === '/' ? '<h1>demo</h1>' : 'missing';
          res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html' });
          res.end(body);
        },
      },
    );
    const port = await srv.listen();
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe('<h1>demo</h1>');
    const other = await fetch(`http://127.0.0.1:${port}/x`);
    expect(other.status).toBe(404);
    await other.text();
    const client = await connect(port, '/echo');
    client.send(0x1, 'ok');
    expect((await client.nextFrame(2000)).payload.toString()).toBe('ok');
  });

  test('handler options pass through (origins → 403, unknown path → immediate 404)', async () => {
    const srv = make({ '/echo': Echo }, { origins: ['https://good.example'], unclaimedTimeout: 10_000 });
    const port = await srv.listen();
    expect((await rawRequest(port, upgradeRequest('/echo', { Origin: 'https://bad.example' }))).status).toBe(403);
    const t0 = Date.now();
    const miss = await rawRequest(port, upgradeRequest('/nope'));
    expect(miss.status).toBe(404);
    expect(miss.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test('close() sends 1001 to clients, waits for them, then closes the HTTP server (keep-alive HTTP connections too)', async () => {
    const closes: number[] = [];
    class T extends Echo {
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const srv = make({ '/t': T });
    const port = await srv.listen();
    const client = await connect(port, '/t');
    const res = await fetch(`http://127.0.0.1:${port}/`); // leaves a keep-alive connection
    await res.text();
    await waitFor(() => srv.handler.clients.size === 1, 2000, 'one');

    const closing = srv.close({ timeout: 2000 });
    const f = await client.nextFrame(2000);
    expect(f.opcode).toBe(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(1001);
    client.send(0x8, closePayload(1001));
    const t0 = Date.now();
    await within(closing, 3000, 'close');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await client.waitClosed(1000)).toBe(true);
    expect(closes).toEqual([1001]);
    expect(srv.server.listening).toBe(false);
    expect(await portIsClosed(port)).toBe(true);
    expect(srv.close()).toBe(closing);
  });

  test('close() with a client that never answers still finishes after the timeout', async () => {
    const srv = make({ '/echo': Echo });
    const port = await srv.listen();
    const mute = await connect(port, '/echo');
    const t0 = Date.now();
    await within(srv.close({ timeout: 300 }), 3000, 'close');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await mute.waitClosed(1000)).toBe(true);
    expect(await portIsClosed(port)).toBe(true);
  });

  test('close() before listen() resolves; Symbol.asyncDispose closes', async () => {
    const never = make({ '/echo': Echo });
    await within(never.close(), 3000, 'close');
    const srv = make({ '/echo': Echo });
    const port = await srv.listen();
    await within(srv[Symbol.asyncDispose](), 3000, 'close');
    expect(await portIsClosed(port)).toBe(true);
  });

  test('listen() rejects when the port is taken', async () => {
    const first = make({ '/echo': Echo });
    const port = await first.listen();
    const second = make({ '/echo': Echo }, { port });
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
