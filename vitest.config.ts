import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Examples and demos import 'wsmount' as users do; in tests that means the source, never a stale dist/.
  resolve: {
    alias: [
      { find: /^wsmount\/ws$/, replacement: fileURLToPath(new URL('./src/compat/index.ts', import.meta.url)) },
      { find: /^wsmount\/testing$/, replacement: fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)) },
      { find: /^wsmount$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    // Node 20's built-in WebSocket (undici) is behind a flag.
    execArgv: ['--experimental-websocket'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
    // Two projects, named after the transport the WebSockets arrive on, so that vitest's output
    // (`|http1| …`, `|h2c| …`) says which one a failure is on:
    // - http1: the whole suite, exactly as before projects (every WebSocket test not about HTTP/2
    //   runs over HTTP/1.1 upgrades);
    // - h2c: the Autobahn-style conformance suite once more, over RFC 8441 extended CONNECT
    //   streams on a cleartext HTTP/2 server (test/conformance/harness.ts reads
    //   CONFORMANCE_TRANSPORT). `npx vitest run --project h2c` runs it alone.
    projects: [
      { extends: true, test: { name: 'http1', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'h2c',
          include: ['test/conformance/**/*.test.ts'],
          env: { CONFORMANCE_TRANSPORT: 'h2' },
        },
      },
    ],
  },
});
