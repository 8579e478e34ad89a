/**
 * The RSS bound the large-transfer tests assert (issue 15: "server RSS growth under 64 MiB" for a
 * gigabyte each way), with the runtime's own floor taken into account. Moving a gigabyte through a
 * plain TCP socket, with no WebSocket work at all, grows a Node 20 or 22 process by ~40 MiB but a
 * Node 24 one by ~100 MiB (measured here: V8 there collects the garbage of socket reads later).
 * No library can go under that, so where the floor passes 64 MiB the bound is the floor measured
 * now, on this runtime, plus a margin: the library must add no more than that margin.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
/** The bound. */
export const RSS_GOAL = 64 * MiB;
/** What a library may add over Node's own floor where the floor alone passes the goal. */
export const RSS_MARGIN = 16 * MiB;

const script = fileURLToPath(new URL('./fixtures/raw-rss.mjs', import.meta.url));
const floors = new Map<string, Promise<number>>();

/** Node's RSS growth (bytes) for moving `bytes` in (`'in'`: read and dropped) or out through raw TCP, in a fresh child. */
export function rawTcpRssGrowth(direction: 'in' | 'out', bytes: number): Promise<number> {
  const key = `${direction}:${bytes}`;
  let floor = floors.get(key);
  if (floor === undefined) {
    floor = new Promise<number>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', script, direction, String(bytes)], { timeout: 120_000 }, (error, stdout) => {
        if (error !== null) {
          reject(error);
          return;
        }
        const r = JSON.parse(stdout.trim()) as { growth: number; moved: number };
        if (r.moved !== bytes) reject(new Error(`raw TCP moved ${r.moved} of ${bytes} bytes`));
        else resolve(r.growth);
      });
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
