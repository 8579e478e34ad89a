/** Shared by the demo/ws tests (graphql-ws, tRPC, Yjs): start a demo, and stop every one started. */
import type { Server } from 'node:http';
import { within } from '../helpers/fixture.js';

/** What each demo/ws/<name>.js `start()` returns, at the least. */
export interface WsDemo {
  server: Server;
  url: string;
  close(): Promise<void>;
}

const running: WsDemo[] = [];

/**
 * Starts demo/ws/<name>.js on a free loopback port (imported by a non-literal specifier: the demo
 * is plain JS that imports 'wsmount' and 'wsmount/ws' as users do). `ws` is its ws:// base URL.
 */
export async function startWsDemo<App extends WsDemo>(name: string): Promise<App & { ws: string }> {
  const url: string = new URL(`../../demo/ws/${name}.js`, import.meta.url).href;
  const { start } = (await import(url)) as { start(port?: number, host?: string): Promise<App> };
  const app = await within(start(0, '127.0.0.1'), 15_000, `starting demo/ws/${name}.js`);
  running.push(app);
  return Object.assign(app, { ws: app.url.replace(/^http/, 'ws') });
}

/** For afterEach: closes every demo started, within 3 s each (else drops their connections). */
export async function stopWsDemos(): Promise<void> {
  for (const app of running.splice(0)) {
    await within(app.close(), 3000, 'teardown').catch(() => app.server.closeAllConnections());
  }
}
