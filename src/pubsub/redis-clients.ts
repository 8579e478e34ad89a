/**
 * The Redis clients the Redis backplane drives, recognized by their shape: the parts of ioredis
 * and node-redis that wsmount uses (as types; neither is imported), and one driver per library
 * behind the same small interface (redis.ts).
 */
import type { Buffer } from 'node:buffer';

/** A listener as wsmount adds it to a client's events (each event's arguments are known to wsmount). */
export type Listener = (...args: unknown[]) => void;

/**
 * The parts of an ioredis client (v5, v6) that wsmount uses. A `new Redis(...)` is one; you never
 * need to name this type.
 */
export interface IoRedisLike {
  /** `'ready'` when commands go out now (ioredis's connection status). */
  readonly status: string;
  /** ioredis's options; `keyPrefix` is applied to sharded channel names. */
  readonly options?: { readonly keyPrefix?: string | undefined } | undefined;
  /** A new client with the same options: wsmount's subscriber. */
  duplicate(): IoRedisLike;
  /** Connects a client made with `lazyConnect` (wsmount calls it only on its own subscriber). */
  connect(): Promise<unknown>;
  /** Closes at once (wsmount's subscriber, when it is not connected). */
  disconnect(): void;
  /** Closes politely (wsmount's subscriber, when it is connected). */
  quit(): Promise<unknown>;
  /** `PUBLISH`. */
  publish(channel: string, message: Buffer): Promise<unknown>;
  /** `SUBSCRIBE`; messages come as `'messageBuffer'` events. */
  subscribe(...channels: string[]): Promise<unknown>;
  /** `UNSUBSCRIBE`. */
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** `SPUBLISH` (Redis 7), for `sharded: true`. */
  spublish?(channel: string, message: Buffer): Promise<unknown>;
  /** `SSUBSCRIBE` (Redis 7); messages come as `'smessageBuffer'` events. */
  ssubscribe?(...channels: string[]): Promise<unknown>;
  /** `SUNSUBSCRIBE` (Redis 7). */
  sunsubscribe?(...channels: string[]): Promise<unknown>;
  /** Adds an event listener (EventEmitter). */
  on(event: string, listener: Listener): unknown;
  /** Removes an event listener (EventEmitter). */
  removeListener(event: string, listener: Listener): unknown;
}

/** What node-redis hands a buffer-mode pub/sub listener. */
export type BufferListener = (message: Buffer, channel: Buffer) => unknown;

/**
 * The parts of a node-redis client (v4, v5, v6) that wsmount uses. A `createClient(...)` is one;
 * you never need to name this type.
 */
export interface NodeRedisLike {
  /** Connected and done with its handshake: commands go out now. */
  readonly isReady: boolean;
  /** `connect()` was called and the client was not closed since (it may be reconnecting). */
  readonly isOpen: boolean;
  /** A new, unconnected client with the same options: wsmount's subscriber. */
  duplicate(): NodeRedisLike;
  /** Connects (wsmount calls it only on its own subscriber). */
  connect(): Promise<unknown>;
  /** `PUBLISH`. */
  publish(channel: string, message: Buffer): Promise<unknown>;
  /** `SUBSCRIBE` with a listener in buffer mode (third argument `true`): messages as Buffers. */
  subscribe(channels: string[], listener: BufferListener, bufferMode: true): Promise<unknown>;
  /** `UNSUBSCRIBE` of that listener. */
  unsubscribe(channels: string[], listener: BufferListener, bufferMode: true): Promise<unknown>;
  /** `SPUBLISH` (Redis 7), for `sharded: true`. */
  sPublish?(channel: string, message: Buffer): Promise<unknown>;
  /** `SSUBSCRIBE` (Redis 7), buffer mode. */
  sSubscribe?(channels: string[], listener: BufferListener, bufferMode: true): Promise<unknown>;
  /** `SUNSUBSCRIBE` (Redis 7). */
  sUnsubscribe?(channels: string[], listener: BufferListener, bufferMode: true): Promise<unknown>;
  /** v5+: waits for pending commands, then closes. */
  close?(): Promise<unknown>;
  /** v5+: closes at once. */
  destroy?(): unknown;
  /** v4: waits for pending commands, then closes (`close()` since v5). */
  quit?(): Promise<unknown>;
  /** v4: closes at once (`destroy()` since v5). */
  disconnect?(): Promise<unknown>;
  /** Adds an event listener (EventEmitter). */
  on(event: string, listener: Listener): unknown;
  /** Removes an event listener (EventEmitter). */
  removeListener(event: string, listener: Listener): unknown;
}

/** A Redis client {@link redisBackplane} accepts: an ioredis or a node-redis client. */
export type RedisBackplaneClient = IoRedisLike | NodeRedisLike;

/** How a client is driven, whichever library it comes from. @internal */
export interface Driver {
  /** Commands go out now (not into the library's offline queue). */
  ready(): boolean;
  publish(channel: string, message: Buffer): Promise<unknown>;
  subscribe(channels: string[]): Promise<unknown>;
  unsubscribe(channels: string[]): Promise<unknown>;
  /** Calls `deliver` with each message's channel name and bytes; returns what stops it. */
  listen(deliver: (channel: string, message: Buffer) => void): () => void;
  /** Starts connecting a client that is not (only for the duplicate wsmount owns). */
  start(): Promise<unknown> | undefined;
  /** Ends the connection: politely when it is up, at once when it is not. */
  quit(): Promise<void>;
  readonly client: RedisBackplaneClient;
}


/** How long quitting the owned subscriber may take before it is dropped. @internal */
export const QUIT_TIMEOUT = 2000;

/** Which library a client is from, by its shape; null when it is neither. @internal */
export function kindOf(client: unknown): 'ioredis' | 'node-redis' | null {
  if (typeof client !== 'object' || client === null) return null;
  const c = client as Record<string, unknown>;
  if (typeof c.duplicate !== 'function' || typeof c.publish !== 'function' || typeof c.on !== 'function' || typeof c.removeListener !== 'function') return null;
  if (typeof c.isReady === 'boolean' && typeof c.subscribe === 'function') return 'node-redis';
  if (typeof c.status === 'string' && typeof c.subscribe === 'function') return 'ioredis';
  return null;
}

/** What a wrong argument is, for an error message. @internal */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `a ${name}` : 'an object that is not a Redis client';
}

/** The TypeError for an argument that is not a Redis client. @internal */
export function wrongClient(what: string, value: unknown): TypeError {
  return new TypeError(
    `wsmount: redisBackplane(): ${what} is an ioredis client (new Redis(url)) or a node-redis client (createClient({ url }), connected with await client.connect()), not ${describe(value)}`,
  );
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. @internal */
export function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

/** Drives an ioredis client. @internal */
export function ioredisDriver(c: IoRedisLike, sharded: boolean): Driver {
  // ioredis applies `keyPrefix` to sharded channels (it takes them for keys) and hands them back
  // with it; plain pub/sub channels are left alone.
  const added = sharded ? (c.options?.keyPrefix ?? '') : '';
  const event = sharded ? 'smessageBuffer' : 'messageBuffer';
  return {
    client: c,
    ready: () => c.status === 'ready',
    publish: sharded ? (channel, message) => (c.spublish as NonNullable<IoRedisLike['spublish']>)(channel, message) : (channel, message) => c.publish(channel, message),
    subscribe: (channels) => (sharded ? (c.ssubscribe as NonNullable<IoRedisLike['ssubscribe']>).apply(c, channels) : c.subscribe(...channels)),
    unsubscribe: (channels) => (sharded ? (c.sunsubscribe as NonNullable<IoRedisLike['sunsubscribe']>).apply(c, channels) : c.unsubscribe(...channels)),
    listen(deliver) {
      const onMessage = (channel: Buffer, message: Buffer): void => {
        const name = channel.toString();
        deliver(added !== '' && name.startsWith(added) ? name.slice(added.length) : name, message);
      };
      c.on(event, onMessage as Listener);
      return () => void c.removeListener(event, onMessage as Listener);
    },
    // A client made with lazyConnect waits for a first command; a subscriber must connect now.
    start: () => (c.status === 'wait' ? c.connect() : undefined),
    async quit() {
      if (c.status === 'ready') await bounded(c.quit(), QUIT_TIMEOUT);
      if (c.status !== 'end') c.disconnect();
    },
  };
}

/** Drives a node-redis client. @internal */
export function nodeRedisDriver(c: NodeRedisLike, sharded: boolean): Driver {
  // One listener for every channel: node-redis keeps a set of listeners per channel, so adding
  // the same function again (when resubscribing) is a no-op there.
  let deliverTo: ((channel: string, message: Buffer) => void) | null = null;
  const listener: BufferListener = (message, channel) => deliverTo?.(channel.toString(), message);
  const sub = sharded ? (c.sSubscribe as NonNullable<NodeRedisLike['sSubscribe']>) : c.subscribe;
  const unsub = sharded ? (c.sUnsubscribe as NonNullable<NodeRedisLike['sUnsubscribe']>) : c.unsubscribe;
  return {
    client: c,
    ready: () => c.isReady,
    publish: sharded ? (channel, message) => (c.sPublish as NonNullable<NodeRedisLike['sPublish']>)(channel, message) : (channel, message) => c.publish(channel, message),
    subscribe: (channels) => sub.call(c, channels, listener, true),
    unsubscribe: (channels) => unsub.call(c, channels, listener, true),
    listen(deliver) {
      deliverTo = deliver;
      return () => {
        deliverTo = null;
      };
    },
    start: () => (c.isOpen ? undefined : c.connect()),
    async quit() {
      if (c.isReady) await bounded(Promise.resolve().then(() => (c.close ?? c.quit)?.call(c)), QUIT_TIMEOUT);
      if (!c.isOpen) return;
      try {
        if (c.destroy !== undefined) c.destroy();
        else await c.disconnect?.call(c);
      } catch {
        // Closed meanwhile: nothing left to end.
      }
    },
  };
}

/** The driver for a client of either library. @internal */
export function driverFor(client: RedisBackplaneClient, sharded: boolean): Driver {
  return kindOf(client) === 'node-redis' ? nodeRedisDriver(client as NodeRedisLike, sharded) : ioredisDriver(client as IoRedisLike, sharded);
}

/** Throws unless `client` has what `sharded` mode calls. @internal */
export function checkSharded(client: unknown, what: string): void {
  const c = client as Record<string, unknown>;
  const names = kindOf(client) === 'node-redis' ? ['sPublish', 'sSubscribe', 'sUnsubscribe'] : ['spublish', 'ssubscribe', 'sunsubscribe'];
  const missing = names.filter((name) => typeof c[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`wsmount: redisBackplane(): sharded: true needs Redis 7's sharded pub/sub, and ${what} has no ${missing.join(', ')} (upgrade ioredis or node-redis)`);
  }
}
