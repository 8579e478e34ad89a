// Type-level checks for redisBackplane() (tsc runs this file; it is never executed): both real
// clients are accepted without casts, and things that are not Redis clients are refused.
import http from 'node:http';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { redisBackplane } from '../../src/pubsub/redis.js';
import type { Backplane } from '../../src/pubsub/backplane.js';

const io = new Redis({ lazyConnect: true });
const nr = createClient({ url: 'redis://127.0.0.1:6379' });

export const checks: Backplane[] = [
  redisBackplane(new Redis()),
  redisBackplane(io, { prefix: 'app:', sharded: true }),
  redisBackplane(io, { subscriber: io.duplicate() }),
  redisBackplane(createClient()),
  redisBackplane(nr, { sharded: true, subscriber: nr.duplicate() }),
  redisBackplane(createClient({ RESP: 2 })),
  redisBackplane(createClient({ RESP: 3 })),
  // @ts-expect-error a URL is not a client
  redisBackplane('redis://127.0.0.1:6379'),
  // @ts-expect-error an empty object is not a client
  redisBackplane({}),
  // @ts-expect-error an HTTP server is not a client
  redisBackplane(http.createServer()),
  // @ts-expect-error the subscriber is a client too
  redisBackplane(io, { subscriber: 'redis://127.0.0.1:6379' }),
  // @ts-expect-error sharded is a boolean
  redisBackplane(nr, { sharded: 'yes' }),
];
