/**
 * What importing wsmount loads of Node itself (src/builtins.ts): no ES module face of a built-in,
 * so no undici behind `node:http`'s lazy `WebSocket` export (Node 22.5 and later), and no
 * `node:http2` until a WebSocket comes over HTTP/2. Each is thousands of heap objects that every
 * full garbage collection marks again.
 *
 * A child process imports a fresh build of src/ and reports `process.moduleLoadList`, the list of
 * Node's internal modules it has loaded (the list Node's own tests read). The same child importing
 * `node:http2` (and, on Node 22.5 and later, `node:http` as an ES module) shows that the check sees
 * what it looks for.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { builtinModules } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Compiled, compileForChildren, repo } from '../helpers/child.js';

let build: Compiled;

beforeAll(async () => {
  build = await compileForChildren({ prefix: 'wsmount-builtins-', include: ['src'], mustEmit: join('src', 'index.js') });
}, 120_000);

afterAll(async () => {
  await build?.remove();
});

/**
 * Node's internal modules loaded after the start of `code`, run in a fresh ES module child (its
 * own list, not the startup's): one list per line the child writes, the last when `code` is done.
 */
function loadedBy(code: string): Promise<string[][]> {
  const script = `const before = new Set(process.moduleLoadList);\n${code}\nprocess.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`the child failed: ${error.message}\n${stderr}`));
      else resolve(stdout.trim().split('\n').map((line) => JSON.parse(line) as string[]));
    });
  });
}

/** Node's built-in module names, without `node:` (`fs`, `fs/promises`…). */
const NODE_BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));

const heavy = (loaded: string[]): string[] => loaded.filter((m) => /undici|http2|cluster|perf_hooks/.test(m));
const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number);
/** `http.WebSocket`, the export whose getter loads undici, came in Node 22.5. */
const httpHasWebSocket = nodeMajor > 22 || (nodeMajor === 22 && nodeMinor >= 5);

describe('the Node built-ins a server process loads with wsmount', () => {
  it('importing wsmount loads no undici, node:http2, node:cluster or perf_hooks, and serving a WebSocket (heartbeat and rate limit on) no undici, node:http2 or perf_hooks', async () => {
    const index = pathToFileURL(join(build.out, 'src', 'index.js')).href;
    // The whole path a WebSocket takes: the standalone server (node:http), a handshake, a message each way.
    const loaded = await loadedBy(`
      const { Behavior, createWebSocketServer } = await import(${JSON.stringify(index)});
      // What the import alone loaded (listen() loads node:cluster: Node's net.Server does, for every server).
      process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))) + '\\n');
      class Echo extends Behavior { onText(t) { this.sendText(t); } }
      // A heartbeat sweep and a rate-limited message read the clock (builtins.ts monotonicMs, not performance.now()).
      const server = createWebSocketServer({ '/echo': Echo }, { port: 0, host: '127.0.0.1', pingInterval: 20, rateLimit: { messages: 100, interval: 1000 } });
      const port = await server.listen();
      const net = process.getBuiltinModule('node:net');
      const reply = await new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let got = Buffer.alloc(0);
        s.on('connect', () => s.write('GET /echo HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
        s.on('data', (d) => {
          got = Buffer.concat([got, d]);
          const end = got.indexOf('\\r\\n\\r\\n');
          if (end < 0) return;
          if (got.length === end + 4) { s.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])); return; }
          // The echo and the first heartbeat ping (opcode 9, so the sweep has run), in either order:
          // a loaded machine may run the sweep's timer before it reads the message.
          const frames = got.subarray(end + 4).toString('latin1');
          if (frames.includes('\\x81\\x02hi') && frames.includes('\\x89')) { resolve(frames); s.destroy(); }
        });
        s.on('error', reject);
      });
      if (!reply.includes('\\x81\\x02hi') || !reply.includes('\\x89')) throw new Error('no echo and ping: ' + JSON.stringify(reply));
      await server.close();
    `);
    const [atImport, atEnd] = loaded;
    expect(atImport?.length).toBeGreaterThan(0);
    expect(heavy(atImport ?? [])).toEqual([]);
    expect(heavy(atEnd ?? []).filter((m) => !/cluster/.test(m))).toEqual([]);
  }, 60_000);

  it('the check sees node:http2, perf_hooks (loaded by the first performance.now()), and on Node 22.5 and later the undici that an ESM import of node:http loads', async () => {
    const [loaded = []] = await loadedBy(`await import('node:http2'); await import('node:http'); performance.now();`);
    expect(loaded.some((m) => /\bhttp2\b/.test(m))).toBe(true);
    expect(loaded.some((m) => /perf_hooks/.test(m))).toBe(true);
    if (httpHasWebSocket) expect(loaded.some((m) => /undici/.test(m))).toBe(true);
  }, 60_000);

  it('no runtime source file imports a value from a Node built-in (process.getBuiltinModule takes them; node:buffer and type imports aside), and protocol/ and handshake/ take nothing of node:net, node:http or node:http2', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          // wsmount/testing is a test helper: it loads what its clients and servers need.
          if (relative(join(repo, 'src'), path) !== 'testing') walk(path);
        } else if (name.endsWith('.ts')) {
          const source = readFileSync(path, 'utf8');
          const layer = relative(join(repo, 'src'), path).split(/[\\/]/)[0];
          if ((layer === 'protocol' || layer === 'handshake') && /getBuiltinModule\('node:(net|https?|http2|tls)'\)|builtins\.js'/.test(source)) {
            offenders.push(`${relative(repo, path)}: takes a transport module (protocol/ and handshake/ do no I/O of their own)`);
          }
          // Static imports and re-exports, with or without names, either quote; dynamic imports (not
          // `typeof import('node:x')`, a type).
          for (const m of source.matchAll(/^(?:import|export)\s+(?!type\b)(?:([^;]*?)\s+from\s+)?['"](?:node:)?([\w/]+)['"];/gms)) {
            const [statement, names = '', module = ''] = m;
            if (!NODE_BUILTINS.has(module) || module === 'buffer') continue;
            // `import { type A, type B } from …` imports no value either.
            const list = names.replace(/^\{|\}$/g, '').split(',').map((n) => n.trim()).filter((n) => n !== '');
            if (names.startsWith('{') && list.every((n) => n.startsWith('type '))) continue;
            offenders.push(`${relative(repo, path)}: ${statement}`);
          }
          for (const m of source.matchAll(/(?<!typeof\s*)\bimport\s*\(\s*['"](node:[\w/]+)['"]/g)) offenders.push(`${relative(repo, path)}: import('${m[1]}')`);
        }
      }
    };
    walk(join(repo, 'src'));
    expect(offenders).toEqual([]);
  });
});
