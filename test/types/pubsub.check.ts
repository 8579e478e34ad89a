// Issue 11: topics and backplanes, at the type level (tsc runs this file; nothing executes it).
import {
  type Backplane,
  type BackplaneLink,
  type BackplaneNode,
  type BackplaneStats,
  Behavior,
  type HandlerOptions,
  type MemoryBackplane,
  type PublishOptions,
  type RouteParams,
  createWebSocketHandler,
  memoryBackplane,
} from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  override data = { user: '' };
  override onOpen() {
    const fresh: boolean = this.subscribe(`room:${this.params.room}`);
    const topics: ReadonlySet<string> = this.topics;
    // @ts-expect-error: the topic set is read-only: subscribe() changes it
    this.topics.add('x');
    // @ts-expect-error: a topic is a string
    this.subscribe(42);
    const n: number = this.publish(`room:${this.params.room}`, 'hi', { self: true });
    this.publish('t', new Uint8Array(2));
    this.publish('t', new ArrayBuffer(2));
    // @ts-expect-error: a message is a string or bytes, not an object
    this.publish('t', { text: 'hi' });
    // @ts-expect-error: the only publish option is self
    this.publish('t', 'hi', { exceptSelf: true });
    void [fresh, topics, n];
  }
}
class Echo extends Behavior {}

const bus: MemoryBackplane = memoryBackplane();
const sockets = createWebSocketHandler(
  { '/rooms/:room': Room, '/echo': Echo },
  {
    backplane: bus,
    // The client is any of the table's behaviors.
    onSubscription(client, topic, count, previous) {
      const c: Room | Echo = client;
      const values: [string, number, number] = [topic, count, previous];
      void [c, values];
    },
  },
);
export const handlerMembers: [
  Equal<ReturnType<typeof sockets.publish>, number>,
  Equal<ReturnType<typeof sockets.subscriberCount>, number>,
  Equal<ReturnType<typeof sockets.stats>['backplane'], BackplaneStats | null>,
  Equal<PublishOptions, { self?: boolean }>,
] = [true, true, true, true];

/** A backplane of one's own (NATS, Postgres LISTEN/NOTIFY…) is written against the interface. */
export function ownBackplane(): Backplane {
  return {
    connect(node: BackplaneNode): BackplaneLink {
      node.status(true);
      return {
        publish: (topic: string, message: Uint8Array) => {
          void topic;
          node.receive(message);
          return true;
        },
        subscribe: () => {},
        unsubscribe: () => {},
        close: () => Promise.resolve(),
      };
    },
  };
}

export const badBackplanes: HandlerOptions[] = [
  // @ts-expect-error: a Redis client is not a backplane: wrap it with redisBackplane(client)
  { backplane: { publish() {}, subscribe() {} } },
  // @ts-expect-error: nor is a URL
  { backplane: 'redis://127.0.0.1:6379' },
];
