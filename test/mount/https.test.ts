/**
 * demo/mount/https.js: wsmount on node:https (wss://). The test makes a throwaway self-signed
 * certificate with the openssl CLI and talks TLS with a client that trusts exactly that
 * certificate (`ca`), and nothing else: no NODE_TLS_REJECT_UNAUTHORIZED, no rejectUnauthorized:
 * false. Undici's WebSocket cannot be given a CA, so the WebSocket client here is a small
 * hand-rolled one over tls.connect, using the frame encoder of test/helpers/raw.ts.
 */
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocketHandler } from '../../src/index.js';
import { acceptFor, closePayload, encodeClientFrame, readResponseHead, upgradeRequest } from '../helpers/raw.js';
import { within } from '../helpers/fixture.js';

interface Example {
  server: Server;
  sockets: WebSocketHandler;
  url: string;
  close(): Promise<void>;
}
interface ExampleModule {
  start(port?: number, host?: string, tlsOptions?: { key: Buffer; cert: Buffer }): Promise<Example>;
}

let dir = '';
let key: Buffer;
let cert: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmount-tls-'));
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore', timeout: 20_000 });
  key = readFileSync(join(dir, 'key.pem'));
  cert = readFileSync(join(dir, 'cert.pem'));
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

let running: Example | null = null;
afterEach(async () => {
  const app = running;
  running = null;
  if (app !== null) await within(app.close(), 3000, 'teardown').catch(() => app.server.closeAllConnections());
});

/** One TLS connection to 127.0.0.1 that trusts only our certificate. */
function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cert }, () => resolve(socket));
    socket.once('error', reject);
  });
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

/** Sends raw request bytes over TLS; reads the whole answer until the server closes (or `timeout`). */
async function tlsRequest(port: number, request: string, timeout: number): Promise<HttpAnswer> {
  const socket = await connectTls(port);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = text.slice(0, end === -1 ? text.length : end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end === -1 ? '' : text.slice(end + 4), closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('close', () => finish(true));
    socket.write(request);
  });
}

/** A minimal wss:// client: handshake, masked text frames out, unmasked frames in, close echoed. */
class WssClient {
  private buffer = Buffer.alloc(0);
  private readonly frames: { opcode: number; payload: Buffer }[] = [];
  private wake: (() => void) | null = null;
  readonly closed: Promise<number | undefined>;
  private closeCode: ((code: number | undefined) => void) | null = null;

  private constructor(readonly socket: tls.TLSSocket) {
    this.closed = new Promise((resolve) => {
      this.closeCode = resolve;
    });
  }

  static async open(port: number, path: string): Promise<WssClient> {
    const socket = await connectTls(port);
    const client = new WssClient(socket);
    const secret = randomBytes(16).toString('base64');
    await within(
      new Promise<void>((resolve, reject) => {
        readResponseHead(socket, ({ text }, rest) => {
          if (!text.startsWith('HTTP/1.1 101 ') || !text.toLowerCase().includes(`sec-websocket-accept: ${acceptFor(secret).toLowerCase()}`)) {
            reject(new Error(`bad handshake answer: ${text}`));
            return;
          }
          socket.on('data', (chunk: Buffer) => client.feed(chunk));
          client.feed(rest);
          resolve();
        });
        socket.once('close', () => reject(new Error('closed during the handshake')));
        socket.write(upgradeRequest(path, {}, secret));
      }),
      5000,
      `opening wss ${path}`,
    );
    return client;
  }

  private feed(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    // Server frames are unmasked; the ones in this test are short (7-bit length).
    while (this.buffer.length >= 2) {
      const length = (this.buffer[1] as number) & 0x7f;
      if (length > 125) throw new Error('this little client only reads short frames');
      if (this.buffer.length < 2 + length) break;
      const opcode = (this.buffer[0] as number) & 0x0f;
      const payload = Buffer.from(this.buffer.subarray(2, 2 + length));
      this.buffer = this.buffer.subarray(2 + length);
      if (opcode === 0x8) {
        // Echo the close frame, as RFC 6455 §5.5.1 asks, and let the server close TCP.
        this.socket.write(encodeClientFrame(0x8, payload));
        this.closeCode?.(payload.length >= 2 ? payload.readUInt16BE(0) : undefined);
      } else {
        this.frames.push({ opcode, payload });
      }
    }
    this.wake?.();
  }

  sendText(text: string): void {
    this.socket.write(encodeClientFrame(0x1, text));
  }

  async next(): Promise<string> {
    while (this.frames.length === 0) await within(new Promise<void>((resolve) => (this.wake = resolve)), 5000, 'a frame');
    return (this.frames.shift() as { payload: Buffer }).payload.toString('utf8');
  }

  close(): void {
    this.socket.end(encodeClientFrame(0x8, closePayload(1000)));
  }
}

describe('node:https (demo/mount/https.js)', () => {
  async function startHttps(): Promise<Example & { port: number }> {
    const url: string = new URL('../../demo/mount/https.js', import.meta.url).href;
    const { start } = (await import(url)) as ExampleModule;
    const app = await within(start(0, '127.0.0.1', { key, cert }), 10_000, 'starting https');
    running = app;
    return Object.assign(app, { port: (app.server.address() as AddressInfo).port });
  }

  it('is really TLS with our certificate: a client without the CA is refused', async () => {
    const app = await startHttps();
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      tls.connect({ host: '127.0.0.1', port: app.port }).once('error', resolve);
    });
    expect(error.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('serves HTTPS and wss://, 404s unknown upgrade paths, shuts down', async () => {
    const app = await startHttps();

    // Plain HTTPS still works (node:https with our CA).
    const body = await within(
      new Promise<string>((resolve, reject) => {
        https
          .get(`${app.url}/health`, { ca: cert, agent: false }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve(`${res.statusCode} ${text}`));
          })
          .on('error', reject);
      }),
      5000,
      'GET /health',
    );
    expect(body).toBe('200 ok');

    // A wss:// round trip.
    const client = await WssClient.open(app.port, '/echo');
    client.sendText('over TLS');
    expect(await client.next()).toBe('over TLS');

    // An unknown path: a complete 404 over TLS, then the server closes; immediate (wsmount is
    // the only 'upgrade' listener).
    const started = Date.now();
    const answer = await tlsRequest(app.port, upgradeRequest('/no-such-socket'), 5000);
    expect(answer.status).toBe(404);
    expect(answer.closed).toBe(true);
    expect(answer.headers['connection']).toBe('close');
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    expect(Date.now() - started).toBeLessThan(1000);

    // Shutdown with the client connected: it gets 1001 and the server closes.
    running = null;
    await within(app.close(), 5000, 'the https shutdown');
    expect(await within(client.closed, 1000, 'the close frame')).toBe(1001);
    expect(app.server.listening).toBe(false);
  });

  it('a client that closes first is let go cleanly', async () => {
    const app = await startHttps();
    const client = await WssClient.open(app.port, '/echo');
    client.close();
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (app.sockets.clients.size === 0) resolve();
          else setTimeout(check, 10);
        };
        check();
      }),
      3000,
      'the server to let the client go',
    );
  });
});
