/**
 * prometheusHandler() scraped by a real Prometheus (Debian's `prometheus` package, 2.42 here):
 * two wsmount handlers on an http server on 127.0.0.1, the metrics mounted at /metrics with a
 * `handler` label each; known traffic from real WebSocket clients (Node's built-in WebSocket,
 * undici, and wsmount/testing's client for permessage-deflate and refused handshakes);
 * Prometheus started as a child process on a free loopback port, scraping every second. Then:
 * the target is up with no scrape error, and PromQL through the HTTP API gives the traffic back.
 *
 * Nothing is skipped: without /usr/bin/prometheus this file fails and says what to install.
 *
 * No wall-clock assertion: the waits are bounded polls, and "a scrape after the traffic" is
 * counted on our side (the scrape loop is sequential per target, so once a second scrape has
 * arrived after the traffic ended, the first one is stored).
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Behavior, HandshakeRejection, type WebSocketHandler, createWebSocketHandler, prometheusHandler } from '../../src/index.js';
import { HandshakeError, connect } from '../../src/testing/index.js';
import { PROMETHEUS, PROMETHEUS_MISSING, type PrometheusServer, type PrometheusTarget, type QueryData, startPrometheus } from '../helpers/prometheus.js';
import { sleep, waitFor } from '../helpers/server.js';

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}
class Compressed extends Echo {
  static override perMessageDeflate = true;
}
class Private extends Behavior {
  override verify(): void {
    throw new HandshakeRejection(403, 'members only');
  }
}

/** Resolves with the first event of `type` on `ws` (rejects on `error` first, unless waiting for it). */
function once(ws: WebSocket, type: 'open' | 'close' | 'error'): Promise<Event> {
  return new Promise((resolve, reject) => {
    ws.addEventListener(type, resolve, { once: true });
    if (type !== 'error') ws.addEventListener('error', () => reject(new Error(`WebSocket error before ${type}`)), { once: true });
  });
}

/** Opens a Node WebSocket, sends `count` texts, waits for their echoes. */
async function echoes(url: string, count: number): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  let received = 0;
  const all = new Promise<void>((resolve) => {
    ws.addEventListener('message', () => {
      if (++received === count) resolve();
    });
  });
  for (let i = 0; i < count; i++) ws.send(`message ${i}`);
  await all;
  return ws;
}

async function closeWith(ws: WebSocket, code: number): Promise<void> {
  const closed = once(ws, 'close');
  ws.close(code);
  await closed;
}

/** The one number of an instant query (a scalar, or a vector of exactly one sample). */
function single(data: QueryData): number {
  if (data.resultType === 'scalar') return Number(data.result[1]);
  expect(data.result, JSON.stringify(data.result)).toHaveLength(1);
  return Number(data.result[0]?.value[1]);
}

let main: WebSocketHandler;
let side: WebSocketHandler;
let server: http.Server;
let port = 0;
let prometheus: PrometheusServer | null = null;
let scrapes = 0;
/** Traffic sent, as our side counted it. */
const sent = { echo: 0, compressed: 0, side: 0 };
let openClient: WebSocket | null = null;

beforeAll(async () => {
  if (!existsSync(PROMETHEUS)) throw new Error(PROMETHEUS_MISSING);
  main = createWebSocketHandler({ '/echo': Echo, '/compressed': Compressed, '/private': Private }, { logLevel: 'silent', pingInterval: 100, pongTimeout: 5000 });
  side = createWebSocketHandler({ '/side': Echo }, { logLevel: 'silent', pingInterval: 0 });
  const metrics = prometheusHandler([
    { source: main, labels: { handler: 'main' } },
    { source: side, labels: { handler: 'side' } },
  ]);
  server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      scrapes++;
      metrics(req, res);
      return;
    }
    res.writeHead(404).end();
  });
  main.attach(server);
  side.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  prometheus = await startPrometheus([`127.0.0.1:${port}`]);
}, 60_000);

afterAll(async () => {
  openClient?.close();
  await prometheus?.stop();
  await Promise.all([main?.close({ timeout: 1000 }), side?.close({ timeout: 1000 })]);
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
}, 30_000);

describe('a real Prometheus scraping prometheusHandler()', () => {
  test("Debian's prometheus is installed (CI installs it)", () => {
    expect(existsSync(PROMETHEUS), PROMETHEUS_MISSING).toBe(true);
  });

  test('the target is up, with no scrape error', async () => {
    const p = prometheus as PrometheusServer;
    let target: PrometheusTarget | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const body = (await p.api('/api/v1/targets')) as { data: { activeTargets: PrometheusTarget[] } };
      target = body.data.activeTargets.find((t) => t.scrapeUrl === `http://127.0.0.1:${port}/metrics`);
      if (target !== undefined && target.health === 'up') break;
      await sleep(200);
    }
    expect(target, `no healthy target within 30 s; Prometheus said:\n${p.output()}`).toMatchObject({ health: 'up', lastError: '' });
    expect(single(await p.query(`up{instance="127.0.0.1:${port}"}`))).toBe(1);
  }, 40_000);

  test('after known traffic, PromQL gives it back', async () => {
    const p = prometheus as PrometheusServer;
    // /echo: three Node WebSockets, 5 messages each; one closes with 4001, one with 1000, one stays open.
    const url = `ws://127.0.0.1:${port}`;
    const [a, b, c] = await Promise.all([echoes(`${url}/echo`, 5), echoes(`${url}/echo`, 5), echoes(`${url}/echo`, 5)]);
    sent.echo = 15;
    await closeWith(a as WebSocket, 4001);
    await closeWith(b as WebSocket, 1000);
    openClient = c as WebSocket;
    // /compressed: permessage-deflate both ways (wsmount/testing's client offers it as Chrome does).
    const z = await connect(`${url}/compressed`, undefined, { perMessageDeflate: true });
    for (let i = 0; i < 3; i++) {
      z.sendText(`${'compressible '.repeat(400)}${i}`);
      const info = await z.nextMessageInfo();
      expect(info.compressed).toBe(true);
    }
    sent.compressed = 3;
    await z.close(1000);
    // The side handler: 2 messages.
    const s = await echoes(`${url}/side`, 2);
    sent.side = 2;
    await closeWith(s, 1000);
    // A refused handshake (403 from verify()).
    const refused = await connect(`${url}/private`).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).status).toBe(403);

    // Our side has counted everything, and the heartbeat has measured some round trips.
    await waitFor(
      () => {
        const m = main.stats();
        const closes = Object.values(m.closesByCode).reduce((x, y) => x + y, 0);
        return m.messagesIn === 18 && closes === 3 && m.handshakesRejected === 1 && m.routes['/echo']?.heartbeatRtt.count !== 0 && side.stats().closesByCode['1000'] === 1;
      },
      10_000,
      'the traffic to be counted',
    );
    // Two scrapes begun after that: the first has then been stored.
    const after = scrapes;
    await waitFor(() => scrapes >= after + 2, 20_000, 'two scrapes after the traffic');

    expect(single(await p.query('sum(wsmount_messages_received_total)'))).toBe(sent.echo + sent.compressed + sent.side);
    expect(single(await p.query('sum(wsmount_messages_sent_total)'))).toBe(sent.echo + sent.compressed + sent.side);
    expect(single(await p.query('wsmount_messages_received_total{handler="main",route="/echo"}'))).toBe(15);
    const byHandler = await p.query('sum by (handler) (wsmount_messages_received_total)');
    expect(byHandler.resultType).toBe('vector');
    const perHandler = Object.fromEntries((byHandler.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => [r.metric.handler, Number(r.value[1])]));
    expect(perHandler).toEqual({ main: 18, side: 2 });
    expect(single(await p.query('wsmount_closes_total{route="/echo",code="4001"}'))).toBe(1);
    expect(single(await p.query('sum(wsmount_closes_total{code="1000"})'))).toBe(3); // /echo, /compressed, /side
    expect(single(await p.query('wsmount_handshakes_rejected_total{status="403"}'))).toBe(1);
    expect(single(await p.query('sum(wsmount_handshakes_accepted_total)'))).toBe(5);
    expect(single(await p.query('wsmount_connections{route="/echo"}'))).toBe(1);
    expect(single(await p.query('sum(wsmount_connections)'))).toBe(1);
    expect(single(await p.query('sum(wsmount_received_bytes_total{route="/echo"})'))).toBeGreaterThan(15 * 'message 0'.length);

    // The heartbeat histogram: a quantile is a number within the buckets (our bounds: up to 10 s).
    const p90 = single(await p.query('histogram_quantile(0.9, sum by (le) (wsmount_heartbeat_rtt_seconds_bucket{handler="main"}))'));
    expect(Number.isFinite(p90)).toBe(true);
    expect(p90).toBeGreaterThan(0);
    expect(p90).toBeLessThanOrEqual(10);
    expect(single(await p.query('sum(wsmount_heartbeat_rtt_seconds_count{handler="main"})'))).toBeGreaterThan(0);

    // Compression: the ratio of bytes after to bytes before, computed in PromQL, is what stats() says.
    const ratio = single(await p.query('sum(wsmount_compression_sent_compressed_bytes_total) / sum(wsmount_compression_sent_uncompressed_bytes_total)'));
    const z1 = main.stats().compression;
    expect(ratio).toBeCloseTo(z1.compressedBytesOut / z1.uncompressedBytesOut, 12);
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThan(0.2);
    expect(single(await p.query('wsmount_compression_messages_received_total{handler="main"}'))).toBe(3);

    // The scrapes themselves stayed clean.
    const targets = (await p.api('/api/v1/targets')) as { data: { activeTargets: PrometheusTarget[] } };
    expect(targets.data.activeTargets.find((t) => t.scrapeUrl === `http://127.0.0.1:${port}/metrics`)).toMatchObject({ health: 'up', lastError: '' });
  }, 60_000);
});
