/**
 * What deflate-review.test.ts and deflate-guards.test.ts share: the per-file server and socket
 * teardown, a `ws` client with permessage-deflate, a raw client behind the `Recorder` behavior,
 * and the test payloads. Frames and client-side compression come from test/helpers/raw.ts and
 * test/reliability/deflate-helpers.ts.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { Behavior, type HandlerOptions, type Routes } from '../../src/index.js';
import { RawClient } from '../helpers/raw.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

/** The offer of the raw clients that send compressed frames: each message with a fresh context. */
export const NO_TAKEOVER_OFFER = 'permessage-deflate; client_no_context_takeover';

/**
 * One test file's server and client sockets. Create one per file and call `cleanup()` from that
 * file's `afterEach`: it ends every socket, then closes the server.
 */
export class ReviewEnv {
  private server: TestServer | undefined;
  private readonly sockets: { close(): void; terminate?(): void; destroy?(): void }[] = [];

  /** Starts the test server (see startServer), closed by `cleanup()`. */
  async start(routes: Routes, options?: HandlerOptions): Promise<TestServer> {
    this.server = await startServer(routes, options);
    return this.server;
  }

  /** A `ws` client offering permessage-deflate, terminated by `cleanup()`; resolves once open. */
  openWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
    const ws = new WebSocket(url, { perMessageDeflate: true, ...options });
    this.sockets.push(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  }

  /** A raw client whose handshake sent `offer` as Sec-WebSocket-Extensions, destroyed by `cleanup()`. */
  async connectRaw(port: number, path: string, offer: string): Promise<RawClient> {
    const c = await RawClient.connect(port, path, { 'Sec-WebSocket-Extensions': offer });
    this.sockets.push(c);
    return c;
  }

  /** Clears `inLog`, starts a server with `Recorder` at /rec and connects a raw no-context-takeover client to it. */
  async recorder(options?: HandlerOptions): Promise<RawClient> {
    inLog.events = [];
    const server = await this.start({ '/rec': Recorder }, options);
    return this.connectRaw(server.port, '/rec', NO_TAKEOVER_OFFER);
  }

  async cleanup(): Promise<void> {
    for (const s of this.sockets.splice(0)) (s.terminate ?? s.destroy ?? s.close).call(s);
    await this.server?.close();
    this.server = undefined;
  }
}

/** What `Recorder` saw, in order. */
export const inLog: { events: string[] } = { events: [] };

export class Recorder extends Behavior {
  static override perMessageDeflate = true;
  override onText(text: string): void {
    inLog.events.push(`text:${text.length}`);
  }
  override onClose(code: number): void {
    inLog.events.push(`close:${code}`);
  }
  override onError(error: Error): void {
    inLog.events.push(`error:${(error as Error & { code?: string }).code ?? error.message}`);
  }
}

/** Waits until `Recorder` has seen its onClose. */
export function recorderClosed(timeout: number): Promise<void> {
  return waitFor(() => inLog.events.some((e) => e.startsWith('close')), timeout, 'onClose');
}

/** JSON-like text of about `n` bytes that compresses well. */
export function jsonish(n: number, seed = 0): string {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `{"id":${i + seed},"name":"user-${(i * 7919) % 1000}","ok":true},`;
  return s.slice(0, n);
}

/** Random-ish text whose compressed form is over the 64 KiB synchronous cut-off. */
export function poorlyCompressible(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}
