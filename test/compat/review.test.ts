/**
 * What a review of the ws face found, each as a test over real sockets: a connection opened on a
 * closed server, verifyClient answers ws takes that crashed or hung, handleUpgrade's 400 that
 * could crash on a reset, handleUpgrade options that threw into Node's event loop, targets the
 * router cannot decode, a pause() that kept a failing connection from closing, early bytes
 * delivered while paused, send(data, null), and an async listener's rejection.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import { WebSocketServer, type WebSocket, wsRoute } from '../../src/compat/index.js';
import { within } from '../helpers/fixture.js';
import { RawClient, encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

async function serve(wss: WebSocketServer, options: Parameters<typeof startServer>[1] = {}): Promise<TestServer> {
  const s = await startServer({ '/': wsRoute(wss) }, options);
  cleanups.push(() => s.close());
  return s;
}

/** The server side of each upgrade `byHand` saw. */
const upgradeSockets: net.Socket[] = [];

/** An http.Server that hands every upgrade to `wss.handleUpgrade`, as ws apps mount it. */
async function byHand(wss: WebSocketServer): Promise<number> {
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    upgradeSockets.push(socket as net.Socket);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as { port: number }).port;
}

describe('verifyClient', () => {
  it('a server closed while an async verifyClient ran answers 503: no connection after close', async () => {
    let connections = 0;
    let release = (): void => {};
    const wss = new WebSocketServer({ verifyClient: (_info, done) => void (release = () => done(true)) });
    wss.on('connection', () => connections++);
    const s = await serve(wss);
    const answer = rawRequest(s.port, upgradeRequest('/'));
    await waitFor(() => s.srv.handler.stats().pendingHandshakes === 1, 3000, 'verifyClient running');
    wss.close();
    release();
    expect((await answer).status).toBe(503);
    expect(connections).toBe(0);
  });

  it("answers ws takes: code null or 0 is 401, header lists and numbers are written, a status that cannot be one is 500; none throws", async () => {
    const answers: [boolean, number | null, string?, Record<string, string | number | string[]>?][] = [
      [false, null],
      [false, 0],
      [false, 429, 'slow', { 'Retry-After': 7, 'X-List': ['a', 'b'] }],
      [false, 200],
    ];
    let n = 0;
    const wss = new WebSocketServer({
      verifyClient: (_info, done) => {
        const [ok, code, message, headers] = answers[n++] ?? [true, null];
        setImmediate(() => done(ok, code as number, message, headers));
      },
    });
    const s = await serve(wss);
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof rawRequest>> | null = null;
    for (let i = 0; i < answers.length; i++) {
      last = await rawRequest(s.port, upgradeRequest('/'));
      statuses.push(last.status);
      if (i === 2) {
        expect(last.headers['retry-after']).toBe('7');
        expect(last.headers['x-list']).toBe('a, b');
      }
    }
    expect(statuses).toEqual([401, 401, 429, 500]);
  });
});

describe('WebSocketServer.handleUpgrade', () => {
  it('the 400 for another path survives a client that resets, and ends a client that lingers', async () => {
    const wss = new WebSocketServer({ path: '/chat' });
    const port = await byHand(wss);
    // A client that resets the connection as soon as the 400 arrives: no uncaught ECONNRESET
    // (vitest fails the run on an uncaught exception).
    for (let i = 0; i < 5; i++) {
      const sock = net.connect(port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write(upgradeRequest('/other'));
      await once(sock, 'data');
      sock.resetAndDestroy();
    }
    // A client that reads the 400 and never closes its side: the server's socket is closed anyway.
    upgradeSockets.length = 0;
    const lingering = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => {
      lingering.destroy();
    });
    lingering.on('error', () => {});
    lingering.write(upgradeRequest('/other'));
    const [head] = (await once(lingering, 'data')) as [Buffer];
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    const serverSide = upgradeSockets[0] as net.Socket;
    if (!serverSide.destroyed) await within(once(serverSide, 'close'), 4000, 'the server closing a lingering socket');
    expect(serverSide.destroyed).toBe(true);
  });

  it('targets the router cannot decode (/%zz) are still the caller\'s: 101 at once, as in ws', async () => {
    const wss = new WebSocketServer();
    const seen: string[] = [];
    wss.on('connection', (_ws, req) => seen.push(req.url ?? ''));
    const port = await byHand(wss);
    const raw = await within(RawClient.connect(port, '/%zz'), 1500, 'the 101');
    cleanups.push(() => {
      raw.socket.destroy();
    });
    expect(raw.status).toBe(101);
    expect(seen).toEqual(['/%zz']);
  });

  it('options wsRoute refuses: maxPayload 0 throws at construction; others answer 500 and emit error, never throw into the upgrade event', async () => {
    expect(() => new WebSocketServer({ maxPayload: 0 })).toThrow(/maxPayload 0 means "no limit" in ws/);
    const wss = new WebSocketServer({ maxPayload: -5 });
    const errors: string[] = [];
    wss.on('error', (error) => errors.push(error.message));
    const port = await byHand(wss);
    const answer = await rawRequest(port, upgradeRequest('/'));
    expect(answer.status).toBe(500);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/maxPayload/);
  });

  it("zlib's default level (-1) is taken as level 6", async () => {
    const wss = new WebSocketServer({ perMessageDeflate: { zlibDeflateOptions: { level: -1 }, threshold: 0 } });
    wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
    const s = await serve(wss);
    const ws = new WS(s.url('/'), { perMessageDeflate: true });
    cleanups.push(() => ws.terminate());
    await within(once(ws, 'open'), 3000, 'open');
    expect(ws.extensions).toMatch(/permessage-deflate/);
    ws.send('x'.repeat(100));
    const [echo] = await within(once(ws, 'message'), 3000, 'echo');
    expect(String(echo)).toBe('x'.repeat(100));
  });
});

describe('pause()', () => {
  it('a paused connection that fails (invalid UTF-8 in the same chunk) still closes at once, not after closeTimeout', async () => {
    const closes: number[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => {
      ws.on('message', () => ws.pause());
      ws.on('close', (code) => closes.push(code));
    });
    const s = await serve(wss, { closeTimeout: 20_000 });
    const raw = await RawClient.connect(s.port, '/');
    cleanups.push(() => {
      raw.socket.destroy();
    });
    raw.sendRaw(Buffer.concat([encodeClientFrame(0x1, 'ok'), encodeClientFrame(0x1, Buffer.from([0xff]))]));
    const close = await within(raw.nextFrame(3000), 4000, 'the close frame');
    expect(close.opcode).toBe(0x8);
    expect(close.payload.readUInt16BE(0)).toBe(1007);
    // The client's close reply and its FIN: the server must read them although the app paused.
    raw.socket.end(encodeClientFrame(0x8, Buffer.from([0x03, 0xef])));
    await within(waitFor(() => closes.length === 1, 4000, "'close'"), 5000, "'close' before closeTimeout");
    expect(closes).toEqual([1007]);
  });

  it("bytes that came with the upgrade wait for resume() when 'connection' pauses, as in ws", async () => {
    const got: string[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws: WebSocket) => {
      ws.pause();
      setTimeout(() => {
        ws.on('message', (data) => got.push(String(data)));
        ws.resume();
      }, 30);
    });
    const s = await serve(wss);
    const sock = net.connect(s.port, '127.0.0.1');
    cleanups.push(() => {
      sock.destroy();
    });
    sock.on('error', () => {});
    // The request and a first frame in one write: the frame arrives as the upgrade's head.
    sock.write(Buffer.concat([Buffer.from(upgradeRequest('/')), encodeClientFrame(0x1, 'early')]));
    await waitFor(() => got.length === 1, 3000, 'the early message');
    expect(got).toEqual(['early']);
  });
});

describe('send() and listeners', () => {
  it('send(data, null, callback) is send(data, callback), as in ws', async () => {
    const calls: unknown[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => ws.send('hi', null, (error) => calls.push(error)));
    const s = await serve(wss);
    const ws = new WS(s.url('/'));
    cleanups.push(() => ws.terminate());
    const [msg] = await within(once(ws, 'message'), 3000, 'message');
    expect(String(msg)).toBe('hi');
    await waitFor(() => calls.length === 1, 2000, 'callback');
    expect(calls).toEqual([undefined]);
  });

  it("an async 'message' listener that rejects closes that connection with 1011 (no unhandled rejection)", async () => {
    const errors: string[] = [];
    const wss = new WebSocketServer();
    wss.on('connection', (ws) => {
      ws.on('error', (error) => errors.push(error.message));
      ws.on('message', async () => {
        await Promise.resolve();
        throw new Error('async listener failed');
      });
    });
    const s = await serve(wss);
    const ws = new WS(s.url('/'));
    cleanups.push(() => ws.terminate());
    await within(once(ws, 'open'), 3000, 'open');
    ws.send('x');
    const [code] = (await within(once(ws, 'close'), 3000, 'close')) as [number];
    expect(code).toBe(1011);
    expect(errors).toEqual(['async listener failed']);
  });
});
