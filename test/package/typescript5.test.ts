/**
 * Most users compile with TypeScript 5, not the 7 this repository builds with. A consumer module
 * using the typed route table with wsmount/testing (a typed handler passed to connect() and
 * listen(), clientsOf, broadcast's filter, data and params) and wsmount/dashboard type-checks under TypeScript 5.9
 * against the published declarations in dist/ (built by `npm test` first), with strict settings
 * and skipLibCheck off; and a wrong pattern is still an error there.
 *
 * TypeScript 5.9 is not a devDependency (its `tsc` would take the place of TypeScript 7's in
 * node_modules/.bin): the test fetches it once from the npm registry into `.cache/` (gitignored).
 * Where the registry cannot be reached it is left out with a warning, except in CI.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, test } from 'vitest';
import { runNode } from '../helpers/run-node.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const TS5 = '5.9.3';
const cache = join(repo, '.cache', `typescript-${TS5}`);
const ts5 = join(cache, 'package', 'bin', 'tsc');

/** TypeScript 5.9's tsc, fetched from the registry on first use; undefined (with why) if it cannot be. */
function fetchTypeScript5(): { tsc?: string; why?: string } {
  if (existsSync(ts5)) return { tsc: ts5 };
  try {
    mkdirSync(cache, { recursive: true });
    const file = execFileSync('npm', ['pack', `typescript@${TS5}`, '--pack-destination', cache, '--silent'], { cwd: cache, encoding: 'utf8', timeout: 120_000 }).trim();
    execFileSync('tar', ['-xzf', join(cache, file), '-C', cache], { timeout: 60_000 });
    return existsSync(ts5) ? { tsc: ts5 } : { why: `npm pack typescript@${TS5} gave no bin/tsc` };
  } catch (error) {
    return { why: `npm pack typescript@${TS5} failed: ${(error as Error).message.split('\n')[0]}` };
  }
}

const fetched = fetchTypeScript5();

const consumer = `
import type { IncomingMessage } from 'node:http';
import { Backpressure, Behavior, createWebSocketHandler, createWebSocketServer, type RouteParams, type WebSocketHandler } from 'wsmount';
import { connect, listen } from 'wsmount/testing';
import { createDashboard, type DashboardSnapshot } from 'wsmount/dashboard';

class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  static override protocols = ['chat.v1'];
  static override backpressure = Backpressure.Drop;
  override data = { user: '' };
  override verify(request: IncomingMessage) {
    this.data = { user: String(request.headers['x-user']) };
    this.setResponseHeader('Set-Cookie', ['a=1', 'b=2']);
  }
  override onRawText(bytes: Buffer) {
    this.sendText(String(bytes.length));
  }
}
class Echo extends Behavior {
  override onText(text: string) {
    this.sendText(text);
  }
}

export async function main(): Promise<string> {
  const sockets = createWebSocketHandler({ '/rooms/:room': Room, '/echo': Echo });
  const client = await connect(sockets, '/rooms/lobby', { headers: { 'x-user': 'ann' } });
  const server = await listen(sockets);
  const other = await connect(server, '/echo');
  let names = '';
  for (const room of sockets.clientsOf('/rooms/:room')) names += room.data.user + room.params.room;
  sockets.broadcast('hi', { route: '/rooms/:room', filter: (c) => c.data.user !== '' });
  // @ts-expect-error: not a pattern of the table
  sockets.clientsOf('/room/:room');
  // A typed handler is a WebSocketHandler (kept in a list, passed to code that takes any handler).
  const all: WebSocketHandler[] = [sockets, createWebSocketServer({ '/echo': Echo }).handler];
  void all;
  // wsmount/dashboard takes the typed handler, and is a plain (req, res, next?) request handler.
  const dashboard = createDashboard(sockets, { path: '/admin/ws' });
  const handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void = dashboard;
  const snapshot: DashboardSnapshot = dashboard.state().snapshot;
  void handle;
  void snapshot.slowConsumers[0]?.bufferedAmount;
  dashboard.close();
  await client.close();
  await other.close();
  await server.close();
  return names;
}
`;

/**
 * wsmount/ws where ws's types are expected (issue 13): the libraries built on ws take our server
 * and sockets without casts under TypeScript 5 too, and ws-style listeners get their types.
 */
const compatConsumer = `
import type { IncomingMessage } from 'node:http';
import type * as ws from 'ws';
import { buildSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { initTRPC } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { setupWSConnection } from '@y/websocket-server/utils';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { WebSocketServer, wsRoute, type RawData } from 'wsmount/ws';

const wss = new WebSocketServer({ noServer: true, verifyClient: (info, done) => done(info.origin !== 'x') });
const asWs: ws.WebSocketServer = wss;
void asWs;
useServer({ schema: buildSchema('type Query { hello: String }') }, wss);
const t = initTRPC.create();
applyWSSHandler({ wss, router: t.router({ hello: t.procedure.query(() => 'world') }) });
wss.on('connection', (socket, request: IncomingMessage) => {
  const asSocket: ws.WebSocket = socket;
  void asSocket;
  setupWSConnection(socket, request);
  socket.on('message', (data: RawData, isBinary: boolean) => socket.send(data, { binary: isBinary }));
  socket.on('close', (code: number, reason: Buffer) => void (code + reason.length));
  // @ts-expect-error: a close code is a number
  socket.close('1000');
});
class Chat extends Behavior {}
createWebSocketHandler({ '/graphql': wsRoute(wss, { maxPayload: 1 << 16 }), '/chat': Chat });
`;

async function run(args: string[], cwd: string): Promise<string> {
  const result = await runNode(args, { cwd, timeout: 120_000 });
  return result.code === 0 ? '' : `${result.stdout}${result.stderr}` || `tsc exited with ${String(result.code ?? result.signal)}`;
}

/** Compiles `source` as main.ts of an ESM project in `dir` (strict, NodeNext) with TypeScript 5.9: its errors, or ''. */
async function compile(dir: string, source: string, skipLibCheck: boolean): Promise<string> {
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  await writeFile(join(dir, 'main.ts'), source);
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noImplicitOverride: true,
      skipLibCheck,
      noEmit: true,
      types: ['node'],
    },
    files: ['main.ts'],
  };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
  return run([fetched.tsc as string, '-p', dir, '--pretty', 'false'], dir);
}

it(`TypeScript ${TS5} is available for the next test (required in CI)`, () => {
  if (fetched.tsc !== undefined) return;
  if (process.env.CI !== undefined && process.env.CI !== '') expect.fail(`${fetched.why}. CI reaches the npm registry: see .ci/run.`);
  console.warn(`[typescript5] not run: ${fetched.why}`);
});

describe.runIf(fetched.tsc !== undefined)('the published types under TypeScript 5.9', () => {
  test('a typed route table works with connect(), listen(), clientsOf and broadcast', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wsmount-ts5-'));
    try {
      // A project that depends on the built package: node_modules/wsmount → this repository.
      await mkdir(join(dir, 'node_modules', '@types'), { recursive: true });
      await symlink(repo, join(dir, 'node_modules', 'wsmount'), 'dir');
      await symlink(join(repo, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
      expect(await compile(dir, consumer, false)).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test('wsmount/ws passes where @types/ws, graphql-ws, tRPC and Yjs expect ws objects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wsmount-ts5-ws-'));
    try {
      // This repository's node_modules (ws's types, the three libraries), entry by entry, and wsmount itself.
      await mkdir(join(dir, 'node_modules'), { recursive: true });
      for (const entry of await readdir(join(repo, 'node_modules'))) {
        if (entry.startsWith('.')) continue;
        await symlink(join(repo, 'node_modules', entry), join(dir, 'node_modules', entry), 'dir');
      }
      await symlink(repo, join(dir, 'node_modules', 'wsmount'), 'dir');
      // The libraries' own declarations are theirs to check; ours are checked alone above.
      expect(await compile(dir, compatConsumer, true)).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
