// What every target process shares: listen on 127.0.0.1, tell run.mjs its port and pid over IPC,
// answer memory queries (after forced GCs: run with --expose-gc), and exit with its parent.

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * node:http's CommonJS exports, as a CommonJS app has them, for every target: on Node 22.5 and
 * later an ES module import of node:http loads undici (its lazy WebSocket export), heap objects
 * that every full garbage collection of the target then marks (README, "What a server process
 * loads"). That would be the harness's cost, not the server's.
 */
export const http = process.getBuiltinModule('node:http');

/**
 * @param {import('node:net').Server} server an http.Server or net.Server, not yet listening
 * @param {object} info what the target wants reported (library, version, native addons…)
 * @param {() => number} clients the number of open WebSocket (or TCP) connections
 * @param {() => object} [extra] more figures for the memory reply (the fan-out targets' subscriptions)
 */
export function serve(server, info, clients, extra) {
  if (typeof process.send !== 'function') {
    console.error('targets are started by bench/run.mjs (they need an IPC channel)');
    process.exit(2);
  }
  if (typeof globalThis.gc !== 'function') {
    console.error('targets must run with --expose-gc');
    process.exit(2);
  }
  process.on('message', async (m) => {
    if (m?.kind === 'count') {
      // The same figures without forcing GCs (polled while subscriptions are being made).
      process.send({ id: m.id, ok: true, result: { clients: clients(), ...extra?.() } });
      return;
    }
    if (m?.kind === 'heapSnapshot') {
      // A heap snapshot after forced GCs, for bench/heap-breakdown.mjs (objects by constructor).
      for (let i = 0; i < 4; i++) {
        globalThis.gc();
        await sleep(25);
      }
      const { writeHeapSnapshot } = await import('node:v8');
      process.send({ id: m.id, ok: true, result: { file: writeHeapSnapshot(m.file), clients: clients() } });
      return;
    }
    if (m?.kind !== 'mem') return;
    for (let i = 0; i < 4; i++) {
      globalThis.gc();
      await sleep(25);
    }
    const u = process.memoryUsage();
    process.send({
      id: m.id,
      ok: true,
      result: {
        rss: u.rss,
        heapUsed: u.heapUsed,
        heapTotal: u.heapTotal,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
        clients: clients(),
        ...extra?.(),
      },
    });
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    process.send({ kind: 'ready', port: server.address().port, pid: process.pid, info });
  });
}

/** Every WebSocket target accepts messages up to this size (a 1 MiB scenario runs). */
export const MAX_PAYLOAD = 64 << 20;
