/**
 * The published declarations (dist/, built by `npm test` before vitest runs; run `npm run build`
 * first when running this file alone) as a consumer sees
 * them: they type-check on their own with `skipLibCheck: false` (stripInternal must not leave a
 * reference to a stripped type behind), and `@internal` members are not in them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { runNode } from '../helpers/run-node.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tsc = `${repo}node_modules/typescript/bin/tsc`;

describe('published .d.ts files', () => {
  test('type-check alone under strict, skipLibCheck false', async () => {
    const args = [
      tsc,
      '--ignoreConfig',
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      'false',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2023',
      '--types',
      'node',
      '--typeRoots',
      `${repo}node_modules/@types`,
      `${repo}dist/index.d.ts`,
      `${repo}dist/testing/index.d.ts`,
      `${repo}dist/compat/index.d.ts`,
      `${repo}dist/dashboard/index.d.ts`,
    ];
    const run = await runNode(args, { cwd: repo, timeout: 60_000 });
    const out = run.code === 0 ? '' : `${run.stdout}${run.stderr}` || `tsc exited with ${String(run.code ?? run.signal)}`;
    expect(out).toBe('');
  }, 90_000);

  test('@internal members are stripped', () => {
    const handler = readFileSync(`${repo}dist/handler.d.ts`, 'utf8');
    expect(handler).toContain('class WebSocketHandler');
    expect(handler).not.toContain('connectionClosed');
    expect(readFileSync(`${repo}dist/behavior.d.ts`, 'utf8')).not.toContain('BehaviorInternals');
    const socket = readFileSync(`${repo}dist/compat/socket.d.ts`, 'utf8');
    expect(socket).toContain('class WebSocket');
    expect(socket).not.toContain('received(');
    const server = readFileSync(`${repo}dist/compat/server.d.ts`, 'utf8');
    expect(server).toContain('class WebSocketServer');
    expect(server).not.toContain('connected(');
    expect(server).not.toContain('get accepting');
  });
});
