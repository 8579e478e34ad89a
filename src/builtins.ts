/**
 * Node's built-in modules as wsmount's runtime code takes them: each module gets what it uses
 * with `process.getBuiltinModule()` (Node 20.16 and later), which returns the CommonJS exports,
 * rather than with an ES module `import` (`node:buffer` excepted, whose import costs nothing;
 * `import type` is erased and stays as it is).
 *
 * The first ES module import of a built-in reads every one of its exports, lazy ones included. On
 * Node 22.5 and later, `node:http`'s lazy `WebSocket` export then loads undici (alone, about
 * 30,000 heap objects), and wsmount loaded `node:http2` in every process too. Each full garbage
 * collection marks every heap object again, and large messages make Node 24 run those back to
 * back: for an app that loads no undici itself, the server's CPU per 64 KiB message fell by a
 * fifth to two fifths without them (README, "What a server process loads").
 *
 * `protocol/` and `handshake/` take `node:crypto` and nothing of `node:net` or `node:http`.
 * `node:http2` is taken from here the first time a WebSocket comes over HTTP/2, `node:cluster`
 * when a cluster backplane is made (Node's `server.listen()` loads it anyway).
 */
import type { Cluster } from 'node:cluster';

let http2Module: typeof import('node:http2') | undefined;
/** `node:http2`, loaded on first use (a server that serves HTTP/2 has loaded it already). */
export function http2(): typeof import('node:http2') {
  return (http2Module ??= process.getBuiltinModule('node:http2'));
}

let clusterModule: Cluster | undefined;
/**
 * `node:cluster`, loaded on first use. Its CommonJS exports are the `Cluster` object itself (the
 * typings describe only its ESM default export, hence the cast).
 */
export function cluster(): Cluster {
  return (clusterModule ??= process.getBuiltinModule('node:cluster') as unknown as Cluster);
}

/** `process.hrtime()` when this module was loaded: the origin of {@link monotonicMs}. */
const clockOrigin = process.hrtime();

/**
 * Milliseconds on the monotonic clock since wsmount was loaded, for heartbeats, idle timeouts,
 * rate limits and round trips. Not `performance.now()`: the global `performance` is lazy, and its
 * first use loads `perf_hooks` and eight internal modules, about 116 KB of heap on Node 24 and
 * 70 KB on Node 20, which a server paid at its first connection. `process.hrtime()` loads nothing.
 * Process-relative like `performance.now()`, so whole milliseconds stay small integers.
 */
export function monotonicMs(): number {
  const t = process.hrtime(clockOrigin);
  return t[0] * 1e3 + t[1] / 1e6;
}
