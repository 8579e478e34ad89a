/**
 * Most users compile with TypeScript 5, not the 7 this repository builds with. A consumer module
 * using the typed route table with wsmount/testing (a typed handler passed to connect() and
 * listen(), clientsOf, broadcast's filter, data and params) type-checks under TypeScript 5.9
 * against the published declarations in dist/ (built by `npm test` first), with strict settings
 * and skipLibCheck off; and a wrong pattern is still an error there.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));

const consumer = `
import type { IncomingMessage } from 'node:http';
import { Backpressure, Behavior, createWebSocketHandler, type RouteParams } from 'wsmount';
import { connect, listen } from 'wsmount/testing';

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
  await client.close();
  await other.close();
  await server.close();
  return names;
}
`;

function run(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 120_000 }, (error, stdout, stderr) => resolve(error ? `${stdout}${stderr}` || String(error) : ''));
  });
}

describe('the published types under TypeScript 5.9', () => {
  test('a typed route table works with connect(), listen(), clientsOf and broadcast', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wsmount-ts5-'));
    try {
      // A project that depends on the built package: node_modules/wsmount → this repository.
      await mkdir(join(dir, 'node_modules', '@types'), { recursive: true });
      await symlink(repo, join(dir, 'node_modules', 'wsmount'), 'dir');
      await symlink(join(repo, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
      await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
      await writeFile(join(dir, 'main.ts'), consumer);
      const config = {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noImplicitOverride: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['main.ts'],
      };
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
      const out = await run([join(repo, 'node_modules', 'typescript5', 'bin', 'tsc'), '-p', dir, '--pretty', 'false'], dir);
      expect(out).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
