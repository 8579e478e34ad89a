/**
 * Slow handshakes against the standalone server: an upgrade whose headers arrive a byte at a
 * time is seen by wsmount only once they are complete, so the HTTP server's own timeouts are
 * what frees the socket. createWebSocketServer sets them (Node's defaults held such a socket
 * for up to 90 s).
 */
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { type WebSocketServer, type WebSocketServerOptions, createWebSocketServer } from '../../src/index.js';
import { Echo, bounded, echoes, useFixture, within } from '../helpers/fixture.js';
import { upgradeRequest } from '../helpers/raw.js';

const { defer, connect } = useFixture();

function make(options: WebSocketServerOptions = {}): WebSocketServer {
  const srv = createWebSocketServer({ '/echo': Echo }, { logLevel: 'silent', ...options });
  defer(() => bounded(srv.close({ timeout: 300 })));
  return srv;
}

/** Sends `text` one byte every `every` ms until the socket closes; resolves with what came back. */
function dribble(port: number, text: string, every: number): { closed: Promise<string>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let answer = '';
  socket.on('data', (d: Buffer) => {
    answer += d.toString('latin1');
  });
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return;
    socket.write(text[i++] as string);
  }, every);
  const closed = new Promise<string>((resolve) => {
    socket.once('close', () => {
      clearInterval(timer);
      resolve(answer);
    });
  });
  defer(() => {
    clearInterval(timer);
    socket.destroy();
  });
  return { closed, socket };
}

describe('createWebSocketServer: HTTP timeouts against slow clients', () => {
  test('sets safe HTTP timeouts by default (headers 10 s, whole request 30 s, keep-alive 5 s)', () => {
    const srv = make();
    expect(srv.server.headersTimeout).toBe(10_000);
    expect(srv.server.requestTimeout).toBe(30_000);
    expect(srv.server.keepAliveTimeout).toBe(5_000);
  });

  test('the timeouts can be set; headersTimeout never exceeds requestTimeout (Node requires it)', () => {
    const srv = make({ headersTimeout: 2_000, requestTimeout: 1_000, keepAliveTimeout: 500 });
    expect(srv.server.headersTimeout).toBe(1_000);
    expect(srv.server.requestTimeout).toBe(1_000);
    expect(srv.server.keepAliveTimeout).toBe(500);
  });

  test('50 upgrades dribbling their headers a byte at a time are answered 408 and closed after headersTimeout; others are served meanwhile', async () => {
    const srv = make({ headersTimeout: 1_000 });
    const port = await srv.listen();
    const slow = Array.from({ length: 50 }, () => dribble(port, upgradeRequest('/echo'), 100));
    // A normal client is not held up by them.
    const client = await connect(port, '/echo');
    await echoes(client, 'not held up');
    // Bounded wait (a hang guard, not a timing assertion): Node checks every second here.
    const answers = await within(Promise.all(slow.map((s) => s.closed)), 10_000, 'the slow sockets closing');
    for (const answer of answers) expect(answer.startsWith('HTTP/1.1 408')).toBe(true);
    expect(srv.handler.stats().handshakesAccepted).toBe(1);
  });
});
