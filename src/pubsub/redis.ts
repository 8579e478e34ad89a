/**
 * The Redis backplane: publishes cross processes and hosts through Redis pub/sub, with a Redis
 * client the user brings (ioredis or node-redis); wsmount has no dependency on either. The
 * clients are recognized by their shape, and the types below describe only what is used.
 *
 * One Redis channel per topic (prefix + topic), subscribed while some handler in this process has
 * a local subscriber to it: a process receives only the topics it needs (issue 11).
 */
import { Buffer } from 'node:buffer';
import type { Backplane, BackplaneLink, BackplaneNode, BackplaneStage } from './backplane.js';
import {
  type Driver,
  type IoRedisLike,
  type NodeRedisLike,
  QUIT_TIMEOUT,
  type RedisBackplaneClient,
  bounded,
  checkSharded,
  describe,
  driverFor,
  kindOf,
  wrongClient,
} from './redis-clients.js';

export type { IoRedisLike, NodeRedisLike, RedisBackplaneClient } from './redis-clients.js';


/** Options for {@link redisBackplane}. */
export interface RedisBackplaneOptions {
  /** Prefix of every Redis channel wsmount uses (a topic's channel is prefix + topic). Default `'wsmount:'`. */
  prefix?: string;
  /**
   * Use Redis 7 sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, one command per channel), for Redis
   * Cluster: a channel then lives on its slot's shard instead of being copied to every node.
   * Needs Redis 7.0 or later. Default `false`.
   */
  sharded?: boolean;
  /**
   * A client to subscribe with, yours: wsmount adds its channels and listeners to it and removes
   * them on close, but never quits it. By default wsmount subscribes on `client.duplicate()`,
   * which it connects, owns and quits when the last handler using this backplane closes.
   */
  subscriber?: RedisBackplaneClient;
}


/** Events that may change whether a connection is ready; 'error' is also counted. */
const STATE_EVENTS = ['ready', 'error', 'close', 'end', 'reconnecting'] as const;
/** Channels per SUBSCRIBE when resubscribing many topics at once. */
const SUBSCRIBE_BATCH = 1000;

/**
 * The connections and subscriptions shared by every handler linked to one backplane, from the
 * first `connect()` to the last link's `close()`.
 */
class Session {
  private readonly pub: Driver;
  private readonly sub: Driver;
  private readonly ownsSubscriber: boolean;
  private readonly prefix: string;
  private readonly sharded: boolean;
  /** Channel -> the linked nodes with a local subscriber to its topic; one Redis subscription each. */
  private readonly channels = new Map<string, Set<BackplaneNode>>();
  /** Channels given up while the subscriber was down: unsubscribed once it is back. */
  private readonly stale = new Set<string>();
  readonly nodes = new Set<BackplaneNode>();
  /** What the linked nodes were last told; a handler starts out 'up'. */
  private told = true;
  private lastReason: unknown = undefined;
  /** Every channel in `channels` was (re)subscribed on the subscriber's current connection. */
  private resubscribed = false;
  /** Bumped when the subscriber connects or drops: a resubscription from before is stale. */
  private generation = 0;
  private readonly undo: (() => void)[] = [];
  private ended = false;

  constructor(pub: Driver, sub: Driver, ownsSubscriber: boolean, prefix: string, sharded: boolean) {
    this.pub = pub;
    this.sub = sub;
    this.ownsSubscriber = ownsSubscriber;
    this.prefix = prefix;
    this.sharded = sharded;
    this.watch(pub, 'publisher');
    if (sub !== pub) this.watch(sub, 'subscriber');
    this.undo.push(sub.listen((channel, message) => this.deliver(channel, message)));
    if (ownsSubscriber) this.call(() => sub.start() ?? Promise.resolve()).then(undefined, (error: unknown) => this.error(error, 'connect'));
    if (sub.ready()) this.resubscribe();
  }

  /** Follows one connection's state; its 'error' events are counted (and never crash the process). */
  private watch(driver: Driver, role: 'publisher' | 'subscriber'): void {
    const client = driver.client;
    for (const event of STATE_EVENTS) {
      const onEvent = (arg?: unknown): void => this.onState(driver, role, event, arg);
      client.on(event, onEvent);
      this.undo.push(() => void client.removeListener(event, onEvent));
    }
  }

  private onState(driver: Driver, role: 'publisher' | 'subscriber', event: (typeof STATE_EVENTS)[number], arg: unknown): void {
    if (this.ended) return;
    if (event === 'error') this.error(arg, 'connect');
    if (driver === this.sub) {
      if (event === 'ready') {
        this.resubscribe();
        return;
      }
      if (!driver.ready()) {
        // Dropped: what was subscribed on the old connection is not trusted to come back.
        this.generation++;
        this.resubscribed = false;
      }
    }
    if (event === 'ready') this.evaluate();
    else if (!driver.ready()) this.down(arg instanceof Error ? `Redis ${role} connection: ${arg.message}` : `Redis ${role} connection ${event === 'error' ? 'failed' : event === 'reconnecting' ? 'lost, reconnecting' : 'closed'}`);
  }

  /** Reports the outage once (a connection dropped or failed). */
  private down(reason: string): void {
    if (!this.told) return;
    this.told = false;
    this.lastReason = reason;
    for (const node of this.nodes) node.status(false, reason);
  }

  /** Reports the end of an outage once both connections are ready and every channel is back. */
  private evaluate(): void {
    if (this.told || !this.pub.ready() || !this.sub.ready() || !this.resubscribed) return;
    this.told = true;
    for (const node of this.nodes) node.status(true);
  }

  /**
   * Subscribes every current channel on the subscriber's (new) connection, and drops those given
   * up while it was down. The client library may resubscribe by itself (ioredis does; node-redis
   * forgets a SUBSCRIBE that was in flight when the connection dropped), so this never relies on
   * it: a doubled SUBSCRIBE is harmless.
   */
  private resubscribe(): void {
    const generation = ++this.generation;
    this.resubscribed = false;
    const jobs: Promise<unknown>[] = [];
    const stale = [...this.stale].filter((channel) => !this.channels.has(channel));
    this.stale.clear();
    if (stale.length > 0) jobs.push(this.unsubscribeNow(stale));
    const channels = [...this.channels.keys()];
    // Sharded: one channel per command (Redis Cluster refuses a batch across hash slots).
    const batch = this.sharded ? 1 : SUBSCRIBE_BATCH;
    for (let i = 0; i < channels.length; i += batch) jobs.push(this.subscribeNow(channels.slice(i, i + batch)));
    void Promise.all(jobs).then(() => {
      if (this.ended || generation !== this.generation || !this.sub.ready()) return;
      this.resubscribed = true;
      this.evaluate();
    });
  }

  /** Sends SUBSCRIBE; a failure is reported, never an unhandled rejection. Resolves either way. */
  private subscribeNow(channels: string[]): Promise<void> {
    return this.call(() => this.sub.subscribe(channels)).then(undefined, (error: unknown) => this.error(error, 'subscribe'));
  }

  private unsubscribeNow(channels: string[]): Promise<void> {
    return this.unsubscribeAll(channels).then(undefined, (error: unknown) => {
      this.error(error, 'subscribe');
      // Maybe still subscribed there: retried when the subscriber is next ready.
      for (const channel of channels) if (!this.channels.has(channel)) this.stale.add(channel);
    });
  }

  /** UNSUBSCRIBE, one channel per command when sharded (as for SSUBSCRIBE: one hash slot each). */
  private unsubscribeAll(channels: string[]): Promise<unknown> {
    if (!this.sharded || channels.length <= 1) return this.call(() => this.sub.unsubscribe(channels));
    return Promise.all(channels.map((channel) => this.call(() => this.sub.unsubscribe([channel]))));
  }

  /** Runs a client call: a synchronous throw becomes a rejection. */
  private call(fn: () => Promise<unknown>): Promise<unknown> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private error(error: unknown, stage: BackplaneStage): void {
    for (const node of this.nodes) node.error(error, stage);
  }

  private deliver(channel: string, message: Buffer): void {
    const nodes = this.channels.get(channel);
    if (nodes === undefined) return; // the last subscriber here left while it was on its way
    for (const node of nodes) {
      try {
        node.receive(message);
      } catch (error) {
        node.error(error, 'receive');
      }
    }
  }

  join(node: BackplaneNode): void {
    this.nodes.add(node);
    if (!this.told) node.status(false, this.lastReason);
  }

  publish(node: BackplaneNode, topic: string, message: Uint8Array): boolean {
    // At most once, bounded memory: never let the library's offline queue hold a publish.
    if (this.ended || !this.pub.ready()) return false;
    const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    return this.publishNow(node, this.prefix + topic, bytes);
  }

  private publishNow(node: BackplaneNode, channel: string, message: Buffer): boolean {
    try {
      this.pub.publish(channel, message).then(undefined, (error: unknown) => node.error(error, 'publish'));
      return true;
    } catch (error) {
      node.error(error, 'publish');
      return false;
    }
  }

  subscribe(node: BackplaneNode, topic: string): void {
    const channel = this.prefix + topic;
    let nodes = this.channels.get(channel);
    if (nodes === undefined) {
      nodes = new Set();
      this.channels.set(channel, nodes);
      this.stale.delete(channel);
      // While the subscriber is down, resubscribe() sends it once it is back.
      if (this.sub.ready()) void this.subscribeNow([channel]);
    }
    nodes.add(node);
  }

  unsubscribe(node: BackplaneNode, topic: string): void {
    const channel = this.prefix + topic;
    const nodes = this.channels.get(channel);
    if (nodes === undefined || !nodes.delete(node) || nodes.size > 0) return;
    this.channels.delete(channel);
    if (this.sub.ready()) void this.unsubscribeNow([channel]);
    else this.stale.add(channel);
  }

  /** After the end, with the user's subscriber down: one 'ready' listener that unsubscribes `channels`, then removes itself. */
  private unsubscribeOnReady(channels: string[]): void {
    const client = this.sub.client;
    const onReady = (): void => {
      client.removeListener('ready', onReady);
      this.unsubscribeAll(channels).then(undefined, () => {});
    };
    client.on('ready', onReady);
  }

  /** The last link closed: stop listening to the user's clients, quit the subscriber wsmount owns. */
  async end(): Promise<void> {
    this.ended = true;
    this.generation++;
    const channels = [...this.channels.keys(), ...this.stale];
    this.channels.clear();
    this.stale.clear();
    // Listeners are removed after quitting, so an 'error' while quitting cannot crash the process.
    if (this.ownsSubscriber) {
      await this.sub.quit();
    } else if (channels.length > 0) {
      if (this.sub.ready()) await bounded(this.unsubscribeAll(channels), QUIT_TIMEOUT);
      // Your subscriber is down: the library would restore these channels when it reconnects.
      // Unsubscribe them then (once), so that it does not go on receiving wsmount's traffic.
      else this.unsubscribeOnReady(channels);
    }
    for (const undo of this.undo.splice(0)) undo();
  }
}

/**
 * A backplane over Redis pub/sub, for `createWebSocketHandler(routes, { backplane })`: a publish
 * reaches the topic's subscribers in every process and host that uses the same Redis.
 *
 * ```ts
 * import { Redis } from 'ioredis';          // or: import { createClient } from 'redis';
 * const redis = new Redis(process.env.REDIS_URL);   // or: await createClient({ url }).connect()
 * const sockets = createWebSocketHandler(routes, { backplane: redisBackplane(redis) });
 * ```
 *
 * - `client` is your ioredis (v5, v6) or node-redis (v4–v6) client, connected or connecting.
 *   wsmount publishes with it (`PUBLISH`, or `SPUBLISH` when `sharded`), subscribes on
 *   `client.duplicate()` (connected, owned and quit by wsmount), and never closes `client`.
 * - Each topic is one channel, `prefix + topic`, subscribed while a handler in this process has a
 *   local subscriber to it (one Redis subscription per topic, however many handlers share this
 *   backplane). Messages are received as bytes and handed on unchanged.
 * - Delivery is at most once: while the publishing connection is down, `publish` drops instead
 *   of letting the client library queue (the handler counts the drops); while the subscriber is
 *   down, this process misses what others publish. Either is one outage, logged once.
 *   The outage ends when both connections are ready and wsmount has resubscribed every topic
 *   itself, whatever the library restores on its own.
 * - While a handler uses this backplane, wsmount listens to `'error'` on `client` and on the
 *   subscriber, so a Redis outage never crashes the process with an unhandled `'error'` event;
 *   errors are counted in `stats().backplane.errors` and logged at debug. Add your own `'error'`
 *   listener to `client` to see them, and to keep it safe once the handlers are closed.
 *
 * Throws a `TypeError` when `client` (or `options.subscriber`) is not a Redis client.
 */
export function redisBackplane(client: RedisBackplaneClient, options: RedisBackplaneOptions = {}): Backplane {
  if (kindOf(client) === null) throw wrongClient('the client', client);
  if (typeof options !== 'object' || options === null) throw new TypeError(`wsmount: redisBackplane(): options is an object ({ prefix, sharded, subscriber }), not ${describe(options)}`);
  const { prefix = 'wsmount:', sharded = false, subscriber } = options;
  if (typeof prefix !== 'string') throw new TypeError(`wsmount: redisBackplane(): prefix is a string (default 'wsmount:'), not ${describe(prefix)}`);
  if (typeof sharded !== 'boolean') throw new TypeError(`wsmount: redisBackplane(): sharded is true or false, not ${describe(sharded)}`);
  if (subscriber !== undefined && kindOf(subscriber) === null) throw wrongClient('options.subscriber', subscriber);
  if (subscriber === client) throw new TypeError('wsmount: redisBackplane(): options.subscriber must be another connection than the client (a subscribed connection cannot publish); leave it out and wsmount subscribes on client.duplicate()');
  if (sharded) {
    checkSharded(client, 'the client');
    if (subscriber !== undefined) checkSharded(subscriber, 'options.subscriber');
  }

  let session: Session | null = null;

  const open = (node: BackplaneNode): Session => {
    if (session !== null) return session;
    const pub = driverFor(client, sharded);
    if (!pub.ready() && ((client as NodeRedisLike).isOpen === false || (client as IoRedisLike).status === 'end' || (client as IoRedisLike).status === 'wait')) {
      node.log.warn('wsmount: redisBackplane(): the Redis client is not connecting (call connect() on it): publishes are dropped until it is ready');
    }
    const sub = driverFor(subscriber ?? (client.duplicate() as RedisBackplaneClient), sharded);
    session = new Session(pub, sub, subscriber === undefined, prefix, sharded);
    return session;
  };

  return {
    connect(node: BackplaneNode): BackplaneLink {
      const s = open(node);
      s.join(node);
      const mine = new Set<string>();
      let closed: Promise<void> | null = null;
      return {
        publish: (topic, message) => closed === null && s.publish(node, topic, message),
        subscribe(topic) {
          if (closed !== null || mine.has(topic)) return;
          mine.add(topic);
          s.subscribe(node, topic);
        },
        unsubscribe(topic) {
          if (closed !== null || !mine.delete(topic)) return;
          s.unsubscribe(node, topic);
        },
        close() {
          if (closed !== null) return closed;
          for (const topic of mine) s.unsubscribe(node, topic);
          mine.clear();
          s.nodes.delete(node);
          if (s.nodes.size > 0) return (closed = Promise.resolve());
          // The last handler left: a later connect() starts over with a new subscriber.
          if (session === s) session = null;
          return (closed = s.end());
        },
      };
    },
  };
}
