// wsmount with topics, for the fan-out scenario (issue 11):
//   /sub     subscribes to the topic 'fanout' when it opens
//   /pub     publishes every message it receives to 'fanout' (this.publish: every subscriber on
//            every process; the publisher is not subscribed)
//   /topics  for the memory measurement: a text message "sub:K" subscribes the connection to K
//            new topics ('topic:0', 'topic:1', … numbered across the process)
// With BENCH_REDIS_PORT set, the handler's backplane is redisBackplane over an ioredis client
// connected to that Redis (the two-process target runs two of these); without it, one process.
// Defaults stay on (heartbeat, backpressure policy…), as in targets/wsmount.mjs.

import { readFileSync } from 'node:fs';
import { Behavior, createWebSocketHandler, redisBackplane } from '../../dist/index.js';
import { MAX_PAYLOAD } from './common.mjs';
import { reportedOptions, serveHandler, version } from './wsmount-serve.mjs';

const TOPIC = 'fanout';
let nextTopic = 0;

class Sub extends Behavior {
  onOpen() {
    this.subscribe(TOPIC);
  }
}

class Pub extends Behavior {
  onText(text) {
    this.publish(TOPIC, text);
  }
  onBinary(bytes) {
    this.publish(TOPIC, bytes);
  }
}

class Topics extends Behavior {
  onText(text) {
    if (!text.startsWith('sub:')) return;
    const k = Number(text.slice(4));
    for (let i = 0; i < k; i++) this.subscribe(`topic:${nextTopic++}`);
  }
}

const redisPort = Number(process.env.BENCH_REDIS_PORT ?? 0);
let backplane;
let redis = null;
if (redisPort > 0) {
  const { default: Redis } = await import('ioredis');
  redis = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true, maxRetriesPerRequest: null });
  await redis.connect();
  backplane = redisBackplane(redis);
}

const handler = createWebSocketHandler(
  { '/sub': Sub, '/pub': Pub, '/topics': Topics },
  { maxPayload: MAX_PAYLOAD, ...(backplane ? { backplane } : {}) },
);
serveHandler(
  handler,
  {
    library: 'wsmount',
    version,
    backplane: redis ? `redisBackplane(ioredis ${JSON.parse(readFileSync(new URL('../../node_modules/ioredis/package.json', import.meta.url), 'utf8')).version})` : 'none (one process)',
    options: reportedOptions(handler.options),
  },
  () => {
    const s = handler.stats();
    return { subscriptions: s.subscriptions, topics: s.topics, backplane: s.backplane ?? null };
  },
);
