/**
 * Node's built-in modules as wsmount's runtime code takes them: their CommonJS exports, through
 * `process.getBuiltinModule()` (Node 20.16 and later), never an ESM `import` of a value (type
 * imports are erased and stay imports; so does `node:buffer`, whose ESM face costs nothing).
 *
 * The first ESM import of a built-in builds its ESM face, which reads every export once, lazy
 * ones included: on Node 22 and 24 `node:http`'s lazy `WebSocket` export loads undici, some
 * 30,000 heap objects. `node:http2` (16,000) and `node:cluster` (3,400), which most apps never
 * use, were loaded as eagerly. Every one of those objects is marked again by each full garbage
 * collection, and large messages make Node 24 run those back to back: without them the server's
 * CPU per 64 KiB echo fell by a fifth to two fifths (README, "What a server process loads").
 * Each module takes what it uses itself (`const zlib = process.getBuiltinModule('node:zlib')`),
 * so that `protocol/` and `handshake/` load `node:crypto` and nothing of `node:net` or `node:http`;
 * `node:http2` and `node:cluster` are taken from here, the first time a WebSocket over HTTP/2 or a
 * cluster backplane needs them.
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
