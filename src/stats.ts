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
 * A snapshot of a handler's counters, from {@link WebSocketHandler.stats}. Counters only grow;
 * subtract two snapshots for a rate.
 */
export interface HandlerStats {
  /** Open connections (from just before `onOpen` to just before `onClose`). */
  connections: number;
  /** Open connections per route pattern (every route is listed, with 0 when idle). */
  connectionsByRoute: Record<string, number>;
  /** Upgrades matched to a route whose `verify()` is still running. */
  pendingHandshakes: number;
  /** Handshakes answered with 101. */
  handshakesAccepted: number;
  /** Handshakes refused, in all, and by HTTP status (`{ 403: 2, 503: 1 }`). */
  handshakesRejected: number;
  handshakesRejectedByStatus: Record<string, number>;
  /** Data messages received (after reassembly) and sent (a broadcast counts once per recipient). */
  messagesIn: number;
  messagesOut: number;
  /** Bytes read from and written to connections' sockets, frame headers included. */
  bytesIn: number;
  bytesOut: number;
  /** Closed connections by the code their `onClose` saw (`{ 1000: 10, 1006: 2 }`). */
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
  /** Upgrades answered 503 because `verify()` ran past `verifyTimeout`. */
  verifyTimeouts: number;
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

/** The live counters behind {@link HandlerStats}: plain number fields, bumped on the hot path. @internal */
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
  readonly rejected: Map<number, number> = new Map();
  readonly closes: Map<number, number> = new Map();

  rejectedWith(status: number): void {
    this.rejected.set(status, (this.rejected.get(status) ?? 0) + 1);
  }

  closedWith(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
  }
}

/** Turns a Map of counts into a plain object keyed by the number. */
export function countsOf(map: ReadonlyMap<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, count] of [...map].sort((a, b) => a[0] - b[0])) out[String(key)] = count;
  return out;
}
