import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DurationHistogram, HandlerStats } from '../stats.js';

/**
 * What the dashboard reads of a connected client: a {@link Behavior} has all of it. Nothing
 * else of a connection (its URL, headers or data) leaves the server.
 */
export interface DashboardClient {
  /** The connection's id (unique in the process). */
  readonly id: number;
  /** The route pattern it matched (`'/rooms/:id'`). */
  readonly route: string;
  /** The peer's address, if known. */
  readonly remoteAddress: string | undefined;
  /** Bytes accepted by `send*()` and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** The last heartbeat round trip in milliseconds, if any. */
  readonly latency: number | undefined;
}

/**
 * What a dashboard watches: a {@link WebSocketHandler} (any route table), or anything with the
 * same `stats()` and live `clients` set.
 */
export interface DashboardSource {
  stats(): HandlerStats;
  readonly clients: ReadonlySet<DashboardClient>;
}

/** Options for {@link createDashboard}. Every one has a default. */
export interface DashboardOptions {
  /**
   * The path the app mounts the dashboard at, when the app hands it requests with their full URL
   * (plain Node: `if (url.startsWith('/admin/ws')) dashboard(req, res)` needs
   * `path: '/admin/ws'`). The dashboard strips it, and answers a request outside it with 404 (or
   * `next()`). Leave it out when a framework strips the mount path itself (Express and Connect
   * `app.use('/admin/ws', dashboard)`) or when the dashboard is the whole server. With Express
   * it may be given too (`req.originalUrl` is read then). Default: none.
   */
  path?: string;
  /** Milliseconds between two samples of the counters (one per tick, shared by every viewer). Default 1,000; 100 to 60,000. */
  interval?: number;
  /**
   * Milliseconds of history the line charts show (and the server keeps, one point per tick):
   * default 300,000 (5 minutes); at most 3,600 ticks' worth.
   */
  span?: number;
  /** Most pages watching the live feed at once; one more gets 503. Default 8, at most 1,000. */
  maxViewers?: number;
  /** Routes in the top routes table (busiest first). Default 10; 1 to 100. */
  topRoutes?: number;
  /** Clients in the slow consumers table (largest backlog first). Default 10; 0 (off) to 100. */
  slowConsumers?: number;
  /** The name on the page (its heading and the tab's title). Default `'wsmount'`. */
  title?: string;
}

/** One point of the line charts: the connections then, and the rates since the point before. */
export interface DashboardPoint {
  /** When the sample was taken, in milliseconds since the epoch (the server's clock). */
  time: number;
  /** Open connections. */
  connections: number;
  /** Data messages per second received and sent since the previous sample; `null` for the first sample. */
  messagesInPerSecond: number | null;
  messagesOutPerSecond: number | null;
  /** Bytes per second read and written (frame headers included) since the previous sample; `null` for the first sample. */
  bytesInPerSecond: number | null;
  bytesOutPerSecond: number | null;
}

/** One row of the top routes table. Totals are since the handler started; rates since the previous sample. */
export interface DashboardRoute {
  /** The route pattern, as written in the route table. */
  pattern: string;
  connections: number;
  handshakesAccepted: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** `null` for the first sample. */
  messagesInPerSecond: number | null;
  messagesOutPerSecond: number | null;
  bytesInPerSecond: number | null;
  bytesOutPerSecond: number | null;
  /** Closed connections (every code), and messages dropped for backpressure. */
  closes: number;
  backpressureDrops: number;
}

/** One row of the slow consumers table: an open client with bytes waiting to be sent. */
export interface SlowConsumer {
  id: number;
  route: string;
  remoteAddress: string | null;
  /** Bytes waiting to be sent to it when the sample was taken. */
  bufferedAmount: number;
  /** Its last heartbeat round trip in milliseconds, or `null`. */
  latency: number | null;
}

/** The handler's totals shown on the dashboard (the same numbers as `handler.stats()`). */
export type DashboardTotals = Pick<
  HandlerStats,
  | 'handshakesAccepted'
  | 'handshakesRejected'
  | 'verifyTimeouts'
  | 'messagesIn'
  | 'messagesOut'
  | 'bytesIn'
  | 'bytesOut'
  | 'backpressureDrops'
  | 'backpressureCloses'
  | 'pingsSent'
  | 'pongTimeouts'
  | 'idleCloses'
  | 'rateLimitCloses'
  | 'topics'
  | 'subscriptions'
  | 'publishes'
>;

/** One sample: what the live feed sends every tick, computed once and shared by every viewer. */
export interface DashboardSnapshot {
  /** When it was taken, in milliseconds since the epoch (the server's clock). */
  time: number;
  /** The dashboard's `interval` and `span`, in milliseconds. */
  interval: number;
  span: number;
  /** This sample's point of the line charts. */
  point: DashboardPoint;
  /** Open connections, and upgrades still in `verify()`. */
  connections: number;
  pendingHandshakes: number;
  totals: DashboardTotals;
  /** Closed connections by close code, since the handler started (bounded: see `stats().closesByCode`). */
  closesByCode: Record<string, number>;
  /** Refused handshakes by HTTP status, since the handler started. */
  handshakesRejectedByStatus: Record<string, number>;
  /** Heartbeat round trips on every route, since the handler started. */
  heartbeatRtt: DurationHistogram;
  /** The busiest routes (most connections, then most messages per second), at most `topRoutes`. */
  routes: DashboardRoute[];
  /** How many routes the handler has in all. */
  routeCount: number;
  /** Open clients with the most bytes waiting, largest first, at most `slowConsumers`. */
  slowConsumers: SlowConsumer[];
  /** Open clients with any bytes waiting (those listed and the rest). */
  backloggedClients: number;
  /** Pages watching the live feed. */
  viewers: number;
}

/** The JSON endpoint's answer, and the first event of the live feed: the latest sample and the history before it. */
export interface DashboardState {
  snapshot: DashboardSnapshot;
  /** The line charts' points within `span`, oldest first, the snapshot's own last. */
  history: DashboardPoint[];
}

/**
 * The dashboard: a request handler for the app's own HTTP server (plain Node, or Express/Connect
 * middleware), with the live feed's controls.
 */
export interface Dashboard {
  /**
   * Answers a request for the dashboard: the page (`<mount>/`), the live feed
   * (`<mount>/feed`, Server-Sent Events) or the JSON snapshot (`<mount>/snapshot.json`). Any
   * other path gets 404, or goes to `next()` when given; a method other than GET or HEAD gets
   * 405.
   */
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void;
  /** Pages watching the live feed now. */
  readonly viewers: number;
  /** Whether the feed's timer is running (it runs only while a page watches). */
  readonly live: boolean;
  /** The latest sample and its history (what `snapshot.json` answers): a fresh sample unless the feed's is current. */
  state(): DashboardState;
  /**
   * Ends every live feed and stops the timer; later feed requests get 503. Call it before
   * `server.close()`, which otherwise waits for the pages' open feeds.
   */
  close(): void;
}
