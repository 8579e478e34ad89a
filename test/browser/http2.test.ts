/**
 * WebSockets over HTTP/2 (RFC 8441) with headless Chromium's own WebSocket. A secure http2 server
 * (allowHTTP1, a throwaway self-signed certificate; Chromium runs with --ignore-certificate-errors)
 * serves a page at https://localhost:PORT/ over h2, and wsmount is attached to it.
 *
 * Chromium opens a WebSocket over HTTP/2 only on an HTTP/2 connection it already has to that
 * origin, and only once the server's SETTINGS enabled the extended CONNECT. So:
 * - a socket opened by the page arrives as an extended CONNECT stream of the page's own connection
 *   (`behavior.transport === 'h2'`, the same ServerHttp2Session as the page's GET; the DevTools
 *   protocol shows a 200 handshake), several sockets share that connection, and closes either way
 *   end the stream cleanly (no RST_STREAM, onClose at once, not after closeTimeout);
 * - a page of another origin (http://127.0.0.1:OTHER) opening the same wss:// URL has no such
 *   connection (and another network partition): its socket arrives as an HTTP/1.1 upgrade (101).
 *
 * Every wait is bounded; Chromium is stopped in afterAll.
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { selfSignedCertificate } from '../helpers/certs.js';
import { within } from '../helpers/fixture.js';
import { CHROMIUM, MISSING_CHROMIUM, hasChromium } from './chromium.js';

const WAIT = 10_000;
/** Far above what a clean close takes, so a close that waited for it shows. */
const CLOSE_TIMEOUT = 5000;

// ---- the server side -----------------------------------------------------------------------------

/** What the server saw of one WebSocket (keyed by the page's `?id=`). */
interface Record {
  transport: string;
  session: http2.ServerHttp2Session | null;
  key: boolean;
  origin: string | undefined;
  opened: number;
  close?: { code: number; reason: string; after: number };
  /** The HTTP/2 stream's rstCode once it closed (0: ended cleanly both ways). */
  rstCode?: number;
  behavior: Behavior;
}
const records = new Map<string, Record>();

class Echo extends Behavior {
  onOpen() {
    const request = this.request as http2.Http2ServerRequest | http.IncomingMessage;
    const stream = 'stream' in request ? request.stream : null;
    const record: Record = {
      transport: this.transport,
      session: stream === null ? null : (stream.session as http2.ServerHttp2Session),
      key: this.headers['sec-websocket-key'] !== undefined,
      origin: this.origin,
      opened: Date.now(),
      behavior: this,
    };
    stream?.once('close', () => (record.rstCode = stream.rstCode));
    records.set(this.query.get('id') ?? String(this.id), record);
  }
  onText(text: string) {
    if (text.startsWith('close ')) {
      const [, code, ...reason] = text.split(' ');
      this.close(Number(code), reason.join(' '));
    } else this.sendText(text);
  }
  onClose(code: number, reason: string) {
    const record = records.get(this.query.get('id') ?? String(this.id));
    if (record !== undefined) record.close = { code, reason, after: Date.now() };
  }
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>wsmount over HTTP/2</title><p>ready</p>';

let tls: ReturnType<typeof selfSignedCertificate>;
let server: http2.Http2SecureServer;
let handler: WebSocketHandler;
let port: number;
/** The HTTP/2 connection each page GET arrived on (keyed by the page's `?page=`). */
const pageSessions = new Map<string, http2.ServerHttp2Session>();
const serverSessions = new Set<http2.ServerHttp2Session>();
/** The other origin: a plain http server whose page opens the same wss:// URL. */
let other: http.Server;
let otherPort: number;

async function startServers(): Promise<void> {
  tls = selfSignedCertificate();
  server = http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true }, (req, res) => {
    const url = new URL(req.url, 'https://localhost');
    if (url.pathname === '/') {
      if (req.httpVersionMajor === 2) pageSessions.set(url.searchParams.get('page') ?? '', req.stream.session as http2.ServerHttp2Session);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    } else res.writeHead(404).end();
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    serverSessions.add(session);
    session.once('close', () => serverSessions.delete(session));
  });
  handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent', closeTimeout: CLOSE_TIMEOUT });
  handler.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;

  other = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  otherPort = (other.address() as AddressInfo).port;
}

async function stopServers(): Promise<void> {
  await within(handler.close({ timeout: 500 }), 3000, 'the handler to close').catch(() => {});
  for (const session of serverSessions) session.destroy();
  await within(new Promise<void>((resolve) => server.close(() => resolve())), 3000, 'the h2 server to close').catch(() => {});
  other.closeAllConnections();
  await within(new Promise<void>((resolve) => other.close(() => resolve())), 3000, 'the other server to close').catch(() => {});
}

/** Waits until `check` returns a value (not undefined), polling every 20 ms, at most `ms`. */
async function until<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---- the page side -------------------------------------------------------------------------------

/**
 * Run in the page (strings: the tests compile without the DOM's types). OPEN opens one socket per
 * id in order, waits for each to open, echoes one message on each, and keeps them in
 * `window.sockets`; it returns the echoes, each socket's protocol, and how the page itself came.
 */
const OPEN = `async ({ base, ids, wait }) => {
  const bounded = (p, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('page: timed out waiting for ' + what)), wait))]);
  window.sockets = window.sockets || {};
  window.closes = window.closes || {};
  const echoes = [];
  for (const id of ids) {
    const ws = new WebSocket(base + '/echo?id=' + id);
    window.sockets[id] = ws;
    window.closes[id] = new Promise((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
    await bounded(new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('page: socket ' + id + ' failed')); }), 'socket ' + id + ' to open');
    const echo = new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
    ws.send('hello from ' + id);
    echoes.push(await bounded(echo, 'the echo on ' + id));
  }
  return { echoes, page: performance.getEntriesByType('navigation')[0].nextHopProtocol };
}`;
/** Closes the page's sockets (`code`/`reason` omitted when null) and returns their close events. */
const CLOSE = `async ({ ids, code, reason, wait }) => {
  const bounded = (p, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('page: timed out waiting for ' + what)), wait))]);
  for (const id of ids) code === null ? window.sockets[id].close() : window.sockets[id].close(code, reason);
  return bounded(Promise.all(ids.map((id) => window.closes[id])), 'the closes');
}`;
/** Sends `text` on a socket and returns its close event (the server closes it). */
const SEND_AND_WAIT_CLOSE = `async ({ id, text, wait }) => {
  window.sockets[id].send(text);
  return Promise.race([window.closes[id], new Promise((_, reject) => setTimeout(() => reject(new Error('page: no close')), wait))]);
}`;

interface Opened {
  echoes: string[];
  page: string;
}
interface PageClose {
  code: number;
  reason: string;
  wasClean: boolean;
}

function call<T>(page: Page, fn: string, args: object): Promise<T> {
  return page.evaluate(`(${fn})(${JSON.stringify({ ...args, wait: WAIT })})`) as Promise<T>;
}

/** The handshake status Chromium saw for each WebSocket URL (through the DevTools protocol): 200 over h2, 101 over HTTP/1.1. */
async function handshakeStatuses(context: BrowserContext, page: Page): Promise<Map<string, number>> {
  const statuses = new Map<string, number>();
  const urls = new Map<string, string>();
  const cdp = await context.newCDPSession(page);
  cdp.on('Network.webSocketCreated', (e: { requestId: string; url: string }) => urls.set(e.requestId, e.url));
  cdp.on('Network.webSocketHandshakeResponseReceived', (e: { requestId: string; response: { status: number } }) => {
    statuses.set(urls.get(e.requestId) ?? e.requestId, e.response.status);
  });
  await cdp.send('Network.enable');
  return statuses;
}

// ---- the tests -----------------------------------------------------------------------------------

it('has Chromium where the browser tests must run', () => {
  if (hasChromium) return;
  if (process.env.CI) expect.fail(MISSING_CHROMIUM);
  console.log(MISSING_CHROMIUM);
});

describe.runIf(hasChromium)('Chromium and wsmount over HTTP/2 (RFC 8441)', () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    await startServers();
    // test/browser/chromium.ts's flags, plus --ignore-certificate-errors for the self-signed certificate.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--ignore-certificate-errors',
      ],
    });
  }, 60_000);

  afterEach(async () => {
    for (const context of contexts.splice(0)) await within(context.close(), 5000, 'closing a browser context').catch(() => {});
  });

  afterAll(async () => {
    await within(browser?.close() ?? Promise.resolve(), 10_000, 'stopping Chromium').catch(() => {});
    await stopServers();
  }, 30_000);

  /** A fresh browser context (its own connections) and page. */
  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    contexts.push(context);
    return { context, page: await context.newPage() };
  }

  it("a same-origin page's WebSocket is an extended CONNECT stream on the page's own h2 connection; a close from the page gives 1000, no RST_STREAM", async () => {
    const { context, page } = await newPage();
    const statuses = await handshakeStatuses(context, page);
    await page.goto(`https://localhost:${port}/?page=one`, { timeout: WAIT });
    const opened = await call<Opened>(page, OPEN, { base: `wss://localhost:${port}`, ids: ['one'] });
    expect(opened).toEqual({ echoes: ['hello from one'], page: 'h2' });

    const record = records.get('one');
    expect(record?.transport).toBe('h2');
    expect(record?.session).toBe(pageSessions.get('one'));
    expect(record?.key).toBe(false); // Chromium sends no sec-websocket-key over h2 (RFC 8441 §5)
    expect(record?.origin).toBe(`https://localhost:${port}`);
    expect(statuses.get(`wss://localhost:${port}/echo?id=one`)).toBe(200);

    const closes = await call<PageClose[]>(page, CLOSE, { ids: ['one'], code: 1000, reason: 'page says bye' });
    expect(closes).toEqual([{ code: 1000, reason: 'page says bye', wasClean: true }]);
    const closed = await until(() => (record?.close !== undefined && record.rstCode !== undefined ? record : undefined), WAIT, "the server's onClose and the stream's close");
    expect(closed.close).toMatchObject({ code: 1000, reason: 'page says bye' });
    expect(closed.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    // Chromium ended its half of the stream: the close did not wait for closeTimeout.
    expect(closed.close!.after - closed.opened).toBeLessThan(CLOSE_TIMEOUT);
    // The page's connection stays up for the page.
    expect(pageSessions.get('one')?.closed).toBe(false);
  });

  it("several sockets from one page all ride the page's h2 connection; close() without a code gives the server 1005", async () => {
    const { context, page } = await newPage();
    const statuses = await handshakeStatuses(context, page);
    await page.goto(`https://localhost:${port}/?page=many`, { timeout: WAIT });
    const ids = ['m1', 'm2', 'm3', 'm4', 'm5'];
    const opened = await call<Opened>(page, OPEN, { base: `wss://localhost:${port}`, ids });
    expect(opened.echoes).toEqual(ids.map((id) => `hello from ${id}`));

    const session = pageSessions.get('many');
    expect(session).toBeDefined();
    for (const id of ids) {
      expect(records.get(id)?.transport).toBe('h2');
      expect(records.get(id)?.session).toBe(session);
      expect(statuses.get(`wss://localhost:${port}/echo?id=${id}`)).toBe(200);
    }
    expect([...handler.clients].filter((b) => ids.some((id) => records.get(id)?.behavior === b))).toHaveLength(ids.length);

    const started = Date.now();
    const closes = await call<PageClose[]>(page, CLOSE, { ids, code: null, reason: '' });
    expect(closes).toEqual(ids.map(() => ({ code: 1005, reason: '', wasClean: true })));
    for (const id of ids) {
      const record = await until(() => {
        const r = records.get(id);
        return r?.close !== undefined && r.rstCode !== undefined ? r : undefined;
      }, WAIT, `the close of ${id}`);
      expect(record.close).toMatchObject({ code: 1005, reason: '' });
      expect(record.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    }
    expect(Date.now() - started).toBeLessThan(CLOSE_TIMEOUT);
    expect(session?.closed).toBe(false);
  });

  it('a close from the server reaches the page with its code and reason, cleanly, and the stream ends without RST_STREAM', async () => {
    const { page } = await newPage();
    await page.goto(`https://localhost:${port}/?page=server-close`, { timeout: WAIT });
    await call<Opened>(page, OPEN, { base: `wss://localhost:${port}`, ids: ['sc'] });
    expect(records.get('sc')?.transport).toBe('h2');
    const close = await call<PageClose>(page, SEND_AND_WAIT_CLOSE, { id: 'sc', text: 'close 4001 server says bye' });
    expect(close).toEqual({ code: 4001, reason: 'server says bye', wasClean: true });
    const record = await until(() => {
      const r = records.get('sc');
      return r?.close !== undefined && r.rstCode !== undefined ? r : undefined;
    }, WAIT, 'the close of sc');
    expect(record.close?.code).toBe(4001);
    expect(record.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(record.close!.after - record.opened).toBeLessThan(CLOSE_TIMEOUT);
  });

  it('a page of another origin opening the same wss:// URL gets an HTTP/1.1 upgrade (no h2 connection of its own to reuse)', async () => {
    const { context, page } = await newPage();
    const statuses = await handshakeStatuses(context, page);
    await page.goto(`http://127.0.0.1:${otherPort}/`, { timeout: WAIT });
    const opened = await call<Opened>(page, OPEN, { base: `wss://localhost:${port}`, ids: ['cross'] });
    expect(opened.echoes).toEqual(['hello from cross']);
    const record = records.get('cross');
    expect(record?.transport).toBe('http/1.1');
    expect(record?.session).toBeNull();
    expect(record?.key).toBe(true);
    expect(record?.origin).toBe(`http://127.0.0.1:${otherPort}`);
    expect(statuses.get(`wss://localhost:${port}/echo?id=cross`)).toBe(101);
    const closes = await call<PageClose[]>(page, CLOSE, { ids: ['cross'], code: 1000, reason: '' });
    expect(closes).toEqual([{ code: 1000, reason: '', wasClean: true }]);
    expect((await until(() => records.get('cross')?.close, WAIT, 'the close of cross')).code).toBe(1000);
  });
});
