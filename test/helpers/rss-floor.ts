/**
 * The RSS bound the large-transfer tests assert (issue 15: "server RSS growth under 64 MiB" for a
 * gigabyte each way), with the runtime's own floor taken into account. Moving a gigabyte through a
 * plain TCP socket, with no WebSocket work at all, grows a Node 20 or 22 process by ~40 MiB but a
 * Node 24 one by ~100 MiB (measured here: V8 there collects the garbage of socket reads later).
 * No library can go under that, so where the floor passes 64 MiB the bound is the floor measured
 * now, on this runtime, plus a margin: the library must add no more than that margin.
 */
import { fileURLToPath } from 'node:url';
import { runNode } from './run-node.js';

const MiB = 1024 * 1024;
/** The bound. */
export const RSS_GOAL = 64 * MiB;
/** What a library may add over Node's own floor where the floor alone passes the goal. */
export const RSS_MARGIN = 16 * MiB;

const script = fileURLToPath(new URL('./fixtures/raw-rss.mjs', import.meta.url));
const floors = new Map<string, Promise<number>>();

/**
 * Node's RSS growth (bytes) for moving `bytes` in (`'in'`: read and dropped) or out through raw TCP,
 * in a fresh child, run with {@link runNode}: the figure is taken when the child's 'exit' event has
 * been seen, not when the process ends (a Node 24 process can deadlock while exiting: see
 * fixtures/raw-rss.mjs).
 */
export function rawTcpRssGrowth(direction: 'in' | 'out', bytes: number): Promise<number> {
  const key = `${direction}:${bytes}`;
  let floor = floors.get(key);
  if (floor === undefined) {
    floor = runNode(['--expose-gc', script, direction, String(bytes)], { timeout: 120_000 }).then((run) => {
      if (run.code !== 0) throw new Error(`raw TCP RSS floor (${key}) exited with ${String(run.code ?? run.signal)}; stderr: ${run.stderr}`);
      const r = JSON.parse(run.stdout.trim()) as { growth: number; moved: number };
      if (r.moved !== bytes) throw new Error(`raw TCP moved ${r.moved} of ${bytes} bytes`);
      return r.growth;
    });
    floors.set(key, floor);
  }
  return floor;
}

/**
 * The bound for a transfer of `bytes` in `direction`: 64 MiB, or where this runtime's raw TCP
 * floor is above 64 MiB − margin, that floor plus {@link RSS_MARGIN}.
 */
export async function rssBound(direction: 'in' | 'out', bytes: number): Promise<{ bound: number; floor: number }> {
  const floor = await rawTcpRssGrowth(direction, bytes);
  return { bound: Math.max(RSS_GOAL, floor + RSS_MARGIN), floor };
}
