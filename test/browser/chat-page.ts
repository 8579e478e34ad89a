/**
 * Reading the demos' chat page (demo/public/chat.html and demo/cluster/public/room.html share its
 * log's markup) in headless Chromium, with bounded waits.
 */
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

/** How long a test polls what a page shows, and how often. */
export const WAIT = { timeout: 10_000, interval: 50 };

/** The chat's log, one line per entry: a message as "name: text", any other line as its text. */
export function chatOf(page: Page): Promise<string[]> {
  return page.locator('#chat-log > *').evaluateAll((lines) =>
    lines.map((line) =>
      line.classList.contains('msg')
        ? `${line.querySelector('.who')?.textContent}: ${line.querySelector('.text')?.textContent}`
        : (line.textContent ?? ''),
    ),
  );
}

/** Waits (bounded by WAIT) until the chat shows `line`, or a line matching it. */
export async function waitForChat(page: Page, line: string | RegExp): Promise<void> {
  if (typeof line === 'string') await expect.poll(() => chatOf(page), WAIT).toContain(line);
  else await expect.poll(async () => (await chatOf(page)).some((l) => line.test(l)), WAIT).toBe(true);
}
