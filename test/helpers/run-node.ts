/**
 * Runs a Node script in a child process and resolves with its exit code and output without waiting
 * for the process itself to end: Node (24 in our CI) can deadlock in its own teardown after the
 * 'exit' event (nodejs/node#54918), which once made a test wait for a child that had done its work
 * until the test's time limit. The child loads fixtures/exit-marker.mjs, which writes the exit code
 * to stdout and stderr from the 'exit' event; once both have arrived the child is killed by PID.
 *
 * Output written by the child's own 'exit' listeners (registered after the marker's) may be lost.
 * A child that ends with an uncaught exception writes no marker (Node prints the stack after the
 * 'exit' event): it is waited for as any process is.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const marker = new URL('./fixtures/exit-marker.mjs', import.meta.url).href;

export interface NodeRun {
  /** The exit code (from the 'exit' event, or from the process when it ended without one). */
  code: number | null;
  /** The signal that ended it, when it ended without an 'exit' event. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunNodeOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the child is killed and the promise rejects. */
  timeout: number;
}

/** Kills a process of ours by PID (SIGKILL), if it is still there. */
export function killPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** `node <args>` (this process's Node, with the exit marker loaded first). */
export function runNode(args: readonly string[], options: RunNodeOptions): Promise<NodeRun> {
  const nonce = randomBytes(8).toString('hex');
  const pattern = new RegExp(`\\n@@exit ${nonce} (-?\\d+)\\n`);
  return new Promise<NodeRun>((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', marker, ...args], {
      cwd: options.cwd,
      env: { ...(options.env ?? process.env), WSMOUNT_EXIT_MARKER: nonce },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      killPid(proc.pid);
      reject(new Error(`node ${args.join(' ')} did not end within ${options.timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeout);
    const done = (run: NodeRun): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killPid(proc.exitCode === null && proc.signalCode === null ? proc.pid : undefined);
      resolve(run);
    };
    const check = (): void => {
      const out = pattern.exec(stdout);
      const err = pattern.exec(stderr);
      if (out === null || err === null) return;
      done({ code: Number(out[1]), signal: null, stdout: stdout.replace(pattern, ''), stderr: stderr.replace(pattern, '') });
    };
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      check();
    });
    proc.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      check();
    });
    proc.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    // Ended without the marker: killed, or the marker could not load.
    proc.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}
