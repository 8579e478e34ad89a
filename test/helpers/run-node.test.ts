/**
 * runNode(): a Node child's exit code and output, taken from its 'exit' event, without waiting for
 * the process to end (Node can deadlock in its teardown after that event: nodejs/node#54918). The
 * hang is simulated by an 'exit' listener that never returns, registered after the marker's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { alive } from './child.js';
import { runNode } from './run-node.js';
import { sleep } from './server.js';

describe('runNode', () => {
  test('the exit code and the output, without the marker line', async () => {
    const run = await runNode(['-e', 'process.stdout.write("out"); process.stderr.write("err\\n"); process.exitCode = 3'], { timeout: 20_000 });
    expect(run).toEqual({ code: 3, signal: null, stdout: 'out', stderr: 'err\n' });
  });

  test('an uncaught exception: code 1 and the whole stack on stderr (no marker: the stack comes after the exit event)', async () => {
    const run = await runNode(['-e', 'throw new TypeError("boom")'], { timeout: 20_000 });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('TypeError: boom');
    expect(run.stderr).toMatch(/Node\.js v\d+\.\d+\.\d+\s*$/);
    expect(run.stderr).not.toContain('@@exit');
  });

  test('a process that hangs after its exit event is read from the event and killed by PID', async () => {
    const script = 'console.log(process.pid); process.on("exit", () => { for (;;) {} }); process.exitCode = 5';
    const run = await runNode(['-e', script], { timeout: 20_000 });
    expect(run.code).toBe(5);
    const pid = Number(run.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
    expect(alive(pid)).toBe(false);
    // Without the marker, the same script does not end by itself (the hang is real).
    const plain = spawnSync(process.execPath, ['-e', script], { timeout: 1500 });
    expect(plain.signal).toBe('SIGTERM');
  });

  test('a forked grandchild (which inherits --import) prints no marker of its own', async () => {
    const script = [
      'const { fork } = require("node:child_process");',
      'if (process.argv[2] === "grandchild") { process.exitCode = 7; } else {',
      '  const g = fork(__filename, ["grandchild"], { stdio: "inherit" });',
      '  g.on("exit", (code) => console.log("grandchild", code));',
      '}',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'wsmount-run-node-'));
    try {
      const file = join(dir, 'fork.cjs');
      writeFileSync(file, script);
      const run = await runNode([file], { timeout: 20_000 });
      expect(run).toEqual({ code: 0, signal: null, stdout: 'grandchild 7\n', stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a grandchild holding the child's stdout open does not hold the result", async () => {
    const script = [
      'const { spawn } = require("node:child_process");',
      'const g = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "inherit" });',
      'console.log(g.pid);',
      'g.unref();',
    ].join('\n');
    const run = await runNode(['-e', script], { timeout: 20_000 });
    expect(run.code).toBe(0);
    const grandchild = Number(run.stdout.trim());
    expect(alive(grandchild)).toBe(true);
    process.kill(grandchild, 'SIGKILL');
  });

  test('a time limit kills the child and says what it printed', async () => {
    await expect(runNode(['-e', 'console.log("started"); setInterval(() => {}, 1000)'], { timeout: 1000 })).rejects.toThrow(/did not end within 1000 ms[\s\S]*started/);
  });
});
