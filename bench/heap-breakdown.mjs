// Heap per idle connection, broken down by object: for each target, a fresh server process (as
// in the memory scenario), a heap snapshot after forced GCs, N idle connections opened by the
// load generator, a second snapshot; the difference of the two, grouped by V8 node type and
// constructor name, divided by N. The objects a connection keeps alive show up as whole counts
// per connection (1.00 Socket, 1.00 IncomingMessage…), their bytes as V8's shallow sizes.
//
//   node bench/heap-breakdown.mjs                     # wsmount and ws, 1,000 connections
//   node bench/heap-breakdown.mjs --conns=5000 --targets=wsmount,ws,http,raw --top=30
//   node bench/heap-breakdown.mjs --headers=browser     # upgrade requests with Chrome's headers
//   node bench/heap-breakdown.mjs --active              # each connection echoed one message and a ping first
//   node bench/heap-breakdown.mjs --targets=wsmount --retainers=Object,Array,'hidden system / PropertyArray'
//     (who holds the new objects of those kinds: "holder .edge", per connection)
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
  // Node's HTTP server answering the upgrade and keeping the socket, nothing more: the floor under
  // ws and wsmount (targets/http-upgrade.mjs).
  http: { file: 'targets/http-upgrade.mjs', env: {}, raw: true },
};
const names = option('targets', 'wsmount,ws').split(',');
// --headers=browser: the upgrade requests carry what Chrome sends (lib/wsclient.mjs BROWSER_HEADERS).
const browserHeaders = option('headers', 'minimal') === 'browser';
// --active: each connection sends one text message and a ping, and gets the echo and the pong,
// before the second snapshot: idle after traffic, as most connections of a real app are.
const active = process.argv.includes('--active');

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
    else if (type === 'hidden' || type === 'array' || type === 'object shape' || type === 'code') key = `${type} ${strings[nodes[i + iName]]}`.slice(0, 60);
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + iSize];
    out.set(key, g);
  }
  return out;
}

/**
 * `--retainers=Object,Array`: for the objects of those keys that are new in `after` (ids not in
 * `before`), who holds them: "holder's key .edge name", counted per connection.
 */
const retainerKeys = option('retainers', '').split(',').filter((k) => k !== '');
function retainers(beforeFile, afterFile) {
  const load = (file) => JSON.parse(readFileSync(file, 'utf8'));
  const a = load(beforeFile);
  const b = load(afterFile);
  const f = b.snapshot.meta.node_fields;
  const w = f.length;
  const ef = b.snapshot.meta.edge_fields;
  const ew = ef.length;
  const types = b.snapshot.meta.node_types[0];
  const etypes = b.snapshot.meta.edge_types[0];
  const [iType, iName, iId, iEdges] = ['type', 'name', 'id', 'edge_count'].map((k) => f.indexOf(k));
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((k) => ef.indexOf(k));
  const oldIds = new Set();
  for (let i = 0; i < a.nodes.length; i += w) oldIds.add(a.nodes[i + iId]);
  const keyOf = (i) => {
    const type = types[b.nodes[i + iType]];
    const name = b.strings[b.nodes[i + iName]];
    return type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array' ? `${type} ${name}`.slice(0, 60) : type;
  };
  const wanted = new Set(retainerKeys.map((k) => (k.includes(' ') ? k : `object ${k}`)));
  const out = new Map();
  let e = 0;
  for (let i = 0; i < b.nodes.length; i += w) {
    const holder = keyOf(i);
    const n = b.nodes[i + iEdges];
    for (let k = 0; k < n; k++, e += ew) {
      const et = etypes[b.edges[e + eType]];
      if (et === 'weak' || et === 'shortcut') continue;
      const to = b.edges[e + eTo];
      const toKey = keyOf(to);
      if (!wanted.has(toKey) || oldIds.has(b.nodes[to + iId])) continue;
      const name = et === 'element' || et === 'hidden' ? `[${et}]` : String(b.strings[b.edges[e + eName]]);
      const key = `${toKey} <- ${holder} .${name}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return [...out].sort((x, y) => y[1] - x[1]).filter(([, c]) => c / conns >= 0.5);
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
      await request(gen.child, { kind: 'hold', port, conns, raw: t.raw === true, browserHeaders });
      if (active) await request(gen.child, { kind: 'touch' });
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
      if (retainerKeys.length > 0) results[name].retainers = retainers(before.file, after.file).map(([key, count]) => ({ key, perConnection: count / conns }));
    } finally {
      child.kill();
    }
  }
} finally {
  gen.child.kill();
  rmSync(dir, { recursive: true, force: true });
}

for (const [name, r] of Object.entries(results)) {
  console.log(`\n## ${name}: heap per idle connection at ${conns} connections${browserHeaders ? " (Chrome's request headers)" : ''}${active ? ' (after one message and one ping each way)' : ''}, by object (snapshot after − before, ÷ N): ${r.totalBytesPerConn.toFixed(0)} B\n`);
  console.log('| object (V8 type, constructor) | per connection | bytes per connection |');
  console.log('|:--|--:|--:|');
  for (const row of r.rows.slice(0, top)) console.log(`| ${row.key.replace(/\|/g, '\\|')} | ${row.count.toFixed(2)} | ${row.bytes.toFixed(0)} |`);
  if (r.retainers) {
    console.log(`\nnew objects held per connection (${retainerKeys.join(', ')}): holder .edge`);
    for (const x of r.retainers.slice(0, 40)) console.log(`  ${x.perConnection.toFixed(2)}  ${x.key}`);
  }
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'heap.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, conns, active, browserHeaders, results }, null, 2));
console.log('\nwrote bench/results/heap.json');
