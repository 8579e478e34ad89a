/**
 * The HTTP/2 demo (`npm run demo:http2`, demo/http2/browser.js) in headless Chromium: the page is
 * loaded over h2 from https://localhost with the demo's own self-signed certificate (Chromium runs
 * with --ignore-certificate-errors), and every WebSocket it opens arrives as an extended CONNECT
 * stream of that one connection (RFC 8441) — as the page shows and as the server counts. A
 * screenshot goes to demo/screenshots/ with SCREENSHOTS=1.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocketHandler } from '../../src/index.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshotDir } from './chromium.js';

interface Http2Demo {
  port: number;
  url: string;
  sockets: WebSocketHandler;
  close(): Promise<void>;
}
interface Http2DemoModule {
  startHttp2Demo(options?: { port?: number; host?: string }): Promise<Http2Demo>;
}
const { startHttp2Demo } = (await import(new URL('../../demo/http2/browser.js', import.meta.url).href)) as Http2DemoModule;

const WAIT = 10_000;

it('chromium is installed where browser tests must run', () => {
  if (process.env['CI'] !== undefined) expect(hasChromium, MISSING_CHROMIUM).toBe(true);
});

describe.runIf(hasChromium)('the HTTP/2 demo page in Chromium', () => {
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let demo: Http2Demo;

  beforeAll(async () => {
    demo = await startHttp2Demo({ port: 0 });
    ({ browser, close: closeBrowser } = await launchChromium(['--ignore-certificate-errors']));
  });
  afterAll(async () => {
    await closeBrowser?.();
    await demo?.close();
  });

  it('RFC 8441: the page comes over h2 and its WebSockets are streams of that one connection', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    try {
      await page.goto(demo.url);
      await expect.poll(() => page.locator('#page-protocol').textContent(), { timeout: WAIT }).toBe('h2');
      // Four sockets on load, four more on the button: every one over h2, one connection.
      await expect.poll(() => page.locator('body').getAttribute('data-h2'), { timeout: WAIT }).toBe('4');
      await page.click('#more');
      await expect.poll(() => page.locator('body').getAttribute('data-h2'), { timeout: WAIT }).toBe('8');
      await expect(page.locator('#summary').textContent()).resolves.toBe('8 of 8 WebSockets over HTTP/2, on 1 connection(s).');
      await expect.poll(() => page.locator('#rows td:nth-child(4):has-text("ms")').count(), { timeout: WAIT }).toBe(8);
      // The server agrees: eight WebSockets, each carried by HTTP/2 over TLS.
      const transports = [...demo.sockets.clients].map((c) => c.transport);
      expect(transports).toEqual(Array(8).fill('h2'));
      await page.screenshot({ path: fileURLToPath(new URL('http2.png', pathToFileURL(`${screenshotDir}/`))) });
      await page.click('#close');
      await expect.poll(() => demo.sockets.clients.size, { timeout: WAIT }).toBe(0);
      expect(demo.sockets.stats().closesByCode['1000']).toBe(8);
    } finally {
      await context.close();
    }
  });
});
