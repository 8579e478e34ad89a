import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Messages per compression case (Autobahn sections 12–13) in the h2c project: AUTOBAHN_MESSAGES_H2
 * if set, else AUTOBAHN_MESSAGES capped at 100. Those cases spend their time in zlib, whatever
 * carries the frames (measured here with 1000 messages: 676 s over HTTP/1.1, 672 s over h2c, all
 * passing), so the second transport runs the same 363 cases with 100 messages each (~80 s)
 * instead of doubling `npm test`. `AUTOBAHN_MESSAGES_H2=1000` runs Autobahn's full count over h2c.
 */
function h2cMessages(): string {
  const own = process.env.AUTOBAHN_MESSAGES_H2;
  if (own !== undefined && own.trim() !== '') return own;
  const all = process.env.AUTOBAHN_MESSAGES;
  if (all === undefined || all.trim() === '') return '100';
  const n = Number(all);
  // An invalid value goes through as it is, for compression.ts to refuse with its message.
  return Number.isInteger(n) && n > 100 ? '100' : all;
}

export default defineConfig({
  // Examples and demos import 'wsmount' as users do; in tests that means the source, never a stale dist/.
  resolve: {
    alias: [
      { find: /^wsmount\/ws$/, replacement: fileURLToPath(new URL('./src/compat/index.ts', import.meta.url)) },
      { find: /^wsmount\/dashboard$/, replacement: fileURLToPath(new URL('./src/dashboard/index.ts', import.meta.url)) },
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
    // - http1: the whole suite, exactly as before projects: the conformance cases over HTTP/1.1
    //   upgrades, and every other test as it is written (the tests of HTTP/2 itself among them);
    // - h2c: the Autobahn-style conformance suite once more, over RFC 8441 extended CONNECT
    //   streams on a cleartext HTTP/2 server (test/conformance/harness.ts reads
    //   CONFORMANCE_TRANSPORT), with fewer messages per compression case (h2cMessages above).
    //   `npx vitest run --project h2c` runs it alone.
    projects: [
      { extends: true, test: { name: 'http1', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'h2c',
          include: ['test/conformance/**/*.test.ts'],
          env: { CONFORMANCE_TRANSPORT: 'h2', AUTOBAHN_MESSAGES: h2cMessages() },
        },
      },
    ],
  },
});
