import type { RouteStats } from '../stats.js';
import type { DashboardClient, DashboardPoint, DashboardRoute, DashboardSnapshot, DashboardSource, DashboardState, SlowConsumer } from './types.js';

// Samples a handler's counters into what the dashboard shows: rates from two samples, the line
// charts' history, the top routes and the slow consumers. No I/O: dashboard.ts decides when.

/** The counters a rate is computed from, as they were at the previous sample. */
interface Traffic {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** What a sample leaves for the next one. */
interface Previous {
  /** performance.now() at the sample: rates use the monotonic clock, never the wall clock. */
  at: number;
  total: Traffic;
  routes: Map<string, Traffic>;
}

export interface SamplerLimits {
  interval: number;
  span: number;
  topRoutes: number;
  slowConsumers: number;
}

/** `(now - before) / seconds`, never negative (a counter that went back is a new source), or null without a before. */
function rate(now: number, before: number | undefined, seconds: number): number | null {
  if (before === undefined || seconds <= 0) return null;
  return Math.max(0, now - before) / seconds;
}

/**
 * The open clients with the largest backlogs, largest first (ties: the one met first), at most
 * `n`, and how many clients have any backlog. One pass over the set: a `bufferedAmount` read per
 * client (three field reads in the connection), and an insertion into a sorted array of at most
 * `n` for a client with a backlog larger than the smallest kept: O(clients + backlogged × n).
 */
export function slowConsumers(clients: Iterable<DashboardClient>, n: number): { top: SlowConsumer[]; backlogged: number } {
  const kept: { client: DashboardClient; bytes: number }[] = [];
  let backlogged = 0;
  for (const client of clients) {
    const bytes = client.bufferedAmount;
    if (!(bytes > 0)) continue;
    backlogged++;
    if (n === 0 || (kept.length === n && bytes <= (kept[n - 1] as { bytes: number }).bytes)) continue;
    let i = kept.length;
    while (i > 0 && (kept[i - 1] as { bytes: number }).bytes < bytes) i--;
    kept.splice(i, 0, { client, bytes });
    if (kept.length > n) kept.pop();
  }
  const top = kept.map(({ client, bytes }): SlowConsumer => {
    const latency = client.latency;
    return {
      id: client.id,
      route: client.route,
      remoteAddress: client.remoteAddress ?? null,
      bufferedAmount: bytes,
      latency: latency === undefined ? null : latency,
    };
  });
  return { top, backlogged };
}

function closesOf(route: RouteStats): number {
  let n = 0;
  for (const code in route.closesByCode) n += route.closesByCode[code] as number;
  return n;
}

/** Busiest first: most connections, then most messages per second, then the pattern. */
function busier(a: DashboardRoute, b: DashboardRoute): number {
  if (a.connections !== b.connections) return b.connections - a.connections;
  const ra = (a.messagesInPerSecond ?? 0) + (a.messagesOutPerSecond ?? 0);
  const rb = (b.messagesInPerSecond ?? 0) + (b.messagesOutPerSecond ?? 0);
  if (ra !== rb) return rb - ra;
  return a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0;
}

/**
 * Takes samples of one source. Each `sample()` reads `stats()` once and the clients once, and
 * keeps one {@link DashboardPoint} per sample for `span` milliseconds (at most `span / interval`
 * points, plus those of extra samples taken by `snapshot.json` between ticks).
 */
export class Sampler {
  private readonly source: DashboardSource;
  private readonly limits: SamplerLimits;
  private previous: Previous | null = null;
  private readonly points: DashboardPoint[] = [];
  /** The newest sample, and performance.now() when it was taken. */
  latest: DashboardSnapshot | null = null;
  latestAt = 0;

  constructor(source: DashboardSource, limits: SamplerLimits) {
    this.source = source;
    this.limits = limits;
  }

  /** Samples the source now; `viewers` is recorded in the snapshot. */
  sample(viewers: number): DashboardSnapshot {
    const stats = this.source.stats();
    const at = performance.now();
    const time = Date.now();
    const previous = this.previous;
    const seconds = previous === null ? 0 : (at - previous.at) / 1000;
    const point: DashboardPoint = {
      time,
      connections: stats.connections,
      messagesInPerSecond: rate(stats.messagesIn, previous?.total.messagesIn, seconds),
      messagesOutPerSecond: rate(stats.messagesOut, previous?.total.messagesOut, seconds),
      bytesInPerSecond: rate(stats.bytesIn, previous?.total.bytesIn, seconds),
      bytesOutPerSecond: rate(stats.bytesOut, previous?.total.bytesOut, seconds),
    };

    const routes: DashboardRoute[] = [];
    const nextRoutes = new Map<string, Traffic>();
    for (const pattern of Object.keys(stats.routes)) {
      const r = stats.routes[pattern] as RouteStats;
      const before = previous?.routes.get(pattern);
      routes.push({
        pattern,
        connections: r.connections,
        handshakesAccepted: r.handshakesAccepted,
        messagesIn: r.messagesIn,
        messagesOut: r.messagesOut,
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
        messagesInPerSecond: rate(r.messagesIn, before?.messagesIn, seconds),
        messagesOutPerSecond: rate(r.messagesOut, before?.messagesOut, seconds),
        bytesInPerSecond: rate(r.bytesIn, before?.bytesIn, seconds),
        bytesOutPerSecond: rate(r.bytesOut, before?.bytesOut, seconds),
        closes: closesOf(r),
        backpressureDrops: r.backpressureDrops,
      });
      nextRoutes.set(pattern, { messagesIn: r.messagesIn, messagesOut: r.messagesOut, bytesIn: r.bytesIn, bytesOut: r.bytesOut });
    }
    routes.sort(busier);
    const routeCount = routes.length;
    if (routes.length > this.limits.topRoutes) routes.length = this.limits.topRoutes;

    const slow = slowConsumers(this.source.clients, this.limits.slowConsumers);
    const snapshot: DashboardSnapshot = {
      time,
      interval: this.limits.interval,
      span: this.limits.span,
      point,
      connections: stats.connections,
      pendingHandshakes: stats.pendingHandshakes,
      totals: {
        handshakesAccepted: stats.handshakesAccepted,
        handshakesRejected: stats.handshakesRejected,
        verifyTimeouts: stats.verifyTimeouts,
        messagesIn: stats.messagesIn,
        messagesOut: stats.messagesOut,
        bytesIn: stats.bytesIn,
        bytesOut: stats.bytesOut,
        backpressureDrops: stats.backpressureDrops,
        backpressureCloses: stats.backpressureCloses,
        pingsSent: stats.pingsSent,
        pongTimeouts: stats.pongTimeouts,
        idleCloses: stats.idleCloses,
        rateLimitCloses: stats.rateLimitCloses,
        topics: stats.topics,
        subscriptions: stats.subscriptions,
        publishes: stats.publishes,
      },
      closesByCode: stats.closesByCode,
      handshakesRejectedByStatus: stats.handshakesRejectedByStatus,
      heartbeatRtt: stats.heartbeatRtt,
      routes,
      routeCount,
      slowConsumers: slow.top,
      backloggedClients: slow.backlogged,
      viewers,
    };

    this.previous = {
      at,
      total: { messagesIn: stats.messagesIn, messagesOut: stats.messagesOut, bytesIn: stats.bytesIn, bytesOut: stats.bytesOut },
      routes: nextRoutes,
    };
    this.points.push(point);
    this.trim(time);
    this.latest = snapshot;
    this.latestAt = at;
    return snapshot;
  }

  /** The points within `span` of the newest, oldest first. */
  history(): DashboardPoint[] {
    const newest = this.points.at(-1);
    if (newest !== undefined) this.trim(newest.time);
    return this.points.slice();
  }

  /** The newest sample and the history; `viewers` for a sample taken now if there is none yet. */
  state(viewers: number): DashboardState {
    const snapshot = this.latest ?? this.sample(viewers);
    return { snapshot, history: this.history() };
  }

  /** Drops points older than `span` before `now`, and any past the bound on their number. */
  private trim(now: number): void {
    const points = this.points;
    const oldest = now - this.limits.span;
    let drop = 0;
    while (drop < points.length && (points[drop] as DashboardPoint).time < oldest) drop++;
    // Snapshot requests between ticks add points; the bound holds whatever their rate.
    const most = 2 * Math.ceil(this.limits.span / this.limits.interval) + 1;
    drop = Math.max(drop, points.length - most);
    if (drop > 0) points.splice(0, drop);
  }
}
