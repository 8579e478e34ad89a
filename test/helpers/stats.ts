/**
 * Snapshot builders for tests that feed a `stats()` result to something that reads one (the
 * Prometheus exposition, the dashboard's sampler): every counter 0 unless the test sets it.
 */
import { DURATION_BOUNDS, type HandlerStats, type RouteStats } from '../../src/index.js';

/** A route's counters, all 0 (an empty heartbeat histogram over `bounds`), with `partial` over them. */
export function routeStats(partial: Partial<RouteStats> = {}, bounds: readonly number[] = DURATION_BOUNDS): RouteStats {
  return {
    connections: 0,
    handshakesAccepted: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    closesByCode: {},
    backpressureDrops: 0,
    backpressureCloses: 0,
    pingsSent: 0,
    pongTimeouts: 0,
    idleCloses: 0,
    rateLimitCloses: 0,
    heartbeatRtt: { bounds, counts: new Array<number>(bounds.length + 1).fill(0), count: 0, sum: 0 },
    ...partial,
  };
}

/** A handler's snapshot, all 0, no routes, no backplane, with `partial` over it. */
export function handlerStats(partial: Partial<HandlerStats> = {}, bounds: readonly number[] = DURATION_BOUNDS): HandlerStats {
  const { connections: _c, handshakesAccepted: _h, ...rest } = routeStats({}, bounds);
  return {
    ...rest,
    connections: 0,
    handshakesAccepted: 0,
    connectionsByRoute: {},
    pendingHandshakes: 0,
    handshakesRejected: 0,
    handshakesRejectedByStatus: {},
    verifyTimeouts: 0,
    routes: {},
    topics: 0,
    subscriptions: 0,
    publishes: 0,
    backplane: null,
    compression: { connections: 0, messagesIn: 0, compressedBytesIn: 0, inflatedBytesIn: 0, messagesOut: 0, uncompressedBytesOut: 0, compressedBytesOut: 0 },
    ...partial,
  };
}
