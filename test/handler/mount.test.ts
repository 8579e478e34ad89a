/**
 * Mounting a handler on an http.Server the host app owns: attach/detach, handleUpgrade, and
 * living beside other 'upgrade' listeners (DESIGN.md "Things we do not do": never answer or
 * destroy an upgrade that belongs to another listener; a real 404 when nobody claims it).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { Echo, echoes, expectCompleteRejection, fakeLogger, useFixture } from '../helpers/fixture.js';
import { RawClient, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

// ---- local fixtures -----------------------------------------------------------------------------

const { defer, handlerFor, connect } = useFixture();

function closeHttp(server: http.Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    const t = setTimeout(() => reject(new Error('http server.close() hung')), 3000);
    server.close(() => {
      clearTimeout(t);
      resolve();
    });
    server.closeAllConnections();
  });
}

async function hostServer(app?: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(
    app ??
      ((req, res) => {
        const body = `app saw ${req.method} ${req.url}`;
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
        res.end(body);
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => closeHttp(server));
  return { server, port: (server.address() as AddressInfo).port };
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * A hand-written foreign 'upgrade' listener (think Vite HMR): answers 101 for `path` only (after
 * `delay` ms), greets with an unmasked text frame 'foreign', and leaves every other socket alone.
 */
function foreignListener(path: string, delay = 0): { listener: (req: http.IncomingMessage, socket: Duplex) => void; sockets: Set<Duplex> } {
  const sockets = new Set<Duplex>();
  defer(() => {
    for (const s of sockets) s.destroy();
  });
  const listener = (req: http.IncomingMessage, socket: Duplex): void => {
    if (req.url !== path) return;
    sockets.add(socket);
    socket.on('error', () => {});
    const answer = (): void => {
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${GUID}`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.concat([Buffer.from([0x81, 7]), Buffer.from('foreign')]));
    };
    if (delay === 0) answer();
    else setTimeout(answer, delay);
  };
  return { listener, sockets };
}

// Minimal typing for Node 20's global (undici) WebSocket; @types/node@20 does not declare it.
interface WsLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
}
const WS = (globalThis as unknown as { WebSocket: new (url: string) => WsLike }).WebSocket;

function openWs(url: string): Promise<WsLike> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url);
    const t = setTimeout(() => reject(new Error('WebSocket did not open')), 3000);
    ws.addEventListener('open', () => {
      clearTimeout(t);
      resolve(ws);
    });
    // Node 20's undici fires 'error' (never 'close') after a non-101 answer.
    ws.addEventListener('error', () => {
      clearTimeout(t);
      reject(new Error('WebSocket error'));
    });
  });
}

function nextWsMessage(ws: WsLike): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), 3000);
    ws.addEventListener('message', (e) => {
      clearTimeout(t);
      resolve(e.data);
    });
  });
}

// ---- mounting -----------------------------------------------------------------------------------

describe('mounting on a plain http.createServer() the host app owns', () => {
  test('attach(server): a route opens and echoes, and plain HTTP requests still reach the app', async () => {
    const { server, port } = await hostServer();
    const handler = handlerFor({ '/echo': Echo });
    expect(handler.attach(server)).toBe(handler);

    const ws = await openWs(`ws://127.0.0.1:${port}/echo`);
    defer(() => ws.close());
    const got = nextWsMessage(ws);
    ws.send('hello');
    expect(await got).toBe('hello');

    const res = await fetch(`http://127.0.0.1:${port}/page?x=1`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('app saw GET /page?x=1');
    expect(handler.clients.size).toBe(1);
  });

  test("server.on('upgrade', handler.handleUpgrade) mounts without attach()", async () => {
    const { server, port } = await hostServer();
    const handler = handlerFor({ '/echo': Echo });
    server.on('upgrade', handler.handleUpgrade);
    const client = await connect(port, '/echo');
    await echoes(client, 'via handleUpgrade');
    const page = await rawRequest(port, 'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n', 1000);
    expect(page.status).toBe(200);
    expect(page.body).toBe('app saw GET /plain');
  });

  test("detach() stops handling: a later upgrade is not answered by us (with no upgrade listener left, Node gives it to the app's 'request' handler); open connections stay open", async () => {
    const seen: { url: string | undefined; upgrade: boolean }[] = [];
    const { server, port } = await hostServer((req, res) => {
      seen.push({ url: req.url, upgrade: (req as { upgrade?: boolean }).upgrade === true });
      res.writeHead(200, { Connection: 'close', 'Content-Type': 'text/plain', 'Content-Length': 12 });
      res.end('app answered');
    });
    const handler = handlerFor({ '/echo': Echo });
    handler.attach(server);
    const before = await connect(port, '/echo');

    expect(handler.detach(server)).toBe(handler);
    expect(server.listenerCount('upgrade')).toBe(0);

    const answer = await rawRequest(port, upgradeRequest('/echo'), 1500);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('app answered');
    expect(answer.headers['sec-websocket-accept']).toBeUndefined();
    expect(seen).toEqual([{ url: '/echo', upgrade: false }]);
    expect(handler.clients.size).toBe(1);

    // The connection opened before detach() is untouched.
    await echoes(before, 'still here');
    await expect(RawClient.connect(port, '/echo')).rejects.toThrow(/answered 200/);
  });

  test('detach(server) leaves the handler on its other servers; detach() with no argument leaves all; attach again works', async () => {
    const a = await hostServer();
    const b = await hostServer();
    const handler = handlerFor({ '/echo': Echo });
    handler.attach(a.server).attach(b.server);

    handler.detach(a.server);
    expect(a.server.listenerCount('upgrade')).toBe(0);
    await echoes(await connect(b.port, '/echo'), 'b still served');

    handler.detach();
    expect(b.server.listenerCount('upgrade')).toBe(0);

    handler.attach(a.server);
    await echoes(await connect(a.port, '/echo'), 'a again');
  });

  test('handles(request) and patterns() tell a framework dispatcher which upgrades are ours (the query plays no part)', () => {
    const handler = createWebSocketHandler({ '/echo': Echo, '/rooms/:id': Echo, '/files/*': Echo }, { logLevel: 'silent' });
    expect(handler.patterns()).toEqual(['/echo', '/rooms/:id', '/files/*']);
    expect(handler.handles({ url: '/echo' })).toBe(true);
    expect(handler.handles({ url: '/echo?x=/nope' })).toBe(true);
    expect(handler.handles({ url: '/rooms/42' })).toBe(true);
    expect(handler.handles({ url: '/files/a/b' })).toBe(true);
    expect(handler.handles({ url: '/nope?to=/echo' })).toBe(false);
    expect(handler.handles({ url: '/rooms' })).toBe(false);
  });

  test('a framework-style dispatcher that calls handleUpgrade only for handles() paths serves our routes', async () => {
    const { server, port } = await hostServer();
    const handler = handlerFor({ '/echo': Echo });
    const foreign = foreignListener('/other');
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (handler.handles(req)) handler.handleUpgrade(req, socket, head);
      else foreign.listener(req, socket);
    });
    await echoes(await connect(port, '/echo'), 'dispatched');
    const theirs = await connect(port, '/other');
    expect((await theirs.nextFrame(2000)).payload.toString()).toBe('foreign');
  });

  test('attaching the same handler twice to one server throws a clear error', async () => {
    const { server } = await hostServer();
    const handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
    handler.attach(server);
    expect(() => handler.attach(server)).toThrow(/already attached/);
    expect(server.listenerCount('upgrade')).toBe(1);

    const other = http.createServer();
    other.on('upgrade', handler.handleUpgrade);
    expect(() => handler.attach(other)).toThrow(/already attached/);
    expect(other.listenerCount('upgrade')).toBe(1);
  });

  test("attach() plus server.on('upgrade', handleUpgrade) is reported through logger.error, and the connection still opens once", async () => {
    const { server, port } = await hostServer();
    const { calls, logger } = fakeLogger();
    let opened = 0;
    class Counted extends Echo {
      override onOpen(): void {
        opened++;
      }
    }
    const handler = handlerFor({ '/echo': Counted }, { logger, logLevel: 'debug' });
    handler.attach(server);
    server.on('upgrade', handler.handleUpgrade);

    const client = await connect(port, '/echo');
    await echoes(client, 'once');
    const errors = calls.filter((c) => c.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/twice/);
    expect(opened).toBe(1);
    expect(handler.clients.size).toBe(1);
  });
});

// ---- coexistence ----------------------------------------------------------------------------------

describe('coexistence with a foreign upgrade listener on the same server', () => {
  /**
   * A host server with an Echo handler at /echo and a foreign listener for `path` (answering
   * after `delay` ms) on its 'upgrade' event: registered after ours, or before it if `foreignFirst`.
   */
  async function sharedServer(
    path: string,
    options: { unclaimedTimeout: number; delay?: number; foreignFirst?: boolean },
  ): Promise<{ port: number; foreign: ReturnType<typeof foreignListener>; handler: WebSocketHandler }> {
    const { server, port } = await hostServer();
    const foreign = foreignListener(path, options.delay);
    const handler = handlerFor({ '/echo': Echo }, { unclaimedTimeout: options.unclaimedTimeout });
    if (options.foreignFirst) server.on('upgrade', foreign.listener);
    handler.attach(server);
    if (!options.foreignFirst) server.on('upgrade', foreign.listener);
    return { port, foreign, handler };
  }

  test.each([
    ['after', false],
    ['before', true],
  ])('foreign listener registered %s ours: each keeps its own sockets', async (_when, prepend) => {
    const { port, foreign, handler } = await sharedServer('/other', { unclaimedTimeout: 200, foreignFirst: prepend });
    const ours = await connect(port, '/echo');
    const theirs = await connect(port, '/other');
    const greeting = await theirs.nextFrame(2000);
    expect(greeting.opcode).toBe(0x1);
    expect(greeting.payload.toString()).toBe('foreign');
    await echoes(ours, 'ours');

    // Well past unclaimedTimeout: we wrote nothing on the foreign socket and did not close it.
    await sleep(500);
    expect(theirs.tcpClosed).toBe(false);
    expect(theirs.pending()).toEqual([]);
    expect(foreign.sockets.size).toBe(1);
    expect(handler.clients.size).toBe(1);
    await echoes(ours, 'still ours');
  });

  test('an unknown path gets a complete 404 from us after unclaimedTimeout, and the socket is closed', async () => {
    const { port, foreign } = await sharedServer('/other', { unclaimedTimeout: 200 });
    const t0 = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/nope'), 3000);
    const elapsed = Date.now() - t0;
    expectCompleteRejection(answer, 404);
    expect(answer.body).toContain('/nope');
    expect(elapsed).toBeGreaterThanOrEqual(180);
    expect(elapsed).toBeLessThan(2000);
    expect(foreign.sockets.size).toBe(0);
  });

  test('a foreign listener that answers asynchronously within unclaimedTimeout is not disturbed', async () => {
    const { port } = await sharedServer('/slow', { unclaimedTimeout: 300, delay: 100 });
    const theirs = await connect(port, '/slow');
    expect((await theirs.nextFrame(2000)).payload.toString()).toBe('foreign');
    await sleep(500);
    expect(theirs.tcpClosed).toBe(false);
    expect(theirs.pending()).toEqual([]);
  });

  test('a client that resets while its unmatched upgrade waits causes no unhandled socket error, and serving goes on', async () => {
    const { port } = await sharedServer('/other', { unclaimedTimeout: 150 });
    for (let i = 0; i < 3; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(upgradeRequest('/gone'));
      await sleep(30);
      socket.resetAndDestroy();
    }
    await sleep(400);
    await echoes(await connect(port, '/echo'), 'alive');
  });
});

describe('only wsmount handlers on the server', () => {
  test('an unknown path is answered 404 at once, not after unclaimedTimeout (10 s)', async () => {
    const { server, port } = await hostServer();
    const handler = handlerFor({ '/echo': Echo }, { unclaimedTimeout: 10_000 });
    handler.attach(server);
    const t0 = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/nope'), 3000);
    expectCompleteRejection(answer, 404);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test('two handlers with different routes: both routes work, and an unknown path gets exactly one immediate 404', async () => {
    const { server, port } = await hostServer();
    class Upper extends Behavior {
      override onText(text: string): void {
        this.sendText(text.toUpperCase());
      }
    }
    const a = handlerFor({ '/a': Echo }, { unclaimedTimeout: 10_000 });
    const b = handlerFor({ '/b': Upper }, { unclaimedTimeout: 10_000 });
    a.attach(server);
    b.attach(server);

    await echoes(await connect(port, '/a'), 'x');
    const cb = await connect(port, '/b');
    cb.send(0x1, 'up');
    expect((await cb.nextFrame(2000)).payload.toString()).toBe('UP');
    expect(a.clients.size).toBe(1);
    expect(b.clients.size).toBe(1);

    const t0 = Date.now();
    const answer = await rawRequest(port, upgradeRequest('/c'), 3000);
    expectCompleteRejection(answer, 404);
    expect(answer.body).toBe('no WebSocket route for /c\n');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test('two handlers claiming one path: the first attached wins, the second warns at attach time and logs an error per upgrade', async () => {
    const { server, port } = await hostServer();
    const first = fakeLogger();
    const second = fakeLogger();
    const openedBy: string[] = [];
    class First extends Behavior {
      override onOpen(): void {
        openedBy.push('first');
        this.sendText('first');
      }
    }
    class Second extends Behavior {
      override onOpen(): void {
        openedBy.push('second');
        this.sendText('second');
      }
    }
    const a = handlerFor({ '/shared': First }, { logger: first.logger, logLevel: 'debug' });
    const b = handlerFor({ '/shared': Second, '/own': Second }, { logger: second.logger, logLevel: 'debug' });
    a.attach(server);
    expect(second.calls.filter((c) => c.level === 'warn')).toHaveLength(0);
    b.attach(server);
    const warnings = second.calls.filter((c) => c.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain('/shared');

    const client = await connect(port, '/shared');
    expect((await client.nextFrame(2000)).payload.toString()).toBe('first');
    await sleep(50);
    expect(openedBy).toEqual(['first']);
    expect(a.clients.size).toBe(1);
    expect(b.clients.size).toBe(0);
    const errors = second.calls.filter((c) => c.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/claimed by two/);
    expect(first.calls.filter((c) => c.level === 'error')).toHaveLength(0);

    // The second handler's own route is unaffected.
    const own = await connect(port, '/own');
    expect((await own.nextFrame(2000)).payload.toString()).toBe('second');
    await waitFor(() => b.clients.size === 1, 2000, 'second handler client');
  });
});
