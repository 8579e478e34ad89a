// Heap per idle connection, broken down by object: for each target, a fresh server process (as
// in the memory scenario), a heap snapshot after forced GCs, N idle connections opened by the
// load generator, a second snapshot; the difference of the two, grouped by V8 node type and
// constructor name, divided by N. The objects a connection keeps alive show up as whole counts
// per connection (1.00 Socket, 1.00 IncomingMessage…), their bytes as V8's shallow sizes.
//
//   node bench/heap-breakdown.mjs                     # wsmount and ws, 1,000 connections
//   node bench/heap-breakdown.mjs --conns=5000 --targets=wsmount,ws,raw --top=30
//
// Run `npm run build` first (the wsmount target imports dist/). Snapshots are written to a
// temporary directory and removed. Output: one table per target, and bench/results/heap.json.

import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const option = (name, dflt) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const conns = Number(option('conns', '1000'));
const top = Number(option('top', '25'));
const TARGETS = {
  wsmount: { file: 'targets/wsmount.mjs', env: {} },
  ws: { file: 'targets/ws.mjs', env: { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' } },
  raw: { file: 'targets/raw.mjs', env: {}, raw: true },
};
const names = option('targets', 'wsmount,ws').split(',');

let nextId = 1;
function request(child, message, timeoutMs = 120_000) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${message.kind} timed out`)), timeoutMs);
    const onMessage = (m) => {
      if (m?.id !== id) return;
      clearTimeout(timer);
      child.removeListener('message', onMessage);
      if (m.ok) resolve(m.result);
      else reject(new Error(m.error));
    };
    child.on('message', onMessage);
    child.send({ ...message, id });
  });
}

function start(file, env, execArgv = []) {
  const child = fork(join(here, file), [], { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${file} exited (${code})`)));
    child.on('message', (m) => {
      if (m?.kind === 'ready') resolve({ child, port: m.port });
    });
  });
}

/** Self sizes and counts by "type constructor" of a .heapsnapshot file. */
function groups(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = f.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((k) => f.indexOf(k));
  const nodes = snap.nodes;
  const strings = snap.strings;
  const out = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    // Objects and closures by their constructor or function name; strings, arrays, code… by type.
    let key = type;
    if (type === 'object' || type === 'closure' || type === 'native') key = `${type} ${strings[nodes[i + iName]]}`;
    else if (type === 'hidden' || type === 'array' || type === 'object shape') key = `${type} ${strings[nodes[i + iName]]}`.slice(0, 60);
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + iSize];
    out.set(key, g);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'wsmount-heap-'));
const results = {};
const gen = await start('loadgen.mjs', {});
try {
  for (const name of names) {
    const t = TARGETS[name];
    const { child, port } = await start(t.file, t.env, ['--expose-gc']);
    try {
      const before = await request(child, { kind: 'heapSnapshot', file: join(dir, `${name}-before.heapsnapshot`) });
      await request(gen.child, { kind: 'hold', port, conns, raw: t.raw === true });
      const after = await request(child, { kind: 'heapSnapshot', file: join(dir, `${name}-after.heapsnapshot`) });
      await request(gen.child, { kind: 'release' });
      if (after.clients !== conns) throw new Error(`${name}: the server reports ${after.clients} connections, expected ${conns}`);
      const a = groups(before.file);
      const b = groups(after.file);
      const rows = [];
      let total = 0;
      for (const [key, g] of b) {
        const g0 = a.get(key) ?? { count: 0, bytes: 0 };
        const bytes = (g.bytes - g0.bytes) / conns;
        const count = (g.count - g0.count) / conns;
        total += bytes;
        if (Math.abs(bytes) >= 1 || Math.abs(count) >= 0.5) rows.push({ key, count, bytes });
      }
      rows.sort((x, y) => y.bytes - x.bytes);
      results[name] = { conns, totalBytesPerConn: total, rows };
    } finally {
      child.kill();
    }
  }
} finally {
  gen.child.kill();
  rmSync(dir, { recursive: true, force: true });
}

for (const [name, r] of Object.entries(results)) {
  console.log(`\n## ${name}: heap per idle connection at ${conns} connections, by object (snapshot after − before, ÷ N): ${r.totalBytesPerConn.toFixed(0)} B\n`);
  console.log('| object (V8 type, constructor) | per connection | bytes per connection |');
  console.log('|:--|--:|--:|');
  for (const row of r.rows.slice(0, top)) console.log(`| ${row.key.replace(/\|/g, '\\|')} | ${row.count.toFixed(2)} | ${row.bytes.toFixed(0)} |`);
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'heap.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, conns, results }, null, 2));
console.log('\nwrote bench/results/heap.json');
