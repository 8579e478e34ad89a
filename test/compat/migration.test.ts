/**
 * Moving a ws app to wsmount/ws. test/compat/fixtures/ws-app.js is a small chat written against
 * the `ws` package (noServer + handleUpgrade, broadcast over `wss.clients` with readyState checks,
 * JSON messages, binary echo, a leave announcement, the `isAlive` ping/pong keepalive, shutdown
 * through `wss.close()` and `ws.close(1001)`). wsmount-app.js is the same file with only its import
 * and mount lines changed, which the first test checks line by line.
 *
 * One set of tests runs, with real `ws` clients, against:
 * - ws-app.js on ws itself (the reference),
 * - wsmount-app.js (`createWebSocketHandler({ '/chat': wsRoute(wss) }).attach(server)`),
 * - ws-app.js with only its import line moved to 'wsmount/ws', so it keeps calling
 *   `wss.handleUpgrade(…)` (which wsmount/ws runs through a private handler). That copy is made
 *   from ws-app.js at run time, in a temporary directory.
 *
 * Real sockets on 127.0.0.1, port 0; every wait is bounded; every app is closed after each test.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WS, { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer as FaceServer } from '../../src/compat/index.js';
import { within } from '../helpers/fixture.js';
import { RawClient } from '../helpers/raw.js';

interface ChatApp {
  server: Server;
  /** ws's WebSocketServer, or wsmount/ws's: only what both have is used here. */
  wss: { clients: Set<unknown> };
  url: string;
  close(): Promise<void>;
}
interface ChatModule {
  start(options?: { port?: number; host?: string; heartbeatMs?: number }): Promise<ChatApp>;
}

type ChatMessage =
  | { type: 'joined'; name: string; from: string }
  | { type: 'said'; name: string; text: string }
  | { type: 'left'; name: string }
  | { type: 'error'; error: string };

const fixtures = new URL('./fixtures/', import.meta.url);
const WS_APP = fileURLToPath(new URL('ws-app.js', fixtures));
const WSMOUNT_APP = fileURLToPath(new URL('wsmount-app.js', fixtures));
const WS_IMPORT = "import { WebSocket, WebSocketServer } from 'ws';";

// ---- the claim: only the import and mount lines differ --------------------------------------------

interface Change {
  /** 'removed' from ws-app.js, 'added' in wsmount-app.js. */
  kind: 'removed' | 'added';
  /** 1-based line number in its own file. */
  line: number;
  text: string;
}

/** A line diff (longest common subsequence): the lines only in `a` and the lines only in `b`. */
function diffLines(a: readonly string[], b: readonly string[]): Change[] {
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const changes: Change[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      changes.push({ kind: 'removed', line: i + 1, text: a[i]! });
      i++;
    } else {
      changes.push({ kind: 'added', line: j + 1, text: b[j]! });
      j++;
    }
  }
  return changes;
}

/** The 1-based line numbers strictly between the `// ── mount ──` and `// ── end mount ──` markers. */
function mountBlock(lines: readonly string[]): Set<number> {
  const start = lines.findIndex((l) => l.trim() === '// ── mount ──');
  const end = lines.findIndex((l) => l.trim() === '// ── end mount ──');
  expect(start).toBeGreaterThan(-1);
  expect(end).toBeGreaterThan(start);
  return new Set(Array.from({ length: end - start - 1 }, (_, k) => start + k + 2));
}

describe('ws-app.js → wsmount-app.js', () => {
  it('differ only in their import lines and their mount lines', () => {
    const before = readFileSync(WS_APP, 'utf8').split('\n');
    const after = readFileSync(WSMOUNT_APP, 'utf8').split('\n');
    const changes = diffLines(before, after);
    const blockBefore = mountBlock(before);
    const blockAfter = mountBlock(after);

    // Every change is an import line, or inside the mount block of its file.
    for (const c of changes) {
      const inBlock = (c.kind === 'removed' ? blockBefore : blockAfter).has(c.line);
      expect(c.text.startsWith('import ') || inBlock, `${c.kind} line ${c.line} is neither an import nor a mount line: ${c.text}`).toBe(true);
    }
    // The imports: ws's line out, wsmount's in.
    expect(changes.filter((c) => c.text.startsWith('import '))).toEqual([
      { kind: 'removed', line: 10, text: WS_IMPORT },
      { kind: 'added', line: 10, text: "import { createWebSocketHandler } from 'wsmount';" },
      { kind: 'added', line: 11, text: "import { WebSocket, WebSocketServer, wsRoute } from 'wsmount/ws';" },
    ]);
    // The mount: the whole 'upgrade' block out, one line in.
    expect(changes.filter((c) => c.kind === 'removed' && !c.text.startsWith('import ')).map((c) => c.line)).toEqual([...blockBefore]);
    expect(before.filter((_, k) => blockBefore.has(k + 1)).join('\n')).toContain('wss.handleUpgrade(req, socket, head, (ws) => wss.emit(');
    expect(after.filter((_, k) => blockAfter.has(k + 1))).toEqual(["  createWebSocketHandler({ '/chat': wsRoute(wss) }).attach(server);"]);
  });
});

// ---- one set of tests, three apps -----------------------------------------------------------------

/** ws-app.js with only its import line on 'wsmount/ws', written to a temporary directory. */
let importOnlyDir: string | null = null;
function importOnlyApp(): string {
  const source = readFileSync(WS_APP, 'utf8');
  const swapped = source.replace(WS_IMPORT, "import { WebSocket, WebSocketServer } from 'wsmount/ws';");
  const changed = diffLines(source.split('\n'), swapped.split('\n'));
  expect(changed.map((c) => c.kind)).toEqual(['removed', 'added']);
  importOnlyDir ??= mkdtempSync(joinPath(tmpdir(), 'wsmount-migration-'));
  const path = joinPath(importOnlyDir, 'ws-app-import-only.js');
  writeFileSync(path, swapped);
  return path;
}
afterAll(() => {
  if (importOnlyDir !== null) rmSync(importOnlyDir, { recursive: true, force: true });
});

interface Variant {
  name: string;
  path: () => string;
  /** Which WebSocketServer the app ends up with: ws's, or wsmount/ws's. */
  server: typeof WsServer | typeof FaceServer;
  /** How the ws client fails on a path the app does not serve. */
  refusal: RegExp;
}

const variants: Variant[] = [
  { name: 'ws-app.js on the ws package', path: () => WS_APP, server: WsServer, refusal: /socket hang up/ },
  { name: 'wsmount-app.js (wsRoute on a wsmount handler)', path: () => WSMOUNT_APP, server: FaceServer, refusal: /Unexpected server response: 404/ },
  { name: "ws-app.js with its import on 'wsmount/ws' (wss.handleUpgrade)", path: importOnlyApp, server: FaceServer, refusal: /socket hang up/ },
];

const running: ChatApp[] = [];
const clients: WS[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const r of raws.splice(0)) r.destroy();
  for (const app of running.splice(0)) {
    await within(app.close(), 3000, 'teardown').catch(() => app.server.closeAllConnections());
  }
});

interface Received {
  data: Buffer;
  isBinary: boolean;
}

/** A real ws client: its messages queued, its pings counted, its close awaited. */
interface Client {
  ws: WS;
  pings: number;
  closed: Promise<{ code: number; reason: string }>;
  next(): Promise<Received>;
  nextJson(): Promise<ChatMessage>;
  /** Messages received and not read yet. */
  pending(): Received[];
  sendJson(message: unknown): void;
}

async function connect(url: string): Promise<Client> {
  const ws = new WS(url);
  clients.push(ws);
  const queue: Received[] = [];
  let wake: (() => void) | null = null;
  const client: Client = {
    ws,
    pings: 0,
    closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    async next() {
      while (queue.length === 0) await within(new Promise<void>((resolve) => (wake = resolve)), 5000, `a message on ${url}`);
      return queue.shift()!;
    },
    async nextJson() {
      const m = await client.next();
      expect(m.isBinary).toBe(false);
      return JSON.parse(m.data.toString()) as ChatMessage;
    },
    pending: () => queue.splice(0),
    sendJson: (message) => ws.send(JSON.stringify(message)),
  };
  ws.on('message', (data, isBinary) => {
    queue.push({ data: data as Buffer, isBinary });
    wake?.();
  });
  ws.on('ping', () => client.pings++);
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }),
    5000,
    `opening ${url}`,
  );
  return client;
}

/** Connects and joins as `name`; reads its own 'joined'. */
async function join(url: string, name: string): Promise<Client> {
  const c = await connect(url);
  c.sendJson({ type: 'join', name });
  expect(await c.nextJson()).toEqual({ type: 'joined', name, from: '127.0.0.1' });
  return c;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  let stop = false;
  const poll = async (): Promise<void> => {
    while (!stop && !check()) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await within(poll(), ms, what);
  } finally {
    stop = true;
  }
}

describe.each(variants)('$name', (variant) => {
  async function startApp(options: { heartbeatMs?: number } = {}): Promise<ChatApp & { port: number }> {
    const { start } = (await import(pathToFileURL(variant.path()).href)) as ChatModule;
    const app = await within(start({ port: 0, host: '127.0.0.1', ...options }), 10_000, 'starting the app');
    running.push(app);
    return Object.assign(app, { port: (app.server.address() as AddressInfo).port });
  }

  it('join and say: every open client gets the broadcast, as JSON text', async () => {
    const app = await startApp();
    // The app runs on the WebSocketServer this variant is about (ws's, or wsmount/ws's).
    expect(app.wss).toBeInstanceOf(variant.server);
    expect(app.wss).not.toBeInstanceOf(variant.server === WsServer ? FaceServer : WsServer);
    const ann = await join(`${app.url}/chat`, 'ann');
    const bob = await join(`${app.url}/chat`, 'bob');
    expect(await ann.nextJson()).toEqual({ type: 'joined', name: 'bob', from: '127.0.0.1' });
    expect(app.wss.clients.size).toBe(2);

    ann.sendJson({ type: 'say', text: 'hi bob' });
    for (const c of [ann, bob]) expect(await c.nextJson()).toEqual({ type: 'said', name: 'ann', text: 'hi bob' });
    bob.sendJson({ type: 'say', text: 'héllo ✓' });
    for (const c of [ann, bob]) expect(await c.nextJson()).toEqual({ type: 'said', name: 'bob', text: 'héllo ✓' });

    // Bad input gets an error to the sender only.
    bob.ws.send('not json');
    expect(await bob.nextJson()).toEqual({ type: 'error', error: 'not JSON' });
    bob.sendJson({ type: 'join', name: 'again' });
    expect(await bob.nextJson()).toEqual({ type: 'error', error: "unexpected 'join'" });
    // A message after those reaches both, so ann got nothing in between.
    ann.sendJson({ type: 'say', text: 'last' });
    for (const c of [ann, bob]) expect(await c.nextJson()).toEqual({ type: 'said', name: 'ann', text: 'last' });
    expect(ann.pending()).toEqual([]);
  });

  it('binary messages are echoed back as binary, byte for byte', async () => {
    const app = await startApp();
    const c = await connect(`${app.url}/chat`);
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, k) => (k * 37) & 0xff));
    c.ws.send(bytes);
    const echo = await c.next();
    expect(echo.isBinary).toBe(true);
    expect(Buffer.compare(echo.data, bytes)).toBe(0);
    c.ws.send(Buffer.alloc(0));
    const empty = await c.next();
    expect(empty.isBinary).toBe(true);
    expect(empty.data.length).toBe(0);
    // Binary that happens to be JSON is still binary: echoed, not parsed.
    c.ws.send(Buffer.from('{"type":"join","name":"x"}'), { binary: true });
    const json = await c.next();
    expect(json.isBinary).toBe(true);
    expect(json.data.toString()).toBe('{"type":"join","name":"x"}');
  });

  it('a client that leaves is announced to the others, and leaves wss.clients', async () => {
    const app = await startApp();
    const ann = await join(`${app.url}/chat`, 'ann');
    const bob = await join(`${app.url}/chat`, 'bob');
    expect(await ann.nextJson()).toEqual({ type: 'joined', name: 'bob', from: '127.0.0.1' });
    bob.ws.close(1000, 'bye');
    expect(await bob.closed).toEqual({ code: 1000, reason: 'bye' });
    expect(await ann.nextJson()).toEqual({ type: 'left', name: 'bob' });
    expect(app.wss.clients.size).toBe(1);
    // A client that never joined leaves without an announcement.
    const lurker = await connect(`${app.url}/chat`);
    lurker.ws.terminate();
    await lurker.closed;
    await until('the lurker to leave wss.clients', () => app.wss.clients.size === 1);
    ann.sendJson({ type: 'say', text: 'alone' });
    expect(await ann.nextJson()).toEqual({ type: 'said', name: 'ann', text: 'alone' });
  });

  it('an unknown path is refused, and plain HTTP still works', async () => {
    const app = await startApp();
    const ws = new WS(`${app.url}/nope`);
    clients.push(ws);
    const error = await within(
      new Promise<Error>((resolve, reject) => {
        ws.once('open', () => reject(new Error('opened a socket on /nope')));
        ws.once('error', resolve);
      }),
      5000,
      'the refusal of /nope',
    );
    expect(error.message).toMatch(variant.refusal);
    expect(app.wss.clients.size).toBe(0);
    const res = await within(fetch(`${app.url.replace(/^ws/, 'http')}/`), 5000, 'GET /');
    expect(await res.text()).toBe('chat server\n');
  });

  it('keepalive: pinged clients that answer stay; one that never answers is terminated and announced', async () => {
    // Each round pings, and terminates who did not answer the round before: a peer is given one
    // whole interval, so the join below lands first, and ann's pong (same process) comes back.
    const app = await startApp({ heartbeatMs: 200 });
    const ann = await join(`${app.url}/chat`, 'ann');
    // A raw client that joins and then never answers a ping.
    const mute = await RawClient.connect(app.port, '/chat');
    raws.push(mute);
    mute.send(0x1, JSON.stringify({ type: 'join', name: 'mute' }));
    expect(await ann.nextJson()).toEqual({ type: 'joined', name: 'mute', from: '127.0.0.1' });
    expect(await ann.nextJson()).toEqual({ type: 'left', name: 'mute' });
    expect(await mute.waitClosed(5000)).toBe(true);
    const seen = mute.pending();
    expect(seen.some((f) => f.opcode === 0x9)).toBe(true); // it was pinged
    expect(seen.some((f) => f.opcode === 0x8)).toBe(false); // and terminated, without a close frame
    // ann (ws answers pings by itself) stays, through more rounds.
    const pings = ann.pings;
    await until('ann to be pinged twice more', () => ann.pings >= pings + 2);
    expect(ann.ws.readyState).toBe(WS.OPEN);
    expect(app.wss.clients.size).toBe(1);
  });

  it('shutdown: every client gets 1001, nobody is announced to a closing socket, and close() resolves', async () => {
    const app = await startApp();
    const ann = await join(`${app.url}/chat`, 'ann');
    const bob = await join(`${app.url}/chat`, 'bob');
    expect(await ann.nextJson()).toEqual({ type: 'joined', name: 'bob', from: '127.0.0.1' });

    await within(app.close(), 5000, 'app.close()');
    running.splice(running.indexOf(app), 1);
    for (const c of [ann, bob]) {
      expect(await within(c.closed, 5000, 'a client close')).toEqual({ code: 1001, reason: 'server shutting down' });
    }
    // Each 'close' handler broadcast 'left' to OPEN clients only: by then none was.
    expect([...ann.pending(), ...bob.pending()]).toEqual([]);
    expect(app.wss.clients.size).toBe(0);
    expect(app.server.listening).toBe(false);
  });
});
