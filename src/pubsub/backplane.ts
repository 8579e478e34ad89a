/**
 * The contract between a handler and a backplane: the transport that carries publishes between
 * processes (Redis pub/sub, node:cluster IPC, or an in-memory bus in one process). A backplane
 * moves opaque messages per topic and knows nothing of WebSockets; the handler frames, delivers
 * and drops its own echoes. Write your own (NATS, Postgres LISTEN/NOTIFY…) against this.
 */
import type { Logger } from '../logger.js';

/**
 * Where a backplane's errors happened: connecting or reconnecting, sending a publish, changing a
 * subscription, or handing on a message that arrived.
 */
export type BackplaneStage = 'connect' | 'publish' | 'subscribe' | 'receive';

/**
 * A transport that carries publishes between handlers in other processes or hosts. Give one to
 * `createWebSocketHandler(routes, { backplane })`: wsmount calls {@link Backplane.connect} once
 * for that handler. One backplane may serve several handlers in one process.
 *
 * Delivery is **at most once**: a message published while the transport is down is lost (and
 * counted), never queued without bound.
 */
export interface Backplane {
  /** Starts carrying messages for one handler (`node`); returns the handler's link. */
  connect(node: BackplaneNode): BackplaneLink;
}

/** A handler, as its backplane sees it. */
export interface BackplaneNode {
  /** This handler's random 8-byte id (hex): what marks its own messages when they come back. */
  readonly id: string;
  /** Where a backplane logs (the handler's logger and level). */
  readonly log: Logger;
  /**
   * A message arrived on a topic this node subscribed to: the exact bytes some node passed to
   * {@link BackplaneLink.publish}, this node's own included (the handler drops those).
   */
  receive(message: Uint8Array): void;
  /**
   * The transport went down (`false`: publishes are dropped and counted until it is back), or is
   * up again with every subscription restored (`true`). Repeats are ignored; the handler logs
   * one warning per outage.
   */
  status(up: boolean, reason?: unknown): void;
  /** An error the transport met (counted in `stats()`; logged at debug). */
  error(error: unknown, stage: BackplaneStage): void;
}

/** One handler's link to its backplane, from {@link Backplane.connect}. */
export interface BackplaneLink {
  /**
   * Sends `message` to every node subscribed to `topic` (this one included). Returns `false`
   * when it cannot (the transport is down): the message is dropped, and the handler counts it.
   * Must not throw.
   */
  publish(topic: string, message: Uint8Array): boolean;
  /** Receive this topic's messages from now on (the handler calls it for a topic's first local subscriber). */
  subscribe(topic: string): void;
  /** Stop receiving this topic's messages (called when its last local subscriber leaves). */
  unsubscribe(topic: string): void;
  /** Leaves the backplane: drops this node's subscriptions and frees what `connect()` made. */
  close(): Promise<void>;
}

/** A snapshot of a handler's backplane counters, in `stats().backplane`. */
export interface BackplaneStats {
  /** The transport is up (as last reported by the backplane). */
  connected: boolean;
  /** Messages sent to the backplane, and received from it (own echoes not counted). */
  messagesOut: number;
  messagesIn: number;
  /** Publishes not sent because the transport was down: at-most-once delivery lost them. */
  droppedWhileDisconnected: number;
  /** Times the transport went down. */
  outages: number;
  /** Errors the transport reported. */
  errors: number;
  /** Messages received that were malformed or from a newer wsmount (dropped). */
  malformed: number;
}
