/**
 * The examples in demo/mount/ on real frameworks: plain node:http, Express 5, Koa 3, Fastify 5,
 * Hono on @hono/node-server, and the Vite dev server. Each example is started on port 0 and must
 * keep plain HTTP working, round-trip a WebSocket message, answer an unknown upgrade path with a
 * real 404 (complete response, socket closed, no hang), and shut down without hanging while a
 * client is still connected, sending that client a 1001 close.
 *
 * The examples import 'wsmount', which resolves to the built dist/ (`npm run build` first; `npm
 * test` does it). Every wait is bounded, so a hang fails fast instead of at the test timeout.
 */
import { Buffer } from 'node:buffer';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketHandler } from '../../src/index.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { within } from '../helpers/fixture.js';
import { loadExample, openWebSocket } from './examples.js';

interface Example {
  server: Server;
  sockets: WebSocketHandler;
  url: string;
  close(): Promise<void>;
}
interface ExampleModule {
  start(port?: number, host?: string): Promise<Example>;
}

const running: Example[] = [];
afterEach(async () => {
  // A failed test must not leave a server behind; close() is bounded so teardown never hangs.
  for (const app of running.splice(0)) {
    await within(app.close(), 3000, 'teardown').catch(() => app.server.closeAllConnections());
  }
});

async function startExample(name: string): Promise<Example & { port: number; ws: string }> {
  const { start } = await loadExample<ExampleModule>(name);
  const app = await within(start(0, '127.0.0.1'), 15_000, `starting ${name}`);
  running.push(app);
  const port = (app.server.address() as AddressInfo).port;
  return Object.assign(app, { port, ws: app.url.replace(/^http/, 'ws') });
}

/** Starts the example, then checks HTTP, a WebSocket round trip, the unknown-path 404, and shutdown. */
async function checkExample(name: string): Promise<void> {
  const app = await startExample(name);

  // Plain HTTP still reaches the framework.
  const res = await within(fetch(`${app.url}/health`), 5000, 'GET /health');
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('ok');

  // A WebSocket round trip on the wsmount route.
  const client = await openWebSocket(`${app.ws}/echo`);
  client.ws.send('hello from the client');
  expect(await client.next()).toBe('hello from the client');

  // An unknown upgrade path: a real 404 (complete response, Connection: close, socket closed),
  // immediately when wsmount is the only 'upgrade' listener, after unclaimedTimeout otherwise.
  const foreignListeners = app.server.listeners('upgrade').length > 1;
  const started = Date.now();
  const answer = await rawRequest(app.port, upgradeRequest('/no-such-socket'), 6000);
  const elapsed = Date.now() - started;
  expect(answer.status).toBe(404);
  expect(answer.closed).toBe(true);
  expect(answer.headers['connection']).toBe('close');
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
  const wait = foreignListeners ? app.sockets.options.unclaimedTimeout : 0;
  expect(elapsed).toBeGreaterThanOrEqual(wait - 100);
  expect(elapsed).toBeLessThan(wait + 1000);

  // Shutdown with a client still connected: the client gets 1001, and nothing hangs.
  running.splice(running.indexOf(app), 1);
  await within(app.close(), 5000, `${name}'s shutdown`);
  expect(await within(client.closed, 2000, 'the client to see the close')).toEqual({ code: 1001, reason: '' });
  expect(app.server.listening).toBe(false);
  expect(app.sockets.clients.size).toBe(0);
}

describe('node:http (demo/mount/http.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths, shuts down', async () => {
    await checkExample('http');
  });
});

describe('Express 5 (demo/mount/express.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths, shuts down', async () => {
    await checkExample('express');
  });
});

describe('Koa 3 (demo/mount/koa.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths, shuts down', async () => {
    await checkExample('koa');
  });
});

describe('Fastify 5 (demo/mount/fastify.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths, shuts down (clients closed in preClose)', async () => {
    await checkExample('fastify');
  });
});

describe('Hono on @hono/node-server (demo/mount/hono.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths, shuts down', async () => {
    await checkExample('hono');
  });
});

describe('Vite dev server plugin (demo/mount/vite.js)', () => {
  it('serves HTTP and WebSockets, 404s unknown upgrade paths (after unclaimedTimeout: HMR listens too), shuts down', async () => {
    await checkExample('vite');
  });

  it("keeps Vite's HMR WebSocket working beside wsmount's", async () => {
    const app = await startExample('vite');
    // Vite's listener and ours share the server; Vite takes only its base path with 'vite-hmr'.
    // Since Vite's listener comes before ours, wsmount puts a note listener first (it records the
    // bytes a keep-alive connection carried before the upgrade, see test/handler/keep-alive).
    const listeners = app.server.listeners('upgrade');
    expect(listeners).toHaveLength(3);
    expect(Symbol.for('wsmount.noteUpgrade') in (listeners[0] as object)).toBe(true);
    expect(listeners[2]).toBe(app.sockets.handleUpgrade);
    const hmr = await openWebSocket(`${app.ws}/`, 'vite-hmr');
    expect(hmr.ws.protocol).toBe('vite-hmr');
    expect(JSON.parse(await hmr.next())).toEqual({ type: 'connected' });

    const ours = await openWebSocket(`${app.ws}/echo`);
    ours.ws.send('beside HMR');
    expect(await ours.next()).toBe('beside HMR');
    expect(app.sockets.clients.size).toBe(1); // the HMR socket is Vite's, not ours

    running.splice(running.indexOf(app), 1);
    await within(app.close(), 5000, "Vite's shutdown");
    expect((await within(ours.closed, 2000, 'our client to close')).code).toBe(1001);
    await within(hmr.closed, 2000, 'the HMR client to close');
  });
});
