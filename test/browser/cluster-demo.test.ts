/**
 * The cluster demo (demo/cluster/main.js, `npm run demo:cluster`) end to end: the launcher is run
 * as a user runs it, with its own redis-server (or node:cluster: BACKPLANE=cluster), two chat
 * pages are opened in headless Chromium on the two processes, and each must show its own process
 * and see what the other page says. Everything the launcher started must be gone after it stops,
 * and after one of its servers crashes. Every wait is bounded.
 *
 * The demo imports 'wsmount' as users do. Its processes are not under vitest's alias, so the
 * current src/ is compiled into a temporary directory and a module hook (NODE_OPTIONS=--import,
 * inherited by every process the launcher starts) points 'wsmount' there: never a stale dist/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, compileForChildren } from '../helpers/child.js';
import { WAIT, waitForChat } from './chat-page.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshotDir } from './chromium.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const MISSING_REDIS = 'the Redis variant of the cluster demo needs Debian redis-server: apt-get install -y redis-server';

const hasRedis = (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
  try {
    accessSync(join(dir, 'redis-server'), constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/**
 * Compiles src/ into a temporary directory and writes a module hook that resolves 'wsmount' to
 * it; returns the NODE_OPTIONS that load the hook.
 */
async function buildWsmount(): Promise<{ nodeOptions: string; remove(): Promise<void> }> {
  const { dir, out, remove } = await compileForChildren({ prefix: 'wsmount-cluster-demo-', include: ['src'], rootDir: 'src' });
  const index = pathToFileURL(join(out, 'index.js')).href;
  await writeFile(
    join(dir, 'hooks.mjs'),
    `export async function resolve(specifier, context, next) {
  return specifier === 'wsmount' ? { url: ${JSON.stringify(index)}, shortCircuit: true } : next(specifier, context);
}
`,
  );
  await writeFile(join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const nodeOptions = `${process.env['NODE_OPTIONS'] ?? ''} --import=${pathToFileURL(join(dir, 'register.mjs')).href}`.trim();
  return { nodeOptions, remove };
}

function waitForExit(child: ChildProcess, ms: number): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit in ${ms} ms`)), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

interface ClusterDemo {
  /** The launcher, `node demo/cluster/main.js`. */
  main: ChildProcess;
  /** Its two chat processes, as it printed them. */
  servers: { pid: number; url: string }[];
  /** Its redis-server, in the Redis variant. */
  redisPid: number | undefined;
  /** Everything the launcher printed, stdout and stderr. */
  output(): string;
  /** Every pid the launcher started or is. */
  pids(): number[];
}

/**
 * Runs the launcher and waits until it has printed both pages' URLs. On free ports (PORT=0), or on
 * the default 9011 and 9012 when `port` says so (for the README's picture).
 */
async function startClusterDemo(backplane: 'redis' | 'cluster', nodeOptions: string, port = '0'): Promise<ClusterDemo> {
  const main = spawn(process.execPath, [join(repo, 'demo', 'cluster', 'main.js')], {
    cwd: repo,
    env: { ...process.env, PORT: port, HOST: '127.0.0.1', BACKPLANE: backplane, NODE_OPTIONS: nodeOptions },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const output = (): string => text;
  main.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  main.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const servers = await new Promise<{ pid: number; url: string }[]>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`the cluster demo did not print its URLs in 20 s:\n${text}`)), 20_000);
    const check = (): void => {
      const found = [...text.matchAll(/^ {2}process (\d+): (http:\/\/\S+)$/gm)].map((m) => ({ pid: Number(m[1]), url: String(m[2]) }));
      if (found.length === 2) done(undefined, found);
    };
    const exited = (): void => done(new Error(`the cluster demo exited (${main.exitCode ?? main.signalCode}) before it was ready:\n${text}`));
    function done(error: Error | undefined, found: { pid: number; url: string }[] = []): void {
      clearTimeout(timer);
      main.stdout?.off('data', check);
      main.off('exit', exited);
      if (error) reject(error);
      else resolve(found);
    }
    main.stdout?.on('data', check);
    main.once('exit', exited);
  });
  const redis = /^redis-server pid (\d+) on /m.exec(text);
  const redisPid = redis ? Number(redis[1]) : undefined;
  return {
    main,
    servers,
    redisPid,
    output,
    pids: () => [main.pid ?? 0, ...servers.map((s) => s.pid), ...(redisPid === undefined ? [] : [redisPid])],
  };
}

/** Stops the launcher as Ctrl+C would (SIGINT to its pid) and returns its exit code; kills by pid whatever is left after 10 s. */
async function stopClusterDemo(demo: ClusterDemo | undefined): Promise<number | string | null> {
  if (demo === undefined) return null;
  demo.main.kill('SIGINT');
  try {
    return await waitForExit(demo.main, 10_000);
  } finally {
    for (const pid of demo.pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

// ---- what the page shows ----------------------------------------------------------------------

async function type(page: Page, text: string): Promise<void> {
  const input = page.locator('input[name=text]');
  await input.fill(text);
  await input.press('Enter');
}
/** What the page says about the process it is connected to. */
async function processOf(page: Page): Promise<{ pid: number; port: number; backplane: string }> {
  return {
    pid: Number(await page.locator('#pid').textContent()),
    port: Number(await page.locator('#port').textContent()),
    backplane: (await page.locator('#backplane').textContent()) ?? '',
  };
}

it('has Chromium where the browser tests must run', () => {
  if (hasChromium) return;
  if (process.env['CI']) expect.fail(MISSING_CHROMIUM);
  console.log(MISSING_CHROMIUM);
});

it('has redis-server for the Redis variant of the cluster demo (required in CI)', () => {
  if (hasRedis) return;
  if (process.env['CI']) expect.fail(MISSING_REDIS);
  console.log(MISSING_REDIS);
});

const variants = [
  { backplane: 'redis', shown: 'Redis', run: hasChromium && hasRedis },
  { backplane: 'cluster', shown: 'node:cluster', run: hasChromium },
] as const;

describe.runIf(hasChromium)('cluster demo in Chromium', () => {
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  let build: Awaited<ReturnType<typeof buildWsmount>>;

  beforeAll(async () => {
    [chromium, build] = await Promise.all([launchChromium(), buildWsmount()]);
    browser = chromium.browser;
  });
  afterAll(async () => {
    await chromium?.close();
    await build?.remove();
  });

  for (const { backplane, shown, run } of variants) {
    describe.runIf(run)(`over ${shown} (BACKPLANE=${backplane})`, () => {
      let demo: ClusterDemo | undefined;
      const pages: Page[] = [];
      /** Script errors and failed requests of every page: none by the end. */
      const problems: string[] = [];

      async function openRoom(url: string, name: string): Promise<Page> {
        const page = await browser.newPage({ viewport: { width: 720, height: 600 }, locale: 'en-US' });
        page.setDefaultTimeout(10_000);
        pages.push(page);
        page.on('pageerror', (e) => problems.push(`${url}: ${e.message}`));
        page.on('response', (res) => {
          if (res.status() >= 400) problems.push(`${url}: ${res.status()} for ${res.url()}`);
        });
        await page.goto(`${url}?name=${encodeURIComponent(name)}`);
        await expect.poll(() => page.locator('#state').textContent(), WAIT).toBe('open');
        await waitForChat(page, new RegExp(`^You joined as ${name} on process \\d+`));
        return page;
      }

      beforeAll(async () => {
        // The picture for the README shows the ports `npm run demo:cluster` uses.
        const port = backplane === 'redis' && process.env['SCREENSHOTS'] === '1' ? '9011' : '0';
        demo = await startClusterDemo(backplane, build.nodeOptions, port);
      });
      afterAll(async () => {
        await Promise.all(pages.splice(0).map((p) => p.close()));
        await stopClusterDemo(demo);
      });

      it('two pages on two processes: each shows its own process and sees what the other says', async () => {
        const [a, b] = demo?.servers ?? [];
        if (a === undefined || b === undefined) throw new Error('no servers');
        expect(a.pid).not.toBe(b.pid);
        expect(new URL(a.url).port).not.toBe(new URL(b.url).port);

        const alice = await openRoom(a.url, 'alice');
        const bob = await openRoom(b.url, 'bob');
        expect(await processOf(alice)).toEqual({ pid: a.pid, port: Number(new URL(a.url).port), backplane: shown });
        expect(await processOf(bob)).toEqual({ pid: b.pid, port: Number(new URL(b.url).port), backplane: shown });
        // Each page links to the other process's page of the same room.
        expect(await alice.locator('#peer').getAttribute('href')).toBe(b.url);
        expect(await bob.locator('#peer').getAttribute('href')).toBe(a.url);

        // Presence crosses too: alice hears that bob joined on the other process.
        await waitForChat(alice, `bob joined on process ${b.pid} :${new URL(b.url).port}`);

        await type(alice, 'hello from the first process');
        await waitForChat(bob, 'alice: hello from the first process');
        await waitForChat(alice, 'alice: hello from the first process');
        await type(bob, 'ça va? 😀 from the second');
        await waitForChat(alice, 'bob: ça va? 😀 from the second');
        await waitForChat(bob, 'bob: ça va? 😀 from the second');
        // Each message says which process its author is on, and is marked as one's own only there.
        expect(await bob.locator('#chat-log .msg').first().locator('.you').textContent()).toBe(`via process ${a.pid} :${new URL(a.url).port}`);
        expect(await alice.locator('#chat-log .msg.mine .text').allTextContents()).toEqual(['hello from the first process']);
        expect(await bob.locator('#chat-log .msg.mine .text').allTextContents()).toEqual(['ça va? 😀 from the second']);

        if (backplane === 'redis') {
          mkdirSync(screenshotDir, { recursive: true });
          await sideBySide(alice, bob, join(screenshotDir, 'cluster.png'));
        }

        // Leaving is announced on the other process.
        await bob.close();
        await waitForChat(alice, `bob left (process ${b.pid} :${new URL(b.url).port})`);
        expect(problems).toEqual([]);
      });

      it('Ctrl+C stops every process it started (servers, redis-server), by pid, and exits 0', async () => {
        if (demo === undefined) throw new Error('no demo');
        expect(demo.pids().every(alive)).toBe(true);
        expect(demo.redisPid === undefined).toBe(backplane === 'cluster');
        expect(await stopClusterDemo(demo)).toBe(0);
        expect(demo.pids().filter(alive)).toEqual([]);
        expect(demo.output()).toMatch(/stopped\n$/);
      });

      it('stops everything it started when one of its servers crashes, and exits 1', async () => {
        const crashing = await startClusterDemo(backplane, build.nodeOptions);
        try {
          const [victim] = crashing.servers;
          process.kill(victim?.pid ?? 0, 'SIGKILL');
          expect(await waitForExit(crashing.main, 10_000)).toBe(1);
          expect(crashing.output()).toContain(`(pid ${victim?.pid}) exited (SIGKILL): stopping the demo`);
          expect(crashing.pids().filter(alive)).toEqual([]);
        } finally {
          await stopClusterDemo(crashing);
        }
      });
    });
  }
});

/** Screenshots both pages and puts them side by side in one picture (with a third page). */
async function sideBySide(left: Page, right: Page, path: string): Promise<void> {
  const [l, r] = await Promise.all([left.screenshot(), right.screenshot()]);
  const page = await left.context().browser()?.newPage({ viewport: { width: 1460, height: 600 } });
  if (page === undefined) return;
  const img = (png: Buffer): string => `<img src="data:image/png;base64,${png.toString('base64')}" width="720" height="600">`;
  await page.setContent(`<body style="margin:0;display:flex;gap:20px;background:#c3c9d3">${img(l)}${img(r)}</body>`);
  await page.screenshot({ path });
  await page.close();
}

