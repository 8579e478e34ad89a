/**
 * Child processes for tests that run the library outside vitest: a private build of src/ (and of
 * the fixtures a child runs) with the project's tsc, so a child always runs the current source
 * without `npm run build`; a Node child driven over IPC with a time limit on every call and its
 * stderr kept for failure messages; and a check that a pid is gone.
 *
 * The IPC protocol: the child sends `{ ready: … }` once it is ready, takes `{ id, cmd, args }` and
 * answers `{ id, ok: true, result }` or `{ id, ok: false, error }`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from './run-node.js';

/** The repository's root folder. */
export const repo: string = fileURLToPath(new URL('../../', import.meta.url));

export interface CompileOptions {
  /** The start of the temporary directory's name (`wsmount-redis-`). */
  prefix: string;
  /** What to compile (tsconfig `include`), relative to the repository: folders or files. */
  include: string[];
  /** The folder the output mirrors, relative to the repository. Default: the repository itself. */
  rootDir?: string;
  /** More compiler options (the checks a child's build does not need, such as `noUnusedParameters: false`). */
  compilerOptions?: Record<string, unknown>;
  /**
   * A file tsc must emit, relative to the output. When given, tsc's type errors are not fatal (they
   * are the type-check's business, and others may edit src/ while tests run): only a missing
   * output is. Without it, any tsc error is.
   */
  mustEmit?: string;
  /** Link node_modules next to the output, so a child finds the packages the repository has. */
  linkNodeModules?: boolean;
}

export interface Compiled {
  /** The temporary directory. */
  readonly dir: string;
  /** The compiled output in it (an ESM package). */
  readonly out: string;
  /** Deletes the directory. */
  remove(): Promise<void>;
}

/** Compiles with the project's tsc into a fresh temporary directory (about a second). */
export async function compileForChildren(options: CompileOptions): Promise<Compiled> {
  const dir = await mkdtemp(join(tmpdir(), options.prefix));
  const out = join(dir, 'out');
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const config = {
    extends: join(repo, 'tsconfig.json'),
    compilerOptions: {
      rootDir: join(repo, options.rootDir ?? ''),
      outDir: out,
      declaration: false,
      declarationMap: false,
      isolatedDeclarations: false,
      sourceMap: false,
      ...options.compilerOptions,
      typeRoots: [join(repo, 'node_modules', '@types')],
    },
    include: options.include.map((path) => join(repo, path)),
  };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const failure = await runNode([tsc, '-p', join(dir, 'tsconfig.json')], { cwd: repo, timeout: 120_000 }).then(
    (run) => (run.code === 0 ? undefined : `tsc exited with ${String(run.code ?? run.signal)}\n${run.stdout}\n${run.stderr}`),
    (error: unknown) => String(error),
  );
  const fatal = options.mustEmit === undefined ? failure !== undefined : !existsSync(join(out, options.mustEmit));
  if (fatal) {
    await remove();
    throw new Error(`tsc failed: ${failure ?? `it did not emit ${options.mustEmit}`}`);
  }
  // The output sits outside the package: tell Node it is ESM.
  await writeFile(join(out, 'package.json'), '{"type":"module"}\n');
  if (options.linkNodeModules === true) await symlink(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, out, remove };
}

/** Whether `pid` is a live process (a zombie waiting for its parent's reaper counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

interface Reply {
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
  ready?: unknown;
}

/**
 * A Node child process with an IPC channel (spawned by the subclass, with `'ipc'` in its stdio),
 * driven by commands. Its stdout, if piped, is drained; the last 8 KB of its stderr are kept.
 */
export class IpcChild {
  readonly process: ChildProcess;
  private readonly name: string;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderrText = '';
  private exitCode: string | null = null;
  private readonly exit: Promise<void>;

  /** `name` is how errors call it ('child', 'primary'). */
  protected constructor(proc: ChildProcess, name: string) {
    this.process = proc;
    this.name = name;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (text: string) => {
      this.stderrText = (this.stderrText + text).slice(-8000);
    });
    proc.stdout?.resume();
    this.exit = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitCode = String(code ?? signal);
        for (const call of this.calls.values()) call.reject(new Error(`${this.name} exited (${this.exitCode}) during a call; stderr: ${this.stderrText}`));
        this.calls.clear();
        resolve();
      });
    });
    proc.on('message', (m: Reply) => {
      if (m.id === undefined) return;
      const call = this.calls.get(m.id);
      if (call === undefined) return;
      this.calls.delete(m.id);
      if (m.ok === true) call.resolve(m.result);
      else call.reject(new Error(`${this.name}: ${m.error ?? 'failed'}`));
    });
  }

  /** What the child sends as `ready`; rejects if it exits first or takes longer than `timeout` ms. */
  protected waitReady<T>(timeout: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not ready after ${timeout} ms; stderr: ${this.stderrText}`)), timeout);
      this.process.on('message', (m: Reply) => {
        if (m.ready === undefined) return;
        clearTimeout(timer);
        resolve(m.ready as T);
      });
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${code} before ready; stderr: ${this.stderrText}`));
      });
    });
  }

  /** Everything the child wrote to stderr (the last 8 KB). */
  get stderr(): string {
    return this.stderrText;
  }

  /** Still running (has not exited). */
  get running(): boolean {
    return this.exitCode === null;
  }

  /** Runs a command in the child; rejects after `timeout` ms. */
  call<T>(cmd: string, args: Record<string, unknown> = {}, timeout = 10_000): Promise<T> {
    if (this.exitCode !== null) return Promise.reject(new Error(`${this.name} has exited (${this.exitCode}); stderr: ${this.stderrText}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.name} command ${cmd} did not answer within ${timeout} ms; stderr: ${this.stderrText}`));
      }, timeout);
      this.calls.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.process.send({ id, cmd, args });
    });
  }

  /** Disconnects (the child exits on its own), then kills it by PID (SIGKILL) after `grace` ms; resolves once it has exited. */
  protected async disconnectThenKill(grace: number): Promise<void> {
    if (this.exitCode !== null) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.killByPid(), grace);
    await this.exit;
    clearTimeout(timer);
  }

  /** Kills it at once by PID (SIGKILL, its IPC channel left open) and waits until it has exited. */
  async kill(): Promise<void> {
    this.killByPid();
    await this.exit;
  }

  private killByPid(): void {
    const pid = this.process.pid;
    if (this.exitCode !== null || pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone (exited, its 'exit' event not yet emitted).
    }
  }
}
