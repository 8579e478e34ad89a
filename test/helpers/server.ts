/**
 * Ephemeral wsmount servers for tests, built on the public `listen()` of wsmount/testing:
 * 127.0.0.1, port 0, closed without hanging however clients behave.
 */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { HandlerOptions, Routes, WebSocketHandler } from '../../src/index.js';
import { listen } from '../../src/testing/index.js';

export interface TestServer {
  /** The handler and the HTTP server it is attached to. */
  srv: { handler: WebSocketHandler; server: Server | HttpsServer };
  port: number;
  url(path?: string): string;
  close(): Promise<void>;
}

/** Starts a server for `routes` with short timeouts and quiet logs unless overridden. */
export async function startServer(routes: Routes, options: HandlerOptions = {}): Promise<TestServer> {
  const listening = await listen(routes, {
    handlerOptions: { logLevel: 'silent', closeTimeout: 2000, ...options },
    closeTimeout: 1000,
  });
  return {
    srv: { handler: listening.handler, server: listening.server },
    port: listening.port,
    url: (path = '/') => listening.url(path),
    close: () => listening.close(),
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 10 ms until it is true; throws after `timeout` ms. */
export async function waitFor(check: () => boolean, timeout = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
