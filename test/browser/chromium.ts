/**
 * Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core
 * (never a downloaded browser). `hasChromium` lets a suite run only where it is installed;
 * in CI it must be (see requireInCi).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

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
 * SCREENSHOTS=1, else a temporary folder, so an ordinary test run leaves the tree untouched.
 */
export const screenshotDir: string = process.env['SCREENSHOTS'] === '1'
  ? fileURLToPath(new URL('../../demo/screenshots/', import.meta.url))
  : mkdtempSync(join(tmpdir(), 'wsmount-screenshots-'));
