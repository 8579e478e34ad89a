// Process helpers: CPU time of another process from /proc, spawning pinned children, cleanup.

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`, almost always 100). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of `pid`, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Machine-wide ticks from the first line of /proc/stat: `busy` = user + nice + system (process
 * time, without irq/softirq, which our own loopback traffic causes), and `steal` (the hypervisor).
 */
export function systemTicks() {
  const line = readFileSync('/proc/stat', 'latin1').slice(0, 256).split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2], steal: f[7] ?? 0 };
}

/** CPU seconds of `pid` so far. */
export function cpuSeconds(pid) {
  return cpuTicks(pid) / CLK_TCK;
}

export function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1].trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

const children = new Set();

/** Pids of this process and every child still running (for telling our CPU use from others'). */
export function ourPids() {
  const pids = [process.pid];
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) pids.push(c.pid);
  return pids;
}

function ticksOf(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuTicks(pid);
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

/**
 * CPU used by other processes plus hypervisor steal, in % of one core, over `ms` milliseconds
 * (a shared machine: someone's test run, other tenants).
 */
export async function foreignLoad(ms = 250) {
  const pids = ourPids();
  const a = systemTicks();
  const ao = ticksOf(pids);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = systemTicks();
  const bo = ticksOf(pids);
  const foreign = Math.max(0, b.busy - a.busy - (bo - ao)) + (b.steal - a.steal);
  return (100 * foreign) / CLK_TCK / (ms / 1000);
}

/**
 * Spawns `node <args>` pinned to `cpu` (taskset) with the open-files limit raised to the hard
 * limit, with an IPC channel (`node`: another Node binary than this one). bash and taskset both `exec`, so the child's pid is node's pid.
 */
export function spawnPinned(cpu, nodeArgs, { env = {}, taskset = true, node = process.execPath } = {}) {
  const script = `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${taskset ? `taskset -c ${cpu} ` : ''}"$0" "$@"`;
  const child = spawn('bash', ['-c', script, node, ...nodeArgs], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Spawns a program that is not node (redis-server) pinned to `cpu`, without IPC; it is killed
 * with the others on exit. `exec` again keeps the child's pid the program's own.
 */
export function spawnPinnedCommand(cpu, command, args, { taskset = true } = {}) {
  const script = `exec ${taskset ? `taskset -c ${cpu} ` : ''}"$0" "$@"`;
  const child = spawn('bash', ['-c', script, command, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kills one child we spawned (SIGTERM, then SIGKILL after `graceMs`); resolves when it exited. */
export function killChild(child, graceMs = 2000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Synchronous last-resort cleanup (process 'exit'): SIGKILL every child still running. */
export function killAllChildrenSync() {
  for (const child of children) {
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Sends a request over a child's IPC channel and waits for the reply with the same id. */
let nextRequest = 1;
export function request(child, message, timeoutMs) {
  return new Promise((resolve, reject) => {
    const id = nextRequest++;
    const onMessage = (reply) => {
      if (reply === null || typeof reply !== 'object' || reply.id !== id) return;
      cleanup();
      if (reply.ok) resolve(reply.result);
      else reject(new Error(reply.error));
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`process exited (${signal ?? code}) while handling ${message.kind}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${message.kind} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.removeListener('message', onMessage);
      child.removeListener('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ ...message, id });
  });
}
