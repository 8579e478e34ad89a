/**
 * Mounting on an HTTP/2 server the app already owns, with Node's compatibility layer in the way.
 *
 * An app 'request' listener (Express, Koa, Fastify, Hono over http2) makes Node turn every
 * CONNECT into a 'connect' event and answer 405 when nobody listens, which would kill a
 * WebSocket's tunnel (research wave2 §2.1). wsmount's 'stream' listener goes first and its
 * 'connect' guard leaves the streams it took alone, so:
 *
 * - WebSockets work on such a server, h2c and TLS with allowHTTP1 (no 405, no tunnel ended after
 *   the 200), and plain requests on the same session still get the app's answer;
 * - an extended CONNECT for a path no route has gets a real 404; a plain CONNECT (no :protocol)
 *   gets the 405 Node would give, or goes to the app's own 'connect' listener; a :protocol that is
 *   not websocket is never taken by wsmount (Caddy PR #6740: only `websocket` is a WebSocket);
 * - a 'stream' listener of the app's may take an extended CONNECT wsmount has no route for
 *   (wsmount waits unclaimedTimeout, then answers 404 if nobody did);
 * - with allowHTTP1 the same server serves HTTP/1.1 upgrades (over TLS) and plain HTTP/1.1 while
 *   h2 WebSockets are open;
 * - the setting follows the handlers: two wsmount handlers on one server, detaching one keeps
 *   SETTINGS_ENABLE_CONNECT_PROTOCOL advertised, detaching the last turns it off.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { describe, expect, test } from 'vitest';
import { createWebSocketHandler } from '../../src/index.js';
import { bounded, useFixture, within } from '../helpers/fixture.js';
import { encodeClientFrame, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { Echo2, type H2Mounted, connectHeaders, echoes, h2Fixture, request } from './http2-helpers.js';

const fx = useFixture();
const { mountH2, session, ws } = h2Fixture(fx);

const TRANSPORTS = [
  { name: 'h2c', secure: false },
  { name: 'h2', secure: true },
] as const;

const app = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
  res.setHeader('content-type', 'text/plain');
  res.end(`app ${req.method} ${req.url} over HTTP/${req.httpVersion}`);
};

/** A plain-CONNECT request as a proxy client sends it: :method and :authority only (RFC 9113 §8.5). */
function plainConnect(authority = 'example.com:443'): http2.OutgoingHttpHeaders {
  return { ':method': 'CONNECT', ':authority': authority };
}

describe.each(TRANSPORTS)("an app with a 'request' listener ($name)", ({ secure }) => {
  const mount = (options = {}): Promise<H2Mounted> => mountH2({ '/echo': Echo2 }, options, { secure, onRequest: app });

  test('WebSockets open and keep working (no 405, no tunnel ended by the compatibility layer), and plain requests on the same session get the app', async () => {
    const m = await mount();
    const s = await session(m);
    const a = await ws(m, s, '/echo');
    expect(a.status).toBe(200);
    const plain = await request(s, { ':path': '/page?x=1' });
    expect(plain.status).toBe(200);
    expect(plain.body).toBe('app GET /page?x=1 over HTTP/2.0');
    const b = await ws(m, s, '/echo');
    // Past the turn in which the compatibility layer handled the CONNECT: still open.
    await sleep(50);
    expect(a.tcpClosed).toBe(false);
    expect(a.stream?.closed).toBe(false);
    for (let i = 0; i < 5; i++) {
      await echoes(a, `a${i}`);
      await echoes(b, `b${i}`);
    }
    const posted = await request(s, { ':method': 'POST', ':path': '/form' }, 'body');
    expect(posted.body).toBe('app POST /form over HTTP/2.0');
    expect((await a.close(1000)).tcpClosed).toBe(true);
    expect(a.stream?.rstCode).toBe(0);
    await echoes(b, 'b after a left');
  });

  test('an extended CONNECT for a path no route has gets a real 404 at once', async () => {
    const m = await mount();
    const s = await session(m);
    const r = await request(s, connectHeaders(m, '/nowhere'), undefined, 1000);
    expect(r.status).toBe(404);
    expect(r.body).toMatch(/no WebSocket route/);
    expect(r.rstCode).toBe(0);
    await echoes(await ws(m, s, '/echo'), 'fine');
  });

  test('a plain CONNECT (no :protocol) gets 405, as Node answers without wsmount; the session goes on', async () => {
    const m = await mount();
    const s = await session(m);
    const r = await request(s, plainConnect(), undefined, 1000);
    expect(r.status).toBe(405);
    expect(m.handler.stats().handshakesRejected).toBe(0);
    await echoes(await ws(m, s, '/echo'), 'fine');
    expect((await request(s, { ':path': '/' })).body).toBe('app GET / over HTTP/2.0');
  });

  test('a :protocol that is not websocket is not taken by wsmount, even on a WebSocket route: Node\'s 405 when the app has no \'connect\' listener', async () => {
    const m = await mount();
    const s = await session(m);
    const r = await request(s, { ...connectHeaders(m, '/echo'), ':protocol': 'connect-udp' }, undefined, 1000);
    expect(r.status).toBe(405);
    expect(m.handler.stats().handshakesAccepted).toBe(0);
    expect(m.handler.stats().handshakesRejected).toBe(0);
    await echoes(await ws(m, s, '/echo'), 'fine');
  });

  test("the app's own 'connect' listener gets plain CONNECTs and other :protocols; wsmount's WebSockets are not handed to it as unanswered", async () => {
    const m = await mount();
    const seen: string[] = [];
    m.server.on('connect', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      // A careful app: a stream someone already answered is not its business.
      if (req.stream.headersSent) return;
      seen.push(`${String(req.headers[':protocol'] ?? 'plain')} ${req.headers[':authority'] ?? ''}`);
      res.writeHead(200);
      res.end('tunnel');
    });
    const s = await session(m);
    const c = await ws(m, s, '/echo');
    const tunnel = await request(s, plainConnect('proxy.example:443'), undefined, 1000);
    expect(tunnel.status).toBe(200);
    expect(tunnel.body).toBe('tunnel');
    const udp = await request(s, { ...connectHeaders(m, '/echo'), ':protocol': 'connect-udp' }, undefined, 1000);
    expect(udp.status).toBe(200);
    expect(seen).toEqual(['plain proxy.example:443', `connect-udp 127.0.0.1:${m.port}`]);
    await echoes(c, 'still mine');
  });
});

describe('other listeners of the app', () => {
  test.each(TRANSPORTS)("an app 'stream' listener may take an extended CONNECT wsmount has no route for; one nobody takes gets 404 after unclaimedTimeout ($name)", async ({ secure }) => {
    const m = await mountH2({ '/echo': Echo2 }, { unclaimedTimeout: 100 }, { secure });
    m.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      if (headers[':path'] === '/theirs') {
        stream.respond({ ':status': 200, 'x-served-by': 'app' });
        stream.end('theirs');
      } else if (headers[':method'] !== 'CONNECT') {
        stream.respond({ ':status': 200 });
        stream.end('plain');
      }
    });
    const s = await session(m);
    const theirs = await request(s, connectHeaders(m, '/theirs'), undefined, 1000);
    expect(theirs.status).toBe(200);
    expect(theirs.headers['x-served-by']).toBe('app');
    expect(theirs.body).toBe('theirs');
    const nobody = await request(s, connectHeaders(m, '/nobody'), undefined, 2000);
    expect(nobody.status).toBe(404);
    expect(m.handler.stats().handshakesRejectedByStatus).toEqual({ 404: 1 });
    await echoes(await ws(m, s, '/echo'), 'mine');
    expect((await request(s, { ':path': '/' })).body).toBe('plain');
  });

  test.each(TRANSPORTS)("an app 'connect' listener that answers an extended CONNECT while wsmount's async verify() runs (headersSent is still false then): when verify() settles, wsmount leaves the stream to the app, throws nothing, and gives its place back ($name)", async ({ secure }) => {
    const escaped: unknown[] = [];
    const record = (error: unknown): void => {
      escaped.push(error);
    };
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
    fx.defer(() => {
      process.removeListener('uncaughtException', record);
      process.removeListener('unhandledRejection', record);
    });
    class Slow extends Echo2 {
      override async verify(): Promise<boolean> {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return true;
      }
    }
    const m = await mountH2({ '/slow': Slow, '/echo': Echo2 }, { maxConnections: 1 }, { secure, onRequest: app });
    m.server.on('connect', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (req.stream.headersSent || req.url !== '/slow') return; // leaves answered streams alone
      res.writeHead(200, { 'x-served-by': 'app' }); // a tunnel: answered, kept open
      res.write('proxied');
    });
    const s = await session(m);
    const stream = s.request(connectHeaders(m, '/slow'), { endStream: false });
    stream.on('error', () => {});
    fx.defer(() => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    let tunnel = '';
    stream.on('data', (d: Buffer) => (tunnel += d.toString()));
    const headers = await within(new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve)), 2000, 'the app answering');
    expect(headers['x-served-by']).toBe('app');
    await waitFor(() => m.handler.stats().pendingHandshakes === 0, 2000, 'verify() settled');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect.soft(escaped.map(String), 'errors thrown out of the server').toEqual([]);
    expect.soft(tunnel).toBe('proxied');
    expect.soft({ closed: stream.closed, rstCode: stream.closed ? stream.rstCode : undefined }, "the app's stream is left alone: not reset by wsmount").toEqual({ closed: false, rstCode: undefined });
    expect.soft(m.handler.stats().handshakesRejected, 'not counted as a refusal of ours').toBe(0);
    const next = await ws(m, s, '/echo').then(
      () => 'opened',
      (error: unknown) => String(error),
    );
    expect.soft(next, 'the place verify() held is given back (maxConnections 1)').toBe('opened');
  });

  test('two wsmount handlers on one server: each serves its routes; detaching one keeps SETTINGS_ENABLE_CONNECT_PROTOCOL advertised, detaching the last stops it', async () => {
    const m = await mountH2({ '/one': Echo2 }, {}, { onRequest: app });
    const two = createWebSocketHandler({ '/two': Echo2 }, { logLevel: 'silent' });
    fx.defer(() => bounded(two.close({ timeout: 300 })));
    two.attach(m.server);
    const s = await session(m);
    await echoes(await ws(m, s, '/one'), 'one');
    await echoes(await ws(m, s, '/two'), 'two');
    m.handler.detach(m.server);
    const s2 = await session(m);
    expect(s2.remoteSettings.enableConnectProtocol).toBe(true);
    expect((await request(s2, connectHeaders(m, '/one'), undefined, 1000)).status).toBe(404);
    await echoes(await ws(m, s2, '/two'), 'two still');
    two.detach(m.server);
    const s3 = await session(m);
    expect(s3.remoteSettings.enableConnectProtocol ?? false).toBe(false);
    expect((await request(s3, { ':path': '/' })).body).toBe('app GET / over HTTP/2.0');
  });
});

describe('allowHTTP1: one TLS server for HTTP/2 and HTTP/1.1', () => {
  /** An HTTP/1.1 WebSocket over TLS (ALPN http/1.1): the 101, then `texts` echoed one by one. */
  async function h1WebSocket(port: number, path: string, texts: string[]): Promise<{ status: number; echoed: string[]; alpn: string | false | null }> {
    const socket = fx.keep(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let wake: (() => void) | null = null;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      wake?.();
    });
    const until = async (ok: () => boolean): Promise<void> => {
      await within(
        (async () => {
          while (!ok()) await new Promise<void>((resolve) => (wake = resolve));
        })(),
        3000,
        'TLS data',
      );
    };
    await within(new Promise<void>((resolve) => socket.once('secureConnect', () => resolve())), 3000, 'TLS handshake');
    socket.write(upgradeRequest(path));
    await until(() => buf.includes('\r\n\r\n'));
    const end = buf.indexOf('\r\n\r\n');
    const status = Number(buf.subarray(0, end).toString('latin1').split(' ')[1]);
    buf = buf.subarray(end + 4);
    const echoed: string[] = [];
    for (const t of texts) {
      socket.write(encodeClientFrame(0x1, t));
      await until(() => buf.length >= 2 && buf.length >= 2 + ((buf[1] as number) & 0x7f));
      const n = (buf[1] as number) & 0x7f;
      echoed.push(buf.subarray(2, 2 + n).toString());
      buf = buf.subarray(2 + n);
    }
    socket.write(encodeClientFrame(0x8, Buffer.from([0x03, 0xe8])));
    await until(() => buf.length >= 2);
    expect(buf[0]).toBe(0x88);
    return { status, echoed, alpn: socket.alpnProtocol };
  }

  test("an HTTP/1.1 upgrade over TLS and plain HTTP/1.1 requests are served by the same server while h2 WebSockets are open, with a 'request' listener", async () => {
    const m = await mountH2({ '/echo': Echo2 }, {}, { secure: true, onRequest: app });
    const s = await session(m);
    const h2a = await ws(m, s, '/echo');
    const h2b = await ws(m, s, '/echo');
    const one = await h1WebSocket(m.port, '/echo', ['h1 first', 'h1 second']);
    expect(one).toEqual({ status: 101, echoed: ['h1 first', 'h1 second'], alpn: 'http/1.1' });
    expect([...m.handler.clients].filter((c) => c.transport === 'h2').length).toBe(2);
    expect(m.handler.stats().handshakesAccepted).toBe(3);
    await echoes(h2a, 'h2 a');
    await echoes(h2b, 'h2 b');
    const plain = await within(
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: m.port, path: '/h1', rejectUnauthorized: false, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      }),
      3000,
      'HTTP/1.1 GET',
    );
    expect(plain).toBe('app GET /h1 over HTTP/1.1');
    expect((await request(s, { ':path': '/h2' })).body).toBe('app GET /h2 over HTTP/2.0');
  });
});
