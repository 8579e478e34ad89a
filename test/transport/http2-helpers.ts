/**
 * Shared by the test/transport/http2*.test.ts files: wsmount handlers attached to real
 * `node:http2` servers (h2c, and h2 over TLS with a self-signed certificate) on 127.0.0.1, and
 * `node:http2` client sessions, all torn down after each test without hanging however the
 * peers behave.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { expect } from 'vitest';
import { Behavior, type HandlerOptions, type Routes, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { type Certificate, selfSignedCertificate } from '../helpers/certs.js';
import { type Fixture, bounded, within } from '../helpers/fixture.js';
import { RawClient, type RawFrame } from '../helpers/raw.js';

export type H2Server = http2.Http2Server | http2.Http2SecureServer;

/** A handler attached to a listening http2 server, with every server session and stream seen. */
export interface H2Mounted {
  handler: WebSocketHandler;
  server: H2Server;
  port: number;
  secure: boolean;
  /** Every server-side session, in order. */
  sessions: http2.ServerHttp2Session[];
  /** Every server-side stream, with its headers (only with `record`). */
  streams: { stream: http2.ServerHttp2Stream; headers: http2.IncomingHttpHeaders }[];
}

export interface H2ServerOptions {
  /** Over TLS (`createSecureServer`, `allowHTTP1: true`); default h2c. */
  secure?: boolean;
  /** An app 'request' listener (installs Node's compatibility layer). */
  onRequest?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  /** Extra server options (settings, maxSessionMemory…). */
  serverOptions?: http2.ServerOptions;
  /** Attach a handler (default true). */
  attach?: boolean;
  /**
   * Record every server stream (`H2Mounted.streams`) through a 'stream' listener added after
   * attach(). Off by default: a 'stream' listener that is not wsmount's may take an unmatched
   * CONNECT, so wsmount then waits `unclaimedTimeout` before its 404.
   */
  record?: boolean;
}

let certificate: Certificate | undefined;
/** One self-signed certificate per test file (openssl takes a moment). */
export function cert(): Certificate {
  certificate ??= selfSignedCertificate();
  return certificate;
}

/** Echoes text and binary. */
export class Echo2 extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(data: Buffer): void {
    this.sendBinary(data);
  }
}

/** The h2 helpers of one test file, on top of its fixture's teardown list. */
export function h2Fixture(fx: Fixture) {
  /** Starts an http2 server on 127.0.0.1 with `routes` attached; all closed after the test. */
  async function mountH2(routes: Routes, options: HandlerOptions = {}, o: H2ServerOptions = {}): Promise<H2Mounted> {
    const secure = o.secure === true;
    const serverOptions: http2.SecureServerOptions = { ...o.serverOptions };
    let server: H2Server;
    if (secure) {
      const { key, cert: crt } = cert();
      server = o.onRequest
        ? http2.createSecureServer({ key, cert: crt, allowHTTP1: true, ...serverOptions }, o.onRequest)
        : http2.createSecureServer({ key, cert: crt, allowHTTP1: true, ...serverOptions });
    } else {
      server = o.onRequest ? http2.createServer(serverOptions, o.onRequest) : http2.createServer(serverOptions);
    }
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (s: http2.ServerHttp2Session) => {
      sessions.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fx.defer(() =>
      bounded(
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const s of sessions) if (!s.destroyed) s.destroy();
        }),
      ),
    );
    const handler = createWebSocketHandler(routes, { logLevel: 'silent', closeTimeout: 2000, ...options });
    fx.defer(() => bounded(handler.close({ timeout: 300 })));
    if (o.attach !== false) handler.attach(server);
    const streams: H2Mounted['streams'] = [];
    if (o.record === true) {
      server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
        streams.push({ stream, headers });
      });
    }
    return { handler, server, port: (server.address() as AddressInfo).port, secure, sessions, streams };
  }

  /** A client session to `m` (TLS: the self-signed certificate is not checked), destroyed after the test; resolves once the server's SETTINGS arrived. */
  async function session(m: { port: number; secure: boolean }, options: http2.ClientSessionOptions | http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
    const url = `${m.secure ? 'https' : 'http'}://127.0.0.1:${m.port}`;
    const s = http2.connect(url, { rejectUnauthorized: false, ...options });
    s.on('error', () => {});
    fx.defer(() => {
      if (!s.destroyed) s.destroy();
    });
    await within(new Promise<void>((resolve, reject) => {
      s.once('remoteSettings', () => resolve());
      s.once('error', reject);
    }), 3000, 'the server SETTINGS');
    return s;
  }

  /** A raw WebSocket over an extended CONNECT on `s`, reset after the test. */
  async function ws(m: { port: number; secure: boolean }, s: http2.ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const c = await RawClient.connectH2(m.port, path, { ':scheme': m.secure ? 'https' : 'http', ...headers }, s);
    fx.defer(() => c.destroy());
    return c;
  }

  return { mountH2, session, ws };
}

/** The response to one request on `s`: status, headers, body, and the stream's rstCode once closed. */
export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  rstCode: number;
}

/**
 * Sends `headers` on `s` (a plain GET unless told otherwise), ends our side, reads the whole
 * response; rejects if it does not close within `timeout` ms (no hang).
 */
export function request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, timeout = 3000): Promise<H2Answer> {
  // A plain CONNECT has no :path (RFC 9113 §8.5); anything else defaults to GET /.
  const defaults = headers[':method'] === 'CONNECT' ? {} : { ':method': 'GET', ':path': '/' };
  const stream = s.request({ ...defaults, ...headers }, { endStream: body === undefined && headers[':method'] !== 'CONNECT' });
  let status = 0;
  let got: http2.IncomingHttpHeaders = {};
  const chunks: Buffer[] = [];
  stream.on('response', (h) => {
    got = h;
    status = Number(h[':status']);
  });
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('error', () => {});
  if (body !== undefined) stream.end(body);
  // A CONNECT keeps our side open (as a WebSocket would): end it once the server has answered.
  else if (headers[':method'] === 'CONNECT') stream.on('end', () => stream.end());
  return within(
    new Promise<H2Answer>((resolve) => {
      stream.on('close', () => resolve({ status, headers: got, body: Buffer.concat(chunks).toString('utf8'), rstCode: stream.rstCode }));
    }),
    timeout,
    `the response to ${String(headers[':method'] ?? 'GET')} ${String(headers[':path'] ?? '/')}`,
  ).finally(() => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  });
}

/** An extended CONNECT for `path` as a browser sends it (no key), plus `extra`. */
export function connectHeaders(m: { port: number; secure: boolean }, path: string, extra: Record<string, string> = {}): http2.OutgoingHttpHeaders {
  return {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': m.secure ? 'https' : 'http',
    ':path': path,
    ':authority': `127.0.0.1:${m.port}`,
    'sec-websocket-version': '13',
    ...extra,
  };
}

/** Sends `text` and expects it back in one text frame within `timeout` ms. */
export async function echoes(client: RawClient, text: string, timeout = 2000): Promise<void> {
  client.send(0x1, text);
  const f = await client.nextFrame(timeout);
  expect(f.opcode).toBe(0x1);
  expect(f.payload.toString()).toBe(text);
}

/** Reads frames until one that is not a ping (answering nothing). */
export async function nextData(client: RawClient, timeout = 2000): Promise<RawFrame> {
  for (;;) {
    const f = await client.nextFrame(timeout);
    if (f.opcode !== 0x9) return f;
  }
}

/**
 * How a client stream ended, watched from now on. RawClient answers the server's END_STREAM by
 * ending its own side (as a polite peer does): that closes the stream with NO_ERROR at once, so
 * a RST_STREAM that follows the END_STREAM is never seen. This takes that answer away (the
 * client's side stays open), so the stream's rstCode is what the server sent, and records
 * whether an END_STREAM came before the stream closed ('end' while the stream is still open;
 * after a bare RST_STREAM, 'end' comes with the stream already closed).
 */
export function watchEnd(client: RawClient): { endStreamFirst: () => boolean } {
  const stream = client.stream as http2.ClientHttp2Stream;
  stream.removeAllListeners('end');
  let endStreamFirst = false;
  stream.on('end', () => {
    if (!stream.closed) endStreamFirst = true;
  });
  return { endStreamFirst: () => endStreamFirst };
}

/**
 * Resets a client stream with RST_STREAM(CANCEL) and nothing else. `stream.close(CANCEL)` would
 * end our side first (Node's closeStream() calls end(): an empty DATA with END_STREAM goes out
 * before the RST_STREAM); destroying the stream with an AbortError sends the reset alone.
 */
export function resetOnly(stream: http2.Http2Stream): void {
  stream.on('error', () => {});
  addAbortSignal(AbortSignal.abort(), stream);
}

/** Waits for a ClientHttp2Stream (or server stream) to close; resolves its rstCode. */
export function closedWith(stream: http2.Http2Stream, timeout = 3000): Promise<number> {
  if (stream.closed && stream.destroyed) return Promise.resolve(stream.rstCode);
  return within(new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode))), timeout, 'the stream closing');
}
