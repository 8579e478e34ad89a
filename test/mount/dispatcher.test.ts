/**
 * demo/mount/dispatcher.js: wsmount beside a framework whose 'upgrade' listener claims every
 * upgrade (here a stand-in that destroys every socket it gets, as Nest's WsAdapter or
 * @fastify/websocket do with sockets they don't own). Node hands each upgrade to every listener,
 * so side by side the framework kills wsmount's sockets; a dispatcher that asks
 * `handler.handles(req)` sends each upgrade to exactly one of them.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { RawClient, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { within } from '../helpers/fixture.js';
import { loadExample } from './examples.js';

interface Example {
  server: http.Server;
  sockets: WebSocketHandler;
  framework: { seen: string[] };
  url: string;
  close(): Promise<void>;
}
interface ExampleModule {
  start(port?: number, host?: string): Promise<Example>;
  greedyFramework(server: http.Server): { seen: string[] };
}

const teardown: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of teardown.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

describe('a handles(req) dispatcher beside a framework that claims every upgrade', () => {
  it('wsmount paths go to wsmount, every other upgrade to the framework, HTTP is untouched, shutdown completes', async () => {
    const { start } = await loadExample<ExampleModule>('dispatcher');
    const app = await within(start(0, '127.0.0.1'), 10_000, 'starting the dispatcher example');
    teardown.push(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    expect(app.server.listeners('upgrade')).toHaveLength(1); // only the dispatcher

    const res = await within(fetch(`${app.url}/health`), 5000, 'GET /health');
    expect(await res.text()).toBe('ok');

    const client = new WebSocket(`ws://127.0.0.1:${port}/echo`);
    teardown.push(() => client.close());
    const closed = new Promise<number>((resolve) => client.addEventListener('close', (event) => resolve(event.code)));
    await within(once(client, 'open'), 5000, 'opening /echo');
    client.send('dispatched');
    const [message] = (await within(once(client, 'message'), 5000, 'the echo')) as [MessageEvent];
    expect(message.data).toBe('dispatched');

    // Not ours: the framework gets it (and, being greedy, destroys it), at once.
    const started = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/framework-socket'), 5000);
    expect(answer).toMatchObject({ status: 0, closed: true });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(app.framework.seen).toEqual(['/framework-socket']); // never saw /echo

    await within(app.close(), 5000, 'the dispatcher example shutdown');
    expect(await within(closed, 2000, 'the client to see the close')).toBe(1001);
    expect(app.server.listening).toBe(false);
  });

  it('without the dispatcher, the framework destroys wsmount sockets too (why the dispatcher is needed)', async () => {
    const { greedyFramework } = await loadExample<ExampleModule>('dispatcher');
    class Echo extends Behavior {}
    const server = http.createServer((_req, res) => res.end('ok'));
    const framework = greedyFramework(server);
    const sockets = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' }).attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    teardown.push(async () => {
      await sockets.close({ timeout: 300 });
      await new Promise((resolve) => server.close(resolve));
    });
    const port = (server.address() as AddressInfo).port;

    await expect(within(RawClient.connect(port, '/echo'), 5000, 'opening /echo')).rejects.toThrow(/closed during handshake/);
    expect(framework.seen).toEqual(['/echo']);
    expect(sockets.clients.size).toBe(0);
  });
});
