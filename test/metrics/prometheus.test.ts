/**
 * prometheusMetrics() / prometheusHandler(): the Prometheus text exposition, format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), of a handler's stats().
 *
 * - The exact text for a known snapshot, written out by hand below: HELP and TYPE once per
 *   family and before its samples; counters end in `_total`; units in names (`_seconds`,
 *   `_bytes`); histogram `_bucket{le}` are running sums ending with `le="+Inf"` (= `_count`),
 *   then `_sum` and `_count`.
 * - `promtool check metrics` (Prometheus' own parser and linter, Debian's `prometheus` package)
 *   reports nothing for every exposition here; a negative control shows it does report problems.
 * - Escaping: `\`, `"` and line feed in label values; `\` and line feed in HELP text.
 * - Bounded labels: 40 distinct close codes on a route give 33 `code` values (32 + `other`), and
 *   connections, topics and client addresses never add series.
 * - Several handlers in one exposition, each family once; every mistake in the options throws
 *   a message that says what to do.
 * - The request handler: GET/HEAD 200 with the 0.0.4 Content-Type, other methods 405 with
 *   `Allow: GET, HEAD`, on a plain Node server and in Express; one stats() per scrape.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, test } from 'vitest';
import {
  Behavior,
  DURATION_BOUNDS,
  type HandlerStats,
  MAX_CLOSE_CODES,
  type StatsSource,
  createWebSocketHandler,
  prometheusHandler,
  prometheusMetrics,
} from '../../src/index.js';
import { escapeHelp, escapeLabelValue, formatValue } from '../../src/metrics/exposition.js';
import { FAMILIES } from '../../src/metrics/prometheus.js';
import { connect } from '../../src/testing/index.js';
import { waitFor } from '../helpers/server.js';
import { routeStats } from '../helpers/stats.js';

// ---- helpers -----------------------------------------------------------------------------------

const PROMTOOL = '/usr/bin/promtool';

/** `promtool check metrics` on `text` (stdin): its exit status and everything it printed. */
function promtool(text: string): { status: number | null; output: string } {
  if (!existsSync(PROMTOOL)) {
    throw new Error(`${PROMTOOL} is missing: install Debian's prometheus package (apt-get install -y prometheus); .ci/run installs it`);
  }
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Expects promtool to find no problem at all (parse errors and lint alike). */
function expectPromtoolClean(text: string): void {
  expect(promtool(text)).toEqual({ status: 0, output: '' });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}
interface ParsedFamily {
  type: string;
  help: string;
  samples: Sample[];
}

/**
 * A strict reader of the text format, for checking structure: every line ends with \n; a
 * family's HELP then TYPE come once, before its samples; its samples are contiguous and named
 * after it (`_bucket`, `_sum`, `_count` for a histogram); label values are unescaped.
 */
function parse(text: string): Map<string, ParsedFamily> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, ParsedFamily>();
  let current: { name: string; family: ParsedFamily } | null = null;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([a-zA-Z_][a-zA-Z0-9_]*) (.*)$/.exec(line);
    if (help !== null) {
      const name = help[1] as string;
      if (families.has(name)) throw new Error(`family ${name} appears twice`);
      current = { name, family: { type: '', help: help[2] as string, samples: [] } };
      families.set(name, current.family);
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_][a-zA-Z0-9_]*) (counter|gauge|histogram)$/.exec(line);
    if (type !== null) {
      if (current === null || current.name !== type[1] || current.family.type !== '' || current.family.samples.length > 0) throw new Error(`TYPE out of place: ${line}`);
      current.family.type = type[2] as string;
      continue;
    }
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    if (current === null || current.family.type === '') throw new Error(`sample before its TYPE: ${line}`);
    const name = m[1] as string;
    const allowed = current.family.type === 'histogram' ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`] : [current.name];
    if (!allowed.includes(name)) throw new Error(`sample ${name} inside family ${current.name}`);
    current.family.samples.push({ name, labels: parseLabels(m[2] ?? ''), value: m[3] as string });
  }
  return families;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('="', i);
    const name = text.slice(i, eq);
    let value = '';
    let j = eq + 2;
    for (; text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j++;
        value += text[j] === 'n' ? '\n' : text[j];
      } else value += text[j];
    }
    if (name in labels) throw new Error(`label ${name} twice`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return labels;
}

const route = routeStats;

/** A StatsSource that answers `snapshot` and counts its calls. */
function fake(snapshot: HandlerStats): StatsSource & { calls: number } {
  return {
    calls: 0,
    stats() {
      this.calls++;
      return snapshot;
    },
  };
}

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

// ---- the known snapshot ------------------------------------------------------------------------

const BOUNDS = [0.0005, 0.01, 2.5];

/** Two routes, a backplane, every counter a different number so a mix-up shows. */
const KNOWN: HandlerStats = {
  connections: 3,
  connectionsByRoute: { '/chat': 3, '/rooms/:room': 0 },
  pendingHandshakes: 1,
  handshakesAccepted: 10,
  handshakesRejected: 3,
  handshakesRejectedByStatus: { '403': 2, '503': 1 },
  messagesIn: 120,
  messagesOut: 240,
  bytesIn: 4096,
  bytesOut: 8192,
  closesByCode: { '1000': 5, '1006': 2, '4000': 2, other: 1 },
  backpressureDrops: 4,
  backpressureCloses: 1,
  pingsSent: 30,
  pongTimeouts: 6,
  idleCloses: 7,
  rateLimitCloses: 2,
  verifyTimeouts: 8,
  heartbeatRtt: { bounds: BOUNDS, counts: [1, 4, 0, 2], count: 7, sum: 6.25 },
  routes: {
    '/chat': route(
      {
        connections: 3,
        handshakesAccepted: 10,
        messagesIn: 120,
        messagesOut: 240,
        bytesIn: 4096,
        bytesOut: 8192,
        closesByCode: { '1000': 5, '1006': 2 },
        backpressureDrops: 4,
        backpressureCloses: 1,
        pingsSent: 30,
        pongTimeouts: 6,
        idleCloses: 7,
        rateLimitCloses: 2,
        heartbeatRtt: { bounds: BOUNDS, counts: [1, 4, 0, 2], count: 7, sum: 6.25 },
      },
      BOUNDS,
    ),
    '/rooms/:room': route({ closesByCode: { '4000': 2, other: 1 } }, BOUNDS),
  },
  topics: 4,
  subscriptions: 9,
  publishes: 17,
  backplane: { connected: true, messagesOut: 11, messagesIn: 13, droppedWhileDisconnected: 3, outages: 1, errors: 2, malformed: 5 },
  compression: { connections: 2, messagesIn: 5, compressedBytesIn: 300, inflatedBytesIn: 1200, messagesOut: 6, uncompressedBytesOut: 2400, compressedBytesOut: 600 },
};

/**
 * prometheusMetrics(KNOWN, { labels: { service: 'chat' } }), written out by hand from the format
 * spec: HELP, TYPE, samples; the constant label first, then route/status/code, then le.
 */
const KNOWN_TEXT = `# HELP wsmount_connections Open WebSocket connections, by route pattern.
# TYPE wsmount_connections gauge
wsmount_connections{service="chat",route="/chat"} 3
wsmount_connections{service="chat",route="/rooms/:room"} 0
# HELP wsmount_pending_handshakes Upgrades matched to a route whose verify() is still running.
# TYPE wsmount_pending_handshakes gauge
wsmount_pending_handshakes{service="chat"} 1
# HELP wsmount_handshakes_accepted_total Handshakes answered with 101 Switching Protocols, by route pattern.
# TYPE wsmount_handshakes_accepted_total counter
wsmount_handshakes_accepted_total{service="chat",route="/chat"} 10
wsmount_handshakes_accepted_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_handshakes_rejected_total Handshakes refused, by HTTP status.
# TYPE wsmount_handshakes_rejected_total counter
wsmount_handshakes_rejected_total{service="chat",status="403"} 2
wsmount_handshakes_rejected_total{service="chat",status="503"} 1
# HELP wsmount_verify_timeouts_total Upgrades answered 503 because verify() ran past verifyTimeout.
# TYPE wsmount_verify_timeouts_total counter
wsmount_verify_timeouts_total{service="chat"} 8
# HELP wsmount_messages_received_total Data messages received (after reassembly), by route pattern.
# TYPE wsmount_messages_received_total counter
wsmount_messages_received_total{service="chat",route="/chat"} 120
wsmount_messages_received_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_messages_sent_total Data messages sent (a broadcast or publish counts once per recipient), by route pattern.
# TYPE wsmount_messages_sent_total counter
wsmount_messages_sent_total{service="chat",route="/chat"} 240
wsmount_messages_sent_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_received_bytes_total Bytes read from WebSocket connections, frame headers included, by route pattern.
# TYPE wsmount_received_bytes_total counter
wsmount_received_bytes_total{service="chat",route="/chat"} 4096
wsmount_received_bytes_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_sent_bytes_total Bytes written to WebSocket connections, frame headers included, by route pattern.
# TYPE wsmount_sent_bytes_total counter
wsmount_sent_bytes_total{service="chat",route="/chat"} 8192
wsmount_sent_bytes_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_closes_total Closed connections, by route pattern and the close code onClose saw (past 32 distinct codes on a route, new codes count as code="other").
# TYPE wsmount_closes_total counter
wsmount_closes_total{service="chat",route="/chat",code="1000"} 5
wsmount_closes_total{service="chat",route="/chat",code="1006"} 2
wsmount_closes_total{service="chat",route="/rooms/:room",code="4000"} 2
wsmount_closes_total{service="chat",route="/rooms/:room",code="other"} 1
# HELP wsmount_backpressure_dropped_messages_total Messages not sent because the connection was over maxBackpressure, by route pattern.
# TYPE wsmount_backpressure_dropped_messages_total counter
wsmount_backpressure_dropped_messages_total{service="chat",route="/chat"} 4
wsmount_backpressure_dropped_messages_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_backpressure_closes_total Connections closed with 1008 by the 'close' backpressure policy, by route pattern.
# TYPE wsmount_backpressure_closes_total counter
wsmount_backpressure_closes_total{service="chat",route="/chat"} 1
wsmount_backpressure_closes_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_heartbeat_pings_total Heartbeat pings sent, by route pattern.
# TYPE wsmount_heartbeat_pings_total counter
wsmount_heartbeat_pings_total{service="chat",route="/chat"} 30
wsmount_heartbeat_pings_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_pong_timeouts_total Connections terminated for not answering a heartbeat ping within pongTimeout, by route pattern.
# TYPE wsmount_pong_timeouts_total counter
wsmount_pong_timeouts_total{service="chat",route="/chat"} 6
wsmount_pong_timeouts_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_idle_closes_total Connections closed with 1001 by idleTimeout, by route pattern.
# TYPE wsmount_idle_closes_total counter
wsmount_idle_closes_total{service="chat",route="/chat"} 7
wsmount_idle_closes_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_rate_limit_closes_total Connections closed with 1008 by the message rate limit, by route pattern.
# TYPE wsmount_rate_limit_closes_total counter
wsmount_rate_limit_closes_total{service="chat",route="/chat"} 2
wsmount_rate_limit_closes_total{service="chat",route="/rooms/:room"} 0
# HELP wsmount_heartbeat_rtt_seconds Heartbeat round trips, from a ping to the peer's pong, in seconds, by route pattern.
# TYPE wsmount_heartbeat_rtt_seconds histogram
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/chat",le="0.0005"} 1
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/chat",le="0.01"} 5
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/chat",le="2.5"} 5
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/chat",le="+Inf"} 7
wsmount_heartbeat_rtt_seconds_sum{service="chat",route="/chat"} 6.25
wsmount_heartbeat_rtt_seconds_count{service="chat",route="/chat"} 7
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/rooms/:room",le="0.0005"} 0
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/rooms/:room",le="0.01"} 0
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/rooms/:room",le="2.5"} 0
wsmount_heartbeat_rtt_seconds_bucket{service="chat",route="/rooms/:room",le="+Inf"} 0
wsmount_heartbeat_rtt_seconds_sum{service="chat",route="/rooms/:room"} 0
wsmount_heartbeat_rtt_seconds_count{service="chat",route="/rooms/:room"} 0
# HELP wsmount_topics Topics with at least one subscriber on this handler.
# TYPE wsmount_topics gauge
wsmount_topics{service="chat"} 4
# HELP wsmount_subscriptions Topic subscriptions of this handler's connections, in all.
# TYPE wsmount_subscriptions gauge
wsmount_subscriptions{service="chat"} 9
# HELP wsmount_publishes_total publish() calls, by the handler or its connections.
# TYPE wsmount_publishes_total counter
wsmount_publishes_total{service="chat"} 17
# HELP wsmount_compression_connections Open connections that negotiated permessage-deflate.
# TYPE wsmount_compression_connections gauge
wsmount_compression_connections{service="chat"} 2
# HELP wsmount_compression_messages_received_total Messages that arrived compressed.
# TYPE wsmount_compression_messages_received_total counter
wsmount_compression_messages_received_total{service="chat"} 5
# HELP wsmount_compression_received_compressed_bytes_total Payload bytes of the messages that arrived compressed, as they came (compressed).
# TYPE wsmount_compression_received_compressed_bytes_total counter
wsmount_compression_received_compressed_bytes_total{service="chat"} 300
# HELP wsmount_compression_received_inflated_bytes_total Payload bytes of the messages that arrived compressed, once inflated.
# TYPE wsmount_compression_received_inflated_bytes_total counter
wsmount_compression_received_inflated_bytes_total{service="chat"} 1200
# HELP wsmount_compression_messages_sent_total Messages sent compressed (a broadcast counts once per recipient).
# TYPE wsmount_compression_messages_sent_total counter
wsmount_compression_messages_sent_total{service="chat"} 6
# HELP wsmount_compression_sent_uncompressed_bytes_total Payload bytes of the messages sent compressed, before compression.
# TYPE wsmount_compression_sent_uncompressed_bytes_total counter
wsmount_compression_sent_uncompressed_bytes_total{service="chat"} 2400
# HELP wsmount_compression_sent_compressed_bytes_total Payload bytes of the messages sent compressed, after compression.
# TYPE wsmount_compression_sent_compressed_bytes_total counter
wsmount_compression_sent_compressed_bytes_total{service="chat"} 600
# HELP wsmount_backplane_connected 1 while the backplane's transport is up, 0 while it is down.
# TYPE wsmount_backplane_connected gauge
wsmount_backplane_connected{service="chat"} 1
# HELP wsmount_backplane_messages_sent_total Messages sent to the backplane.
# TYPE wsmount_backplane_messages_sent_total counter
wsmount_backplane_messages_sent_total{service="chat"} 11
# HELP wsmount_backplane_messages_received_total Messages received from the backplane (this handler's own echoes not counted).
# TYPE wsmount_backplane_messages_received_total counter
wsmount_backplane_messages_received_total{service="chat"} 13
# HELP wsmount_backplane_dropped_publishes_total Publishes not sent to other processes because the backplane was down (lost: delivery is at most once).
# TYPE wsmount_backplane_dropped_publishes_total counter
wsmount_backplane_dropped_publishes_total{service="chat"} 3
# HELP wsmount_backplane_outages_total Times the backplane's transport went down.
# TYPE wsmount_backplane_outages_total counter
wsmount_backplane_outages_total{service="chat"} 1
# HELP wsmount_backplane_errors_total Errors the backplane reported.
# TYPE wsmount_backplane_errors_total counter
wsmount_backplane_errors_total{service="chat"} 2
# HELP wsmount_backplane_malformed_messages_total Messages from the backplane dropped as malformed or from a newer wsmount.
# TYPE wsmount_backplane_malformed_messages_total counter
wsmount_backplane_malformed_messages_total{service="chat"} 5
`;

// ---- tests -------------------------------------------------------------------------------------

describe('the exposition of a known snapshot', () => {
  test('is exactly the hand-written text', () => {
    expect(prometheusMetrics(fake(KNOWN), { labels: { service: 'chat' } })).toBe(KNOWN_TEXT);
  });

  test('promtool check metrics finds no problem in it (parser and lint)', () => {
    expectPromtoolClean(KNOWN_TEXT);
    expectPromtoolClean(prometheusMetrics(fake(KNOWN), { labels: { service: 'chat' } }));
  });

  test('promtool does report problems (the check above can fail)', () => {
    // A counter without _total, and a family whose samples are split by another family.
    const bad = promtool('# HELP x_bytes y\n# TYPE x_bytes counter\nx_bytes 1\n');
    expect(bad.status).not.toBe(0);
    expect(bad.output).toContain('_total');
    const split = promtool('# TYPE a gauge\na{x="1"} 1\n# TYPE b gauge\nb 1\na{x="2"} 2\n');
    expect(split.status).not.toBe(0);
  });

  test('the reader below agrees: each family once, HELP and TYPE before contiguous samples', () => {
    const families = parse(KNOWN_TEXT);
    expect([...families.keys()]).toEqual(FAMILIES.map((f) => `wsmount_${f.name}`));
    for (const [name, f] of families) {
      if (f.type === 'counter') expect(name).toMatch(/_total$/);
      else expect(name).not.toMatch(/_total$/);
    }
  });

  test('histogram buckets are running sums of the snapshot counts, le="+Inf" equals _count', () => {
    const counts = [3, 0, 5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
    const s = { ...KNOWN, routes: { '/a': route({ heartbeatRtt: { bounds: DURATION_BOUNDS, counts, count: 15, sum: 42.5 } }) } };
    const rtt = parse(prometheusMetrics(fake(s))).get('wsmount_heartbeat_rtt_seconds');
    const buckets = rtt?.samples.filter((x) => x.name.endsWith('_bucket')) ?? [];
    expect(buckets.map((b) => b.labels.le)).toEqual([...DURATION_BOUNDS.map(String), '+Inf']);
    expect(buckets.map((b) => Number(b.value))).toEqual([3, 3, 8, 9, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 15]);
    expect(rtt?.samples.find((x) => x.name.endsWith('_count'))?.value).toBe('15');
    expect(rtt?.samples.find((x) => x.name.endsWith('_sum'))?.value).toBe('42.5');
  });

  test('no backplane: no backplane family at all', () => {
    const text = prometheusMetrics(fake({ ...KNOWN, backplane: null }));
    expect(text).not.toContain('backplane');
    expectPromtoolClean(text);
  });

  test('values: integers and decimals as JavaScript prints them, NaN and ±Inf as the format spells them', () => {
    expect([1, 0, 6.25, 0.0005, 1e21, 5e-7, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(formatValue)).toEqual([
      '1',
      '0',
      '6.25',
      '0.0005',
      '1e+21',
      '5e-7',
      'NaN',
      '+Inf',
      '-Inf',
    ]);
  });
});

describe('escaping', () => {
  test('label values: backslash, double quote and line feed; HELP text: backslash and line feed', () => {
    expect(escapeLabelValue('plain /rooms/:id')).toBe('plain /rooms/:id');
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('plain "quoted"')).toBe('plain "quoted"');
    expect(escapeHelp('a\\b\nc "d"')).toBe('a\\\\b\\nc "d"');
  });

  test('constant labels and route patterns with them are escaped in every sample, and read back as given', () => {
    const value = 'eu "west"\\1\nb';
    const weird = '/say "hi"\\there\n';
    const s = { ...KNOWN, routes: { [weird]: route({ connections: 2, closesByCode: { '1000': 1 } }) } };
    const text = prometheusMetrics(fake(s), { labels: { region: value } });
    expect(text).toContain('wsmount_connections{region="eu \\"west\\"\\\\1\\nb",route="/say \\"hi\\"\\\\there\\n"} 2\n');
    const connections = parse(text).get('wsmount_connections');
    expect(connections?.samples).toEqual([{ name: 'wsmount_connections', labels: { region: value, route: weird }, value: '2' }]);
    expectPromtoolClean(text);
  });
});

describe('bounded labels', () => {
  test(`40 distinct close codes on a route: ${MAX_CLOSE_CODES} codes and code="other"`, async () => {
    const handler = createWebSocketHandler({ '/chat': Echo }, { logLevel: 'silent', pingInterval: 0 });
    try {
      for (let i = 0; i < 40; i++) {
        const client = await connect(handler, '/chat');
        await client.close(3000 + i);
      }
      await waitFor(() => Object.values(handler.stats().closesByCode).reduce((a, b) => a + b, 0) === 40, 5000, '40 closes');
      const text = prometheusMetrics(handler);
      const closes = parse(text).get('wsmount_closes_total')?.samples ?? [];
      expect(closes).toHaveLength(MAX_CLOSE_CODES + 1);
      expect(closes.slice(0, MAX_CLOSE_CODES).map((x) => x.labels.code)).toEqual(Array.from({ length: MAX_CLOSE_CODES }, (_, i) => String(3000 + i)));
      expect(closes.at(-1)).toEqual({ name: 'wsmount_closes_total', labels: { route: '/chat', code: 'other' }, value: String(40 - MAX_CLOSE_CODES) });
      expectPromtoolClean(text);
    } finally {
      await handler.close({ timeout: 500 });
    }
  });

  test('connections, topics and client addresses add no series: the same series with 0 and with 30 connections in 30 rooms', async () => {
    class Room extends Behavior<{ room: string }> {
      override onOpen(): void {
        this.subscribe(`room/${this.params.room}`);
      }
    }
    const handler = createWebSocketHandler({ '/rooms/:room': Room, '/chat': Echo }, { logLevel: 'silent', pingInterval: 0 });
    try {
      const series = (): string[] =>
        prometheusMetrics(handler)
          .split('\n')
          .filter((l) => l !== '' && !l.startsWith('#'))
          .map((l) => l.slice(0, l.lastIndexOf(' ')));
      const before = series();
      const clients = [];
      for (let i = 0; i < 30; i++) {
        const client = await connect(handler, `/rooms/r${i}`, { remoteAddress: `203.0.113.${i + 1}`, remotePort: 40000 + i });
        clients.push(client);
        await waitFor(() => handler.subscriberCount(`room/r${i}`) === 1, 5000, 'the subscription');
        expect(handler.publish(`room/r${i}`, 'hello')).toBe(1);
        await client.nextMessage();
        client.sendText('x');
      }
      await waitFor(() => handler.stats().messagesIn === 30, 5000, '30 messages');
      expect(handler.stats()).toMatchObject({ connections: 30, topics: 30, subscriptions: 30, publishes: 30 });
      const during = series();
      expect(during).toEqual(before);
      const text = prometheusMetrics(handler);
      expect(text).not.toMatch(/r[0-9]+"|203\.0\.113|room\//);
      expect(text).toContain('wsmount_topics 30\n');
      expect(text).toContain('wsmount_connections{route="/rooms/:room"} 30\n');
      for (const client of clients) await client.close();
    } finally {
      await handler.close({ timeout: 500 });
    }
  });
});

describe('several handlers in one process', () => {
  test('each family once, each handler with its labels, the common labels first', async () => {
    const chat = createWebSocketHandler({ '/chat': Echo }, { logLevel: 'silent', pingInterval: 0 });
    const admin = createWebSocketHandler({ '/admin': Echo }, { logLevel: 'silent', pingInterval: 0 });
    try {
      const client = await connect(chat, '/chat');
      client.sendText('hi');
      await client.nextMessage();
      const text = prometheusMetrics(
        [
          { source: chat, labels: { handler: 'chat' } },
          { source: admin, labels: { handler: 'admin' } },
        ],
        { labels: { service: 'api' } },
      );
      const families = parse(text);
      expect(families.size).toBe(FAMILIES.length - 7); // no backplane on either
      expect(families.get('wsmount_messages_received_total')?.samples).toEqual([
        { name: 'wsmount_messages_received_total', labels: { service: 'api', handler: 'chat', route: '/chat' }, value: '1' },
        { name: 'wsmount_messages_received_total', labels: { service: 'api', handler: 'admin', route: '/admin' }, value: '0' },
      ]);
      expect(families.get('wsmount_topics')?.samples.map((x) => x.labels)).toEqual([
        { service: 'api', handler: 'chat' },
        { service: 'api', handler: 'admin' },
      ]);
      expect(text.match(/^# TYPE wsmount_connections /gm)).toHaveLength(1);
      expectPromtoolClean(text);
      await client.close();
    } finally {
      await chat.close({ timeout: 500 });
      await admin.close({ timeout: 500 });
    }
  });

  test('backplane families appear when any handler has one, with samples for those that do', () => {
    const text = prometheusMetrics([
      { source: fake({ ...KNOWN, backplane: null }), labels: { handler: 'a' } },
      { source: fake(KNOWN), labels: { handler: 'b' } },
    ]);
    expect(parse(text).get('wsmount_backplane_outages_total')?.samples).toEqual([{ name: 'wsmount_backplane_outages_total', labels: { handler: 'b' }, value: '1' }]);
    expectPromtoolClean(text);
  });

  test('a one-element array may hold a bare handler; the prefix applies to every name', () => {
    const text = prometheusMetrics([fake(KNOWN)], { prefix: 'myapp_ws_' });
    const names = [...parse(text).keys()];
    expect(names).toHaveLength(FAMILIES.length);
    for (const name of names) expect(name).toMatch(/^myapp_ws_/);
    expectPromtoolClean(text);
  });
});

describe('mistakes say what to do', () => {
  const source = fake(KNOWN);
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['a prefix with a dash', () => prometheusMetrics(source, { prefix: 'my-app_' }), /prefix 'my-app_' cannot start a Prometheus metric name: use letters, digits and underscores.*e\.g\. 'my_app_'/],
    ['a prefix starting with a digit', () => prometheusMetrics(source, { prefix: '9ws_' }), /prefix '9ws_'.*e\.g\. '_9ws_'/],
    ['a prefix with a colon', () => prometheusMetrics(source, { prefix: 'app:ws_' }), /':' is reserved for recording rules/],
    ['a prefix starting with __', () => prometheusMetrics(source, { prefix: '__ws_' }), /not starting with a digit or '__'/],
    ['a prefix that is not a string', () => prometheusMetrics(source, { prefix: 3 as unknown as string }), /prefix must be a string such as 'myapp_ws_'/],
    ['a label name with a dash', () => prometheusMetrics(source, { labels: { 'my-app': 'x' } }), /'my-app' is not a Prometheus label name: .*e\.g\. 'my_app'/],
    ['a label name starting with __', () => prometheusMetrics(source, { labels: { __name: 'x' } }), /'__name' is not a Prometheus label name/],
    ['a label wsmount sets', () => prometheusMetrics(source, { labels: { route: 'x' } }), /'route' is a label wsmount sets itself .*choose another name, e\.g\. 'ws_route'/],
    ['le', () => prometheusMetrics(source, { labels: { le: 'x' } }), /'le' is a label wsmount sets itself/],
    ['a label Prometheus sets', () => prometheusMetrics(source, { labels: { job: 'x' } }), /'job' is set by Prometheus from the scrape config/],
    ['a label value that is not a string', () => prometheusMetrics(source, { labels: { n: 1 as unknown as string } }), /the value of 'n' must be a string, not number 1/],
    ['an empty label value', () => prometheusMetrics(source, { labels: { n: '' } }), /the value of 'n' is empty, which Prometheus reads as no label at all: give a value or leave the label out/],
    ['labels that are not an object', () => prometheusMetrics(source, { labels: 'x' as unknown as Record<string, string> }), /options\.labels must be an object of label names to string values/],
    ['an unknown option', () => prometheusMetrics(source, { prefx: 'x_' } as never), /unknown option 'prefx': the options are 'prefix' and 'labels'/],
    ['not a handler', () => prometheusMetrics({} as never), /expected a handler from createWebSocketHandler\(\) \(anything with a stats\(\) method\)/],
    ['an empty array', () => prometheusMetrics([]), /the array of handlers is empty: give at least one handler/],
    [
      'two handlers without labels',
      () => prometheusMetrics([fake(KNOWN), fake(KNOWN)]),
      /entries 0 and 1 have the same labels \{\}: give each handler labels of its own, e\.g\. \[\{ source: chat, labels: \{ handler: 'chat' \} \}/,
    ],
    [
      'two handlers with the same labels (in another order)',
      () =>
        prometheusMetrics([
          { source: fake(KNOWN), labels: { a: '1', b: '2' } },
          { source: fake(KNOWN), labels: { b: '2', a: '1' } },
        ]),
      /entries 0 and 1 have the same labels \{a="1",b="2"\}/,
    ],
    [
      'the same handler twice',
      () =>
        prometheusMetrics([
          { source, labels: { handler: 'a' } },
          { source, labels: { handler: 'b' } },
        ]),
      /entries 0 and 1 are the same handler: list each handler once/,
    ],
    [
      'a label both common and per handler',
      () => prometheusMetrics([{ source, labels: { service: 'x' } }], { labels: { service: 'y' } }),
      /entry 0: label 'service' is already in options\.labels: give it in one place only/,
    ],
    ['an entry with a misspelt key', () => prometheusMetrics([{ source, label: { a: 'b' } } as never]), /entry 0: unknown key 'label': an entry is \{ source, labels \}/],
    ['an entry whose source is not a handler', () => prometheusMetrics([{ source: {}, labels: {} } as never]), /entry 0: source must be a handler from createWebSocketHandler\(\)/],
  ];
  test.each(cases)('%s', (_what, call, message) => {
    expect(call).toThrow(message);
  });

  test('prometheusHandler() checks when it is created, not at the first scrape', () => {
    expect(() => prometheusHandler(source, { prefix: 'a-b' })).toThrow(RangeError);
    expect(() => prometheusHandler([source, source])).toThrow(/same handler/);
  });
});

describe('prometheusHandler()', () => {
  async function serve(listener: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  test('on a plain Node server: GET 200 with the exposition, HEAD 200 without a body, POST 405 with Allow', async () => {
    const source = fake(KNOWN);
    const metrics = prometheusHandler(source, { labels: { service: 'chat' } });
    const server = await serve((req, res) => {
      if (req.url === '/metrics') return metrics(req, res);
      res.writeHead(404).end();
    });
    try {
      const get = await fetch(`${server.url}/metrics`);
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(get.headers.get('cache-control')).toBe('no-store');
      const body = await get.text();
      expect(body).toBe(KNOWN_TEXT);
      expect(get.headers.get('content-length')).toBe(String(Buffer.byteLength(KNOWN_TEXT)));

      const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(KNOWN_TEXT)));
      expect(await head.text()).toBe('');

      for (const method of ['POST', 'PUT', 'DELETE']) {
        const refused = await fetch(`${server.url}/metrics`, { method });
        expect(refused.status).toBe(405);
        expect(refused.headers.get('allow')).toBe('GET, HEAD');
        expect(await refused.text()).toContain('GET');
      }
      // One stats() per GET or HEAD, none for a refused method.
      expect(source.calls).toBe(2);
    } finally {
      await server.close();
    }
  });

  test('in Express: app.get("/metrics", prometheusHandler(handler)), HEAD included', async () => {
    const handler = createWebSocketHandler({ '/chat': Echo }, { logLevel: 'silent', pingInterval: 0 });
    const app = express();
    app.get('/metrics', prometheusHandler(handler));
    const server = await serve(app);
    try {
      const get = await fetch(`${server.url}/metrics`);
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const body = await get.text();
      expect(body).toBe(prometheusMetrics(handler));
      expect(body).toContain('wsmount_connections{route="/chat"} 0\n');
      expectPromtoolClean(body);
      const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
    } finally {
      await server.close();
      await handler.close({ timeout: 500 });
    }
  });

  test('a stats() that throws answers 500 and the server goes on', async () => {
    let fail = true;
    const metrics = prometheusHandler({
      stats: () => {
        if (fail) throw new Error('boom');
        return KNOWN;
      },
    });
    const server = await serve(metrics);
    try {
      const broken = await fetch(server.url);
      expect(broken.status).toBe(500);
      expect(await broken.text()).toContain('boom');
      fail = false;
      expect((await fetch(server.url)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  test('prometheusMetrics() takes one stats() snapshot per handler per call', () => {
    const a = fake(KNOWN);
    const b = fake(KNOWN);
    prometheusMetrics([
      { source: a, labels: { h: 'a' } },
      { source: b, labels: { h: 'b' } },
    ]);
    expect([a.calls, b.calls]).toEqual([1, 1]);
  });
});

describe('the README', () => {
  test('its metric table lists every family, with its type', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const f of FAMILIES) {
      const row = new RegExp(`^\\| \`wsmount_${f.name}\` \\| ${f.type} \\|`, 'm');
      expect(readme, `README row for wsmount_${f.name}`).toMatch(row);
    }
  });
});
