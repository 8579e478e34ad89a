/**
 * The node:cluster backplane's primary side: the relay that carries publishes between the
 * workers' clusterBackplane()s (cluster.ts), only to workers subscribed to the topic.
 */
import type { ClusterSettings, Worker } from 'node:cluster';
import { cluster } from '../builtins.js';
import {
  CLUSTER_MESSAGE_KEY,
  type ClusterPrimary,
  type ClusterPrimaryOptions,
  type ClusterRelayStats,
  MARKER,
  OVERHEAD,
  RELAY,
  type WireMessage,
  checkMaxBackpressure,
  isWire,
} from './cluster-wire.js';

export type { ClusterPrimary, ClusterPrimaryOptions, ClusterRelayStats } from './cluster-wire.js';

/** What the relay knows of one worker. */
interface WorkerState {
  readonly worker: Worker;
  readonly topics: Set<string>;
  /** Bytes handed to this worker's channel and not yet written. */
  pending: number;
}

class Relay implements ClusterPrimary {
  private readonly workers = new Map<Worker, WorkerState>();
  private readonly topics = new Map<string, Set<WorkerState>>();
  private readonly maxBackpressure: number;
  private subscriptions = 0;
  private messagesIn = 0;
  private messagesOut = 0;
  private dropped = 0;

  constructor(maxBackpressure: number) {
    this.maxBackpressure = maxBackpressure;
    cluster().on('message', this.onMessage);
    cluster().on('disconnect', this.forget);
    cluster().on('exit', this.forget);
  }

  stats(): ClusterRelayStats {
    let workers = 0;
    for (const state of this.workers.values()) if (state.topics.size > 0) workers++;
    return {
      workers,
      topics: this.topics.size,
      subscriptions: this.subscriptions,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      dropped: this.dropped,
    };
  }

  close(): void {
    const global = globalThis as Record<symbol, unknown>;
    if (global[RELAY] !== this) return;
    delete global[RELAY];
    delete process.env[MARKER];
    cluster().off('message', this.onMessage);
    cluster().off('disconnect', this.forget);
    cluster().off('exit', this.forget);
    this.workers.clear();
    this.topics.clear();
    this.subscriptions = 0;
  }

  private readonly onMessage = (worker: Worker, message: unknown): void => {
    if (!isWire(message)) return;
    const topic = message.topic;
    switch (message[CLUSTER_MESSAGE_KEY]) {
      case 's': {
        if (!worker.isConnected()) return; // it already left: do not resurrect it
        let state = this.workers.get(worker);
        if (state === undefined) this.workers.set(worker, (state = { worker, topics: new Set(), pending: 0 }));
        if (state.topics.has(topic)) return;
        state.topics.add(topic);
        let set = this.topics.get(topic);
        if (set === undefined) this.topics.set(topic, (set = new Set()));
        set.add(state);
        this.subscriptions++;
        return;
      }
      case 'u': {
        const state = this.workers.get(worker);
        if (state === undefined || !state.topics.delete(topic)) return;
        this.drop(state, topic);
        return;
      }
      case 'p': {
        this.messagesIn++;
        const data = message.data;
        const set = this.topics.get(topic);
        if (set === undefined || !(data instanceof Uint8Array)) return;
        const from = this.workers.get(worker);
        const out: WireMessage = { [CLUSTER_MESSAGE_KEY]: 'm', topic, data };
        const size = data.byteLength + topic.length + OVERHEAD;
        for (const state of set) if (state !== from) this.relay(state, out, size);
        return;
      }
      default:
    }
  };

  private relay(state: WorkerState, message: WireMessage, size: number): void {
    if (!state.worker.isConnected() || (state.pending > 0 && state.pending + size > this.maxBackpressure)) {
      this.dropped++;
      return;
    }
    state.pending += size;
    try {
      state.worker.send(message, () => {
        state.pending -= size;
      });
      this.messagesOut++;
    } catch {
      state.pending -= size;
      this.dropped++;
    }
  }

  /** Removes one (topic, worker) pair. */
  private drop(state: WorkerState, topic: string): void {
    const set = this.topics.get(topic);
    if (set === undefined || !set.delete(state)) return;
    this.subscriptions--;
    if (set.size === 0) this.topics.delete(topic);
  }

  /** A worker exited or its channel closed: its subscriptions go. */
  private readonly forget = (worker: Worker): void => {
    const state = this.workers.get(worker);
    if (state === undefined) return;
    this.workers.delete(worker);
    for (const topic of state.topics) this.drop(state, topic);
    state.topics.clear();
  };
}

/**
 * Call once in the `node:cluster` primary, before `cluster.fork()`: sets the workers' IPC to
 * `serialization: 'advanced'` (keeping your other `cluster.setupPrimary()` settings) so bytes
 * cross as bytes, and starts the relay that carries publishes between the workers'
 * {@link clusterBackplane}s. Calling it again returns the same relay (later options are ignored).
 * The relay holds no handle of its own: it never keeps the primary alive.
 *
 * Under `'advanced'` the app's own `worker.send`/`process.send` messages go by structured clone
 * too: plain data arrives as with JSON; Buffers, Maps, Dates arrive as themselves.
 * Throws an `Error` in a worker.
 */
export function setupClusterPrimary(options?: ClusterPrimaryOptions): ClusterPrimary {
  const maxBackpressure = checkMaxBackpressure('setupClusterPrimary', options);
  if (!cluster().isPrimary) {
    throw new Error('wsmount: setupClusterPrimary() runs in the node:cluster primary, before cluster.fork(); this process is a worker: give clusterBackplane() to its handlers instead');
  }
  const global = globalThis as Record<symbol, unknown>;
  const existing = global[RELAY];
  if (existing !== undefined) return existing as ClusterPrimary;
  const settings: ClusterSettings = { serialization: 'advanced' };
  cluster().setupPrimary(settings);
  process.env[MARKER] = '1';
  const relay = new Relay(maxBackpressure);
  global[RELAY] = relay;
  return relay;
}
