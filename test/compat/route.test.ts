/**
 * wsRoute: a ws-style server on a route goes through everything a Behavior route does (routing,
 * `origins`, limits, heartbeat, stats, the handler's close), plus ws's own server options
 * (`verifyClient`, `handleProtocols`, `maxPayload`, `perMessageDeflate`), over real sockets.
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import { Behavior, type HandlerOptions, type Routes } from '../../src/index.js';
import { WebSocket, WebSocketServer, WsConnection, wsRoute } from '../../src/compat/index.js';
import { fakeLogger, within } from '../helpers/fixture.js';
import { RawClient, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

async function serve(routes: Routes, options: HandlerOptions = {}): Promise<TestServer> {
  const s = await startServer(routes, options);
  cleanups.push(() => s.close());
  return s;
}

/** A `ws` client, opened (rejects with the HTTP status when refused). */
async function client(url: string, protocols?: string | string[], options: WS.ClientOptions = {}): Promise<WS> {
  const ws = new WS(url, protocols, options);
  cleanups.push(() => ws.terminate());
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    }),
    5000,
    'opening a ws client',
  );
  return ws;
}

function closedWith(ws: WS): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function echoServer(options?: ConstructorParameters<typeof WebSocketServer>[0]): WebSocketServer {
  const wss = new WebSocketServer(options);
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary })));
  return wss;
}

class Upper extends Behavior {
  override onText(text: string) {
    this.sendText(text.toUpperCase());
  }
}

describe('wsRoute beside Behavior routes on one handler', () => {
  it('keeps the request it hands to listeners (ws.request) and reads the headers from it: one copy, the same object after messages', async () => {
    const later: boolean[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', () => {
        later.push(ws.behavior.headers === ws.request.headers && ws.behavior.headers['x-trace'] === 'abc');
        ws.send('ok');
      });
    });
    const s = await serve({ '/ws': wsRoute(wss) });
    const a = await client(s.url('/ws'), undefined, { headers: { 'X-Trace': 'abc' } });
    a.send('hello');
    await once(a, 'message');
    expect(later).toEqual([true]);
    expect(WsConnection.keepRequest).toBe(true);
  });

  it('routes each path to its own kind, with route params and the request on the socket', async () => {
    const seen: { url: string | undefined; params: Record<string, string>; route: string }[] = [];
    const wss = echoServer();
    wss.on('connection', (ws: WebSocket, request: IncomingMessage) => {
      seen.push({ url: request.url, params: ws.behavior.params, route: ws.behavior.route });
      expect(ws.request).toBe(request);
    });
    const s = await serve({ '/ws/:room': wsRoute(wss), '/upper': Upper });
    const a = await client(s.url('/ws/kitchen?x=1'));
    const b = await client(s.url('/upper'));
    a.send('hello');
    b.send('hello');
    const [[echoed], [upper]] = await within(Promise.all([once(a, 'message'), once(b, 'message')]), 3000, 'replies');
    expect(String(echoed)).toBe('hello');
    expect(String(upper)).toBe('HELLO');
    expect(seen).toEqual([{ url: '/ws/kitchen?x=1', params: { room: 'kitchen' }, route: '/ws/:room' }]);
    expect(wss.clients.size).toBe(1);
    expect(s.srv.handler.clients.size).toBe(2);
  });

  it('the setup-function form runs once, at once, with a fresh server', async () => {
    let calls = 0;
    let got: WebSocketServer | null = null;
    const route = wsRoute((wss) => {
      calls++;
      got = wss;
      wss.on('connection', (ws) => ws.send('hi'));
    });
    expect(calls).toBe(1);
    expect(route.wss).toBe(got);
    const s = await serve({ '/': route });
    const ws = new WS(s.url('/'));
    cleanups.push(() => ws.terminate());
    const [msg] = await within(once(ws, 'message'), 3000, 'greeting');
    expect(String(msg)).toBe('hi');
    expect(calls).toBe(1);
  });

  it('wsRoute refuses an option it does not have, naming the ones it has', () => {
    expect(() => wsRoute(new WebSocketServer(), { pingIntervall: 5 } as never)).toThrow(/no option 'pingIntervall'; its options are maxPayload, .*pingInterval/);
  });

  it('wsRoute refuses what is neither a WebSocketServer nor a function', () => {
    expect(() => wsRoute({} as unknown as WebSocketServer)).toThrow(/takes a WebSocketServer from 'wsmount\/ws'/);
  });
});

describe('the handler decides before the 101, as for every route', () => {
  it('origins: a foreign origin gets 403 and no connection event', async () => {
    let connections = 0;
    const wss = new WebSocketServer();
    wss.on('connection', () => connections++);
    const s = await serve({ '/': wsRoute(wss) }, { origins: ['https://app.example'] });
    const refused = await rawRequest(s.port, upgradeRequest('/', { Origin: 'https://evil.example' }));
    expect(refused.status).toBe(403);
    await client(s.url('/'), undefined, { origin: 'https://app.example' });
    expect(connections).toBe(1);
  });

  it('verifyClient (sync): false refuses with 401; it sees origin, secure and the request', async () => {
    const infos: { origin: string; secure: boolean; url: string | undefined }[] = [];
    const wss = echoServer({
      verifyClient: (info) => {
        infos.push({ origin: info.origin, secure: info.secure, url: info.req.url });
        return info.req.url !== '/?deny';
      },
    });
    const s = await serve({ '/': wsRoute(wss) });
    const refused = await rawRequest(s.port, upgradeRequest('/?deny', { Origin: 'http://o.example' }));
    expect(refused.status).toBe(401);
    await client(s.url('/?ok'));
    expect(infos).toEqual([
      { origin: 'http://o.example', secure: false, url: '/?deny' },
      { origin: '', secure: false, url: '/?ok' },
    ]);
    expect(wss.clients.size).toBe(1);
  });

  it('verifyClient (callback): its code, message and headers are the answer', async () => {
    const wss = echoServer({
      verifyClient: (info, done) => {
        setTimeout(() => (info.req.url === '/?ok' ? done(true) : done(false, 429, 'slow down', { 'Retry-After': '7' })), 5);
      },
    });
    const s = await serve({ '/': wsRoute(wss) });
    const refused = await rawRequest(s.port, upgradeRequest('/?no'));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(refused.body).toContain('slow down');
    await client(s.url('/?ok'));
  });

  it('handleProtocols picks the subprotocol (graphql-ws sets it on wss.options); false means none; default: the first offered', async () => {
    const chooser = new WebSocketServer();
    chooser.options.handleProtocols = (offered, request) => {
      expect(request.url).toBe('/choose');
      return offered.has('b') ? 'b' : false;
    };
    const plain = new WebSocketServer();
    const s = await serve({ '/choose': wsRoute(chooser), '/plain': wsRoute(plain) });
    expect((await client(s.url('/choose'), ['a', 'b'])).protocol).toBe('b');
    // false: a 101 with no Sec-WebSocket-Protocol (a ws client offering one then gives up, as against ws).
    const none = await rawRequest(s.port, upgradeRequest('/choose', { 'Sec-WebSocket-Protocol': 'a' }));
    expect(none.status).toBe(101);
    expect(none.headers['sec-websocket-protocol']).toBeUndefined();
    expect((await client(s.url('/plain'), ['x', 'y'])).protocol).toBe('x');
    const [socket] = [...plain.clients];
    expect(socket?.protocol).toBe('x');
  });

  it('maxPayload from the WebSocketServer options: a bigger message is closed with 1009; wsRoute options win', async () => {
    const small = echoServer({ maxPayload: 10 });
    const overridden = echoServer({ maxPayload: 10 });
    const s = await serve({ '/small': wsRoute(small), '/big': wsRoute(overridden, { maxPayload: 100 }) });
    const a = await client(s.url('/small'));
    const closed = closedWith(a);
    a.send('x'.repeat(11));
    expect((await within(closed, 3000, 'close')).code).toBe(1009);
    const b = await client(s.url('/big'));
    b.send('y'.repeat(50));
    const [echo] = await within(once(b, 'message'), 3000, 'echo');
    expect(String(echo)).toBe('y'.repeat(50));
  });

  it("perMessageDeflate in ws's shape is negotiated (and reported as ws does in extensions)", async () => {
    let extensions = '';
    const wss = echoServer({ perMessageDeflate: { threshold: 0, zlibDeflateOptions: { level: 1 } } });
    wss.on('connection', (ws) => (extensions = ws.extensions));
    const s = await serve({ '/': wsRoute(wss) });
    const ws = await client(s.url('/'), undefined, { perMessageDeflate: true });
    expect(ws.extensions).toMatch(/^permessage-deflate/);
    ws.send('compressed both ways');
    const [echo] = await within(once(ws, 'message'), 3000, 'echo');
    expect(String(echo)).toBe('compressed both ways');
    expect(extensions).toBe('permessage-deflate');
    expect(s.srv.handler.stats().compression.messagesOut).toBeGreaterThan(0);
  });

  it('maxConnections from wsRoute options: one more gets 503', async () => {
    const s = await serve({ '/': wsRoute(echoServer(), { maxConnections: 1 }) });
    await client(s.url('/'));
    const refused = await rawRequest(s.port, upgradeRequest('/'));
    expect(refused.status).toBe(503);
  });
});

describe("wsmount's connection rules apply to ws routes", () => {
  it('the heartbeat terminates a peer that never answers a ping: the socket sees close 1006', async () => {
    const closes: number[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => ws.on('close', (code) => closes.push(code)));
    const s = await serve({ '/': wsRoute(wss, { pingInterval: 50, pongTimeout: 50 }) });
    const raw = await RawClient.connect(s.port, '/');
    cleanups.push(() => {
      raw.socket.destroy();
    });
    // The raw client never answers pings.
    expect(await within(raw.waitClosed(5000), 6000, 'terminated by the heartbeat')).toBe(true);
    await waitFor(() => closes.length === 1, 3000, 'close event');
    expect(closes).toEqual([1006]);
    expect(wss.clients.size).toBe(0);
    expect(s.srv.handler.stats().pongTimeouts).toBe(1);
  });

  it("wsmount's heartbeat pongs reach 'pong' listeners", async () => {
    const pongs: string[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => ws.on('pong', (data) => pongs.push(data.toString())));
    const s = await serve({ '/': wsRoute(wss, { pingInterval: 30 }) });
    await client(s.url('/')); // ws answers pings by itself
    await waitFor(() => pongs.length >= 1, 3000, 'a heartbeat pong');
    expect(pongs[0]).toBe('');
  });

  it('a listener that throws closes that connection with 1011, emits error to a listener, and leaves the others alone', async () => {
    const errors: string[] = [];
    const log = fakeLogger();
    const wss = echoServer();
    wss.on('connection', (ws) => {
      ws.on('error', (error) => errors.push(error.message));
      ws.on('message', (data) => {
        if (String(data) === 'boom') throw new Error('listener failed');
      });
    });
    const s = await serve({ '/': wsRoute(wss) }, { logger: log.logger, logLevel: 'error' });
    const bad = await client(s.url('/'));
    const good = await client(s.url('/'));
    const closed = closedWith(bad);
    bad.send('boom');
    expect((await within(closed, 3000, 'close')).code).toBe(1011);
    expect(errors).toEqual(['listener failed']);
    expect(log.calls.some((c) => c.level === 'error' && /onRawText threw/.test(c.message))).toBe(true);
    good.send('still here');
    const [echo] = await within(once(good, 'message'), 3000, 'echo');
    expect(String(echo)).toBe('still here');
  });

  it('a protocol error by the peer reaches an error listener (as in ws) before close, and nothing crashes without one', async () => {
    const events: string[] = [];
    const wss = new WebSocketServer();
    let n = 0;
    wss.on('connection', (ws) => {
      if (n++ === 0) ws.on('error', (error) => events.push(`error ${(error as Error & { code?: string }).code}`));
      ws.on('close', (code) => events.push(`close ${code}`));
    });
    const s = await serve({ '/': wsRoute(wss) });
    for (let i = 0; i < 2; i++) {
      const raw = await RawClient.connect(s.port, '/');
      cleanups.push(() => {
      raw.socket.destroy();
    });
      raw.send(0x1, Buffer.from([0xff, 0xfe])); // not UTF-8
      const close = await within(raw.nextFrame(), 3000, 'close frame');
      expect(close.payload.readUInt16BE(0)).toBe(1007);
    }
    await waitFor(() => events.length === 3, 3000, 'events');
    expect(events).toEqual(['error WS_INVALID_UTF8', 'close 1007', 'close 1007']);
  });

  it('handler.close() sends 1001 to ws-route clients, emits close on their sockets, and resolves', async () => {
    const closes: number[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => ws.on('close', (code) => closes.push(code)));
    const s = await serve({ '/': wsRoute(wss), '/upper': Upper });
    const a = await client(s.url('/'));
    const b = await client(s.url('/upper'));
    const closedA = closedWith(a);
    const closedB = closedWith(b);
    await within(s.srv.handler.close(), 5000, 'handler.close()');
    expect((await closedA).code).toBe(1001);
    expect((await closedB).code).toBe(1001);
    expect(closes).toEqual([1001]);
    expect(wss.clients.size).toBe(0);
  });

  it('stats count ws-route connections and messages like any others', async () => {
    const s = await serve({ '/': wsRoute(echoServer()) });
    const ws = await client(s.url('/'));
    ws.send('one');
    await within(once(ws, 'message'), 3000, 'echo');
    const stats = s.srv.handler.stats();
    expect(stats.connections).toBe(1);
    expect(stats.messagesIn).toBe(1);
    expect(stats.messagesOut).toBe(1);
  });

  it('handler-level onConnect/onMessage/onDisconnect are not called for ws routes (their server has the events)', async () => {
    const calls: string[] = [];
    const s = await serve(
      { '/': wsRoute(echoServer()) },
      { onConnect: () => void calls.push('connect'), onMessage: () => void calls.push('message'), onDisconnect: () => void calls.push('disconnect') },
    );
    const ws = await client(s.url('/'));
    ws.send('x');
    await within(once(ws, 'message'), 3000, 'echo');
    ws.close();
    await waitFor(() => s.srv.handler.clients.size === 0, 3000, 'closed');
    expect(calls).toEqual([]);
  });
});

describe('WebSocketServer', () => {
  it('close(): open connections stay; new upgrades get 503; close is emitted (and callbacks called) after the last one goes', async () => {
    const wss = echoServer();
    const s = await serve({ '/': wsRoute(wss) });
    const ws = await client(s.url('/'));
    const events: string[] = [];
    wss.on('close', () => events.push('close event'));
    wss.close((error) => events.push(`callback ${error?.message ?? 'ok'}`));
    expect((await rawRequest(s.port, upgradeRequest('/'))).status).toBe(503);
    ws.send('still open');
    const [echo] = await within(once(ws, 'message'), 3000, 'echo');
    expect(String(echo)).toBe('still open');
    expect(events).toEqual([]);
    ws.close();
    await waitFor(() => events.length === 2, 3000, 'close');
    expect(events).toEqual(['close event', 'callback ok']); // listeners in the order they were added
    const again = await within(new Promise<Error | undefined>((resolve) => wss.close(resolve)), 1000, 'second close');
    expect(again?.message).toBe('The server is not running');
  });

  it('refuses the options that would make it listen, saying how to mount it', () => {
    expect(() => new WebSocketServer({ port: 8080 } as never)).toThrow(/takes no 'port' option.*wsRoute\(wss\)/);
    expect(() => new WebSocketServer({ server: {} } as never)).toThrow(/takes no 'server' option/);
    expect(new WebSocketServer({ noServer: true }).address()).toBeNull();
  });

  it('shouldHandle() checks options.path as ws does', () => {
    const wss = new WebSocketServer({ path: '/live' });
    expect(wss.shouldHandle({ url: '/live?x=1' } as IncomingMessage)).toBe(true);
    expect(wss.shouldHandle({ url: '/other' } as IncomingMessage)).toBe(false);
    expect(new WebSocketServer().shouldHandle({ url: '/anything' } as IncomingMessage)).toBe(true);
  });

  it('the socket class is not constructed by users: it says what to use instead', () => {
    expect(() => new (WebSocket as unknown as new () => unknown)()).toThrow(/not constructed.*global WebSocket or the ws package/);
  });

  it('handleUpgrade() (ws code mounted by hand) works through a handler of its own, with the callback instead of a connection event', async () => {
    const http = await import('node:http');
    const wss = echoServer();
    let viaEvent = 0;
    wss.on('connection', () => viaEvent++);
    const handed: WebSocket[] = [];
    const server = http.createServer();
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => handed.push(ws)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const ws = await client(`ws://127.0.0.1:${port}/any/path`);
    cleanups.push(() => {
      for (const c of wss.clients) c.terminate();
    });
    expect(handed).toHaveLength(1);
    expect(viaEvent).toBe(0);
    // The callback got the socket; the echo listener is on 'connection', so attach one here.
    handed[0]?.on('message', (data) => handed[0]?.send(`got ${String(data)}`));
    ws.send('x');
    const [msg] = await within(once(ws, 'message'), 3000, 'reply');
    expect(String(msg)).toBe('got x');
  });

  it('route classes are Behavior subclasses with the server as a static', () => {
    const wss = new WebSocketServer();
    const route = wsRoute(wss, { pingInterval: 0 });
    expect(route.prototype).toBeInstanceOf(WsConnection);
    expect(route.wss).toBe(wss);
    expect(route.pingInterval).toBe(0);
  });
});

describe('WebSocketServer.handleUpgrade and options.path', () => {
  it('another path than options.path gets 400, as in ws; the path itself is served', async () => {
    const http = await import('node:http');
    const wss = echoServer({ noServer: true, path: '/chat' });
    const server = http.createServer();
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => {
      for (const c of wss.clients) c.terminate();
    });
    const port = (server.address() as { port: number }).port;
    const refused = await rawRequest(port, upgradeRequest('/other'));
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('/chat');
    const ws = await client(`ws://127.0.0.1:${port}/chat?x=1`);
    ws.send('in');
    const [msg] = await within(once(ws, 'message'), 3000, 'echo');
    expect(String(msg)).toBe('in');
  });
});
