/**
 * wsmount's counters as Prometheus metrics: `prometheusMetrics()` writes the text exposition
 * (format 0.0.4) from one `stats()` snapshot per handler, `prometheusHandler()` serves it on an
 * HTTP route. Every family is listed in {@link FAMILIES}; the README's "Metrics for Prometheus"
 * table documents the same list.
 *
 * Labels stay bounded: `route` (a pattern from the routes table), `status` (an HTTP status),
 * `code` (a close code, at most 33 values per route: see `MAX_CLOSE_CODES`), `le` (a histogram
 * bound) and the constant labels the caller gives. Nothing is ever labelled per connection, per
 * topic or per client address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BackplaneStats } from '../pubsub/backplane.js';
import type { CompressionStats, DurationHistogram, HandlerStats, RouteStats } from '../stats.js';
import { CONTENT_TYPE, type MetricType, escapeLabelValue, familyHeader, formatValue, isLabelName, isMetricName, labelPairs, sampleLine, suggestName } from './exposition.js';

/** Options of {@link prometheusMetrics} and {@link prometheusHandler}. */
export interface PrometheusOptions {
  /**
   * Put before every metric name, as it is (end it with `_`). Default `'wsmount_'`. Letters,
   * digits and underscores, not starting with a digit or `__`; `''` for bare names.
   */
  prefix?: string;
  /**
   * Constant labels on every sample (`{ service: 'chat' }`). Names follow Prometheus' label
   * grammar (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`) and may not be one wsmount sets
   * itself (`route`, `status`, `code`, `le`) or one Prometheus sets when it scrapes (`job`,
   * `instance`); values are non-empty strings (escaped as the format requires).
   */
  labels?: Readonly<Record<string, string>>;
}

/** Anything with a `stats()` snapshot: a {@link WebSocketHandler} (or a standalone server's `.handler`). */
export interface StatsSource {
  stats(): HandlerStats;
}

/**
 * One handler among several in a process, with the constant labels that tell its samples from
 * the others' (`{ source: chat, labels: { handler: 'chat' } }`). They are added to
 * {@link PrometheusOptions.labels}, and may not repeat one of those.
 */
export interface LabeledStatsSource {
  source: StatsSource;
  labels: Readonly<Record<string, string>>;
}

/**
 * What {@link prometheusMetrics} and {@link prometheusHandler} read: one handler, or an array of
 * handlers each with distinct labels ({@link LabeledStatsSource}; a one-element array may hold a
 * bare handler).
 */
export type PrometheusSource = StatsSource | readonly (StatsSource | LabeledStatsSource)[];

/**
 * The Prometheus text exposition (format 0.0.4) of one or several handlers' counters, built from
 * one `stats()` snapshot of each. Serve it with the Content-Type
 * `text/plain; version=0.0.4; charset=utf-8`, or mount {@link prometheusHandler}, which does.
 *
 * Several handlers in one process go in one exposition, each family once:
 *
 * ```ts
 * prometheusMetrics([
 *   { source: chat, labels: { handler: 'chat' } },
 *   { source: admin, labels: { handler: 'admin' } },
 * ]);
 * ```
 *
 * Throws a `TypeError` or `RangeError` that says what to change for an invalid prefix, label name
 * or value, a source without `stats()`, or two handlers with the same labels.
 */
export function prometheusMetrics(source: PrometheusSource, options: PrometheusOptions = {}): string {
  return render(plan(source, options, 'prometheusMetrics()'));
}

/**
 * A request handler that answers a scrape: GET and HEAD get 200 with
 * {@link prometheusMetrics}' text (Content-Type `text/plain; version=0.0.4; charset=utf-8`,
 * `Cache-Control: no-store`), any other method 405 with `Allow: GET, HEAD`. It does not look at
 * the path: mount it on a route of your own, behind whatever guards that route has.
 *
 * ```ts
 * http.createServer((req, res) => {
 *   if (req.url === '/metrics') return metrics(req, res);   // const metrics = prometheusHandler(sockets)
 *   app(req, res);
 * });
 * app.get('/metrics', prometheusHandler(sockets));          // Express
 * ```
 *
 * The sources and options are checked (and the labels rendered) once, here: a mistake throws
 * when the route is mounted, not at the first scrape.
 */
export function prometheusHandler(source: PrometheusSource, options: PrometheusOptions = {}): (request: IncomingMessage, response: ServerResponse) => void {
  const p = plan(source, options, 'prometheusHandler()');
  return (request, response) => {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') {
      plain(response, 405, 'Method Not Allowed: read metrics with GET (or HEAD).\n', { Allow: 'GET, HEAD' });
      return;
    }
    let text: string;
    try {
      text = render(p);
    } catch (error) {
      plain(response, 500, `wsmount: the metrics could not be read: ${error instanceof Error ? error.message : String(error)}\n`, {});
      return;
    }
    response.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    if (method === 'HEAD') response.end();
    else response.end(text);
  };
}

function plain(response: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  response.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

// ---- checking the sources and options once ----------------------------------------------------

/** Sources with their constant labels rendered (`handler="chat"`), and the prefix: what a scrape needs. */
interface Plan {
  prefix: string;
  sources: Array<{ source: StatsSource; labels: string }>;
}

const DEFAULT_PREFIX = 'wsmount_';
const OPTION_KEYS = new Set(['prefix', 'labels']);
const ENTRY_KEYS = new Set(['source', 'labels']);
/** Label names the exposition sets itself. */
const OWN_LABELS = new Set(['route', 'status', 'code', 'le']);
/** Label names Prometheus attaches to every scraped series (a target's own would be renamed `exported_…`). */
const SCRAPE_LABELS = new Set(['job', 'instance']);

const EXAMPLE = "[{ source: chat, labels: { handler: 'chat' } }, { source: admin, labels: { handler: 'admin' } }]";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStatsSource(value: unknown): value is StatsSource {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { stats?: unknown }).stats === 'function';
}

function plan(source: PrometheusSource, options: PrometheusOptions, caller: string): Plan {
  const at = `wsmount: ${caller}`;
  if (!isRecord(options)) throw new TypeError(`${at}: options must be an object ({ prefix, labels }), not ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`${at}: unknown option '${key}': the options are 'prefix' and 'labels'`);
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string') throw new TypeError(`${at}: prefix must be a string such as 'myapp_ws_', not ${describe(prefix)}`);
  if (prefix !== '' && !isMetricName(prefix)) {
    throw new RangeError(
      `${at}: prefix '${prefix}' cannot start a Prometheus metric name: use letters, digits and underscores, not starting with a digit or '__'` +
        `${prefix.includes(':') ? " (':' is reserved for recording rules)" : ''}, e.g. '${suggestName(prefix)}'`,
    );
  }
  const common = checkLabels(options.labels ?? {}, `${at}: options.labels`);

  const entries: readonly unknown[] = Array.isArray(source) ? source : [source];
  if (Array.isArray(source) && entries.length === 0) throw new RangeError(`${at}: the array of handlers is empty: give at least one handler`);
  const sources: Plan['sources'] = [];
  const seen = new Map<string, number>();
  const handlers = new Map<StatsSource, number>();
  entries.forEach((entry, i) => {
    const where = Array.isArray(source) ? `${at}: entry ${i}` : at;
    let handler: StatsSource;
    let own: Array<[string, string]> = [];
    if (isStatsSource(entry)) {
      handler = entry;
    } else if (isRecord(entry) && 'source' in entry) {
      for (const key of Object.keys(entry)) {
        if (!ENTRY_KEYS.has(key)) throw new TypeError(`${where}: unknown key '${key}': an entry is { source, labels }`);
      }
      if (!isStatsSource(entry.source)) throw new TypeError(`${where}: source must be a handler from createWebSocketHandler() (anything with a stats() method), not ${describe(entry.source)}`);
      handler = entry.source;
      own = checkLabels(entry.labels, `${where}: labels`);
      for (const [name] of own) {
        if (common.some(([n]) => n === name)) throw new RangeError(`${where}: label '${name}' is already in options.labels: give it in one place only`);
      }
    } else {
      throw new TypeError(`${where}: expected a handler from createWebSocketHandler() (anything with a stats() method) or { source, labels }, not ${describe(entry)}`);
    }
    const before = handlers.get(handler);
    if (before !== undefined) throw new RangeError(`${at}: entries ${before} and ${i} are the same handler: list each handler once (its samples would count twice in a sum)`);
    handlers.set(handler, i);
    const all = [...common, ...own];
    // Two sources with the same label set would write the same series twice.
    const key = labelPairs([...all].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    const twin = seen.get(key);
    if (twin !== undefined) {
      throw new RangeError(`${at}: entries ${twin} and ${i} have the same labels {${key}}: give each handler labels of its own, e.g. ${EXAMPLE}`);
    }
    seen.set(key, i);
    sources.push({ source: handler, labels: labelPairs(all) });
  });
  return { prefix, sources };
}

/** Checks a labels object; returns its pairs in order. */
function checkLabels(labels: unknown, where: string): Array<[string, string]> {
  if (!isRecord(labels)) throw new TypeError(`${where} must be an object of label names to string values ({ handler: 'chat' }), not ${describe(labels)}`);
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!isLabelName(name)) {
      throw new RangeError(`${where}: '${name}' is not a Prometheus label name: use letters, digits and underscores, not starting with a digit or '__', e.g. '${suggestName(name)}'`);
    }
    if (OWN_LABELS.has(name)) throw new RangeError(`${where}: '${name}' is a label wsmount sets itself (route, status, code, le): choose another name, e.g. 'ws_${name}'`);
    if (SCRAPE_LABELS.has(name)) throw new RangeError(`${where}: '${name}' is set by Prometheus from the scrape config (job, instance): choose another name, e.g. 'handler'`);
    if (typeof value !== 'string') throw new TypeError(`${where}: the value of '${name}' must be a string, not ${describe(value)}`);
    if (value === '') throw new RangeError(`${where}: the value of '${name}' is empty, which Prometheus reads as no label at all: give a value or leave the label out`);
    pairs.push([name, value]);
  }
  return pairs;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'object') return 'an object without stats()';
  return typeof value === 'function' ? 'a function' : `${typeof value} ${String(value)}`;
}

// ---- the families ------------------------------------------------------------------------------

/** Where a family writes its samples for one handler. @internal */
export interface Out {
  /** The family's full name (prefix included). */
  name: string;
  /** The handler's constant labels, rendered (`handler="chat"`), or ''. */
  base: string;
  text: string;
}

/** One metric family: its name after the prefix, type, HELP text, and how it reads a snapshot. @internal */
export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Whether a snapshot has this family at all (the backplane's need a backplane). */
  readonly present?: (s: HandlerStats) => boolean;
  readonly write: (s: HandlerStats, out: Out) => void;
}

function sample(out: Out, suffix: string, labels: string, value: number): void {
  const all = out.base === '' ? labels : labels === '' ? out.base : `${out.base},${labels}`;
  out.text += sampleLine(out.name + suffix, all, value);
}

function routeLabel(pattern: string): string {
  return `route="${escapeLabelValue(pattern)}"`;
}

/** A value per route pattern. */
function perRoute(name: string, type: MetricType, help: string, pick: (r: RouteStats) => number): Family {
  return {
    name,
    type,
    help,
    write(s, out) {
      for (const [pattern, r] of Object.entries(s.routes)) sample(out, '', routeLabel(pattern), pick(r));
    },
  };
}

/** One value per handler. */
function single(name: string, type: MetricType, help: string, pick: (s: HandlerStats) => number): Family {
  return { name, type, help, write: (s, out) => sample(out, '', '', pick(s)) };
}

function compression(name: string, help: string, pick: (c: CompressionStats) => number, type: MetricType = 'counter'): Family {
  return single(name, type, help, (s) => pick(s.compression));
}

function backplane(name: string, type: MetricType, help: string, pick: (b: BackplaneStats) => number): Family {
  return {
    name,
    type,
    help,
    present: (s) => s.backplane !== null,
    write(s, out) {
      if (s.backplane !== null) sample(out, '', '', pick(s.backplane));
    },
  };
}

/** `_bucket{le}` (running sums, `+Inf` last), `_sum` and `_count` of one histogram. */
function histogram(out: Out, labels: string, h: DurationHistogram): void {
  const sep = labels === '' ? '' : ',';
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    sample(out, '_bucket', `${labels}${sep}le="${formatValue(bound)}"`, cumulative);
  });
  // The +Inf bucket and _count are the same number by definition: both are the running total.
  for (let i = h.bounds.length; i < h.counts.length; i++) cumulative += h.counts[i] ?? 0;
  sample(out, '_bucket', `${labels}${sep}le="+Inf"`, cumulative);
  sample(out, '_sum', labels, h.sum);
  sample(out, '_count', labels, cumulative);
}

/** Every family, in the order they are written. The README's metric table lists the same. @internal */
export const FAMILIES: readonly Family[] = [
  perRoute('connections', 'gauge', 'Open WebSocket connections, by route pattern.', (r) => r.connections),
  single('pending_handshakes', 'gauge', 'Upgrades matched to a route whose verify() is still running.', (s) => s.pendingHandshakes),
  perRoute('handshakes_accepted_total', 'counter', 'Handshakes answered with 101 Switching Protocols, by route pattern.', (r) => r.handshakesAccepted),
  {
    name: 'handshakes_rejected_total',
    type: 'counter',
    help: 'Handshakes refused, by HTTP status.',
    write(s, out) {
      for (const [status, n] of Object.entries(s.handshakesRejectedByStatus)) sample(out, '', `status="${escapeLabelValue(status)}"`, n);
    },
  },
  single('verify_timeouts_total', 'counter', 'Upgrades answered 503 because verify() ran past verifyTimeout.', (s) => s.verifyTimeouts),
  perRoute('messages_received_total', 'counter', 'Data messages received (after reassembly), by route pattern.', (r) => r.messagesIn),
  perRoute('messages_sent_total', 'counter', 'Data messages sent (a broadcast or publish counts once per recipient), by route pattern.', (r) => r.messagesOut),
  perRoute('received_bytes_total', 'counter', 'Bytes read from WebSocket connections, frame headers included, by route pattern.', (r) => r.bytesIn),
  perRoute('sent_bytes_total', 'counter', 'Bytes written to WebSocket connections, frame headers included, by route pattern.', (r) => r.bytesOut),
  {
    name: 'closes_total',
    type: 'counter',
    help: 'Closed connections, by route pattern and the close code onClose saw (past 32 distinct codes on a route, new codes count as code="other").',
    write(s, out) {
      for (const [pattern, r] of Object.entries(s.routes)) {
        const route = routeLabel(pattern);
        for (const [code, n] of Object.entries(r.closesByCode)) sample(out, '', `${route},code="${escapeLabelValue(code)}"`, n);
      }
    },
  },
  perRoute('backpressure_dropped_messages_total', 'counter', 'Messages not sent because the connection was over maxBackpressure, by route pattern.', (r) => r.backpressureDrops),
  perRoute('backpressure_closes_total', 'counter', "Connections closed with 1008 by the 'close' backpressure policy, by route pattern.", (r) => r.backpressureCloses),
  perRoute('heartbeat_pings_total', 'counter', 'Heartbeat pings sent, by route pattern.', (r) => r.pingsSent),
  perRoute('pong_timeouts_total', 'counter', 'Connections terminated for not answering a heartbeat ping within pongTimeout, by route pattern.', (r) => r.pongTimeouts),
  perRoute('idle_closes_total', 'counter', 'Connections closed with 1001 by idleTimeout, by route pattern.', (r) => r.idleCloses),
  perRoute('rate_limit_closes_total', 'counter', 'Connections closed with 1008 by the message rate limit, by route pattern.', (r) => r.rateLimitCloses),
  {
    name: 'heartbeat_rtt_seconds',
    type: 'histogram',
    help: "Heartbeat round trips, from a ping to the peer's pong, in seconds, by route pattern.",
    write(s, out) {
      for (const [pattern, r] of Object.entries(s.routes)) histogram(out, routeLabel(pattern), r.heartbeatRtt);
    },
  },
  single('topics', 'gauge', 'Topics with at least one subscriber on this handler.', (s) => s.topics),
  single('subscriptions', 'gauge', "Topic subscriptions of this handler's connections, in all.", (s) => s.subscriptions),
  single('publishes_total', 'counter', 'publish() calls, by the handler or its connections.', (s) => s.publishes),
  compression('compression_connections', 'Open connections that negotiated permessage-deflate.', (c) => c.connections, 'gauge'),
  compression('compression_messages_received_total', 'Messages that arrived compressed.', (c) => c.messagesIn),
  compression('compression_received_compressed_bytes_total', 'Payload bytes of the messages that arrived compressed, as they came (compressed).', (c) => c.compressedBytesIn),
  compression('compression_received_inflated_bytes_total', 'Payload bytes of the messages that arrived compressed, once inflated.', (c) => c.inflatedBytesIn),
  compression('compression_messages_sent_total', 'Messages sent compressed (a broadcast counts once per recipient).', (c) => c.messagesOut),
  compression('compression_sent_uncompressed_bytes_total', 'Payload bytes of the messages sent compressed, before compression.', (c) => c.uncompressedBytesOut),
  compression('compression_sent_compressed_bytes_total', 'Payload bytes of the messages sent compressed, after compression.', (c) => c.compressedBytesOut),
  backplane('backplane_connected', 'gauge', "1 while the backplane's transport is up, 0 while it is down.", (b) => (b.connected ? 1 : 0)),
  backplane('backplane_messages_sent_total', 'counter', 'Messages sent to the backplane.', (b) => b.messagesOut),
  backplane('backplane_messages_received_total', 'counter', "Messages received from the backplane (this handler's own echoes not counted).", (b) => b.messagesIn),
  backplane('backplane_dropped_publishes_total', 'counter', 'Publishes not sent to other processes because the backplane was down (lost: delivery is at most once).', (b) => b.droppedWhileDisconnected),
  backplane('backplane_outages_total', 'counter', "Times the backplane's transport went down.", (b) => b.outages),
  backplane('backplane_errors_total', 'counter', 'Errors the backplane reported.', (b) => b.errors),
  backplane('backplane_malformed_messages_total', 'counter', 'Messages from the backplane dropped as malformed or from a newer wsmount.', (b) => b.malformed),
];

// ---- one scrape --------------------------------------------------------------------------------

function render(p: Plan): string {
  // One snapshot per handler, taken before anything is written.
  const snapshots = p.sources.map((s) => s.source.stats());
  const out: Out = { name: '', base: '', text: '' };
  for (const family of FAMILIES) {
    const present = family.present;
    if (present !== undefined && !snapshots.some(present)) continue;
    out.name = p.prefix + family.name;
    out.text += familyHeader(out.name, family.type, family.help);
    snapshots.forEach((s, i) => {
      out.base = p.sources[i]?.labels ?? '';
      family.write(s, out);
    });
  }
  return out.text;
}
