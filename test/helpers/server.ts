/** Ephemeral wsmount servers for tests: 127.0.0.1, port 0, closed without hanging. */
import { type HandlerOptions, type Routes, type WebSocketServer, createWebSocketServer } from '../../src/index.js';

export interface TestServer {
  srv: WebSocketServer;
  port: number;
  url(path?: string): string;
  close(): Promise<void>;
}

/** Starts a standalone server with short timeouts and quiet logs unless overridden. */
export async function startServer(routes: Routes, options: HandlerOptions = {}): Promise<TestServer> {
  const srv = createWebSocketServer(routes, { logLevel: 'silent', closeTimeout: 2000, ...options });
  const port = await srv.listen();
  return {
    srv,
    port,
    url: (path = '/') => srv.url(path),
    close: () => srv.close({ timeout: 1000 }),
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
