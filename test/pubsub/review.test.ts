/**
 * Review of issue 11 (topics and backplanes): each test names the bug it showed (all fixed) or
 * the claim it checks.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, type Logger, type RouteParams, createWebSocketHandler, memoryBackplane } from '../../src/index.js';
import type { BackplaneNode, BackplaneStage } from '../../src/pubsub/backplane.js';
import { type RedisBackplaneClient, redisBackplane } from '../../src/pubsub/redis.js';
import { type TestClient, connect } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';
import { useRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';
import { countWrites } from '../helpers/writes.js';
import { Admin, poll } from './fixtures/redis-peers.js';

const fixture = useFixture();

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  override onOpen(): void {
    this.subscribe(`room:${this.params.room}`);
  }
}

class Idle extends Behavior {}

function captureLog(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const none = (): void => {};
  return { warnings, logger: { error: none, info: none, debug: none, warn: (m: string) => void warnings.push(m) } };
}

async function join(handler: Parameters<typeof connect>[0], path: string): Promise<TestClient> {
  const client = await connect(handler, path);
  cleanups.push(() => client.terminate());
  return client;
}

describe('memoryBackplane', () => {
  // Was a bug: a handler linked while the bus was down was never told (stats said connected).
  test('a handler linked while the in-memory bus is down reports the outage', () => {
    const bus = memoryBackplane();
    bus.setConnected(false);
    const { logger, warnings } = captureLog();
    const handler = createWebSocketHandler({ '/rooms/:room': Room }, { backplane: bus, pingInterval: 0, logger, logLevel: 'warn' });
    cleanups.push(() => handler.close({ timeout: 100 }));
    handler.publish('room:a', 'lost');
    expect(handler.stats().backplane?.droppedWhileDisconnected).toBe(1);
    expect(handler.stats().backplane?.connected).toBe(false);
    expect(warnings.some((w) => /backplane is down/.test(w))).toBe(true);
  });
});

describe('onSubscription', () => {
  // Was a bug: an async onSubscription that rejected was an unhandled rejection (the process
  // ends on Node >= 15). Shown with a thenable: wsmount must attach a rejection handler.
  test('a promise returned by onSubscription gets a rejection handler (else its rejection is unhandled)', async () => {
    let handled = false;
    const thenable = {
      then(_ok?: unknown, onRejected?: unknown): unknown {
        if (typeof onRejected === 'function') handled = true;
        return thenable;
      },
      catch(): unknown {
        handled = true;
        return thenable;
      },
    };
    const handler = createWebSocketHandler(
      { '/rooms/:room': Room },
      {
        pingInterval: 0,
        logLevel: 'silent',
        // An async hook type-checks here: `void` accepts a Promise-returning function.
        onSubscription: () => thenable as unknown as void,
      },
    );
    cleanups.push(() => handler.close({ timeout: 100 }));
    await join(handler, '/rooms/a');
    expect(handler.subscriberCount('room:a')).toBe(1);
    expect(handled).toBe(true);
  });
});

describe('Behavior.topics', () => {
  // Was a bug: `topics` was documented as a live view but was the index's own Set (or a shared
  // empty one). It is now a snapshot: a new set each time, which nobody can use to change the index.
  test('topics is a snapshot: read before the first subscribe it stays empty; read again it has the topic', async () => {
    let before: ReadonlySet<string> | null = null;
    let after: ReadonlySet<string> | null = null;
    class Late extends Behavior {
      override onOpen(): void {
        before = this.topics;
        this.subscribe('t');
        after = this.topics;
      }
    }
    const handler = createWebSocketHandler({ '/late': Late }, { pingInterval: 0, logLevel: 'silent' });
    cleanups.push(() => handler.close({ timeout: 100 }));
    await join(handler, '/late');
    expect(handler.subscriberCount('t')).toBe(1);
    expect([...(before as ReadonlySet<string> | null ?? [])]).toEqual([]);
    expect([...(after as ReadonlySet<string> | null ?? [])]).toEqual(['t']);
  });

  test('topics read after the close is empty', async () => {
    let view: ReadonlySet<string> | null = null;
    let behavior: Behavior | null = null;
    class Held extends Behavior {
      override onOpen(): void {
        this.subscribe('t');
        view = this.topics;
        behavior = this;
      }
    }
    const handler = createWebSocketHandler({ '/held': Held }, { pingInterval: 0, logLevel: 'silent' });
    cleanups.push(() => handler.close({ timeout: 100 }));
    const client = await join(handler, '/held');
    await client.close();
    await poll(() => handler.subscriberCount('t') === 0, 'the close');
    expect((view as ReadonlySet<string> | null)?.size).toBe(1); // a snapshot from before
    expect((behavior as Behavior | null)?.topics.size).toBe(0);
  });

  // Was a bug: `topics` was the index's own Set, and a cast (or plain JS) corrupted the index.
  test('writing through a topics snapshot changes nothing (isSubscribed false, subscribe works)', async () => {
    let behavior: Idle | null = null;
    class Grab extends Behavior {
      override onOpen(): void {
        this.subscribe('a');
        behavior = this;
      }
    }
    const handler = createWebSocketHandler({ '/grab': Grab }, { pingInterval: 0, logLevel: 'silent' });
    cleanups.push(() => handler.close({ timeout: 100 }));
    await join(handler, '/grab');
    const b = behavior as unknown as Behavior;
    (b.topics as Set<string>).add('b');
    expect(b.isSubscribed('b')).toBe(false);
    expect(handler.subscriberCount('b')).toBe(0);
    expect(b.subscribe('b')).toBe(true);
  });
});

describe('README "Topics in one process"', () => {
  // The README once said publishes batch per task "as broadcast does, inside a hook or outside
  // one"; only publishes do outside a hook (broadcast batches within an incoming chunk).
  test('20 broadcasts from a timer are 20 writes to a socket; 20 publishes are 1', async () => {
    const sockets: Duplex[] = [];
    class Sub extends Behavior {
      override onOpen(): void {
        this.subscribe('feed');
        sockets.push(this.request.socket);
      }
    }
    const { handler, port } = await fixture.mount({ '/s': Sub }, { pingInterval: 0 });
    const client = await fixture.connect(port, '/s');
    await waitFor(() => handler.subscriberCount('feed') === 1, 2000, 'the subscriber');
    const writes = countWrites(sockets[0] as Duplex);
    const inATimer = (f: () => void): Promise<void> => new Promise((resolve) => setTimeout(() => (f(), resolve()), 1));
    await inATimer(() => {
      for (let i = 0; i < 20; i++) handler.broadcast(`b${i}`);
    });
    for (let i = 0; i < 20; i++) await client.nextFrame(2000);
    expect(writes.calls).toBe(20);
    writes.calls = 0;
    await inATimer(() => {
      for (let i = 0; i < 20; i++) handler.publish('feed', `p${i}`);
    });
    for (let i = 0; i < 20; i++) await client.nextFrame(2000);
    expect(writes.calls).toBe(1);
  });
});

// ---- Redis ----------------------------------------------------------------------------------

const redis = useRedis();

class FakeNode implements BackplaneNode {
  readonly id = 'fake';
  readonly received: Buffer[] = [];
  readonly statuses: boolean[] = [];
  readonly errors: BackplaneStage[] = [];
  readonly log = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
  receive(message: Uint8Array): void {
    this.received.push(Buffer.from(message));
  }
  status(up: boolean): void {
    this.statuses.push(up);
  }
  error(_error: unknown, stage: BackplaneStage): void {
    this.errors.push(stage);
  }
}

function ioClient(): Redis {
  const io = new Redis({ host: '127.0.0.1', port: redis().port, retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  io.on('error', () => {}); // the user's own listener, as the README asks
  cleanups.push(() => io.disconnect());
  return io;
}

type AnyClient = Redis | { readonly isReady: boolean };
function isReady(c: AnyClient): boolean {
  return c instanceof Redis ? c.status === 'ready' : c.isReady;
}
async function anyClient(lib: 'ioredis' | 'redis'): Promise<AnyClient & RedisBackplaneClient> {
  if (lib === 'ioredis') {
    const io = ioClient();
    await poll(() => io.status === 'ready', 'the ioredis client');
    return io;
  }
  const nr = createClient({ url: `redis://127.0.0.1:${redis().port}`, socket: { reconnectStrategy: () => 50 } });
  nr.on('error', () => {});
  cleanups.push(() => (nr.isOpen ? nr.destroy() : undefined));
  await nr.connect();
  return nr as unknown as AnyClient & RedisBackplaneClient;
}

describe('redisBackplane', () => {
  // Was a bug: with options.subscriber, close() unsubscribed only a subscriber that was up; one
  // closed during an outage had its channels restored by the library on reconnect, for good.
  for (const lib of ['ioredis', 'redis'] as const) {
    test(`${lib}: a handler closed while Redis is down leaves no subscription on options.subscriber`, { timeout: 20_000 }, async () => {
      const admin = new Admin(redis().port);
      cleanups.push(() => admin.close());
      const client = await anyClient(lib);
      const subscriber = await anyClient(lib);
      const link = redisBackplane(client, { prefix: `rv-leak-${lib}:`, subscriber }).connect(new FakeNode());
      link.subscribe('t');
      await admin.waitNumsub({ [`rv-leak-${lib}:t`]: 1 });
      await redis().kill();
      try {
        await poll(() => !isReady(subscriber), 'the subscriber to see Redis gone');
        await link.close();
      } finally {
        await redis().start();
      }
      await poll(() => isReady(subscriber), 'the subscriber back', 15_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await poll(async () => (await admin.numsub([`rv-leak-${lib}:t`]))[0] === 0, 'the channel to be left');
    });

    // Regression check (passes): a topic given up during an outage on wsmount's own subscriber is
    // not brought back by the library's own resubscription.
    test(`${lib}: a topic unsubscribed while Redis is down stays unsubscribed once it is back`, { timeout: 20_000 }, async () => {
      const admin = new Admin(redis().port);
      cleanups.push(() => admin.close());
      const node = new FakeNode();
      const link = redisBackplane(await anyClient(lib), { prefix: `rv-stale-${lib}:` }).connect(node);
      cleanups.push(() => link.close());
      link.subscribe('gone');
      link.subscribe('kept');
      await admin.waitNumsub({ [`rv-stale-${lib}:gone`]: 1, [`rv-stale-${lib}:kept`]: 1 });
      await redis().kill();
      try {
        await poll(() => node.statuses.length === 1, 'the outage');
        link.unsubscribe('gone');
      } finally {
        await redis().start();
      }
      await poll(() => node.statuses.length === 2, 'the end of the outage', 15_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await admin.numsub([`rv-stale-${lib}:gone`, `rv-stale-${lib}:kept`])).toEqual([0, 1]);
    });
  }

  // The README and the outage warning once said every publish is dropped during any outage; only
  // the publisher's state matters for that (now documented).
  test('while only the subscriber is down, publishes still go out and reach other processes', { timeout: 20_000 }, async () => {
    const client = ioClient();
    const subscriber = ioClient();
    const other = ioClient();
    await poll(() => client.status === 'ready' && subscriber.status === 'ready' && other.status === 'ready', 'the clients');
    const got: string[] = [];
    other.on('messageBuffer', (_channel: Buffer, message: Buffer) => got.push(message.toString()));
    await other.subscribe('rv-half:t');
    const node = new FakeNode();
    const link = redisBackplane(client, { prefix: 'rv-half:', subscriber }).connect(node);
    cleanups.push(() => link.close());
    subscriber.disconnect(); // the subscriber alone goes down (and stays down)
    await poll(() => node.statuses.length === 1, 'the outage report');
    expect(node.statuses).toEqual([false]);
    expect(link.publish('t', Buffer.from('during the outage'))).toBe(true); // not dropped
    await poll(() => got.length === 1, 'the publish to reach the other process');
    expect(got[0]).toContain('during the outage');
  });
});
