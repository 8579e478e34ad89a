/**
 * Python `websockets` clients for interop tests: Debian's python3-websockets run with
 * /usr/bin/python3. `hasPython` lets a suite run only where it is installed; a script is run as
 * `script url scenario opts-json` and prints JSON lines.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

/** Whether PYTHON runs here with the `websockets` package. */
export const hasPython: boolean = spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

export type Json = Record<string, unknown>;

/** JSON with every non-ASCII character escaped, so argv and pipes survive any locale. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A Python script run as `script url scenario opts` in UTF-8 mode; its stdout's JSON lines collect
 * in `lines` and its stderr in `stderr`. A hung script is killed after `killAfter` ms, so it never
 * outlives its test.
 */
export class PythonScript {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Json[] = [];
  protected stderr = '';
  /** Its exit code (null if killed). */
  protected readonly exited: Promise<number | null>;
  private stdout = '';

  constructor(script: string, url: string, scenario: string, opts: Json, killAfter: number) {
    this.child = spawn(PYTHON, [script, url, scenario, asciiJson(opts)], {
      env: { ...process.env, PYTHONUTF8: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => {
      this.stdout += d;
      let i: number;
      while ((i = this.stdout.indexOf('\n')) !== -1) {
        const line = this.stdout.slice(0, i);
        this.stdout = this.stdout.slice(i + 1);
        if (line.trim() !== '') this.lines.push(JSON.parse(line) as Json);
      }
      this.changed();
    });
    this.child.stderr.on('data', (d: string) => {
      this.stderr += d;
    });
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        resolve(code);
        this.changed();
      });
    });
    const killer = setTimeout(() => this.child.kill('SIGKILL'), killAfter);
    killer.unref();
    this.child.on('exit', () => clearTimeout(killer));
  }

  /** Called after new output on stdout, and once it has exited. */
  protected changed(): void {}
}
