/**
 * wsmount/testing over HTTP/2 (RFC 8441, issue 14): listen(routes, { http2: true }) serves an
 * http2 server (h2c, or h2 with `tls`), and connect(…, { http2 }) opens the WebSocket as an
 * extended CONNECT stream, in its own session or in one the test opened. Real sockets on
 * 127.0.0.1, free ports, throwaway certificates from the openssl CLI; every wait is bounded.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { acceptKey } from '../../src/handshake/index.js';
import { Behavior, HandshakeRejection } from '../../src/index.js';
import { HandshakeError, type Listening, type TestClient, connect, listen } from '../../src/testing/index.js';
import { type Certificate, selfSignedCertificate } from '../helpers/certs.js';
import { within } from '../helpers/fixture.js';

class Echo extends Behavior {
  override onText(text: string) {
    this.sendText(text);
  }
  override onBinary(data: Buffer) {
    this.sendBinary(data);
  }
}

/** Answers with what the server saw: its transport and the request's pseudo-headers. */
class Whoami extends Behavior {
  override onOpen() {
    const h = this.request.headers;
    this.sendText(JSON.stringify({ transport: this.transport, method: this.request.method, protocol: h[':protocol'] ?? null, key: h['sec-websocket-key'] ?? null }));
  }
}

class Chat extends Behavior {
  static override protocols = ['chat.v2', 'chat.v1'];
  override onText(text: string) {
    this.sendText(`${this.protocol}:${text}`);
  }
}

class Compressed extends Echo {
  static override perMessageDeflate = true;
}

class Locked extends Behavior {
  override verify() {
    return false;
  }
}

class LogIn extends Behavior {
  override verify() {
    throw new HandshakeRejection(401, 'log in first');
  }
}

/** Closes from the server side once asked. */
class Bye extends Behavior {
  override onText(text: string) {
    if (text === 'bye') this.close(4000, 'done');
  }
}

const routes = { '/echo': Echo, '/whoami': Whoami, '/chat': Chat, '/deflate': Compressed, '/locked': Locked, '/login': LogIn, '/bye': Bye };

let cert: Certificate;
beforeAll(() => {
  cert = selfSignedCertificate();
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

async function h2cServer(): Promise<Listening<http2.Http2Server | http2.Http2SecureServer>> {
  const server = await listen(routes, { http2: true });
  cleanups.push(() => server.close());
  return server;
}

async function h2Server(): Promise<Listening<http2.Http2Server | http2.Http2SecureServer>> {
  const server = await listen(routes, { http2: true, tls: { key: cert.key, cert: cert.cert } });
  cleanups.push(() => server.close());
  return server;
}

function track(client: TestClient): TestClient {
  cleanups.push(() => {
    client.terminate();
  });
  return client;
}

/** A session the test owns, closed (then destroyed) at teardown. */
function session(url: string, options: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  const s = http2.connect(url, options);
  s.on('error', () => {});
  cleanups.push(() => {
    s.destroy();
  });
  return s;
}

async function refusal(promise: Promise<unknown>, ms = 5000): Promise<HandshakeError> {
  const error = await within(promise.then(() => null, (e: unknown) => e), ms, 'connect');
  expect(error).toBeInstanceOf(HandshakeError);
  return error as HandshakeError;
}

function closedOf(emitter: { once(event: 'close', listener: () => void): unknown; closed: boolean }): Promise<void> {
  return emitter.closed ? Promise.resolve() : new Promise((resolve) => emitter.once('close', () => resolve()));
}

/** A raw node:http2 server (no wsmount) for the failure cases; `onStream` answers each stream. */
async function rawHttp2(
  settings: http2.Settings,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<{ url: string; port: number }> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${port}`, port };
}

describe('listen({ http2: true })', () => {
  test('cleartext: an http2 server (h2c), url() gives ws://127.0.0.1:<port>/path', async () => {
    const server = await h2cServer();
    expect(server.server).not.toBeInstanceOf(http.Server);
    expect(typeof server.server.updateSettings).toBe('function');
    expect(server.url('/echo?x=1')).toBe(`ws://127.0.0.1:${server.port}/echo?x=1`);
  });

  test('with tls: a secure http2 server, url() gives wss://', async () => {
    const server = await h2Server();
    expect(server.url('/echo')).toBe(`wss://127.0.0.1:${server.port}/echo`);
  });

  test('plain HTTP/2 requests get the 426 test-server answer, with no connection-specific headers (RFC 9113 §8.2.2)', async () => {
    const server = await h2cServer();
    const s = session(`http://127.0.0.1:${server.port}`);
    const request = s.request({ ':path': '/' });
    const [status, body] = await within(
      new Promise<[number, string]>((resolve, reject) => {
        let status = 0;
        let text = '';
        request.on('response', (h) => {
          status = Number(h[':status']);
          expect(h['connection']).toBeUndefined();
        });
        request.setEncoding('utf8');
        request.on('data', (chunk: string) => {
          text += chunk;
        });
        request.on('end', () => resolve([status, text]));
        request.on('error', reject);
      }),
      5000,
      'plain request',
    );
    expect(status).toBe(426);
    expect(body).toBe('This is a WebSocket test server.\n');
  });

  test('close() ends open h2 WebSockets with 1001, closes the sessions (also one the test opened) and resolves promptly', async () => {
    const server = await listen(routes, { http2: true });
    const own = await connect(server, '/echo', { http2: true });
    const s = session(`http://127.0.0.1:${server.port}`);
    const shared = await connect(server, '/echo', { http2: s });
    const started = Date.now();
    await within(server.close(), 3000, 'listen close');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await within(own.closed, 3000, 'own closed')).toEqual({ code: 1001, reason: '' });
    expect(await within(shared.closed, 3000, 'shared closed')).toEqual({ code: 1001, reason: '' });
    await within(closedOf(s), 3000, 'session GOAWAY');
    expect(server.server.listening).toBe(false);
  });

  test('close() does not hang on a client that never answers the close frame, nor on an idle session', async () => {
    const server = await listen(routes, { http2: true, closeTimeout: 200 });
    const silent = await connect(server, '/echo', { http2: true, closeTimeout: 10_000 });
    // Stop reading: the client never sees the close frame, so never answers it.
    silent.http2Stream?.pause();
    silent.http2Stream?.removeAllListeners('data');
    session(`http://127.0.0.1:${server.port}`); // an idle session: no stream at all
    await within(server.close(), 3000, 'listen close');
    expect(server.server.listening).toBe(false);
  });

  test('server: an HTTP/2 server that already listens stays up after close(); only its WebSockets end', async () => {
    const own = http2.createServer();
    await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => own.close(() => resolve())));
    const server = await listen(routes, { http2: true, server: own });
    expect(server.server).toBe(own);
    const s = session(`http://127.0.0.1:${server.port}`);
    const client = await connect(server, '/echo', { http2: s });
    await within(server.close(), 3000, 'listen close');
    expect((await within(client.closed, 3000, 'closed')).code).toBe(1001);
    expect(own.listening).toBe(true);
    expect(s.closed || s.destroyed).toBe(false);
  });

  test('close() on a server given a handler ends only its own clients', async () => {
    const first = await listen(routes, { http2: true });
    cleanups.push(() => first.close());
    const second = await listen(first.handler, { http2: true });
    const there = await connect(second, '/echo', { http2: true });
    const here = track(await connect(first, '/echo', { http2: true }));
    await within(second.close(), 3000, 'second close');
    expect((await within(there.closed, 3000, 'closed')).code).toBe(1001);
    expect(here.state).toBe('open');
    here.sendText('still here');
    expect(await here.nextMessage()).toBe('still here');
  });
});

describe('connect(…, { http2: true })', () => {
  test('echo over h2c: an extended CONNECT answered 200; client and Behavior both say h2c', async () => {
    const server = await h2cServer();
    const client = track(await connect(server, '/echo', { http2: true }));
    expect(client.transport).toBe('h2c');
    expect(client.response.status).toBe(200);
    expect(client.response.headers['sec-websocket-accept']).toBeUndefined();
    expect(client.http2Stream).toBeDefined();
    client.sendText('hello');
    expect(await client.nextMessage()).toBe('hello');
    client.sendBinary(Buffer.from([1, 2, 3]));
    expect(await client.nextMessage()).toEqual(Buffer.from([1, 2, 3]));
    const who = track(await connect(server, '/whoami', { http2: true }));
    // RFC 8441 §4-5: CONNECT + :protocol websocket, and no sec-websocket-key by default.
    expect(JSON.parse(String(await who.nextMessage()))).toEqual({ transport: 'h2c', method: 'CONNECT', protocol: 'websocket', key: null });
  });

  test('echo over h2 (TLS, ALPN h2); the same server still upgrades HTTP/1.1 clients', async () => {
    const server = await h2Server();
    const client = track(await connect(server, '/echo', { http2: true, ca: cert.cert }));
    expect(client.transport).toBe('h2');
    client.sendText('over h2');
    expect(await client.nextMessage()).toBe('over h2');
    const who = track(await connect(server, '/whoami', { http2: true, ca: cert.cert }));
    expect(JSON.parse(String(await who.nextMessage()))).toMatchObject({ transport: 'h2' });
    const old = track(await connect(server, '/whoami', { ca: cert.cert }));
    expect(old.transport).toBe('http/1.1');
    expect(old.response.status).toBe(101);
    expect(JSON.parse(String(await old.nextMessage()))).toMatchObject({ transport: 'http/1.1', method: 'GET' });
  });

  test('over h2 the certificate is checked as over wss://: untrusted is TLS_CERTIFICATE', async () => {
    const server = await h2Server();
    const error = await refusal(connect(server, '/echo', { http2: true }));
    expect(error.code).toBe('TLS_CERTIFICATE');
    const ok = track(await connect(server.url('/echo'), undefined, { http2: true, rejectUnauthorized: false }));
    expect(ok.transport).toBe('h2');
  });

  test('a URL target works as a listen() result does', async () => {
    const server = await h2cServer();
    const client = track(await connect(`ws://127.0.0.1:${server.port}`, '/echo', { http2: true }));
    client.sendText('by url');
    expect(await client.nextMessage()).toBe('by url');
  });

  test('subprotocol over h2: the server picks from the offer (sec-websocket-protocol)', async () => {
    const server = await h2Server();
    const client = track(await connect(server, '/chat', { http2: true, ca: cert.cert, protocols: ['chat.v1', 'chat.v2'] }));
    expect(client.protocol).toBe('chat.v2');
    client.sendText('hi');
    expect(await client.nextMessage()).toBe('chat.v2:hi');
  });

  test('permessage-deflate over h2: negotiated, and messages compressed both ways', async () => {
    const server = await h2Server();
    const client = track(await connect(server, '/deflate', { http2: true, ca: cert.cert, perMessageDeflate: true }));
    expect(client.perMessageDeflate).not.toBeNull();
    expect(client.extensions).toContain('permessage-deflate');
    const text = 'compress me '.repeat(500);
    client.sendText(text);
    const message = await client.nextMessageInfo();
    expect(message).toEqual({ data: text, compressed: true });
    expect(client.compressedOut).toBe(1);
    expect(client.compressedIn).toBe(1);
  });

  test("a route whose verify() returns false is refused with :status 403 and wsmount's body", async () => {
    const server = await h2cServer();
    const error = await refusal(connect(server, '/locked', { http2: true }));
    expect(error.code).toBe('REJECTED');
    expect(error.status).toBe(403);
    expect(error.body).toBe('forbidden');
    expect(error.message).toContain('403');
  });

  test('a HandshakeRejection keeps its status and reason over h2 (401, body)', async () => {
    const server = await h2Server();
    const error = await refusal(connect(server, '/login', { http2: true, ca: cert.cert }));
    expect(error.status).toBe(401);
    expect(error.body).toBe('log in first');
  });

  test('an unknown path is refused with :status 404', async () => {
    const server = await h2cServer();
    const error = await refusal(connect(server, '/nowhere', { http2: true }));
    expect(error.code).toBe('REJECTED');
    expect(error.status).toBe(404);
  });

  test('a refusal leaves a shared session usable: the refused stream ends cleanly', async () => {
    const server = await h2cServer();
    const s = session(`http://127.0.0.1:${server.port}`);
    await refusal(connect(server, '/locked', { http2: s }));
    expect(s.closed || s.destroyed).toBe(false);
    const client = track(await connect(server, '/echo', { http2: s }));
    client.sendText('after');
    expect(await client.nextMessage()).toBe('after');
  });

  test('1,000 WebSockets share one passed session; it stays open after they all close cleanly', async () => {
    const server = await h2cServer();
    const s = session(`http://127.0.0.1:${server.port}`);
    const clients = await within(
      Promise.all(Array.from({ length: 1000 }, () => connect(server, '/echo', { http2: s }))),
      20_000,
      '1,000 connects',
    );
    expect(server.handler.clients.size).toBe(1000);
    expect(clients.every((c) => c.http2Stream?.session === s && c.transport === 'h2c')).toBe(true);
    clients.forEach((c, i) => c.sendText(`m${i}`));
    const echoes = await within(Promise.all(clients.map((c) => c.nextMessage())), 20_000, 'echoes');
    expect(echoes).toEqual(clients.map((_, i) => `m${i}`));
    const streams = clients.map((c) => c.http2Stream as http2.ClientHttp2Stream);
    const closes = await within(Promise.all(clients.map((c) => c.close())), 20_000, 'closes');
    expect(closes.every((c) => c.code === 1000)).toBe(true);
    expect(streams.every((st) => st.rstCode === 0)).toBe(true);
    expect(s.closed || s.destroyed).toBe(false);
    // Still good for more.
    const more = track(await connect(server, '/echo', { http2: s }));
    more.sendText('more');
    expect(await more.nextMessage()).toBe('more');
  }, 60_000);

  test('a clean close (client first): close frames both ways, END_STREAM both ways, rstCode 0 on both streams', async () => {
    const server = await h2cServer();
    let serverStream: http2.ServerHttp2Stream | undefined;
    server.server.on('stream', (stream) => {
      serverStream = stream;
    });
    const client = await connect(server, '/echo', { http2: true });
    const stream = client.http2Stream as http2.ClientHttp2Stream;
    const own = stream.session as http2.ClientHttp2Session;
    expect(await within(client.close(1000, 'done'), 3000, 'close')).toEqual({ code: 1000, reason: 'done' });
    expect(stream.rstCode).toBe(0);
    expect(serverStream).toBeDefined();
    await within(closedOf(serverStream as http2.ServerHttp2Stream), 3000, 'server stream');
    expect(serverStream?.rstCode).toBe(0);
    // http2: true opened that session for this WebSocket alone: it closes with it.
    await within(closedOf(own), 3000, 'own session closes');
  });

  test('a clean close (server first): rstCode 0 on the client stream', async () => {
    const server = await h2Server();
    const client = await connect(server, '/bye', { http2: true, ca: cert.cert });
    const stream = client.http2Stream as http2.ClientHttp2Stream;
    client.sendText('bye');
    expect(await within(client.closed, 3000, 'closed')).toEqual({ code: 4000, reason: 'done' });
    expect(stream.rstCode).toBe(0);
  });

  test('terminate() resets only the stream (RST_STREAM CANCEL): the server sees 1006, the session lives on', async () => {
    const server = await h2cServer();
    const s = session(`http://127.0.0.1:${server.port}`);
    const client = await connect(server, '/echo', { http2: s });
    const stream = client.http2Stream as http2.ClientHttp2Stream;
    const [behavior] = [...server.handler.clients];
    const serverClosed = new Promise<number>((resolve) => {
      const original = (behavior as Behavior).onClose.bind(behavior);
      (behavior as Behavior).onClose = (code: number, reason: string) => {
        original(code, reason);
        resolve(code);
      };
    });
    client.terminate();
    expect(await within(client.closed, 3000, 'closed')).toEqual({ code: 1006, reason: '' });
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(await within(serverClosed, 3000, 'server onClose')).toBe(1006);
    expect(s.closed || s.destroyed).toBe(false);
    const next = track(await connect(server, '/echo', { http2: s }));
    next.sendText('next');
    expect(await next.nextMessage()).toBe('next');
  });

  test('a sec-websocket-key added through headers is answered with the matching sec-websocket-accept', async () => {
    const server = await h2cServer();
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const client = track(await connect(server, '/whoami', { http2: true, headers: { 'sec-websocket-key': key } }));
    expect(client.response.headers['sec-websocket-accept']).toBe(acceptKey(key));
    expect(JSON.parse(String(await client.nextMessage()))).toMatchObject({ key });
  });

  test('headers may replace a default one, pseudo-headers included, or drop it with null', async () => {
    const server = await h2cServer();
    const wrong = await refusal(connect(server, '/echo', { http2: true, headers: { 'sec-websocket-version': '8' } }));
    expect(wrong.status).toBe(426);
    const other = await refusal(connect(server, '/echo', { http2: true, headers: { 'sec-websocket-version': null } }));
    expect(other.status).toBe(426);
    // Another :protocol is not a WebSocket (RFC 8441 §4): not wsmount's, and nobody else takes it.
    const notWs = await refusal(connect(server, '/echo', { http2: true, headers: { ':protocol': 'chat' } }));
    expect(notWs.status).toBe(405);
    const origin = await listen(routes, { http2: true, handlerOptions: { origins: ['https://app.example'] } });
    cleanups.push(() => origin.close());
    const refused = await refusal(connect(origin, '/echo', { http2: true, origin: 'https://evil.example' }));
    expect(refused.status).toBe(403);
    const allowed = track(await connect(origin, '/echo', { http2: true, origin: 'https://app.example' }));
    expect(allowed.transport).toBe('h2c');
  });
});

describe('connect(…, { http2 }) against servers that cannot take it', () => {
  test('NO_EXTENDED_CONNECT: a plain http2 server with no wsmount attached rejects at once, without sending :protocol', async () => {
    const seen: string[] = [];
    const { url, port } = await rawHttp2({}, (stream, headers) => {
      seen.push(String(headers[':method']));
      stream.respond({ ':status': 200 });
      stream.end();
    });
    const started = Date.now();
    const error = await refusal(connect(url, '/echo', { http2: true }), 3000);
    expect(error.code).toBe('NO_EXTENDED_CONNECT');
    expect(error.message).toContain('RFC 8441');
    expect(Date.now() - started).toBeLessThan(2000);
    // The same with a session the test opened, even once its SETTINGS arrived long ago.
    const s = session(`http://127.0.0.1:${port}`);
    await within(new Promise((resolve) => s.once('remoteSettings', resolve)), 3000, 'settings');
    const again = await refusal(connect(url, '/echo', { http2: s }), 3000);
    expect(again.code).toBe('NO_EXTENDED_CONNECT');
    expect(seen).toEqual([]);
    expect(s.closed || s.destroyed).toBe(false);
  });

  test('NO_HTTP2: an HTTP/1.1-only server (h2c), and a TLS server without ALPN h2', async () => {
    const plain = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      plain.closeAllConnections();
      return new Promise<void>((resolve) => plain.close(() => resolve()));
    });
    const error = await refusal(connect(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}/echo`, undefined, { http2: true }), 3000);
    expect(error.code).toBe('NO_HTTP2');
    const secure = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      secure.closeAllConnections();
      return new Promise<void>((resolve) => secure.close(() => resolve()));
    });
    const tlsError = await refusal(connect(`wss://127.0.0.1:${(secure.address() as AddressInfo).port}/echo`, undefined, { http2: true, ca: cert.cert }), 3000);
    expect(tlsError.code).toBe('NO_HTTP2');
  });

  test('STREAM_RESET: a stream reset before any response names the HTTP/2 error code', async () => {
    const { url } = await rawHttp2({ enableConnectProtocol: true }, (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const error = await refusal(connect(url, '/echo', { http2: true }), 3000);
    expect(error.code).toBe('STREAM_RESET');
    expect(error.message).toContain('REFUSED_STREAM');
  });

  test('TIMEOUT: a server that never answers the CONNECT', async () => {
    const { url } = await rawHttp2({ enableConnectProtocol: true }, () => {});
    const error = await refusal(connect(url, '/echo', { http2: true, timeout: 300 }), 3000);
    expect(error.code).toBe('TIMEOUT');
  });

  test('BAD_ACCEPT: a key was sent and the 200 has no matching sec-websocket-accept', async () => {
    const { url } = await rawHttp2({ enableConnectProtocol: true }, (stream) => stream.respond({ ':status': 200, 'sec-websocket-accept': 'nope' }));
    const error = await refusal(connect(url, '/echo', { http2: true, headers: { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } }), 3000);
    expect(error.code).toBe('BAD_ACCEPT');
  });

  test('BAD_PROTOCOL: a 200 choosing a subprotocol that was not offered', async () => {
    const { url } = await rawHttp2({ enableConnectProtocol: true }, (stream) => stream.respond({ ':status': 200, 'sec-websocket-protocol': 'other' }));
    const error = await refusal(connect(url, '/echo', { http2: true, protocols: ['chat'] }), 3000);
    expect(error.code).toBe('BAD_PROTOCOL');
  });

  test('misuse is a TypeError that says what to do', async () => {
    const server = await h2cServer();
    await expect(connect(server.handler, '/echo', { http2: true })).rejects.toThrow(/listen\(handler, \{ http2: true \}\)/);
    const s = session(`http://127.0.0.1:${server.port}`);
    await expect(connect(`wss://127.0.0.1:${server.port}/echo`, undefined, { http2: s, ca: cert.cert })).rejects.toThrow(/on http2\.connect\(\)/);
    await within(new Promise((resolve) => s.once('connect', resolve)), 3000, 'session connect');
    await expect(connect(`wss://127.0.0.1:${server.port}`, '/echo', { http2: s })).rejects.toThrow(/cleartext/);
  });
});
