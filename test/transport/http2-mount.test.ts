/**
 * The wrong set-up says so: an http2 server whose HTTP/1.1 upgrades reach wsmount through
 * `server.on('upgrade', sockets.handleUpgrade)`, while nothing of wsmount serves its HTTP/2
 * streams, logs one warning naming `attach()`; mounted with `attach()`, it logs none.
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { selfSignedCertificate } from '../helpers/certs.js';
import { within } from '../helpers/fixture.js';

class Echo extends Behavior {}

const tls = selfSignedCertificate();
let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function serve(mount: (handler: WebSocketHandler, server: http2.Http2SecureServer) => void): Promise<{ port: number; warnings: string[] }> {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (line: string) => warnings.push(line), error: (line: string) => warnings.push(`error: ${line}`) };
  const handler = createWebSocketHandler({ '/echo': Echo }, { logger });
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true });
  mount(handler, server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup = async () => {
    await within(handler.close({ timeout: 500 }), 3000, 'closing the handler');
    await within(new Promise<void>((resolve) => server.close(() => resolve())), 3000, 'closing the server');
  };
  return { port: (server.address() as AddressInfo).port, warnings };
}

/** One HTTP/1.1 upgrade over TLS; resolves with the status (101) and closes the socket. */
function upgradeOverHttp1(port: number): Promise<number> {
  return within(
    new Promise<number>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port,
        path: '/echo',
        ca: tls.cert,
        servername: 'localhost',
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('upgrade', (res, socket: Duplex) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
      req.end();
    }),
    5000,
    'the HTTP/1.1 upgrade',
  );
}

describe('mounting on an http2 server', () => {
  it("server.on('upgrade', handleUpgrade) alone: HTTP/1.1 upgrades work, and one warning (not one per upgrade) says to use attach()", async () => {
    const { port, warnings } = await serve((handler, server) => server.on('upgrade', handler.handleUpgrade));
    expect(await upgradeOverHttp1(port)).toBe(101);
    expect(await upgradeOverHttp1(port)).toBe(101);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('sockets.attach(server)');
  });

  it('attach(): HTTP/1.1 upgrades work and nothing is logged', async () => {
    const { port, warnings } = await serve((handler, server) => handler.attach(server));
    expect(await upgradeOverHttp1(port)).toBe(101);
    expect(warnings).toEqual([]);
  });
});
