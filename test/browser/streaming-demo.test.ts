/**
 * The streaming demo (`npm run demo:streaming`, demo/streaming/server.js) end to end. In headless
 * Chromium the page uploads a generated 32 MiB file chosen with the file input (sent by the
 * browser as one WebSocket message, received by the route's onStream as a stream and piped to
 * disk), shows progress while it goes, then downloads it back (one message sent with sendStream)
 * and checks size and SHA-256 itself. The test checks the stored file's digest, that the progress
 * bars advanced through several values, and that the page shows the matching digests. A
 * screenshot goes to demo/screenshots/streaming.png with SCREENSHOTS=1.
 *
 * Over TCP with wsmount/testing's client: a fragmented upload (a browser's framing is its own
 * business; this one is ours), the size cap (close 1009, no file left behind), a binary message
 * nobody announced (1008), and download names that try to leave the upload directory (404).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocketHandler } from '../../src/index.js';
import { HandshakeError, type TestClient, connect } from '../../src/testing/index.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshotDir } from './chromium.js';

interface StreamingDemo {
  port: number;
  url: string;
  uploadDir: string;
  sockets: WebSocketHandler;
  close(): Promise<void>;
}
interface StreamingDemoModule {
  startStreamingDemo(options?: { port?: number; host?: string; uploadDir?: string; maxBytes?: number; log?: (line: string) => void }): Promise<StreamingDemo>;
  cleanFileName(raw: unknown): string;
}
const { startStreamingDemo, cleanFileName } = (await import(new URL('../../demo/streaming/server.js', import.meta.url).href)) as StreamingDemoModule;

const MiB = 2 ** 20;
const WAIT = 60_000;
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Every progress value the page showed (window.streamingDemo.shown). */
interface Shown {
  upLocal: number[];
  upServer: number[];
  downServer: number[];
}

/** Several distinct values, each larger than the one before, ending at `total`. */
function expectAdvanced(values: number[], total: number, atLeast: number): void {
  expect(new Set(values).size, `progress values ${values.join(', ')}`).toBeGreaterThanOrEqual(atLeast);
  for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
  expect(values.at(-1)).toBe(total);
}

/** Reads JSON text messages until one has `type`; returns it with the ones before. */
async function until(client: TestClient, type: string): Promise<{ message: Record<string, unknown>; before: Record<string, unknown>[] }> {
  const before: Record<string, unknown>[] = [];
  for (;;) {
    const data = await client.nextMessage({ timeout: WAIT });
    expect(typeof data).toBe('string');
    const message = JSON.parse(data as string) as Record<string, unknown>;
    if (message['type'] === type) return { message, before };
    before.push(message);
  }
}

it('chromium is installed where browser tests must run', () => {
  if (process.env['CI'] !== undefined) expect(hasChromium, MISSING_CHROMIUM).toBe(true);
});

it('cleanFileName keeps names inside the upload directory', () => {
  expect(cleanFileName('report 2026.pdf')).toBe('report_2026.pdf');
  expect(cleanFileName('../../etc/passwd')).toBe('etc_passwd');
  expect(cleanFileName('..\\..\\boot.ini')).toBe('boot.ini');
  expect(cleanFileName('.hidden')).toBe('hidden');
  expect(cleanFileName('..')).toBe('');
  expect(cleanFileName('/')).toBe('');
  expect(cleanFileName('a'.repeat(300))).toHaveLength(100);
});

describe.runIf(hasChromium)('the streaming demo page in Chromium', () => {
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let demo: StreamingDemo;
  const logged: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'wsmount-streaming-test-'));

  beforeAll(async () => {
    demo = await startStreamingDemo({ port: 0, maxBytes: 64 * MiB, log: (line) => logged.push(line) });
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
    await demo?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('uploads a 32 MiB file as one message, stores it intact, shows progress, downloads it back with the same SHA-256', { timeout: 180_000 }, async () => {
    const size = 32 * MiB;
    const content = randomBytes(size);
    const digest = sha256(content);
    const chosen = join(scratch, 'sample.bin');
    await writeFile(chosen, content);

    const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    try {
      await page.goto(demo.url);
      await expect.poll(() => page.locator('#state').textContent(), { timeout: WAIT }).toBe('connected');
      await expect.poll(() => page.locator('#file').isEnabled(), { timeout: WAIT }).toBe(true);
      await page.setInputFiles('#file', chosen);

      // Upload: stored on the server, with the page's own digest matching the server's.
      await expect.poll(() => page.locator('body').getAttribute('data-upload'), { timeout: WAIT }).toBe('ok');
      expect(sha256(await readFile(join(demo.uploadDir, 'sample.bin')))).toBe(digest);
      expect(await page.locator('#local-sha').textContent()).toBe(digest);
      expect(await page.locator('#server-sha').textContent()).toBe(digest);
      expect(await readdir(demo.uploadDir)).toEqual(['sample.bin']); // no part file left
      const afterUpload = (await page.evaluate('window.streamingDemo.shown')) as Shown;
      expectAdvanced(afterUpload.upServer, size, 8); // the server reports as it stores
      expectAdvanced(afterUpload.upLocal, size, 2); // from size - bufferedAmount: 0 right after send(), then up to the whole file
      expect(logged.some((line) => line.startsWith(`stored sample.bin: ${size} bytes`))).toBe(true);

      // Download: one Blob, same size and digest, progress from the server's reports.
      await page.click('#download');
      await expect.poll(() => page.locator('body').getAttribute('data-download'), { timeout: WAIT }).toBe('ok');
      expect(await page.locator('#down-sha').textContent()).toBe(digest);
      expect(await page.locator('#download-verdict').textContent()).toContain('same SHA-256');
      const shown = (await page.evaluate('window.streamingDemo.shown')) as Shown;
      expectAdvanced(shown.downServer, size, 8);
      expect(await page.locator('#save').getAttribute('download')).toBe('sample.bin');

      await page.screenshot({ path: fileURLToPath(new URL('streaming.png', pathToFileURL(`${screenshotDir}/`))), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
    // The download socket closed with 1000 after its message; the page's control socket is gone too.
    await expect.poll(() => demo.sockets.clients.size, { timeout: WAIT }).toBe(0);
    expect(demo.sockets.stats().closesByCode['1000']).toBeGreaterThanOrEqual(1);
  });

  it('a file over the limit is refused before it is sent', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(demo.url);
      await expect.poll(() => page.locator('#state').textContent(), { timeout: WAIT }).toBe('connected');
      await expect.poll(() => page.locator('#file').isEnabled(), { timeout: WAIT }).toBe(true);
      const big = join(scratch, 'big.bin');
      await writeFile(big, '');
      await truncate(big, 64 * MiB + 1); // sparse: one byte over the demo's limit
      await page.setInputFiles('#file', big);
      await expect.poll(() => page.locator('body').getAttribute('data-upload'), { timeout: WAIT }).toBe('refused');
      expect(await page.locator('#upload-verdict').textContent()).toBe("not sent: over the server's limit of 64.0 MiB");
      expect(await readdir(demo.uploadDir)).not.toContain('big.bin');
    } finally {
      await page.close();
    }
  });
});

describe('the streaming demo over TCP (wsmount/testing client)', () => {
  let demo: StreamingDemo;
  const LIMIT = 4 * MiB;

  beforeAll(async () => {
    demo = await startStreamingDemo({ port: 0, maxBytes: LIMIT });
  });
  afterAll(async () => {
    await demo?.close();
  });
  const ws = (path: string): string => `ws://127.0.0.1:${demo.port}${path}`;

  it('a message in many fragments is stored whole and comes back as one message', async () => {
    const content = randomBytes(3 * MiB + 123);
    const client = await connect(ws('/files'));
    try {
      const { message: hello } = await until(client, 'hello');
      expect(hello['maxBytes']).toBe(LIMIT);
      client.sendText(JSON.stringify({ type: 'file', name: '../fragments.bin', size: content.length }));
      const { message: ready } = await until(client, 'ready');
      expect(ready['name']).toBe('fragments.bin'); // cleaned: no way out of the upload directory
      const pieces = 97;
      const step = Math.ceil(content.length / pieces);
      for (let i = 0, at = 0; at < content.length; i++, at += step) {
        client.sendFrame({ opcode: i === 0 ? 2 : 0, fin: at + step >= content.length, payload: content.subarray(at, at + step) });
      }
      const { message: stored, before } = await until(client, 'stored');
      expect(stored).toMatchObject({ name: 'fragments.bin', size: content.length, sha256: sha256(content) });
      expect(before.filter((m) => m['type'] === 'progress').length).toBeGreaterThanOrEqual(8);
      expect(sha256(await readFile(join(demo.uploadDir, 'fragments.bin')))).toBe(sha256(content));

      const down = await connect(ws(`/download/fragments.bin?token=${String(hello['token'])}`));
      const info = await down.nextMessageInfo({ timeout: WAIT });
      expect(Buffer.isBuffer(info.data)).toBe(true);
      expect(sha256(info.data as Buffer)).toBe(sha256(content));
      await expect(down.closed).resolves.toMatchObject({ code: 1000 });
      const { message: sent, before: reports } = await until(client, 'sent');
      expect(sent).toMatchObject({ name: 'fragments.bin', size: content.length });
      const downs = reports.filter((m) => m['type'] === 'progress' && m['direction'] === 'down').map((m) => m['sent'] as number);
      expectAdvanced(downs, content.length, 8);
    } finally {
      await client.close();
    }
  });

  it('over maxStreamBytes the connection closes with 1009 and no file is left, whatever size was announced', async () => {
    const client = await connect(ws('/files'));
    await until(client, 'hello');
    client.sendText(JSON.stringify({ type: 'file', name: 'liar.bin', size: 10 }));
    await until(client, 'ready');
    const piece = Buffer.alloc(256 * 1024);
    const pieces = LIMIT / piece.length + 2;
    for (let i = 0; i < pieces && client.state === 'open'; i++) {
      client.sendFrame({ opcode: i === 0 ? 2 : 0, fin: i === pieces - 1, payload: piece });
    }
    await expect(client.closed).resolves.toMatchObject({ code: 1009 });
    await expect.poll(async () => (await readdir(demo.uploadDir)).filter((f) => f.includes('liar')), { timeout: WAIT }).toEqual([]);
  });

  it('an announced size over the limit gets an error message, and the socket stays open', async () => {
    const client = await connect(ws('/files'));
    try {
      await until(client, 'hello');
      client.sendText(JSON.stringify({ type: 'file', name: 'huge.bin', size: LIMIT + 1 }));
      const { message } = await until(client, 'error');
      expect(message['message']).toContain('limit');
      expect(client.state).toBe('open');
    } finally {
      await client.close();
    }
  });

  it('a binary message nobody announced closes the connection with 1008', async () => {
    const client = await connect(ws('/files'));
    await until(client, 'hello');
    client.sendBinary(Buffer.from('surprise'));
    await expect(client.closed).resolves.toMatchObject({ code: 1008 });
  });

  it('download names that are not clean file names, or not there, are refused with 404 before the 101', async () => {
    await writeFile(join(demo.uploadDir, 'present.txt'), 'here');
    await writeFile(join(demo.uploadDir, '.hidden.part'), 'partial');
    const outside = join(demo.uploadDir, '..', `wsmount-outside-${process.pid}.txt`);
    await writeFile(outside, 'secret');
    try {
      for (const name of ['..%2F..%2Fetc%2Fpasswd', `..%2F${encodeURIComponent(`wsmount-outside-${process.pid}.txt`)}`, '.hidden.part', 'missing.bin', '%2Fetc%2Fpasswd', 'present.txt%00']) {
        const error = await connect(ws(`/download/${name}`)).then(
          async (c) => {
            await c.close();
            return new Error(`${name} was accepted`);
          },
          (e: unknown) => e,
        );
        expect(error, name).toBeInstanceOf(HandshakeError);
        expect((error as HandshakeError).status, name).toBe(404);
      }
      const ok = await connect(ws('/download/present.txt'));
      expect(Buffer.from((await ok.nextMessage({ timeout: WAIT })) as Buffer).toString()).toBe('here');
      await expect(ok.closed).resolves.toMatchObject({ code: 1000 });
    } finally {
      await rm(outside, { force: true });
    }
  });
});
