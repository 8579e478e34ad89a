/**
 * A real Prometheus server for tests (Debian's `prometheus` package, /usr/bin/prometheus): on a
 * free loopback port, with its storage in a temporary directory and a generated config that
 * scrapes the given targets every second. Stopped by PID: SIGTERM, then SIGKILL if it has not
 * exited within 5 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMETHEUS_MISSING = `${PROMETHEUS} is missing: install Debian's prometheus package (apt-get install -y prometheus); .ci/run installs it`;

/** A running Prometheus. */
export interface PrometheusServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number | undefined;
  /** The last lines Prometheus printed (for failure messages). */
  output(): string;
  /** GET `path` of its HTTP API, parsed as JSON. */
  api(path: string): Promise<unknown>;
  /** An instant PromQL query: the `data` of /api/v1/query (throws unless `status` is `success`). */
  query(promql: string): Promise<QueryData>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone and its directory removed. */
  stop(): Promise<void>;
}

/** The result of an instant query. */
export type QueryData =
  | { resultType: 'vector'; result: Array<{ metric: Record<string, string>; value: [number, string] }> }
  | { resultType: 'scalar'; result: [number, string] };

export interface PrometheusTarget {
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
  labels: Record<string, string>;
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every Prometheus started by this process, killed if the process exits with them still running. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts Prometheus scraping `targets` (`host:port`) at `metricsPath` every second, as job `job`,
 * and waits (at most 20 s) until it answers /-/ready. Throws with {@link PROMETHEUS_MISSING}
 * when the package is not installed.
 */
export async function startPrometheus(targets: string[], options: { job?: string; metricsPath?: string } = {}): Promise<PrometheusServer> {
  if (!existsSync(PROMETHEUS)) throw new Error(PROMETHEUS_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'wsmount-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      `  - job_name: ${JSON.stringify(options.job ?? 'wsmount')}`,
      `    metrics_path: ${JSON.stringify(options.metricsPath ?? '/metrics')}`,
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  // A port taken between the probe and Prometheus' bind makes it exit: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let gone = false;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        gone = true;
        running.delete(child);
        resolve();
      });
      child.once('error', (error) => {
        keep(Buffer.from(String(error)));
        gone = true;
        running.delete(child);
        resolve();
      });
    });
    const url = `http://127.0.0.1:${port}`;
    const stop = async (): Promise<void> => {
      if (!gone) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
        if (killed) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 20_000;
    let ready = false;
    while (!gone && Date.now() < deadline) {
      ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      await sleep(50);
    }
    if (!ready) {
      await stop();
      if (gone && attempt < 3 && /address already in use/.test(output)) continue;
      throw new Error(`Prometheus did not become ready on ${url}${gone ? ' (it exited)' : ' within 20 s'}:\n${output}`);
    }
    const api = async (path: string): Promise<unknown> => {
      const response = await fetch(`${url}${path}`);
      const body = (await response.json()) as unknown;
      if (!response.ok) throw new Error(`Prometheus ${path}: HTTP ${response.status}: ${JSON.stringify(body)}`);
      return body;
    };
    return {
      url,
      get pid() {
        return child.pid;
      },
      output: () => output,
      api,
      async query(promql) {
        const body = (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as { status: string; data: QueryData };
        if (body.status !== 'success') throw new Error(`query ${promql}: ${JSON.stringify(body)}`);
        return body.data;
      },
      stop,
    };
  }
}
