/**
 * wsmount/dashboard in headless Chromium: the page, mounted the plain-Node way under /admin/ws of
 * a test server and opened without its trailing slash (its feed is found relative to it), draws
 * its charts and tables from real WebSocket traffic and updates them tick by tick, shows a
 * hostile route pattern and address as text, and runs under its own strict CSP with no console
 * error and no violation. Every wait is bounded; no assertion is about wall-clock time.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type Dashboard } from 'wsmount/dashboard';
import { type TestClient, connect } from 'wsmount/testing';
import { Behavior, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { RawClient } from '../helpers/raw.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium } from './chromium.js';

const WAIT = { timeout: 10_000, interval: 50 };
/** A route pattern and an address that would run script if the page ever wrote them as HTML. */
const HOSTILE_ROUTE = '/<svg/onload=window.__pwned=1>';
const HOSTILE_ADDRESS = '<img src=x onerror="window.__pwned=2">';

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

/**
 * Takes its address from X-Forwarded-For, as apps behind a proxy do, and sends 24 MiB at once.
 * Its client reads nothing, so it would not see a ping either: no heartbeat on this route.
 */
class Flood extends Behavior {
  static override maxBackpressure = 64 << 20;
  static override pingInterval = 0;
  override onOpen(): void {
    const forwarded = this.headers['x-forwarded-for'];
    if (typeof forwarded === 'string') this.remoteAddress = forwarded;
    const mib = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 24; i++) this.sendBinary(mib);
  }
}

it('has Chromium where the browser tests must run', () => {
  if (hasChromium) return;
  if (process.env.CI) expect.fail(MISSING_CHROMIUM);
  console.log(MISSING_CHROMIUM);
});

/** Run in the page (the tests compile without the DOM's types). */
const CHART_STATE = `(() => {
  const d = (sel) => [...document.querySelectorAll(sel)].map((p) => p.getAttribute('d') || '');
  return {
    connections: d('#chart-connections path.line'),
    messages: d('#chart-messages path.line'),
    bytes: d('#chart-bytes path.line'),
    rttBars: document.querySelectorAll('#chart-rtt rect.bar').length,
    closeCodes: [...document.querySelectorAll('#chart-closes g.close-code')].map((g) => g.getAttribute('data-code')),
    updated: document.getElementById('updated').getAttribute('data-time'),
    samples: Number(document.body.getAttribute('data-samples')),
    messagesSub: document.getElementById('card-messages-in-sub').textContent,
    bytesOut: document.getElementById('card-bytes-out-sub').textContent,
  };
})()`;
interface ChartState {
  connections: string[];
  messages: string[];
  bytes: string[];
  rttBars: number;
  closeCodes: string[];
  updated: string | null;
  samples: number;
  messagesSub: string;
  bytesOut: string;
}

describe.runIf(hasChromium)('the dashboard page in Chromium', () => {
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  let handler: WebSocketHandler;
  let dashboard: Dashboard;
  let server: http.Server;
  let base: string;
  let port: number;
  const clients: TestClient[] = [];
  let flood: RawClient;
  let traffic: NodeJS.Timeout;
  const pages: Page[] = [];
  /** Script errors, console errors, CSP violations and foreign requests of every page. */
  const problems: string[] = [];

  async function open(path: string, { width = 1200, height = 900 } = {}): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height }, locale: 'en-US' });
    page.setDefaultTimeout(10_000);
    pages.push(page);
    // Runs before the page's own script, outside its CSP: records every violation the page causes.
    await page.addInitScript(
      "window.__violations = []; document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));",
    );
    page.on('pageerror', (e) => problems.push(`${path}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${path}: console ${m.type()}: ${m.text()}`);
    });
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.protocol !== 'data:' && url.host !== new URL(base).host) problems.push(`${path} loaded ${req.url()}`);
    });
    await page.goto(new URL(path, base).href);
    return page;
  }
  const stateOf = (page: Page) => page.evaluate<ChartState>(CHART_STATE);
  const text = (page: Page, selector: string) => page.locator(selector).textContent();

  beforeAll(async () => {
    chromium = await launchChromium();
    browser = chromium.browser;
    // A short heartbeat, so the round-trip histogram fills during the test.
    handler = createWebSocketHandler({ '/echo': Echo, '/quiet': Echo, [HOSTILE_ROUTE]: Flood }, { pingInterval: 300, pongTimeout: 5000, logLevel: 'silent' });
    dashboard = createDashboard(handler, { path: '/admin/ws', interval: 250, span: 60_000, title: 'dashboard test' });
    server = http.createServer((req, res) => {
      if ((req.url ?? '').startsWith('/admin/ws')) return dashboard(req, res);
      res.writeHead(404).end();
    });
    handler.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}/`;

    // Traffic: six echo clients, each sending a message every 20 ms; one client that never reads.
    for (let i = 0; i < 6; i++) clients.push(await connect(`ws://127.0.0.1:${port}/echo`));
    traffic = setInterval(() => {
      for (const c of clients) if (c.state === 'open') c.sendText('x'.repeat(200));
    }, 20);
    flood = await RawClient.connect(port, HOSTILE_ROUTE, { 'X-Forwarded-For': HOSTILE_ADDRESS });
    flood.socket.pause();
  });
  afterEach(async () => {
    await Promise.all(pages.splice(0).map((p) => p.close()));
    expect(problems.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    clearInterval(traffic);
    flood?.socket.destroy();
    dashboard?.close();
    await handler?.close({ timeout: 500 });
    await new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await chromium?.close();
  });

  it('renders every panel from live traffic, at /admin/ws without a trailing slash, and updates tick by tick', async () => {
    const page = await open('/admin/ws');
    expect(await page.title()).toBe('dashboard test · WebSocket dashboard');
    await expect.poll(() => text(page, '#state'), WAIT).toBe('live');

    // The cards: 6 echo clients and the flood client are open; messages flow both ways.
    await expect.poll(() => text(page, '#card-connections'), WAIT).toBe('7');
    await expect.poll(async () => Number((await text(page, '#card-messages-in'))?.replace(/,/g, '')), WAIT).toBeGreaterThan(0);
    await expect.poll(async () => Number((await text(page, '#card-messages-out'))?.replace(/,/g, '')), WAIT).toBeGreaterThan(0);
    expect(await text(page, '#card-bytes-in')).toMatch(/^[\d,.]+ (B|KiB|MiB)\/s$/);

    // The line charts have lines of two points or more (two series where there are two), the histogram bars.
    await expect
      .poll(async () => {
        const s = await stateOf(page);
        const drawn = [...s.connections, ...s.messages, ...s.bytes].every((d) => d.includes('L'));
        return [s.connections.length, s.messages.length, s.bytes.length, drawn, s.rttBars > 0];
      }, WAIT)
      .toEqual([1, 2, 2, true, true]);
    const first = await stateOf(page);
    for (const d of [...first.connections, ...first.messages, ...first.bytes]) expect(d).toMatch(/^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+$/);
    expect(await text(page, '#card-heartbeat')).toMatch(/^≤ [\d.]+ m?s$/);
    expect(await text(page, '#rtt-summary')).toMatch(/round trips · mean/);

    // Two ticks later every moving part has moved: the time, the totals, the lines.
    await expect.poll(async () => (await stateOf(page)).samples, WAIT).toBeGreaterThanOrEqual(first.samples + 2);
    const later = await stateOf(page);
    expect(later.updated).not.toBe(first.updated);
    expect(Number(later.updated)).toBeGreaterThan(Number(first.updated));
    expect(later.messagesSub).not.toBe(first.messagesSub);
    expect(later.messages).not.toEqual(first.messages);
    expect(later.connections).not.toEqual(first.connections);

    // Top routes: the busiest first, each pattern as text.
    const routes = await page.locator('#routes tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    expect(routes[0]?.slice(0, 2)).toEqual(['/echo', '6']);
    expect(routes.map((r) => r[0])).toEqual(['/echo', HOSTILE_ROUTE, '/quiet']);
  });

  it('close codes appear as bars when clients close, by code', async () => {
    const page = await open('/admin/ws/');
    await expect.poll(() => text(page, '#state'), WAIT).toBe('live');
    const a = await connect(`ws://127.0.0.1:${port}/quiet`);
    const b = await connect(`ws://127.0.0.1:${port}/quiet`);
    await a.close(1000);
    await b.close(4001, 'bye');
    await expect.poll(async () => (await stateOf(page)).closeCodes.sort(), WAIT).toEqual(['1000', '4001']);
    expect(await page.locator('#chart-closes g[data-code="1000"] text.label').textContent()).toBe('1000 normal');
    expect(await text(page, '#closes-summary')).toMatch(/^2 closed · /);
  });

  it('slow consumers: the client that stopped reading, with its hostile address and route shown as text, and nothing run', async () => {
    const page = await open('/admin/ws/');
    await expect.poll(() => page.locator('#slow tbody tr td').count(), WAIT).toBe(5);
    const row = await page.locator('#slow tbody tr').first().evaluate((r) => [...r.querySelectorAll('td')].map((td) => td.textContent));
    expect(row[1]).toBe(HOSTILE_ROUTE);
    expect(row[2]).toBe(HOSTILE_ADDRESS);
    expect(row[3]).toMatch(/^[\d.]+ MiB$/);
    expect(await text(page, '#slow-summary')).toMatch(/^1 client has bytes waiting/);
    // The strings stayed text: no element was made of them, no handler ran.
    expect(await page.locator('main img, main svg svg, table svg').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.evaluate('window.__violations')).toEqual([]);
  });

  it('a hidden tab closes its feed (the server stops sampling when no page is left) and reopens it when shown', async () => {
    const page = await open('/admin/ws/');
    await expect.poll(() => text(page, '#state'), WAIT).toBe('live');
    await expect.poll(() => dashboard.viewers, WAIT).toBe(1);
    const setVisibility = (state: string) =>
      page.evaluate(`Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${state}' }); document.dispatchEvent(new Event('visibilitychange'))`);
    await setVisibility('hidden');
    await expect.poll(() => dashboard.viewers, WAIT).toBe(0);
    expect(dashboard.live).toBe(false);
    expect(await text(page, '#state')).toBe('paused while hidden');
    await setVisibility('visible');
    await expect.poll(() => text(page, '#state'), WAIT).toBe('live');
    expect(dashboard.viewers).toBe(1);
  });

  it('fits a 360-pixel-wide phone screen: nothing sticks out sideways', async () => {
    const page = await open('/admin/ws/', { width: 360, height: 800 });
    await expect.poll(() => text(page, '#state'), WAIT).toBe('live');
    await expect.poll(async () => (await stateOf(page)).samples, WAIT).toBeGreaterThanOrEqual(2);
    const [scroll, client] = await page.evaluate<[number, number]>('[document.documentElement.scrollWidth, document.documentElement.clientWidth]');
    expect(scroll).toBe(client);
  });

  it('a page past maxViewers says so, and gets in once a viewer leaves', async () => {
    const small = createDashboard(handler, { maxViewers: 1, interval: 250 });
    const smallServer = http.createServer((req, res) => small(req, res));
    await new Promise<void>((resolve) => smallServer.listen(0, '127.0.0.1', resolve));
    const smallBase = `http://127.0.0.1:${(smallServer.address() as AddressInfo).port}/`;
    try {
      const one = await browser.newPage({ locale: 'en-US' });
      const two = await browser.newPage({ locale: 'en-US' });
      const twoErrors: string[] = [];
      two.on('console', (m) => {
        if (m.type() === 'error') twoErrors.push(m.text());
      });
      await one.goto(smallBase);
      await expect.poll(() => text(one, '#state'), WAIT).toBe('live');
      await two.goto(smallBase);
      await expect.poll(() => text(two, '#state'), WAIT).toBe('too many viewers: retrying');
      // Chromium reports the refused feed (503) on the console: that, and nothing else.
      expect(twoErrors.every((e) => e.includes('503'))).toBe(true);
      await one.close();
      // It retries every 5 s: within two retries it is in.
      await expect.poll(() => text(two, '#state'), { timeout: 12_000, interval: 100 }).toBe('live');
      await two.close();
    } finally {
      small.close();
      await new Promise<void>((resolve) => {
        smallServer.close(() => resolve());
        smallServer.closeAllConnections();
      });
    }
  }, 30_000);
});
