/**
 * The Redis backplane: publishes cross processes and hosts through Redis pub/sub, with a Redis
 * client the user brings (ioredis or node-redis); wsmount has no dependency on either.
 * (Being written: issue 11.)
 */
import type { Backplane } from './backplane.js';

/** Options for {@link redisBackplane}. */
export interface RedisBackplaneOptions {
  /** Prefix of every Redis channel wsmount uses (a topic's channel is prefix + topic). Default `'wsmount:'`. */
  prefix?: string;
  /** Use Redis 7 sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), for Redis Cluster. Default `false`. */
  sharded?: boolean;
}

/**
 * A backplane over Redis pub/sub. `client` is a connected ioredis or node-redis client; wsmount
 * publishes with it and subscribes on a duplicate of it.
 */
export function redisBackplane(client: object, options?: RedisBackplaneOptions): Backplane {
  void client;
  void options;
  throw new Error('redisBackplane: not written yet');
}
