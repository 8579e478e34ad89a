/**
 * Real HTTP over loopback for the dashboard's tests: an app server with a WebSocket handler and a
 * dashboard mounted the way the test says, plain requests, and a Server-Sent Events reader.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Fixture } from '../helpers/fixture.js';
import { bounded } from '../helpers/fixture.js';
import type { WebSocketHandler } from '../../src/index.js';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection; resolves with the whole answer. */
export function request(port: number, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A Server-Sent Event as received. */
export interface ServerEvent {
  event: string;
  data: string;
  retry?: number;
}

/** A live feed read over HTTP: its response head, and its events as they arrive. */
export class FeedReader {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Every event received so far, in order. */
  readonly events: ServerEvent[] = [];
  /** The raw text received so far. */
  raw = '';
  ended = false;
  private buffer = '';
  private waiters: (() => void)[] = [];
  private readonly req: http.ClientRequest;

  private constructor(req: http.ClientRequest, res: http.IncomingMessage) {
    this.req = req;
    this.status = res.statusCode ?? 0;
    this.headers = res.headers;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.raw += chunk;
      this.buffer += chunk;
      for (let end = this.buffer.indexOf('\n\n'); end !== -1; end = this.buffer.indexOf('\n\n')) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const event: ServerEvent = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'data') data.push(value);
          else if (field === 'retry') event.retry = Number(value);
        }
        event.data = data.join('\n');
        this.events.push(event);
      }
      this.wake();
    });
    res.on('end', () => {
      this.ended = true;
      this.wake();
    });
    res.on('close', () => {
      this.ended = true;
      this.wake();
    });
    res.on('error', () => {});
  }

  static open(port: number, path: string): Promise<FeedReader> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } }, (res) => resolve(new FeedReader(req, res)));
      req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: no answer within 5 s`)));
      req.on('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `check()` holds (checked on every arrival), at most `timeout` ms. */
  async until(check: () => boolean, timeout = 5000, what = 'the feed'): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!check()) {
      if (this.ended) throw new Error(`${what}: the feed ended first`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The data of every default (`message`) event, parsed. */
  snapshots<T>(): T[] {
    return this.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as T);
  }

  close(): void {
    this.req.destroy();
  }
}

/**
 * Listens on 127.0.0.1 with `listener` as the app and `handler` attached; both closed after the
 * test (the handler's sockets, then the server with any open feed).
 */
export async function serveApp(fixture: Fixture, handler: WebSocketHandler, listener: http.RequestListener): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer(listener);
  handler.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fixture.defer(async () => {
    // The sockets first: server.close() waits for upgraded sockets, and closeAllConnections() leaves them.
    await bounded(handler.close({ timeout: 300 }));
    await bounded(
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    );
  });
  return { port: (server.address() as AddressInfo).port, server };
}
