/**
 * WebSockets over HTTP/2 (RFC 8441) through `handler.attach(http2Server)`, end to end with Node's
 * own `node:http2` client, over h2c and over TLS (h2, `allowHTTP1`): the SETTINGS the server
 * advertises, the extended CONNECT's answer (§5: `:status 200`, never 101, no connection-specific
 * headers, `sec-websocket-accept` only for a key), subprotocols and permessage-deflate as on
 * HTTP/1.1, the request facts a behavior sees, refusals as real HTTP/2 responses that leave the
 * session serving, an async verify() and a client resetting its stream meanwhile, and the
 * heartbeat.
 *
 * The WebSocket peer is test/helpers/raw.ts's RawClient over a client stream: independent of
 * src/, it masks what it sends and parses what it gets.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { type Client, HandshakeRejection } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { encodeClientFrame, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { Echo2, type H2Mounted, connectHeaders, echoes, h2Fixture, nextData, request } from './http2-helpers.js';

const fx = useFixture();
const { mountH2, session, ws } = h2Fixture(fx);

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TRANSPORTS = [
  { name: 'h2c', secure: false },
  { name: 'h2', secure: true },
] as const;

/** The app behind the WebSockets: plain requests get 'app'. */
const app = (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
  res.end('app');
};

/** What a behavior saw of its request, recorded at onOpen. */
interface Seen {
  transport: string;
  url: string | undefined;
  headers: Record<string, unknown>;
  params: Record<string, string>;
  query: string;
  remoteAddress: string | undefined;
  route: string;
  protocol: string | undefined;
  deflate: boolean;
}
const seen: Seen[] = [];

class Room extends Echo2 {
  static override protocols = ['chat.v2', 'chat.v1'];
  static override requireProtocol = false;
  override onOpen(): void {
    seen.push({
      transport: this.transport,
      url: this.request.url,
      headers: { ...this.headers },
      params: { ...this.params },
      query: this.query.toString(),
      remoteAddress: this.remoteAddress,
      route: this.route,
      protocol: this.protocol,
      deflate: this.extensions.perMessageDeflate !== null,
    });
  }
}

class Compressed extends Echo2 {
  static override perMessageDeflate = true;
}

class NeedsProtocol extends Echo2 {
  static override protocols = ['v1'];
}

class Refuses extends Echo2 {
  override verify(): boolean {
    return false;
  }
}

class Unauthorized extends Echo2 {
  override verify(): void {
    throw new HandshakeRejection(401, 'who are you', { 'WWW-Authenticate': 'Bearer realm="ws"' });
  }
}

/** The same session still serves a WebSocket and a plain request. */
async function sessionStillServes(m: H2Mounted, s: http2.ClientHttp2Session): Promise<void> {
  const c = await ws(m, s, '/echo');
  await echoes(c, 'still here');
  const plain = await request(s, { ':path': '/page' });
  expect(plain.status).toBe(200);
  expect(plain.body).toBe('app');
  await c.close(1000);
}

/** A minimal HTTP/1.1 WebSocket over TLS (RawClient is TCP-only): the 101 head, one echo. */
async function tlsUpgradeEcho(port: number, path: string, text: string, headers: Record<string, string> = {}): Promise<{ status: number; head: string; echoed: string; alpn: string | false | null }> {
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  fx.keep(socket);
  socket.on('error', () => {});
  await within(new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  }), 3000, 'TLS connect');
  const alpn = socket.alpnProtocol;
  let buf = Buffer.alloc(0);
  const more = (): Promise<void> =>
    within(new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        socket.removeListener('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        socket.removeListener('data', onData);
        reject(new Error('closed'));
      };
      socket.once('data', onData);
      socket.once('close', onClose);
    }), 3000, 'TLS data');
  socket.write(upgradeRequest(path, headers));
  while (buf.indexOf('\r\n\r\n') === -1) await more();
  const end = buf.indexOf('\r\n\r\n');
  const head = buf.subarray(0, end).toString('latin1');
  const status = Number(head.split(' ')[1]);
  buf = buf.subarray(end + 4);
  if (status !== 101) return { status, head, echoed: '', alpn };
  socket.write(encodeClientFrame(0x1, text));
  while (buf.length < 2 || buf.length < 2 + ((buf[1] as number) & 0x7f)) await more();
  const echoed = buf.subarray(2, 2 + ((buf[1] as number) & 0x7f)).toString();
  socket.write(encodeClientFrame(0x8, Buffer.from([0x03, 0xe8])));
  return { status, head, echoed, alpn };
}

describe.each(TRANSPORTS)('over $name', ({ name, secure }) => {
  const routes = { '/echo': Echo2, '/rooms/:room': Room, '/zip': Compressed, '/needs': NeedsProtocol, '/refuses': Refuses, '/auth': Unauthorized };
  const mount = (options = {}): Promise<H2Mounted> => mountH2(routes, options, { secure, onRequest: app });

  describe('SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3)', () => {
    test('a server is not advertising it before attach(); attach() makes new sessions see enableConnectProtocol true; detach() of the last handler stops it for new sessions', async () => {
      const m = await mountH2(routes, {}, { secure, onRequest: app, attach: false });
      const before = await session(m);
      expect(before.remoteSettings.enableConnectProtocol ?? false).toBe(false);

      m.handler.attach(m.server);
      const on = await session(m);
      expect(on.remoteSettings.enableConnectProtocol).toBe(true);
      const c = await ws(m, on, '/echo');
      await echoes(c, 'advertised');

      m.handler.detach(m.server);
      const after = await session(m);
      expect(after.remoteSettings.enableConnectProtocol ?? false).toBe(false);
      // The socket opened while attached is not touched by detach().
      await echoes(c, 'still open after detach');
      // A session that was told 1 is never told 0 (RFC 8441 §3: the setting cannot be withdrawn);
      // a new CONNECT there gets Node's answer with no handler attached (405), not a hang.
      await sleep(20);
      expect(on.remoteSettings.enableConnectProtocol).toBe(true);
      expect((await request(on, connectHeaders(m, '/echo'), undefined, 1000)).status).toBe(405);
    });
  });

  describe('echo and the request a behavior sees', () => {
    test(`text and binary messages echo; behavior.transport is '${name}'`, async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/echo');
      await echoes(c, 'héllo over h2');
      const bin = randomBytes(70_000);
      c.send(0x2, bin);
      const f = await c.nextFrame();
      expect(f.opcode).toBe(0x2);
      expect(f.masked).toBe(false);
      expect(f.payload.equals(bin)).toBe(true);
      const b = [...m.handler.clients][0] as Client;
      expect(b.transport).toBe(name);
      const closed = await c.close(1000, 'bye');
      expect(closed.code).toBe(1000);
      expect(closed.tcpClosed).toBe(true);
    });

    test('request.url, headers, params, query, remoteAddress, route are what HTTP/1.1 gives for the same URL', async () => {
      seen.length = 0;
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/rooms/l%C3%A9o?x=1&y=two', { origin: 'https://app.example', 'x-custom': 'yes' });
      await waitFor(() => seen.length === 1, 2000, 'onOpen');
      const h2 = seen[0] as Seen;
      expect(h2.transport).toBe(name);
      expect(h2.url).toBe('/rooms/l%C3%A9o?x=1&y=two');
      expect(h2.params).toEqual({ room: 'léo' });
      expect(h2.query).toBe('x=1&y=two');
      expect(h2.route).toBe('/rooms/:room');
      expect(h2.remoteAddress).toBe('127.0.0.1');
      expect(h2.headers['origin']).toBe('https://app.example');
      expect(h2.headers['x-custom']).toBe('yes');
      expect(h2.headers['sec-websocket-version']).toBe('13');
      expect(h2.headers[':protocol']).toBe('websocket');
      expect(h2.headers[':path']).toBe('/rooms/l%C3%A9o?x=1&y=two');
      await c.close(1000);

      if (secure) {
        // allowHTTP1: the same URL as an HTTP/1.1 upgrade on the same server gives the same facts.
        const h1 = await tlsUpgradeEcho(m.port, '/rooms/l%C3%A9o?x=1&y=two', 'hi', { Origin: 'https://app.example', 'X-Custom': 'yes' });
        expect(h1.status).toBe(101);
        expect(h1.echoed).toBe('hi');
        await waitFor(() => seen.length === 2, 2000, 'onOpen over HTTP/1.1');
        const one = seen[1] as Seen;
        expect(one.transport).toBe('http/1.1');
        for (const k of ['url', 'params', 'query', 'remoteAddress', 'route'] as const) expect(h2[k], k).toEqual(one[k]);
        expect(h2.headers['origin']).toBe(one.headers['origin']);
        expect(h2.headers['x-custom']).toBe(one.headers['x-custom']);
      }
    });
  });

  describe('the answer to an extended CONNECT (RFC 8441 §5)', () => {
    test(':status 200, never 101, no upgrade or connection header, and no sec-websocket-accept when no key was sent (as browsers do)', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/echo');
      expect(c.status).toBe(200);
      expect(c.headers['upgrade']).toBeUndefined();
      expect(c.headers['connection']).toBeUndefined();
      expect(c.headers['sec-websocket-accept']).toBeUndefined();
      expect(c.headers['sec-websocket-protocol']).toBeUndefined();
      expect(c.headers['sec-websocket-extensions']).toBeUndefined();
      await echoes(c, 'keyless');
    });

    test('a sec-websocket-key gets the sec-websocket-accept RFC 6455 computes for it (undici checks it)', async () => {
      const m = await mount();
      const s = await session(m);
      const key = randomBytes(16).toString('base64');
      const c = await ws(m, s, '/echo', { 'sec-websocket-key': key });
      expect(c.status).toBe(200);
      expect(c.headers['sec-websocket-accept']).toBe(createHash('sha1').update(key + GUID).digest('base64'));
      expect(c.headers['upgrade']).toBeUndefined();
      await echoes(c, 'keyed');
    });

    test('a sec-websocket-key that is not base64 of 16 bytes is ignored over HTTP/2 (RFC 8441 §5: no key processing): 200 without sec-websocket-accept', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/echo', { 'sec-websocket-key': 'not a key' });
      expect(c.status).toBe(200);
      expect(c.headers['sec-websocket-accept']).toBeUndefined();
      await echoes(c, 'keyless after all');
    });

    test('subprotocols are chosen as on HTTP/1.1: the route\'s first supported one the client offers, none when none matches and none is required', async () => {
      seen.length = 0;
      const m = await mount();
      const s = await session(m);
      const a = await ws(m, s, '/rooms/a', { 'sec-websocket-protocol': 'chat.v1, chat.v2' });
      expect(a.headers['sec-websocket-protocol']).toBe('chat.v2');
      const b = await ws(m, s, '/rooms/b', { 'sec-websocket-protocol': 'other' });
      expect(b.headers['sec-websocket-protocol']).toBeUndefined();
      await waitFor(() => seen.length === 2, 2000, 'both open');
      expect(seen.map((x) => x.protocol).sort()).toEqual(['chat.v2', undefined].sort());
      await echoes(a, 'a');
      await echoes(b, 'b');
    });

    test('permessage-deflate is negotiated as on HTTP/1.1; a compressed message (RSV1) from the client is inflated, and the echo comes back compressed', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/zip', { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' });
      const agreed = c.headers['sec-websocket-extensions'];
      expect(agreed).toMatch(/^permessage-deflate/);
      const text = 'compress me '.repeat(200); // past the 1024-byte threshold, so the echo is compressed too
      const out = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      expect(out.subarray(-4).equals(Buffer.from([0x00, 0x00, 0xff, 0xff]))).toBe(true);
      c.send(0x1, out.subarray(0, -4), { rsv: 4 });
      const f = await c.nextFrame();
      expect(f.opcode).toBe(0x1);
      expect(f.rsv).toBe(4);
      expect(f.payload.length).toBeLessThan(text.length);
      const echoed = zlib.inflateRawSync(Buffer.concat([f.payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      expect(echoed.toString()).toBe(text);
      // A route without compression declines the same offer.
      const plain = await ws(m, s, '/echo', { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' });
      expect(plain.headers['sec-websocket-extensions']).toBeUndefined();
      await echoes(plain, 'not compressed');
      if (secure) {
        const h1 = await tlsUpgradeEcho(m.port, '/zip', 'x', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
        expect(h1.head.toLowerCase()).toContain(`sec-websocket-extensions: ${String(agreed).toLowerCase()}`);
      }
    });
  });

  describe('refusals are real HTTP/2 responses (status, text body) and the session goes on serving', () => {
    /** Sends the CONNECT, checks the refusal's shape, and that the session still serves. */
    async function refused(m: H2Mounted, s: http2.ClientHttp2Session, path: string, extra: Record<string, string>, status: number): Promise<http2.IncomingHttpHeaders> {
      const r = await request(s, connectHeaders(m, path, extra));
      expect(r.status).toBe(status);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
      expect(r.body.length).toBeGreaterThan(0);
      // Connection-specific headers are forbidden in HTTP/2 (RFC 9113 §8.2.2).
      expect(r.headers['connection']).toBeUndefined();
      // The refusal ends the stream; it never resets it.
      expect(r.rstCode).toBe(0);
      await sessionStillServes(m, s);
      return r.headers;
    }

    test('404 for a path no route serves, at once (no hang)', async () => {
      const m = await mount();
      const s = await session(m);
      await refused(m, s, '/nowhere', {}, 404);
      expect(m.handler.stats().handshakesRejectedByStatus).toMatchObject({ 404: 1 });
    });

    test('403 for an origin not in origins', async () => {
      const m = await mount({ origins: ['https://app.example'] });
      const s = await session(m);
      await refused(m, s, '/echo', { origin: 'https://evil.example' }, 403);
      const ok = await ws(m, s, '/echo', { origin: 'https://app.example' });
      await echoes(ok, 'allowed origin');
    });

    test('403 when verify() returns false', async () => {
      const m = await mount();
      const s = await session(m);
      await refused(m, s, '/refuses', {}, 403);
    });

    test('a HandshakeRejection(401) from verify() answers 401 with its header', async () => {
      const m = await mount();
      const s = await session(m);
      const h = await refused(m, s, '/auth', {}, 401);
      expect(h['www-authenticate']).toBe('Bearer realm="ws"');
    });

    test('426 with sec-websocket-version: 13 for another version', async () => {
      const m = await mount();
      const s = await session(m);
      const h = await refused(m, s, '/echo', { 'sec-websocket-version': '8' }, 426);
      expect(h['sec-websocket-version']).toBe('13');
    });

    test('400 when the route requires a subprotocol the client does not offer', async () => {
      const m = await mount();
      const s = await session(m);
      await refused(m, s, '/needs', { 'sec-websocket-protocol': 'v9' }, 400);
      await refused(m, s, '/needs', {}, 400);
      const ok = await ws(m, s, '/needs', { 'sec-websocket-protocol': 'v1' });
      expect(ok.headers['sec-websocket-protocol']).toBe('v1');
    });
  });
});

describe('verify() over HTTP/2', () => {
  let release: (() => void) | null = null;
  const started: number[] = [];
  class Slow extends Echo2 {
    override async verify(): Promise<boolean> {
      started.push(this.id);
      await new Promise<void>((resolve) => {
        release = resolve;
        fx.defer(resolve);
      });
      return true;
    }
  }

  test.each(TRANSPORTS)('an async verify() holds the stream, then opens it ($name)', async ({ secure }) => {
    started.length = 0;
    const m = await mountH2({ '/slow': Slow }, {}, { secure, onRequest: app });
    const s = await session(m);
    const opening = ws(m, s, '/slow');
    await waitFor(() => m.handler.stats().pendingHandshakes === 1, 2000, 'verify() running');
    // Meanwhile the session serves other requests.
    expect((await request(s, { ':path': '/' })).body).toBe('app');
    release?.();
    const c = await within(opening, 2000, 'the 200 after verify()');
    await echoes(c, 'verified');
    expect(m.handler.stats().pendingHandshakes).toBe(0);
  });

  test.each(TRANSPORTS)('frames a client sends before the 200 (with the CONNECT, during an async verify()) are kept and handled in order once it opens ($name)', async ({ secure }) => {
    started.length = 0;
    const m = await mountH2({ '/slow': Slow }, {}, { secure, onRequest: app });
    const s = await session(m);
    const stream = s.request(connectHeaders(m, '/slow'), { endStream: false });
    stream.on('error', () => {});
    fx.defer(() => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.write(Buffer.concat([encodeClientFrame(0x1, 'early one'), encodeClientFrame(0x1, 'early two')]));
    await waitFor(() => m.handler.stats().pendingHandshakes === 1, 2000, 'verify() running');
    stream.write(encodeClientFrame(0x1, 'during verify'));
    await sleep(20);
    let got = Buffer.alloc(0);
    stream.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
    });
    const status = new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    release?.();
    expect(await within(status, 2000, 'the 200')).toBe(200);
    const texts: string[] = [];
    await waitFor(
      () => {
        texts.length = 0;
        for (let b = got; b.length >= 2 && b.length >= 2 + ((b[1] as number) & 0x7f); b = b.subarray(2 + ((b[1] as number) & 0x7f))) {
          texts.push(b.subarray(2, 2 + ((b[1] as number) & 0x7f)).toString());
        }
        return texts.length >= 3;
      },
      2000,
      'three echoes',
    );
    expect(texts).toEqual(['early one', 'early two', 'during verify']);
  });

  test.each(TRANSPORTS)('the client resetting its stream during verify() frees its place: pendingHandshakes back to 0, maxConnections usable again, the session unaffected ($name)', async ({ secure }) => {
    started.length = 0;
    const m = await mountH2({ '/slow': Slow, '/echo': Echo2 }, { maxConnections: 1 }, { secure, onRequest: app });
    const s = await session(m);
    const stream = s.request(connectHeaders(m, '/slow'), { endStream: false });
    stream.on('error', () => {});
    let answered = false;
    stream.on('response', () => {
      answered = true;
    });
    await waitFor(() => m.handler.stats().pendingHandshakes === 1, 2000, 'verify() running');
    // The only place is taken by the pending upgrade.
    const full = await request(s, connectHeaders(m, '/echo'));
    expect(full.status).toBe(503);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => m.handler.stats().pendingHandshakes === 0, 2000, 'the pending upgrade dropped');
    release?.(); // verify() says yes after the client left: ignored
    await sleep(20);
    expect(answered).toBe(false);
    expect(m.handler.stats().connections).toBe(0);
    const c = await ws(m, s, '/echo');
    await echoes(c, 'the place is free again');
  });
});

describe('heartbeat over HTTP/2', () => {
  class Beats extends Echo2 {
    static override pingInterval = 100;
    static override pongTimeout = 100;
  }

  test.each(TRANSPORTS)('pings reach the client on its stream, and answering them keeps the WebSocket open ($name)', async ({ secure }) => {
    const m = await mountH2({ '/beats': Beats }, {}, { secure, onRequest: app });
    const s = await session(m);
    const c = await ws(m, s, '/beats');
    let pings = 0;
    for (let i = 0; i < 200 && pings < 4; i++) {
      const f = await c.nextFrame(2000);
      expect(f.opcode).toBe(0x9);
      pings++;
      c.send(0xa, f.payload);
    }
    expect(pings).toBe(4);
    expect(c.tcpClosed).toBe(false);
    expect(m.handler.clients.size).toBe(1);
    expect(m.handler.stats().pongTimeouts).toBe(0);
    c.send(0x1, 'alive');
    expect((await nextData(c)).payload.toString()).toBe('alive');
  });
});

