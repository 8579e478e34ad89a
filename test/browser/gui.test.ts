/**
 * The GUI example (demo/gui/app.js): an existing Express job service that gains a live dashboard
 * on a wsmount route. Jobs are created through the app's HTTP API; the tests assert what the
 * dashboard SHOWS in headless Chromium, and, with Node's own WebSocket client (undici), the JSON
 * messages on /live and the answers to bad input. Every wait is bounded (≤ 10 s).
 */
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type GuiApp, startGuiApp } from '../../demo/gui/app.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshotDir } from './chromium.js';

const WAIT = 10_000;
const SCREENSHOT = join(screenshotDir, 'gui-dashboard.png');

interface Job {
  id: number;
  name: string;
  steps: number;
  done: number;
  progress: number;
  state: 'running' | 'done' | 'cancelled';
}

type LiveMessage =
  | { type: 'snapshot'; jobs: Job[] }
  | { type: 'viewers'; count: number }
  | { type: 'job.created'; job: Job }
  | { type: 'job.done'; job: Job }
  | { type: 'job.cancelled'; job: Job }
  | { type: 'job.progress'; id: number; progress: number }
  | { type: 'error'; message: string };

/** Calls the app's JSON API. */
async function api(app: GuiApp, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(WAIT),
  });
  return { status: res.status, json: await res.json() };
}

async function createJob(app: GuiApp, name: string, steps: number): Promise<Job> {
  const { status, json } = await api(app, 'POST', '/api/jobs', { name, steps });
  expect(status).toBe(201);
  return json as Job;
}

it('Chromium is available for the browser tests (required in CI)', () => {
  if (hasChromium) return;
  if (process.env.CI !== undefined && process.env.CI !== '') {
    expect.fail(`${MISSING_CHROMIUM}. CI must install it (see .ci/run).`);
  }
  console.warn(`[gui] dashboard tests in Chromium not run: ${MISSING_CHROMIUM}.`);
});

// ---- the socket protocol, with Node's WebSocket client (no browser needed) --------------------

/** A /live client that keeps every JSON message it receives. */
class LiveClient {
  readonly ws: WebSocket;
  readonly messages: LiveMessage[] = [];

  constructor(app: GuiApp) {
    this.ws = new WebSocket(`${app.url.replace('http', 'ws')}/live`);
    this.ws.onmessage = (e: MessageEvent) => this.messages.push(JSON.parse(String(e.data)) as LiveMessage);
  }

  opened(): Promise<void> {
    return vi.waitFor(() => expect(this.ws.readyState).toBe(WebSocket.OPEN), { timeout: WAIT, interval: 10 });
  }

  /** The first message at index ≥ `from` that matches, waiting up to 10 s for it. */
  waitFor<T extends LiveMessage>(match: (m: LiveMessage) => m is T, from = 0): Promise<T> {
    return vi.waitFor(
      () => {
        const found = this.messages.slice(from).find(match);
        if (found === undefined) throw new Error(`no matching message yet; got ${JSON.stringify(this.messages.slice(from))}`);
        return found;
      },
      { timeout: WAIT, interval: 10 },
    );
  }

  /** Sends `data` and waits for the error message the server answers with. */
  async sendExpectingError(data: string | Uint8Array): Promise<string> {
    const from = this.messages.length;
    this.ws.send(data);
    return (await this.waitFor((m): m is Extract<LiveMessage, { type: 'error' }> => m.type === 'error', from)).message;
  }

  async close(): Promise<void> {
    this.ws.close();
    await vi.waitFor(() => expect(this.ws.readyState).toBe(WebSocket.CLOSED), { timeout: WAIT, interval: 10 });
  }
}

const isViewers =
  (count: number) =>
  (m: LiveMessage): m is Extract<LiveMessage, { type: 'viewers' }> =>
    m.type === 'viewers' && m.count === count;

describe('/live JSON messages (undici WebSocket)', () => {
  let app: GuiApp;
  beforeAll(async () => {
    app = await startGuiApp({ tickMs: 20 });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a new client gets a snapshot, then everyone gets the viewer count', async () => {
    const a = new LiveClient(app);
    await a.opened();
    await a.waitFor(isViewers(1));
    expect(a.messages.slice(0, 2)).toEqual([
      { type: 'snapshot', jobs: [] },
      { type: 'viewers', count: 1 },
    ]);

    const b = new LiveClient(app);
    await b.opened();
    await a.waitFor(isViewers(2));
    await b.waitFor(isViewers(2));
    expect(b.messages[0]).toEqual({ type: 'snapshot', jobs: [] });

    await b.close();
    await a.waitFor(isViewers(1), 3);
    await a.close();
  });

  it('a job created over HTTP is reported as job.created, job.progress…, job.done', async () => {
    const c = new LiveClient(app);
    await c.opened();
    const job = await createJob(app, 'encode video', 5);
    expect(job).toMatchObject({ name: 'encode video', steps: 5, progress: 0, state: 'running' });

    await c.waitFor((m): m is Extract<LiveMessage, { type: 'job.done' }> => m.type === 'job.done' && m.job.id === job.id);
    const about = c.messages.filter(
      (m) => ('job' in m && m.job.id === job.id) || (m.type === 'job.progress' && m.id === job.id),
    );
    expect(about).toEqual([
      { type: 'job.created', job: { ...job } },
      { type: 'job.progress', id: job.id, progress: 20 },
      { type: 'job.progress', id: job.id, progress: 40 },
      { type: 'job.progress', id: job.id, progress: 60 },
      { type: 'job.progress', id: job.id, progress: 80 },
      { type: 'job.done', job: { ...job, done: 5, progress: 100, state: 'done' } },
    ]);

    // A client that connects later sees the finished job in its snapshot.
    const late = new LiveClient(app);
    await late.opened();
    await late.waitFor(isViewers(2));
    expect(late.messages[0]).toMatchObject({ type: 'snapshot', jobs: [{ id: job.id, state: 'done', progress: 100 }] });
    await late.close();
    await c.close();
  });

  it('bad input gets an error message back and the connection stays open', async () => {
    const c = new LiveClient(app);
    await c.opened();
    expect(await c.sendExpectingError('{"type": "cancel", ')).toBe('not JSON');
    expect(await c.sendExpectingError('null')).toBe('unknown command');
    expect(await c.sendExpectingError('[1, 2]')).toBe('unknown command');
    expect(await c.sendExpectingError('{"type": "delete everything"}')).toBe('unknown command');
    expect(await c.sendExpectingError('{"type": "cancel", "id": "1"}')).toBe('cancel needs a numeric id');
    expect(await c.sendExpectingError('{"type": "cancel", "id": 999}')).toBe('no job 999');
    expect(await c.sendExpectingError(new Uint8Array([1, 2, 3]))).toBe('send JSON text');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);

    // …and a good command still works: cancelling a running job is broadcast to everyone.
    const other = new LiveClient(app);
    await other.opened();
    const job = await createJob(app, 'long export', 1000);
    c.ws.send(JSON.stringify({ type: 'cancel', id: job.id }));
    for (const client of [c, other]) {
      const m = await client.waitFor(
        (x): x is Extract<LiveMessage, { type: 'job.cancelled' }> => x.type === 'job.cancelled' && x.job.id === job.id,
      );
      expect(m.job.state).toBe('cancelled');
    }
    expect(await c.sendExpectingError(JSON.stringify({ type: 'cancel', id: job.id }))).toBe(`job ${job.id} is already cancelled`);
    expect((await api(app, 'GET', `/api/jobs/${job.id}`)).json).toMatchObject({ state: 'cancelled' });
    await other.close();
    await c.close();
  });

  it('a page from another origin is refused with 403 before the upgrade', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${app.url}/live`, {
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          Origin: 'https://evil.example',
        },
        timeout: WAIT,
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        reject(new Error('upgraded a foreign origin'));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });
});

// ---- what the dashboard shows, in headless Chromium -------------------------------------------

describe.runIf(hasChromium)('the dashboard in Chromium', () => {
  let app: GuiApp;
  let browser: Browser;
  let closeBrowser: (() => Promise<void>) | undefined;
  const pageErrors: string[] = [];
  let first: Page;
  let second: Page;

  beforeAll(async () => {
    app = await startGuiApp({ tickMs: 100 });
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
    await app?.close();
  });

  async function openDashboard({ width = 860, height = 440 } = {}): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('response', (res) => {
      if (res.status() >= 400) pageErrors.push(`${res.status()} for ${res.url()}`);
    });
    await page.goto(`${app.url}/dashboard`, { timeout: WAIT });
    await page.waitForSelector('#state.open', { timeout: WAIT });
    return page;
  }

  const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText({ timeout: WAIT });
  const row = (id: number): string => `tr[data-id="${id}"]`;
  const progressOf = (page: Page, id: number): Promise<number> =>
    page.locator(`${row(id)} progress`).evaluate((el) => (el as unknown as { value: number }).value, undefined, { timeout: WAIT });

  it('connects and shows it is live, with one viewer and no jobs', async () => {
    first = await openDashboard();
    expect(await text(first, '#state')).toBe('live');
    await expect.poll(() => text(first, '#viewers'), { timeout: WAIT }).toBe('1 dashboard watching');
    expect(await first.locator('#empty').isVisible()).toBe(true);
  });

  it('a job created over HTTP appears, progresses and finishes', async () => {
    const job = await createJob(app, 'resize photos', 20); // 20 steps × 100 ms
    await first.waitForSelector(row(job.id), { timeout: WAIT });
    expect(await text(first, `${row(job.id)} .name`)).toBe('resize photos');
    expect(await first.locator('#empty').isVisible()).toBe(false);

    // Seen part-way: running, with a progress bar between 0 and 100.
    await expect
      .poll(async () => {
        const p = await progressOf(first, job.id);
        return p > 0 && p < 100 && (await text(first, `${row(job.id)} .state`)) === 'running';
      }, { timeout: WAIT, interval: 20 })
      .toBe(true);

    await expect.poll(() => text(first, `${row(job.id)} .state`), { timeout: WAIT }).toBe('done');
    expect(await text(first, `${row(job.id)} .pct`)).toBe('100%');
    expect(await progressOf(first, job.id)).toBe(100);
    expect(await first.locator(`${row(job.id)} button.cancel`).isVisible()).toBe(false);
  });

  it('a second dashboard gets the current jobs and raises the viewer count on both', async () => {
    second = await openDashboard();
    for (const page of [first, second]) {
      await expect.poll(() => text(page, '#viewers'), { timeout: WAIT }).toBe('2 dashboards watching');
    }
    expect(await text(second, 'tbody tr .name')).toBe('resize photos');
    expect(await text(second, 'tbody tr .state')).toBe('done');
  });

  it('clicking cancel on one dashboard updates every dashboard and the HTTP API', async () => {
    const job = await createJob(app, 'nightly backup', 1000); // would take 100 s
    for (const page of [first, second]) await page.waitForSelector(`${row(job.id)}[data-state="running"]`, { timeout: WAIT });

    await first.locator(`${row(job.id)} button.cancel`).click({ timeout: WAIT });

    for (const page of [first, second]) {
      await expect.poll(() => text(page, `${row(job.id)} .state`), { timeout: WAIT }).toBe('cancelled');
      expect(await page.locator(`${row(job.id)} button.cancel`).isVisible()).toBe(false);
    }
    expect((await api(app, 'GET', `/api/jobs/${job.id}`)).json).toMatchObject({ state: 'cancelled' });
  });

  it("the page's own form starts a job through the HTTP API, and both dashboards show it", async () => {
    await first.locator('#new-job input').fill('send newsletter', { timeout: WAIT });
    await first.locator('#new-job button').click({ timeout: WAIT });
    for (const page of [first, second]) {
      await expect.poll(() => page.locator('tbody tr .name').allInnerTexts(), { timeout: WAIT }).toContain('send newsletter');
    }
    expect(await first.locator('#new-job input').inputValue()).toBe('');
  });

  it('the HTTP API still works beside the socket', async () => {
    const list = (await api(app, 'GET', '/api/jobs')).json as Job[];
    expect(list.map((j) => j.name)).toEqual(['resize photos', 'nightly backup', 'send newsletter']);
    expect(await api(app, 'POST', '/api/jobs', '{not json')).toMatchObject({ status: 400 });
    expect(await api(app, 'POST', '/api/jobs', { name: '' })).toMatchObject({ status: 400 });
    expect(await api(app, 'POST', '/api/jobs', { name: 'x', steps: 0 })).toMatchObject({ status: 400 });
    expect(await api(app, 'GET', '/api/jobs/999')).toEqual({ status: 404, json: { error: 'no such job' } });
    expect(await api(app, 'POST', `/api/jobs/${list[0]!.id}/cancel`)).toEqual({
      status: 409,
      json: { error: `job ${list[0]!.id} is already done` },
    });
  });

  it('shows a mix of jobs (screenshot: demo/screenshots/gui-dashboard.png)', async () => {
    const job = await createJob(app, 'render thumbnails', 40);
    await expect.poll(() => progressOf(first, job.id), { timeout: WAIT, interval: 20 }).toBeGreaterThanOrEqual(40);
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await first.screenshot({ path: SCREENSHOT, fullPage: true, timeout: WAIT });
    expect(await first.locator('tbody tr').count()).toBe(4);
  });

  it("uses the demos' shared stylesheet, served by the app, and fits a 360-pixel-wide phone screen", async () => {
    const narrow = await openDashboard({ width: 360, height: 640 });
    const sheets = await narrow.locator('link[rel=stylesheet]').evaluateAll((ls) => ls.map((l) => l.getAttribute('href')));
    expect(sheets).toEqual(['style.css', 'dashboard.css']);
    expect(await narrow.evaluate<string>('getComputedStyle(document.body).fontFamily')).toMatch(/^system-ui/);
    await expect.poll(() => narrow.locator('tbody tr').count(), { timeout: WAIT }).toBe(4);
    // (As a string: the tests compile without the DOM's types.)
    const [scrollWidth, clientWidth] = await narrow.evaluate<[number, number]>(
      '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
    );
    expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
    // Every job's state and, while it runs, its cancel button are in view without scrolling sideways.
    for (const el of await narrow.locator('tbody .state, tbody button.cancel:visible').all()) {
      const box = await el.boundingBox();
      expect(box && box.x + box.width).toBeLessThanOrEqual(clientWidth);
    }
    await narrow.close();
  });

  it('closing a dashboard lowers the count on the others; no page errors', async () => {
    await second.close();
    await expect.poll(() => text(first, '#viewers'), { timeout: WAIT }).toBe('1 dashboard watching');
    await first.close();
    expect(pageErrors).toEqual([]);
  });
});
