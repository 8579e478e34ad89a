/**
 * An upgrade that arrives on a keep-alive connection which already carried a plain HTTP request
 * and its response: what Node's built-in WebSocket (undici) and browsers do when they reuse a
 * pooled connection. The earlier response's bytes must not count as "another listener answered
 * this upgrade": an unknown path still gets its 404, a known one opens, and close() finishes.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { Echo, useFixture, within } from '../helpers/fixture.js';
import { encodeClientFrame, upgradeRequest } from '../helpers/raw.js';

const { defer } = useFixture();

/** A host app that answers GET /health with 200 and keeps the connection alive. */
async function keepAliveHost(other: 'none' | 'before' | 'after' | 'before, mounted by hand'): Promise<{ server: http.Server; port: number; handler: WebSocketHandler }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('ok');
  });
  // A foreign listener that looks at every upgrade and takes none (like Vite's HMR for other paths).
  if (other !== 'none' && other !== 'after') server.on('upgrade', () => {});
  const handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent', unclaimedTimeout: 100 });
  if (other === 'before, mounted by hand') server.on('upgrade', handler.handleUpgrade);
  else handler.attach(server);
  if (other === 'after') server.on('upgrade', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => {
    for (const s of open) s.destroy();
    return new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  return { server, port: (server.address() as AddressInfo).port, handler };
}

const open: net.Socket[] = [];

/** One TCP connection: a GET /health answered 200, then `upgradeRequest(path)` on the same socket. */
async function healthThenUpgrade(port: number, path: string): Promise<{ socket: net.Socket; read: (until: (all: string) => boolean) => Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  open.push(socket);
  socket.on('error', () => {});
  let all = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    all = Buffer.concat([all, d]);
    wake?.();
  });
  socket.on('close', () => wake?.());
  const read = async (until: (text: string) => boolean): Promise<string> => {
    while (!until(all.toString('latin1'))) {
      if (socket.destroyed) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
    return all.toString('latin1');
  };
  socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  await within(read((t) => t.includes('\r\n\r\nok')), 3000, 'the 200 for GET /health');
  socket.write(upgradeRequest(path));
  return { socket, read };
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('an upgrade on a keep-alive connection that already carried an HTTP request', () => {
  for (const foreign of ['none', 'before', 'after', 'before, mounted by hand'] as const) {
    const label =
      foreign === 'none'
        ? ''
        : foreign === 'before, mounted by hand'
          ? " (another upgrade listener before ours, mounted with server.on('upgrade'))"
          : ` (another upgrade listener registered ${foreign} ours)`;

    test(`an unknown path gets its 404 after the earlier 200, and the socket is closed${label}`, async () => {
      const { server, port, handler } = await keepAliveHost(foreign);
      const { socket, read } = await healthThenUpgrade(port, '/nope');
      const text = await within(read((t) => t.includes('HTTP/1.1 404')), 3000, 'the 404');
      expect(text.startsWith('HTTP/1.1 200 OK')).toBe(true);
      expect(text).toContain('HTTP/1.1 404');
      await within(new Promise((resolve) => socket.once('close', resolve)), 3000, 'the socket closing');
      // Nothing leaked: both the handler and the HTTP server finish closing.
      await within(handler.close(), 3000, 'handler.close()');
      await within(closeServer(server), 3000, 'server.close()');
    });

    test(`a known path opens after the earlier 200 and echoes${label}`, async () => {
      const { server, port, handler } = await keepAliveHost(foreign);
      const { socket, read } = await healthThenUpgrade(port, '/echo');
      await within(read((t) => t.includes('HTTP/1.1 101')), 3000, 'the 101');
      // The rest of the stream after the 101 head: one unmasked text frame "hi".
      socket.write(encodeClientFrame(0x1, 'hi'));
      const text = await within(read((t) => t.endsWith('\x81\x02hi')), 3000, 'the echo');
      expect(text).toContain('HTTP/1.1 101');
      expect(handler.clients.size).toBe(1);
      // A well-behaved client: it answers the server's close frame by closing TCP.
      const closing = handler.close();
      await within(read((t) => t.includes('\x88\x02\x03\xe9')), 3000, 'the 1001 close frame');
      socket.end();
      await within(closing, 3000, 'handler.close()');
      await within(closeServer(server), 3000, 'server.close()');
      if (!socket.destroyed) await within(new Promise((resolve) => socket.once('close', resolve)), 3000, 'the client socket closing');
    });
  }
});

describe('the note listener attach() adds when another listener comes first', () => {
  test('removed with the handler by detach(); never left alone to swallow upgrades', async () => {
    const { server, port, handler } = await keepAliveHost('before');
    const foreign = server.listeners('upgrade')[1] as (...args: unknown[]) => void;
    expect(server.listenerCount('upgrade')).toBe(3); // note, foreign, ours
    handler.detach(server);
    expect(server.listeners('upgrade')).toEqual([foreign]);
    handler.attach(server);
    // Removed by hand instead of detach(), with the foreign listener gone too: the note is the only
    // listener left. It answers the next upgrade 404 instead of leaving it hanging, and goes.
    server.removeListener('upgrade', handler.handleUpgrade);
    server.removeListener('upgrade', foreign);
    expect(server.listenerCount('upgrade')).toBe(1);
    const { read } = await healthThenUpgrade(port, '/echo');
    const text = await within(read((t) => t.includes('HTTP/1.1 404')), 3000, 'the 404');
    expect(text).toContain('HTTP/1.1 404');
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});
