/**
 * wss:// in wsmount/testing: listen({ tls }) serves an ephemeral https server, and connect()
 * speaks TLS to it, verifying the certificate as Node's tls does (`ca`, `rejectUnauthorized`,
 * `servername`). The certificates are throwaway self-signed ones made with the openssl CLI at
 * test time (as test/mount/https.test.ts does). Loopback only; every wait is bounded.
 */
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { HandshakeError, type Listening, connect, listen } from '../../src/testing/index.js';
import { within } from '../helpers/fixture.js';

class Echo extends Behavior {
  override onText(text: string) {
    this.sendText(text);
  }
  override onBinary(data: Buffer) {
    this.sendBinary(data);
  }
}

let dir = '';
/** The server's certificate (CN=localhost, SAN DNS:localhost, IP:127.0.0.1) and key. */
let key: Buffer;
let cert: Buffer;
/** Another self-signed certificate: trusting it must not make the server's one trusted. */
let otherCert: Buffer;

function makeCertificate(name: string): { key: Buffer; cert: Buffer } {
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, `${name}-key.pem`), '-out', join(dir, `${name}-cert.pem`),
  ], { stdio: 'ignore', timeout: 20_000 });
  return { key: readFileSync(join(dir, `${name}-key.pem`)), cert: readFileSync(join(dir, `${name}-cert.pem`)) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmount-wss-'));
  ({ key, cert } = makeCertificate('server'));
  otherCert = makeCertificate('other').cert;
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await within(Promise.resolve(f()), 3000, 'teardown').catch(() => {});
});

async function tlsServer(): Promise<Listening> {
  const server = await listen({ '/echo': Echo }, { tls: { key, cert } });
  cleanups.push(() => server.close());
  return server;
}

async function refusal(promise: Promise<unknown>): Promise<HandshakeError> {
  const error = await within(promise.then(() => null, (e: unknown) => e), 5000, 'connect');
  expect(error).toBeInstanceOf(HandshakeError);
  return error as HandshakeError;
}

describe('listen({ tls })', () => {
  test('serves https: url() gives wss://127.0.0.1:<port>/path', async () => {
    const server = await tlsServer();
    expect(server.server).toBeInstanceOf(https.Server);
    expect(server.url('/echo?x=1')).toBe(`wss://127.0.0.1:${server.port}/echo?x=1`);
  });

  test('takes server or tls, not both', async () => {
    await expect(listen({ '/echo': Echo }, { tls: { key, cert }, server: https.createServer() })).rejects.toThrow(TypeError);
  });

  test('an https server given as `server` gives wss:// URLs too', async () => {
    const server = await listen({ '/echo': Echo }, { server: https.createServer({ key, cert }) });
    cleanups.push(() => server.close());
    expect(server.url('/echo')).toBe(`wss://127.0.0.1:${server.port}/echo`);
    const client = await connect(server, '/echo', { ca: cert });
    client.sendText('mine');
    expect(await client.nextMessage()).toBe('mine');
    await client.close();
  });

  test('close() ends TLS WebSockets of a handler passed in with 1001, and leaves the handler usable', async () => {
    const handler = createWebSocketHandler({ '/echo': Echo });
    cleanups.push(() => handler.close({ timeout: 200 }));
    const server = await listen(handler, { tls: { key, cert } });
    const client = await connect(server, '/echo', { ca: cert });
    await within(server.close(), 3000, 'listening.close()');
    expect(await within(client.closed, 3000, 'client.closed')).toEqual({ code: 1001, reason: '' });
    expect(handler.clients.size).toBe(0);
  });
});

describe('connect() over wss://', () => {
  test('round-trips text and binary with the certificate as `ca` (connect(listening, path))', async () => {
    const server = await tlsServer();
    const client = await connect(server, '/echo', { ca: cert });
    client.sendText('héllo over TLS');
    expect(await client.nextMessage()).toBe('héllo over TLS');
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    client.sendBinary(bytes);
    expect(await client.nextMessage()).toEqual(bytes);
    const large = Buffer.alloc(200_000, 7); // several TLS records
    client.sendBinary(large);
    const echoed = await client.nextMessage();
    expect(Buffer.isBuffer(echoed) && echoed.equals(large)).toBe(true);
    expect(await client.close(1000, 'bye')).toEqual({ code: 1000, reason: 'bye' });
  });

  test('a wss:// URL string, `ca` as an array, and `servername` checked against the certificate', async () => {
    const server = await tlsServer();
    const client = await connect(`wss://127.0.0.1:${server.port}/ignored`, '/echo', { ca: [otherCert, cert.toString('utf8')], servername: 'localhost' });
    client.sendText('abc');
    expect(await client.nextMessage()).toBe('abc');
    await client.close();
  });

  test('an untrusted certificate (wrong CA) is refused with TLS_CERTIFICATE, saying to pass `ca` or rejectUnauthorized: false', async () => {
    const server = await tlsServer();
    const error = await refusal(connect(server, '/echo', { ca: otherCert }));
    expect(error.code).toBe('TLS_CERTIFICATE');
    expect(error.status).toBe(0);
    expect(error.message).toContain('not trusted');
    expect(error.message).toContain('`ca`');
    expect(error.message).toContain('rejectUnauthorized: false');
    expect((error.cause as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO/);
    expect(server.handler.clients.size).toBe(0);
  });

  test('a self-signed certificate with no `ca` (Node default roots) is refused with TLS_CERTIFICATE', async () => {
    const server = await tlsServer();
    const error = await refusal(connect(server, '/echo'));
    expect(error.code).toBe('TLS_CERTIFICATE');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  test('rejectUnauthorized: false accepts the self-signed certificate', async () => {
    const server = await tlsServer();
    const client = await connect(server.url('/echo'), undefined, { rejectUnauthorized: false });
    client.sendText('trust me');
    expect(await client.nextMessage()).toBe('trust me');
    await client.close();
  });

  test('a trusted certificate for another name is refused with TLS_HOSTNAME, saying to use `servername`', async () => {
    const server = await tlsServer();
    const error = await refusal(connect(server, '/echo', { ca: cert, servername: 'elsewhere.example' }));
    expect(error.code).toBe('TLS_HOSTNAME');
    expect(error.message).toContain('servername');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('wss:// to a plain ws:// server fails with TLS_FAILED, asking whether it serves TLS', async () => {
    const plain = await listen({ '/echo': Echo });
    cleanups.push(() => plain.close());
    const error = await refusal(connect(`wss://127.0.0.1:${plain.port}/echo`, undefined, { ca: cert }));
    expect(error.code).toBe('TLS_FAILED');
    expect(error.message).toContain('TLS');
  });

  test('a server that never answers the TLS handshake: TIMEOUT within `timeout`', async () => {
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of accepted) socket.destroy();
          silent.close(() => resolve());
        }),
    );
    const { port } = silent.address() as net.AddressInfo;
    const t0 = performance.now();
    const error = await refusal(connect(`wss://127.0.0.1:${port}/`, undefined, { ca: cert, timeout: 300 }));
    expect(error.code).toBe('TIMEOUT');
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  test('a refused WebSocket over TLS still reports the HTTP status', async () => {
    const server = await tlsServer();
    const error = await refusal(connect(server, '/nowhere', { ca: cert }));
    expect(error.code).toBe('REJECTED');
    expect(error.status).toBe(404);
  });

  test('TLS options on ws:// or in memory throw a TypeError', async () => {
    const plain = await listen({ '/echo': Echo });
    cleanups.push(() => plain.close());
    await expect(connect(plain, '/echo', { ca: cert })).rejects.toThrow(/wss:\/\/ only/);
    await expect(connect(plain, '/echo', { rejectUnauthorized: false })).rejects.toThrow(TypeError);
    const handler = createWebSocketHandler({ '/echo': Echo });
    cleanups.push(() => handler.close({ timeout: 200 }));
    await expect(connect(handler, '/echo', { servername: 'localhost' })).rejects.toThrow(/in-memory/);
  });
});

describe('independent peers over wss://', () => {
  test("ws's client (trusting our certificate with `ca`) against listen({ tls })", async () => {
    const server = await tlsServer();
    const ws = new WebSocket(server.url('/echo'), { ca: cert });
    cleanups.push(() => ws.terminate());
    await within(new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5000, 'ws open');
    const received: Array<{ data: Buffer; isBinary: boolean }> = [];
    const two = new Promise<void>((resolve) =>
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        received.push({ data, isBinary });
        if (received.length === 2) resolve();
      }),
    );
    ws.send('from ws');
    ws.send(Buffer.from([9, 8, 7]));
    await within(two, 5000, 'echoes');
    expect(received[0]?.isBinary).toBe(false);
    expect(received[0]?.data.toString('utf8')).toBe('from ws');
    expect(received[1]?.isBinary).toBe(true);
    expect(received[1]?.data).toEqual(Buffer.from([9, 8, 7]));
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
    ws.close(1000);
    expect(await within(closed, 5000, 'ws close')).toBe(1000);
  });

  test("our client against ws's WebSocketServer on https", async () => {
    const httpsServer = https.createServer({ key, cert });
    const wss = new WebSocketServer({ server: httpsServer });
    wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close();
          httpsServer.closeAllConnections();
          httpsServer.close(() => resolve());
        }),
    );
    const { port } = httpsServer.address() as net.AddressInfo;
    const client = await connect(`wss://127.0.0.1:${port}/`, undefined, { ca: cert });
    client.sendText('to ws');
    expect(await client.nextMessage()).toBe('to ws');
    client.sendBinary(Buffer.from([1, 2, 3]));
    expect(await client.nextMessage()).toEqual(Buffer.from([1, 2, 3]));
    expect(await client.close(1000)).toEqual({ code: 1000, reason: '' });
  });
});
