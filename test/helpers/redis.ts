/**
 * A real `redis-server` for tests (never a mock): on a free loopback port, with no persistence,
 * stopped by PID. It can be killed (SIGKILL, as a crash) and started again on the same port, for
 * the backplane's fault tests.
 *
 * `useRedis()` at the top level of a test file starts one before the file's tests and always
 * stops it after them, failures included.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, beforeEach } from 'vitest';

/** Whether `redis-server` runs here (Debian: apt-get install -y redis-server). */
export const hasRedis: boolean = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
const REDIS_MISSING = 'redis-server is not installed (apt-get install -y redis-server)';

/** A redis-server child process on 127.0.0.1. */
export interface RedisServer {
  /** Its port (the same across restarts). */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The PID of the running server, or undefined while it is down. */
  readonly pid: number | undefined;
  /** Kills the server with SIGKILL (a crash: no goodbye to clients) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after a second) and waits until it is gone. */
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

/** One PING over a fresh TCP connection: resolves true on +PONG, false on anything else. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every server started by this process, killed if the process exits with them still running. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function spawnServer(port: number): { child: ChildProcess; exited: Promise<void>; output: () => string } {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  running.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      keep(Buffer.from(String(error)));
      running.delete(child);
      resolve();
    });
  });
  return { child, exited, output: () => output };
}

/** Starts redis-server on a free port (tries a few ports if one is taken meanwhile). */
export async function startRedis(): Promise<RedisServer> {
  let port = 0;
  let current: ReturnType<typeof spawnServer> | null = null;

  const launch = async (): Promise<boolean> => {
    const s = spawnServer(port);
    current = s;
    let gone = false;
    void s.exited.then(() => {
      gone = true;
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (gone) return false;
      if (await ping(port)) return true;
      await sleep(20);
    }
    s.child.kill('SIGKILL');
    await s.exited;
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${s.output()}`);
  };

  let lastOutput = '';
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    if (await launch()) break;
    lastOutput = (current as ReturnType<typeof spawnServer> | null)?.output() ?? '';
    if (attempt === 4) throw new Error(`redis-server did not start (is it installed? apt-get install redis-server): ${lastOutput}`);
  }

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const s = current;
    if (s === null) return;
    current = null;
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const pid = s.child.pid;
      if (pid !== undefined) process.kill(pid, signal);
      const force = setTimeout(() => {
        if (pid !== undefined && s.child.exitCode === null && s.child.signalCode === null) process.kill(pid, 'SIGKILL');
      }, 1000);
      await s.exited;
      clearTimeout(force);
    }
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return (current as ReturnType<typeof spawnServer> | null)?.child.pid;
    },
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    async start() {
      if (current !== null) throw new Error('redis-server is already running');
      // The port was ours a moment ago; a restart that loses it to another process fails loudly.
      if (!(await launch())) throw new Error(`redis-server could not start again on port ${port}: ${(current as ReturnType<typeof spawnServer> | null)?.output() ?? ''}`);
    },
  };
}

/**
 * Starts a redis-server before this file's tests and stops it after them (even when they fail).
 * Read the server from the returned getter inside tests and hooks.
 */
export function useRedis(): () => RedisServer {
  let server: RedisServer | null = null;
  if (!hasRedis) {
    // Like the Python and Chromium suites: left out with a note outside CI, a failure in CI.
    beforeEach((ctx) => {
      if (process.env.CI !== undefined && process.env.CI !== '') throw new Error(`${REDIS_MISSING}. CI must install it (see .ci/run).`);
      console.warn(`[redis] test not run: ${REDIS_MISSING}.`);
      ctx.skip();
    });
    return () => {
      throw new Error(REDIS_MISSING);
    };
  }
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
    server = null;
  });
  return () => {
    if (server === null) throw new Error('the Redis fixture is not running (useRedis() at the top level of the file)');
    return server;
  };
}
