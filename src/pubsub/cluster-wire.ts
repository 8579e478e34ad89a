/**
 * What the node:cluster backplane's two sides share: the tag on wsmount's IPC messages, their
 * shape, the options and their checks. The worker's side is cluster.ts, the primary's relay
 * cluster-primary.ts.
 */
/**
 * The key that marks wsmount's messages on a node:cluster IPC channel (its value says what the
 * message is). An app whose `'message'` listeners handle every message should skip objects that
 * have it.
 */
export const CLUSTER_MESSAGE_KEY = 'wsmount:cluster:1';

/** Set in the primary's environment by `setupClusterPrimary()`, so workers inherit it. @internal */
export const MARKER = 'WSMOUNT_CLUSTER_PRIMARY';
const DEFAULT_MAX_BACKPRESSURE = 8 << 20;
/** Bytes counted for one message besides its payload: the topic and the clone's framing. @internal */
export const OVERHEAD = 64;
/** Where the primary's relay lives: one per process, even with two copies of wsmount loaded. @internal */
export const RELAY: unique symbol = Symbol.for('wsmount.cluster.relay.1');

/** `s`ubscribe and `u`nsubscribe (worker → primary), `p`ublish (worker → primary), `m`essage (primary → worker). @internal */
export type Kind = 's' | 'u' | 'p' | 'm';

/** A wsmount message on the IPC channel. @internal */
export interface WireMessage {
  [CLUSTER_MESSAGE_KEY]: Kind;
  topic: string;
  data?: Uint8Array;
}

/** Options for `clusterBackplane()`. */
export interface ClusterBackplaneOptions {
  /**
   * Bytes of publishes this worker may have handed to the IPC channel and not yet written (the
   * primary reads slowly, or is busy). A publish beyond it is dropped (`publish()` is `false`,
   * counted by the handler) instead of queued without bound. Default 8 MiB. A message always
   * goes when nothing is pending, whatever its size.
   */
  maxBackpressure?: number;
}

/** Options for `setupClusterPrimary()`. */
export interface ClusterPrimaryOptions {
  /**
   * Bytes the primary may have handed to one worker's IPC channel and not yet written (that
   * worker is busy). A relay beyond it is dropped for that worker and counted in
   * {@link ClusterRelayStats.dropped}. Default 8 MiB. A message always goes when nothing is pending.
   */
  maxBackpressure?: number;
}

/** The primary's relay counters, from {@link ClusterPrimary.stats}. */
export interface ClusterRelayStats {
  /** Workers with at least one subscription. */
  workers: number;
  /** Topics with a subscribed worker. */
  topics: number;
  /** (topic, worker) pairs: a topic subscribed in three workers counts three. */
  subscriptions: number;
  /** Publishes received from workers. */
  messagesIn: number;
  /** Messages relayed to workers (one publish relayed to three workers counts three). */
  messagesOut: number;
  /** Relays not sent: the worker's backlog was over `maxBackpressure`, or its channel had closed. */
  dropped: number;
}

/** The relay `setupClusterPrimary()` starts in the primary. */
export interface ClusterPrimary {
  /** A snapshot of the relay's counters. */
  stats(): ClusterRelayStats;
  /**
   * Stops relaying and removes the relay's listeners; workers forked after this cannot use
   * `clusterBackplane()`. A later `setupClusterPrimary()` starts a new relay.
   */
  close(): void;
}

/** The `maxBackpressure` option, checked (a bad value throws, naming the fix). @internal */
export function checkMaxBackpressure(fn: string, options: unknown): number {
  if (options === undefined) return DEFAULT_MAX_BACKPRESSURE;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`wsmount: ${fn}()'s options are an object like { maxBackpressure: 8 << 20 }, not ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'maxBackpressure') throw new TypeError(`wsmount: ${fn}() has no option '${key}'; its only option is maxBackpressure`);
  }
  const value = (options as { maxBackpressure?: unknown }).maxBackpressure;
  if (value === undefined) return DEFAULT_MAX_BACKPRESSURE;
  if (typeof value !== 'number' || !(value > 0)) {
    throw new RangeError(`wsmount: ${fn}(): maxBackpressure must be a positive number of bytes, not ${String(value)}`);
  }
  return value;
}

/** Whether an IPC message is one of wsmount's. @internal */
export function isWire(message: unknown): message is WireMessage {
  return typeof message === 'object' && message !== null && Object.hasOwn(message, CLUSTER_MESSAGE_KEY) && typeof (message as WireMessage).topic === 'string';
}
