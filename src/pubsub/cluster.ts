/**
 * The node:cluster backplane: publishes cross the workers of one machine through the primary,
 * over Node's IPC channels, without Redis.
 *
 * - **Topology.** A worker sends each publish to the primary; the primary relays it to the
 *   workers that have subscribers for its topic, never back to the sender. A worker tells the
 *   primary on a topic's first local subscriber and on its last, so a worker receives only the
 *   topics it has subscribers for; the primary forgets a worker that exits. Handlers inside one
 *   worker (several ports) reach each other without the trip through the primary.
 * - **Bytes.** Messages cross as `Uint8Array`s under `serialization: 'advanced'` (structured
 *   clone). Node's default, JSON, turns a Buffer into an array of numbers, so
 *   {@link setupClusterPrimary} switches the primary to `'advanced'` before it forks, and
 *   {@link clusterBackplane} refuses to run in a worker forked without it.
 * - **Tagged.** wsmount's IPC messages are objects with the key {@link CLUSTER_MESSAGE_KEY};
 *   the app's own `process.send` messages are left alone (and the app's `'message'` listeners
 *   see wsmount's: ignore objects with that key).
 * - **Bounded memory.** `process.send` queues without bound when the other side reads slowly.
 *   Bytes handed to it and not yet written to the channel are counted; a publish that would take
 *   them over `maxBackpressure` (default 8 MiB; one message always goes when nothing is pending)
 *   is dropped, so `publish()` returns `false` and the handler counts it in
 *   `stats().backplane.droppedWhileDisconnected` (logged at warn once per backlog). The primary
 *   applies the same rule to each worker it relays to, and counts what it drops.
 */
import { Buffer } from 'node:buffer';
import { cluster } from '../builtins.js';
import type { Backplane, BackplaneLink, BackplaneNode } from './backplane.js';
import { CLUSTER_MESSAGE_KEY, type ClusterBackplaneOptions, MARKER, OVERHEAD, type WireMessage, checkMaxBackpressure, isWire } from './cluster-wire.js';

export { CLUSTER_MESSAGE_KEY, type ClusterBackplaneOptions } from './cluster-wire.js';

// ---- the worker's side ---------------------------------------------------------------------------

/**
 * The IPC serialization this process's channel to its parent uses, read from Node's internals
 * (the same on Node 20, 22 and 24); `undefined` when they cannot be read.
 */
function channelSerialization(): 'json' | 'advanced' | undefined {
  const owner = process as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(process).find((s) => s.description === 'kChannelHandle');
  const handle = key === undefined ? undefined : owner[key];
  if (typeof handle !== 'object' || handle === null) return undefined;
  for (const s of Object.getOwnPropertySymbols(handle)) {
    if (s.description === 'kJSONBuffer') return 'json';
    if (s.description === 'kMessageBuffer') return 'advanced';
  }
  return undefined;
}

/** One handler linked to this worker's hub. */
interface Member {
  readonly node: BackplaneNode;
  readonly topics: Set<string>;
  /** The backplane it joined through (its memory cap and backlog warning). */
  readonly via: WorkerBackplane;
}

/** A publish on its way to the other handlers in this worker. */
interface LocalMessage {
  from: Member;
  topic: string;
  message: Uint8Array;
}

/** This worker's end of the IPC channel, shared by every handler in the process. */
class WorkerHub {
  private readonly members = new Set<Member>();
  /** Topic -> the members subscribed to it here; the primary knows the topics that have an entry. */
  private readonly topics = new Map<string, Set<Member>>();
  /** Bytes handed to `process.send` and not yet written. */
  private pending = 0;
  private up = true;
  private listening = false;
  private local: LocalMessage[] = [];
  private scheduled = false;

  join(node: BackplaneNode, via: WorkerBackplane): Member {
    const member: Member = { node, topics: new Set(), via };
    this.members.add(member);
    if (!this.listening) {
      this.listening = true;
      // A 'message' listener holds the channel open; it goes when the last handler leaves.
      process.on('message', this.onMessage);
      process.on('disconnect', this.onDisconnect);
    }
    if (!this.up || !process.connected) {
      this.up = false;
      node.status(false, 'the IPC channel to the cluster primary is closed');
    }
    return member;
  }

  leave(member: Member): void {
    if (!this.members.delete(member)) return;
    for (const topic of member.topics) this.unsubscribe(member, topic);
    if (this.members.size === 0 && this.listening) {
      this.listening = false;
      process.off('message', this.onMessage);
      process.off('disconnect', this.onDisconnect);
    }
  }

  subscribe(member: Member, topic: string): void {
    if (member.topics.has(topic)) return;
    member.topics.add(topic);
    let set = this.topics.get(topic);
    if (set === undefined) {
      this.topics.set(topic, (set = new Set()));
      this.control('s', topic);
    }
    set.add(member);
  }

  unsubscribe(member: Member, topic: string): void {
    if (!member.topics.delete(topic)) return;
    const set = this.topics.get(topic);
    if (set === undefined) return;
    set.delete(member);
    if (set.size === 0) {
      this.topics.delete(topic);
      this.control('u', topic);
    }
  }

  publish(from: Member, topic: string, message: Uint8Array): boolean {
    // Other handlers in this worker: asynchronously, in publish order, like a remote delivery;
    // they need no primary, so this goes on when the channel to it is gone.
    const here = this.topics.get(topic);
    if (here !== undefined && (here.size > 1 || !here.has(from))) {
      this.local.push({ from, topic, message });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushLocal);
      }
    }
    if (!this.up || !process.connected) return false;
    const size = message.byteLength + topic.length + OVERHEAD;
    const via = from.via;
    if (this.pending > 0 && this.pending + size > via.maxBackpressure) {
      if (!via.congested) {
        via.congested = true;
        from.node.log.warn(
          `wsmount: the IPC channel to the cluster primary has ${this.pending} bytes unwritten (over maxBackpressure, ${via.maxBackpressure}): publishes to other workers are dropped until it drains (counted in stats().backplane)`,
        );
      }
      return false;
    }
    via.congested = false;
    return this.send({ [CLUSTER_MESSAGE_KEY]: 'p', topic, data: message }, size);
  }

  /** Tells the primary about a topic's first or last subscriber here. Never dropped for backlog. */
  private control(kind: 's' | 'u', topic: string): void {
    if (this.up && process.connected) this.send({ [CLUSTER_MESSAGE_KEY]: kind, topic }, topic.length + OVERHEAD);
  }

  private send(message: WireMessage, size: number): boolean {
    if (process.send === undefined) return false;
    this.pending += size;
    try {
      // A callback, so that a failed write is not an 'error' event on process.
      process.send(message, undefined, undefined, () => {
        this.pending -= size;
      });
      return true;
    } catch (error) {
      this.pending -= size;
      for (const m of this.members) m.node.error(error, message[CLUSTER_MESSAGE_KEY] === 'p' ? 'publish' : 'subscribe');
      return false;
    }
  }

  private readonly flushLocal = (): void => {
    this.scheduled = false;
    const batch = this.local;
    this.local = [];
    for (const { from, topic, message } of batch) {
      const set = this.topics.get(topic);
      if (set === undefined) continue;
      for (const m of set) if (m !== from) deliver(m.node, message);
    }
  };

  private readonly onMessage = (message: unknown): void => {
    if (!isWire(message) || message[CLUSTER_MESSAGE_KEY] !== 'm') return;
    const data = message.data;
    const set = this.topics.get(message.topic);
    if (set === undefined || !(data instanceof Uint8Array)) return; // the last subscriber left meanwhile
    // Structured clone gives a Buffer for a Buffer, a Uint8Array otherwise: a view, no copy.
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (const m of set) deliver(m.node, bytes);
  };

  private readonly onDisconnect = (): void => {
    if (!this.up) return;
    this.up = false;
    for (const m of this.members) m.node.status(false, 'the IPC channel to the cluster primary closed');
  };
}

function deliver(node: BackplaneNode, message: Uint8Array): void {
  try {
    node.receive(message);
  } catch (error) {
    node.error(error, 'receive');
  }
}

let hub: WorkerHub | undefined;

/** A backplane made by {@link clusterBackplane}: its cap, and whether it has warned of a backlog. */
interface WorkerBackplane extends Backplane {
  readonly maxBackpressure: number;
  congested: boolean;
}

/**
 * A backplane for a `node:cluster` worker: give it to `createWebSocketHandler(routes, { backplane })`
 * in each worker, and call {@link setupClusterPrimary} once in the primary before `cluster.fork()`.
 * Publishes reach the subscribers in every worker; each worker receives only the topics it has
 * subscribers for. Delivery is at most once: a publish over `maxBackpressure`, or after the
 * channel to the primary closed, is dropped and counted.
 *
 * Throws an `Error` outside a cluster worker, and a `TypeError` in a worker whose primary did not
 * call {@link setupClusterPrimary} before forking it (its IPC would turn bytes into JSON arrays).
 * While a handler is linked, the worker's IPC channel is held open (a `'message'` listener);
 * `handler.close()` releases it.
 */
export function clusterBackplane(options?: ClusterBackplaneOptions): Backplane {
  const maxBackpressure = checkMaxBackpressure('clusterBackplane', options);
  if (!cluster().isWorker || typeof process.send !== 'function') {
    throw new Error(
      cluster().isPrimary && typeof process.send !== 'function'
        ? 'wsmount: clusterBackplane() runs in a node:cluster worker, and this process is not one: call setupClusterPrimary() in the primary before cluster.fork(), and clusterBackplane() in each worker (in one process, memoryBackplane() links several handlers)'
        : 'wsmount: clusterBackplane() runs in a node:cluster worker, and this process is not one (it has an IPC channel, but is not a cluster worker): use clusterBackplane() in workers forked by cluster.fork()',
    );
  }
  const mode = channelSerialization();
  if (mode === 'json') {
    throw new TypeError(
      "wsmount: clusterBackplane(): this worker was forked with JSON IPC serialization, which turns bytes into arrays of numbers: call setupClusterPrimary() in the primary before cluster.fork() (it sets serialization: 'advanced'), and do not set serialization back to 'json' afterwards",
    );
  }
  if (process.env[MARKER] !== '1') {
    throw new TypeError(
      "wsmount: clusterBackplane(): the primary did not call setupClusterPrimary(), so nothing relays publishes between workers: call setupClusterPrimary() in the primary before cluster.fork() (it also sets serialization: 'advanced')",
    );
  }
  const backplane: WorkerBackplane = {
    maxBackpressure,
    congested: false,
    connect(node: BackplaneNode): BackplaneLink {
      hub ??= new WorkerHub();
      const shared = hub;
      const member = shared.join(node, backplane);
      let open = true;
      return {
        publish: (topic, message) => open && shared.publish(member, topic, message),
        subscribe: (topic) => {
          if (open) shared.subscribe(member, topic);
        },
        unsubscribe: (topic) => {
          if (open) shared.unsubscribe(member, topic);
        },
        close: () => {
          if (open) {
            open = false;
            shared.leave(member);
          }
          return Promise.resolve();
        },
      };
    },
  };
  return backplane;
}
