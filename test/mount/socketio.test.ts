/**
 * socket.io and wsmount on one http.Server.
 *
 * What socket.io does by default (engine.io's `attach()`, node_modules/engine.io/build/server.js):
 * its 'upgrade' listener takes upgrades under /socket.io/ and, for every other path, unless
 * `destroyUpgrade: false`, arms a timer (`destroyUpgradeTimeout`, 1000 ms) that ends the socket
 * if it is still writable with `bytesWritten <= 0`. So with the defaults:
 *  - a wsmount route whose verify() answers within 1 s works (the 101 is written in time);
 *  - a wsmount route whose async verify() takes longer is killed at 1 s, before any answer;
 *  - an unknown path is ended at 1 s with no HTTP response at all (not a 404, though no hang).
 * With `new Server(httpServer, { destroyUpgrade: false })` (demo/mount/socketio.js) slow
 * handshakes finish, and wsmount answers unknown paths with a real 404 after `unclaimedTimeout`.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server as SocketIoServer } from 'socket.io';
import { type Socket, io as ioClient } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { within } from '../helpers/fixture.js';
import { type OpenSocket, openWebSocket as open } from './examples.js';

interface Example {
  server: http.Server;
  sockets: WebSocketHandler;
  io: SocketIoServer;
  url: string;
  close(): Promise<void>;
}
interface ExampleModule {
  start(port?: number, host?: string): Promise<Example>;
}

const teardown: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of teardown.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

/** The shared undici opener, closed at teardown. */
async function openWebSocket(url: string): Promise<OpenSocket> {
  const socket = await open(url);
  teardown.push(() => socket.ws.close());
  return socket;
}

/** A socket.io client, connected with the given transports. */
async function connectSocketIo(url: string, transports: ('websocket' | 'polling')[]): Promise<Socket> {
  const socket = ioClient(url, { transports, reconnection: false, forceNew: true });
  teardown.push(() => {
    socket.disconnect();
  });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  await within(connected, 5000, `socket.io connect over ${transports.join('+')}`);
  return socket;
}

/** The example's socket.io handler acks what it is sent. */
async function roundTrip(socket: Socket, message: string): Promise<unknown> {
  return within(socket.emitWithAck('ping', message), 5000, 'a socket.io ack');
}

function transportOf(socket: Socket): string {
  return socket.io.engine.transport.name;
}

function expectComplete404(answer: { status: number; headers: Record<string, string>; body: string; closed: boolean }): void {
  expect(answer.status).toBe(404);
  expect(answer.closed).toBe(true);
  expect(answer.headers['connection']).toBe('close');
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
}

describe('socket.io with destroyUpgrade: false (demo/mount/socketio.js)', () => {
  async function startExample(): Promise<Example & { port: number; ws: string }> {
    const url: string = new URL('../../demo/mount/socketio.js', import.meta.url).href;
    const { start } = (await import(url)) as ExampleModule;
    const app = await within(start(0, '127.0.0.1'), 10_000, 'starting the socket.io example');
    teardown.push(() => app.close());
    return Object.assign(app, { port: (app.server.address() as AddressInfo).port, ws: app.url.replace(/^http/, 'ws') });
  }

  it('socket.io over websocket, over polling, and upgraded from polling, beside a wsmount round trip', async () => {
    const app = await startExample();

    const res = await within(fetch(`${app.url}/health`), 5000, 'GET /health');
    expect(await res.text()).toBe('ok');

    const overWebSocket = await connectSocketIo(app.url, ['websocket']);
    expect(transportOf(overWebSocket)).toBe('websocket');
    expect(await roundTrip(overWebSocket, 'via websocket')).toBe('via websocket');

    const overPolling = await connectSocketIo(app.url, ['polling']);
    expect(transportOf(overPolling)).toBe('polling');
    expect(await roundTrip(overPolling, 'via polling')).toBe('via polling');

    const upgraded = ioClient(app.url, { reconnection: false, forceNew: true });
    teardown.push(() => {
      upgraded.disconnect();
    });
    const upgrade = new Promise<void>((resolve) => upgraded.io.engine.once('upgrade', () => resolve()));
    await within(upgrade, 5000, 'the polling → websocket upgrade');
    expect(transportOf(upgraded)).toBe('websocket');
    expect(await roundTrip(upgraded, 'after upgrade')).toBe('after upgrade');

    const ours = await openWebSocket(`${app.ws}/echo`);
    ours.ws.send('wsmount beside socket.io');
    expect(await ours.next()).toBe('wsmount beside socket.io');
    expect(app.sockets.clients.size).toBe(1); // socket.io's websockets are socket.io's, not ours
  });

  it('a wsmount verify() slower than socket.io\'s 1 s upgrade timeout still opens; its refusals are still answered', async () => {
    const app = await startExample();
    const started = Date.now();
    const [ada, anonymous] = await Promise.all([
      openWebSocket(`${app.ws}/account?user=ada`),
      rawRequest(app.port, upgradeRequest('/account'), 5000),
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400); // the example's verify takes 1.5 s
    ada.ws.send('hi');
    expect(await ada.next()).toBe('ada: hi');
    expect(anonymous.status).toBe(401);
    expect(anonymous.closed).toBe(true);
  });

  it('an unknown path gets wsmount\'s 404 after unclaimedTimeout: socket.io leaves it alone and nothing hangs', async () => {
    const app = await startExample();
    const started = Date.now();
    const answer = await rawRequest(app.port, upgradeRequest('/no-such-socket'), 6000);
    const elapsed = Date.now() - started;
    expectComplete404(answer);
    expect(elapsed).toBeGreaterThanOrEqual(app.sockets.options.unclaimedTimeout - 100);
    expect(elapsed).toBeLessThan(app.sockets.options.unclaimedTimeout + 1000);
  });

  it('shuts down with wsmount and socket.io clients connected: wsmount clients get 1001, socket.io clients a disconnect', async () => {
    const app = await startExample();
    const ours = await openWebSocket(`${app.ws}/echo`);
    const theirs = await connectSocketIo(app.url, ['websocket']);
    const disconnected = new Promise<string>((resolve) => theirs.once('disconnect', resolve));
    await within(app.close(), 5000, 'the socket.io example shutdown');
    expect(await within(ours.closed, 2000, 'our client to close')).toEqual({ code: 1001, reason: '' });
    await within(disconnected, 2000, 'the socket.io client to disconnect');
    expect(app.server.listening).toBe(false);
  });
});

describe("socket.io's defaults (destroyUpgrade: true): what goes wrong", () => {
  class Echo extends Behavior {
    override onText(text: string): void {
      this.sendText(text);
    }
  }
  class Slow extends Behavior {
    override async verify(): Promise<void> {
      await sleep(1500);
    }
  }

  async function startDefaults(): Promise<{ port: number; sockets: WebSocketHandler }> {
    const server = http.createServer((_req, res) => res.end('ok'));
    const io = new SocketIoServer(server); // the defaults
    const sockets = createWebSocketHandler({ '/echo': Echo, '/slow': Slow }, { logLevel: 'silent' });
    sockets.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    teardown.push(async () => {
      await sockets.close({ timeout: 500 });
      await io.close();
    });
    return { port: (server.address() as AddressInfo).port, sockets };
  }

  it('a route that answers at once still works', async () => {
    const { port } = await startDefaults();
    const ours = await openWebSocket(`ws://127.0.0.1:${port}/echo`);
    ours.ws.send('fast');
    expect(await ours.next()).toBe('fast');
  });

  it('a verify() slower than 1 s is cut off by socket.io: the client gets no answer at all', async () => {
    const { port, sockets } = await startDefaults();
    const started = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/slow'), 5000);
    const elapsed = Date.now() - started;
    expect(answer).toMatchObject({ status: 0, closed: true }); // no bytes, connection ended
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(1500); // socket.io's 1 s, before our 1.5 s verify ends
    await sleep(700); // let verify() finish: nothing opens on the dead socket
    expect(sockets.clients.size).toBe(0);
  });

  it('an unknown path is ended by socket.io after 1 s with no HTTP response (no 404), though it does not hang', async () => {
    const { port } = await startDefaults();
    const started = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/no-such-socket'), 5000);
    expect(answer).toMatchObject({ status: 0, closed: true });
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
