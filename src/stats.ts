import type { BackplaneStats } from './pubsub/backplane.js';
import type { DeflateCounters } from './extensions/permessage-deflate/session.js';

/**
 * permessage-deflate's counters (all 0 while no connection compresses). The ratio of
 * `compressedBytesOut` to `uncompressedBytesOut` is what compression saved on the way out.
 */
export interface CompressionStats {
  /** Open connections that negotiated permessage-deflate. */
  connections: number;
  /** Messages that arrived compressed, their payload bytes on the wire, and the bytes they inflated to. */
  messagesIn: number;
  compressedBytesIn: number;
  inflatedBytesIn: number;
  /**
   * Messages sent compressed (a broadcast counts once per recipient, though it is compressed
   * once), their payload bytes before compression, and after. Messages under `threshold` are
   * sent as they are and count in neither.
   */
  messagesOut: number;
  uncompressedBytesOut: number;
  compressedBytesOut: number;
}

/**
 * A distribution of durations in seconds, in fixed buckets: `counts[i]` durations were at most
 * `bounds[i]` seconds and above `bounds[i - 1]`; the last count, one past `bounds`, is those above
 * every bound. Bucket counts are not cumulative (Prometheus' `le` buckets are their running sums).
 */
export interface DurationHistogram {
  /** Upper bounds of the buckets, in seconds, ascending (the same for every histogram). */
  readonly bounds: readonly number[];
  /** Durations per bucket: `bounds.length + 1` entries, the last for those above every bound. */
  counts: number[];
  /** Durations observed, and their sum in seconds. */
  count: number;
  sum: number;
}

/** The upper bounds (seconds) of {@link DurationHistogram}'s buckets: 0.5 ms to 10 s. */
export const DURATION_BOUNDS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/**
 * Distinct close codes counted one by one per route; codes seen after that many others count
 * under `other`, so a peer that closes with every code from 3000 to 4999 cannot grow the counts
 * (or a metrics label set) without bound.
 */
export const MAX_CLOSE_CODES = 32;

/**
 * The counters a route's connections keep: {@link RouteStats} for one route, and in
 * {@link HandlerStats} the sums over every route.
 */
export interface ConnectionCounters {
  /** Open connections (from just before `onOpen` to just before `onClose`). */
  connections: number;
  /** Handshakes answered with 101 (connections opened, in all). */
  handshakesAccepted: number;
  /** Data messages received (after reassembly) and sent (a broadcast counts once per recipient). */
  messagesIn: number;
  messagesOut: number;
  /** Bytes read from and written to the sockets, frame headers included. */
  bytesIn: number;
  bytesOut: number;
  /**
   * Closed connections by the code their `onClose` saw (`{ 1000: 10, 1006: 2 }`). After
   * {@link MAX_CLOSE_CODES} distinct codes on a route, further new codes count under `other`.
   */
  closesByCode: Record<string, number>;
  /** Messages not sent because the connection's backlog was over `maxBackpressure`. */
  backpressureDrops: number;
  /** Connections closed with 1008 by the `'close'` backpressure policy. */
  backpressureCloses: number;
  /** Heartbeat pings sent, and peers terminated for not answering within `pongTimeout`. */
  pingsSent: number;
  pongTimeouts: number;
  /** Connections closed with 1001 by `idleTimeout`. */
  idleCloses: number;
  /** Connections closed with 1008 by the message rate limit. */
  rateLimitCloses: number;
  /** Heartbeat round trips: from our ping to the peer's pong, in seconds. */
  heartbeatRtt: DurationHistogram;
}

/** One route's counters, in {@link HandlerStats.routes}. */
export interface RouteStats extends ConnectionCounters {}

/**
 * A snapshot of a handler's counters, from {@link WebSocketHandler.stats}. Counters only grow;
 * subtract two snapshots for a rate. The {@link ConnectionCounters} are the sums of
 * {@link routes}'.
 */
export interface HandlerStats extends ConnectionCounters {
  /** Open connections per route pattern (every route is listed, with 0 when idle). */
  connectionsByRoute: Record<string, number>;
  /** Upgrades matched to a route whose `verify()` is still running. */
  pendingHandshakes: number;
  /** Handshakes refused, in all, and by HTTP status (`{ 403: 2, 503: 1 }`). */
  handshakesRejected: number;
  handshakesRejectedByStatus: Record<string, number>;
  /** Upgrades answered 503 because `verify()` ran past `verifyTimeout`. */
  verifyTimeouts: number;
  /** Each route's counters, by route pattern (every route is listed). */
  routes: Record<string, RouteStats>;
  /** Topics with at least one subscriber on this handler, and subscriptions here in all. */
  topics: number;
  subscriptions: number;
  /** `publish()` calls, by the handler or its clients (each local recipient also counts in `messagesOut`). */
  publishes: number;
  /** The backplane's counters (messages in and out, outages, publishes lost while down), or `null` without one. */
  backplane: BackplaneStats | null;
  /** permessage-deflate: connections using it, and bytes before and after compression each way. */
  compression: CompressionStats;
}

/**
 * The live counters behind {@link HandlerStats}: plain number fields, bumped on the hot path. Each
 * route has its own (its connections bump them), and the handler one more for what happens
 * before a route's connection exists (rejections, verify timeouts). @internal
 */
export class Counters implements DeflateCounters {
  handshakesAccepted = 0;
  compressedConnections = 0;
  compressedMessagesIn = 0;
  compressedBytesIn = 0;
  inflatedBytesIn = 0;
  compressedMessagesOut = 0;
  uncompressedBytesOut = 0;
  compressedBytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  backpressureDrops = 0;
  backpressureCloses = 0;
  pingsSent = 0;
  pongTimeouts = 0;
  idleCloses = 0;
  rateLimitCloses = 0;
  verifyTimeouts = 0;
  /** Heartbeat round trips per bucket of {@link DURATION_BOUNDS} (+1 for above them all), and their sum in seconds. */
  readonly rtt: number[] = new Array<number>(DURATION_BOUNDS.length + 1).fill(0);
  rttSum = 0;
  readonly rejected: Map<number, number> = new Map();
  /** Closes by code; {@link OTHER_CODE} for codes past {@link MAX_CLOSE_CODES}. */
  readonly closes: Map<number, number> = new Map();

  rejectedWith(status: number): void {
    this.rejected.set(status, (this.rejected.get(status) ?? 0) + 1);
  }

  closedWith(code: number): void {
    const key = this.closes.has(code) || this.closes.size < MAX_CLOSE_CODES ? code : OTHER_CODE;
    this.closes.set(key, (this.closes.get(key) ?? 0) + 1);
  }

  /** A heartbeat round trip of `ms` milliseconds. */
  roundTrip(ms: number): void {
    const seconds = ms / 1000;
    let i = 0;
    while (i < DURATION_BOUNDS.length && seconds > (DURATION_BOUNDS[i] as number)) i++;
    this.rtt[i] = (this.rtt[i] as number) + 1;
    this.rttSum += seconds;
  }

  /** The heartbeat round trips as a histogram (a copy). */
  rttHistogram(): DurationHistogram {
    let count = 0;
    for (const n of this.rtt) count += n;
    return { bounds: DURATION_BOUNDS, counts: this.rtt.slice(), count, sum: this.rttSum };
  }

  /** Adds `other`'s counts to these (for the handler's totals). */
  add(other: Counters): void {
    this.handshakesAccepted += other.handshakesAccepted;
    this.compressedConnections += other.compressedConnections;
    this.compressedMessagesIn += other.compressedMessagesIn;
    this.compressedBytesIn += other.compressedBytesIn;
    this.inflatedBytesIn += other.inflatedBytesIn;
    this.compressedMessagesOut += other.compressedMessagesOut;
    this.uncompressedBytesOut += other.uncompressedBytesOut;
    this.compressedBytesOut += other.compressedBytesOut;
    this.messagesIn += other.messagesIn;
    this.messagesOut += other.messagesOut;
    this.bytesIn += other.bytesIn;
    this.bytesOut += other.bytesOut;
    this.backpressureDrops += other.backpressureDrops;
    this.backpressureCloses += other.backpressureCloses;
    this.pingsSent += other.pingsSent;
    this.pongTimeouts += other.pongTimeouts;
    this.idleCloses += other.idleCloses;
    this.rateLimitCloses += other.rateLimitCloses;
    this.verifyTimeouts += other.verifyTimeouts;
    for (let i = 0; i < this.rtt.length; i++) this.rtt[i] = (this.rtt[i] as number) + (other.rtt[i] as number);
    this.rttSum += other.rttSum;
    for (const [status, n] of other.rejected) this.rejected.set(status, (this.rejected.get(status) ?? 0) + n);
    // Summed as they are: each route's codes are bounded, so the sum is too.
    for (const [code, n] of other.closes) this.closes.set(code, (this.closes.get(code) ?? 0) + n);
  }

  /** The route-level snapshot of these counters. */
  routeStats(connections: number): RouteStats {
    return {
      connections,
      handshakesAccepted: this.handshakesAccepted,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      closesByCode: countsOf(this.closes),
      backpressureDrops: this.backpressureDrops,
      backpressureCloses: this.backpressureCloses,
      pingsSent: this.pingsSent,
      pongTimeouts: this.pongTimeouts,
      idleCloses: this.idleCloses,
      rateLimitCloses: this.rateLimitCloses,
      heartbeatRtt: this.rttHistogram(),
    };
  }
}

/** The key close codes past {@link MAX_CLOSE_CODES} count under (shown as `other`). @internal */
export const OTHER_CODE = -1;

/** Turns a Map of counts into a plain object keyed by the number ({@link OTHER_CODE}: `other`, last). */
export function countsOf(map: ReadonlyMap<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, count] of [...map].sort((a, b) => a[0] - b[0])) if (key !== OTHER_CODE) out[String(key)] = count;
  const other = map.get(OTHER_CODE);
  if (other !== undefined) out.other = other;
  return out;
}
