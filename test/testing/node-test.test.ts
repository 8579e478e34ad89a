/**
 * wsmount/testing outside vitest: a `node --test` file, a Jest suite and a plain script, all importing the
 * BUILT package by name ('wsmount', 'wsmount/testing') the way a user's project does. `npm test`
 * builds first; when dist/ is missing or older than src/, this test builds it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { runNode } from '../helpers/run-node.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = join(root, 'test/testing/node-test');

/** `node <args>` in the repository; its exit code from its 'exit' event (see run-node.ts). */
async function run(args: string[], timeout: number): Promise<{ code: number | null; out: string }> {
  const result = await runNode(args, { cwd: root, timeout, env: { ...process.env, NODE_OPTIONS: '' } });
  return { code: result.code, out: `${result.stdout}${result.stderr}` };
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

beforeAll(async () => {
  const built = join(root, 'dist/testing/index.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource(join(root, 'src'))) return;
  const build = await run([join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], 60_000);
  expect(build.out).toBe('');
  expect(build.code).toBe(0);
}, 70_000);

describe('wsmount/testing from the built package', () => {
  test('under node:test', { timeout: 30_000 }, async () => {
    // The TAP reporter, named explicitly: the default reporter is TAP on Node 20 when the output is
    // not a terminal, but 'spec' on Node 22 and 24 ("ℹ pass 3"). TAP's summary is the same on all three.
    const { code, out } = await run(['--test', '--test-reporter=tap', join(here, 'routes.node-test.mjs')], 25_000);
    expect(out).toMatch(/^# tests 3$/m);
    expect(out).toMatch(/^# pass 3$/m);
    expect(out).toMatch(/^# fail 0$/m);
    expect(out).not.toMatch(/^\s*not ok /m);
    expect(code).toBe(0);
  });

  test('under Jest (ESM mode)', { timeout: 60_000 }, async () => {
    const jest = join(root, 'node_modules/jest/bin/jest.js');
    const config = join(root, 'test/testing/jest/jest.config.json');
    const { code, out } = await run(['--experimental-vm-modules', jest, '--config', config, '--ci'], 55_000);
    expect(out).toMatch(/Tests:\s+3 passed, 3 total/);
    expect(code).toBe(0);
  });

  test('in a plain script', { timeout: 30_000 }, async () => {
    const { code, out } = await run([join(here, 'plain-script.mjs')], 25_000);
    expect(out.trim()).toBe('ok');
    expect(code).toBe(0);
  });
});
