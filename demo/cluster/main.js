// The cluster demo: `npm run demo:cluster`. The chat of demo/cluster/server.js on two processes,
// one port each, so a page can pick its process; a message in a room reaches the room's members
// on both. Topics cross between the processes
//   - through Redis when `redis-server` is on PATH: this script starts its own on a free loopback
//     port (nothing saved to disk) and two server processes, each with redisBackplane(ioredis);
//   - else through node:cluster: two workers with clusterBackplane(), the primary relaying.
// BACKPLANE=redis or BACKPLANE=cluster picks one; PORT moves the ports (9011 and 9012; PORT=0
// picks two free ones); HOST the address (127.0.0.1).
//
// Ctrl+C stops what this script started, by pid: the two servers (SIGTERM: they close their
// sockets with 1001), then redis-server. If a server dies, the rest is stopped too; if this
// script dies, the servers see their IPC channel close and stop themselves.
import { fork, spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupClusterPrimary } from 'wsmount';

const serverScript = fileURLToPath(new URL('./server.js', import.meta.url));
const host = process.env.HOST ?? '127.0.0.1';
const base = Number(process.env.PORT ?? 9011);
const mode = process.env.BACKPLANE ?? (onPath('redis-server') ? 'redis' : 'cluster');
if (mode !== 'redis' && mode !== 'cluster') throw new Error(`BACKPLANE is redis or cluster, not ${mode}`);

/** What this script started, stopped newest first: { name, process }. */
const started = [];
let stopping = false;
// From the start: a Ctrl+C while redis-server is starting stops it too.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(0));
// Last resort (an exception in this script): nothing it started outlives it.
process.on('exit', () => {
  for (const { process: p } of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

try {
  const ports = base === 0 ? [await freePort(), await freePort()] : [base, base + 1];
  let redisUrl;
  if (mode === 'redis') {
    const redisPort = await freePort();
    const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      // Its own process group: the terminal's Ctrl+C does not stop it before the servers are done with it.
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    watch(`redis-server (pid ${redis.pid})`, redis);
    await outputLine(redis, 'Ready to accept connections');
    redisUrl = `redis://127.0.0.1:${redisPort}`;
    console.log(`redis-server pid ${redis.pid} on ${redisUrl}`);
  } else {
    setupClusterPrimary(); // before cluster.fork(): the workers' clusterBackplane() relays through here
    cluster.setupPrimary({ exec: serverScript });
  }

  const servers = ports.map((port, i) => {
    const env = { ...process.env, PORT: String(port), PEER_PORT: String(ports[1 - i]), HOST: host };
    // A cluster worker is a child process too: worker.process.
    const child = mode === 'redis' ? fork(serverScript, [], { env: { ...env, REDIS_URL: redisUrl } }) : cluster.fork(env).process;
    watch(`server on :${port} (pid ${child.pid})`, child);
    return child;
  });
  const ready = await Promise.all(servers.map((child) => message(child, 'ready')));
  console.log(`\nwsmount cluster demo: one chat on two processes, topics shared through ${mode === 'redis' ? 'Redis' : 'node:cluster'}`);
  for (const { pid, url } of ready) console.log(`  process ${pid}: ${url}`);
  console.log('Open one page on each and chat across them. Ctrl+C to stop.\n');
} catch (error) {
  if (!stopping) console.error(`cluster demo: ${error instanceof Error ? error.message : error}`);
  await stop(1);
}

/** Stops what was started, the newest first, each by pid: SIGTERM, then SIGKILL after 5 s. */
async function stop(code) {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  for (const { name, process: p } of started.reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGTERM');
    const timer = setTimeout(() => {
      console.error(`${name} did not stop in 5 s: killing it`);
      p.kill('SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  }
  console.log('stopped');
  process.exit(code);
}

/** Remembers a process we started; its exit before we stop means something broke: stop the rest. */
function watch(name, p) {
  started.push({ name, process: p });
  p.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`${name} exited (${signal ?? `code ${code}`}): stopping the demo`);
    stop(1);
  });
}

/** Resolves with the child's first IPC message of this type (rejects if it exits first, or after 15 s). */
function message(child, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} not ready after 15 s`)), 15_000);
    child.on('message', (m) => {
      if (m?.type !== type) return;
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', () => reject(new Error(`pid ${child.pid} exited before it was ready`)));
  });
}

/** Resolves once the process prints `text` on stdout (rejects if it exits first, or after 10 s). */
function outputLine(p, text) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`pid ${p.pid} did not print "${text}" in 10 s:\n${seen}`)), 10_000);
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk) => {
      if (seen.includes(text)) return; // already ready: the rest is read and dropped
      seen += chunk;
      if (!seen.includes(text)) return;
      clearTimeout(timer);
      resolve();
    });
    p.once('exit', () => reject(new Error(`pid ${p.pid} exited before it was ready:\n${seen}`)));
  });
}

/** A port that was free a moment ago on the loopback (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Whether an executable called `name` is in one of PATH's directories. */
function onPath(name) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
