import type { Logger } from '../logger.js';
import type { Counters } from '../stats.js';
import type { Connection } from './connection.js';

/**
 * What a send did: `'sent'` handed to the socket with no backlog, `'queued'` accepted but the
 * socket is backed up, or (with compression) the message waits behind one being compressed on
 * the thread pool (see `bufferedAmount`; `onDrain` / `drained()` tell when it is not),
 * `'dropped'` not sent: the connection is not open, or the backlog is over `maxBackpressure`.
 */
export type SendStatus = 'sent' | 'queued' | 'dropped';

/**
 * What to do with a send that would take a connection's backlog over `maxBackpressure`:
 * `'close'` drops it and closes the slow consumer with 1008; `'drop'` drops it and keeps the
 * connection (the send returns `'dropped'`).
 */
export type BackpressurePolicy = 'close' | 'drop';

/**
 * A per-connection message rate limit (a token bucket): a burst of up to `messages` messages,
 * refilled at `messages` per `interval` milliseconds. Data messages and pings count.
 */
export interface RateLimit {
  messages: number;
  interval: number;
}

/** The hooks a failure is reported for. */
export type HookName = 'onOpen' | 'onText' | 'onRawText' | 'onBinary' | 'onStream' | 'onDrain' | 'onPing' | 'onPong';

/**
 * What every connection of a route shares: its handler, limits and counters. The handler's
 * route record (transport/upgrade.ts `Route`) is this object, so a connection holds it in one
 * slot and finds its route there too. @internal
 */
export interface RouteShared {
  readonly owner: ConnectionOwner;
  readonly limits: ConnectionLimits;
  readonly counters: Counters;
}

/** What a connection needs from the handler that owns it. @internal */
export interface ConnectionOwner {
  readonly log: Logger;
  connectionClosed(connection: Connection, code: number): void;
}

/** Per-route connection limits, resolved once per route and shared by its connections. @internal */
export interface ConnectionLimits {
  maxPayload: number;
  maxFragments: number;
  /** Largest message received as a stream (Infinity: none). */
  maxStreamBytes: number;
  closeTimeout: number;
  maxBackpressure: number;
  dropOnBackpressure: boolean;
  /** 0: no heartbeat. */
  pingInterval: number;
  pongTimeout: number;
  /** 0: no idle timeout. */
  idleTimeout: number;
  /** Token bucket size; 0: no rate limit. */
  rateCapacity: number;
  /** Tokens added per millisecond. */
  rateRefill: number;
}

/** Node's timers take at most 2^31 - 1 ms (about 24.8 days); longer means "never" in practice. */
export function timerDelay(ms: number): number {
  return Math.min(ms, 0x7fffffff);
}
