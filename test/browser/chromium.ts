/**
 * Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core
 * (never a downloaded browser). `hasChromium` lets a suite run only where it is installed;
 * in CI it must be (see requireInCi).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium: boolean = existsSync(CHROMIUM);

/**
 * Launches headless Chromium (Playwright gives it a fresh temporary profile). `extraArgs` add
 * flags (`--ignore-certificate-errors` for a self-signed test certificate).
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<{ browser: Browser; close(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...extraArgs,
    ],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}

/** A message for suites skipped because Chromium is missing (outside CI only). */
export const MISSING_CHROMIUM = 'browser tests need Debian chromium: apt-get install -y chromium';

/**
 * Where browser tests write screenshots: demo/screenshots/ (the README's pictures) when run with
 * SCREENSHOTS=1, else a temporary folder, removed once the test file has run, so an ordinary test run
 * leaves nothing behind, in the tree or in the temporary directory.
 */
export const screenshotDir: string = process.env['SCREENSHOTS'] === '1'
  ? fileURLToPath(new URL('../../demo/screenshots/', import.meta.url))
  : temporaryScreenshotDir();

function temporaryScreenshotDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsmount-screenshots-'));
  // Each test file imports this module afresh (vitest isolates files) and its worker is stopped
  // without an 'exit' event: the folder goes when the file that made it has run.
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
