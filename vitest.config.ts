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
    include: ['test/**/*.test.ts'],
    // Node 20's built-in WebSocket (undici) is behind a flag.
    execArgv: ['--experimental-websocket'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
