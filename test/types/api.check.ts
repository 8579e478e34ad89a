import http from 'node:http';
import { Behavior, createWebSocketHandler, HandshakeRejection, type RouteParams } from '../../src/index.js';
import type {
  BackpressurePolicy,
  BehaviorClass,
  HandlerOptions,
  HandlerStats,
  RouteStats,
  DurationHistogram,
  RateLimit,
  ResolvedHandlerOptions,
  SendStatus,
} from '../../src/index.js';

class Reverse extends Behavior {
  override onText(text: string) {
    this.sendText([...text].reverse().join('.'));
  }
}
class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  static override protocols = ['chat.v2', 'chat.v1'];
  override data = { user: '' };
  override async verify(req: http.IncomingMessage) {
    if (!req.headers.authorization) throw new HandshakeRejection(401, 'log in');
    this.data = { user: 'ann' };
  }
  override onOpen() {
    const room: string = this.params.room;
    const user: string = this.data.user;
    this.sendText(`${user}@${room}`);
  }
}
const sockets = createWebSocketHandler({ '/reverse': Reverse, '/rooms/:room': Room }, { origins: ['https://app.example'], maxPayload: 1 << 20 });
const server = http.createServer();
sockets.attach(server);
server.on('upgrade', sockets.handleUpgrade);
export { sockets };

// ---- issue 5: backpressure, heartbeat, limits, stats (type-level checks; tsc runs this file) ----

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const exactUnions: [
  Equal<BackpressurePolicy, 'close' | 'drop'>,
  Equal<SendStatus, 'sent' | 'queued' | 'dropped'>,
  Equal<RateLimit, { messages: number; interval: number }>,
] = [true, true, true];

type Counter =
  | 'connections'
  | 'pendingHandshakes'
  | 'handshakesAccepted'
  | 'handshakesRejected'
  | 'messagesIn'
  | 'messagesOut'
  | 'bytesIn'
  | 'bytesOut'
  | 'backpressureDrops'
  | 'backpressureCloses'
  | 'pingsSent'
  | 'pongTimeouts'
  | 'idleCloses'
  | 'rateLimitCloses'
  | 'verifyTimeouts'
  | 'topics'
  | 'subscriptions'
  | 'publishes';
type Tally = 'connectionsByRoute' | 'handshakesRejectedByStatus' | 'closesByCode';
export const statsShape: [
  Equal<keyof HandlerStats, Counter | Tally | 'backplane' | 'compression' | 'heartbeatRtt' | 'routes'>,
  Equal<HandlerStats[Counter], number>,
  Equal<HandlerStats[Tally], Record<string, number>>,
  Equal<ReturnType<typeof sockets.stats>, HandlerStats>,
  Equal<HandlerStats['routes'], Record<string, RouteStats>>,
  Equal<HandlerStats['heartbeatRtt'], DurationHistogram>,
  Equal<RouteStats['heartbeatRtt'], DurationHistogram>,
  Equal<DurationHistogram['bounds'], readonly number[]>,
] = [true, true, true, true, true, true, true, true];

export const behaviorMembers: [
  Equal<ReturnType<Behavior['drained']>, Promise<boolean>>,
  Equal<Behavior['latency'], number | undefined>,
  Equal<Behavior['bufferedAmount'], number>,
  Equal<ReturnType<Behavior['send']>, SendStatus>,
  Equal<ReturnType<Behavior['sendText']>, SendStatus>,
  Equal<ReturnType<Behavior['sendBinary']>, SendStatus>,
  Equal<ReturnType<Behavior['ping']>, SendStatus>,
  Equal<ReturnType<Behavior['onDrain']>, void | Promise<void>>,
  Equal<ReturnType<typeof sockets.broadcast>, number>,
] = [true, true, true, true, true, true, true, true, true];

export const resolvedOptions: [
  Equal<ResolvedHandlerOptions['maxBackpressure'], number>,
  Equal<ResolvedHandlerOptions['backpressure'], BackpressurePolicy>,
  Equal<ResolvedHandlerOptions['pingInterval'], number>,
  Equal<ResolvedHandlerOptions['pongTimeout'], number>,
  Equal<ResolvedHandlerOptions['idleTimeout'], number>,
  Equal<ResolvedHandlerOptions['verifyTimeout'], number>,
  Equal<ResolvedHandlerOptions['maxConnections'], number>,
  Equal<ResolvedHandlerOptions['maxConnectionsPerIp'], number>,
  Equal<(typeof sockets.options)['rateLimit'], RateLimit | false | undefined>,
] = [true, true, true, true, true, true, true, true, true];

/** Every per-route static, with the types a user writes. */
class Tuned extends Behavior {
  static override maxPayload = 64 * 1024;
  static override maxFragments = 8;
  static override maxBackpressure = 1 << 20;
  static override backpressure: BackpressurePolicy = 'drop';
  static override pingInterval = 0;
  static override pongTimeout = 5000;
  static override idleTimeout = 60_000;
  static override maxConnections = 100;
  static override rateLimit: RateLimit | false = { messages: 10, interval: 1000 };
}
class RateOff extends Behavior {
  static override rateLimit = false as const;
  static override backpressure = 'close' as const;
}
export const tunedRoutes: Record<string, BehaviorClass> = { '/tuned': Tuned, '/off': RateOff };

export const goodOptions: HandlerOptions = {
  maxBackpressure: 1 << 22,
  backpressure: 'drop',
  pingInterval: 0,
  pongTimeout: 10_000,
  idleTimeout: 0,
  verifyTimeout: 5000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 50,
  rateLimit: { messages: 100, interval: 1000 },
};
/** `false` is off, for the handler option as for the static. */
export const rateLimitOff: HandlerOptions = { rateLimit: false };

export const badOptions: HandlerOptions[] = [
  // @ts-expect-error: backpressure is 'close' or 'drop'
  { backpressure: 'block' },
  // @ts-expect-error: a RateLimit needs its interval
  { rateLimit: { messages: 5 } },
  // @ts-expect-error: true means nothing: a limit is { messages, interval }
  { rateLimit: true },
  // @ts-expect-error: milliseconds are numbers
  { pingInterval: '30s' },
  // @ts-expect-error: no such option (a misspelling is caught)
  { maxBackPressure: 1 },
];

// @ts-expect-error: a static backpressure must be a BackpressurePolicy
class BadPolicy extends Behavior {
  static override backpressure: 'block' = 'block';
}
// @ts-expect-error: a static rateLimit is a RateLimit, false or undefined; true means nothing
class BadRate extends Behavior {
  static override rateLimit: boolean = true;
}
// @ts-expect-error: a static pingInterval is a number
class BadPing extends Behavior {
  static override pingInterval: string = '30s';
}
// @ts-expect-error: a static keepRequest is a boolean
class BadKeep extends Behavior {
  static override keepRequest: string = 'yes';
}
export const badStatics = [BadPolicy, BadRate, BadPing, BadKeep];

/** keepRequest: the whole request for the connection's life; url and headers stay without it. */
class KeepsRequest extends Behavior {
  static override keepRequest = true;
  override onText(): void {
    const socket = this.request.socket;
    const url: string = this.url;
    const host: string | undefined = this.headers.host;
    void socket;
    void url;
    void host;
  }
}
export const keeps: BehaviorClass = KeepsRequest;
export const keepFlag: boolean = KeepsRequest.keepRequest;
// @ts-expect-error: url is always a string (the request target), never undefined
export const noUrl: undefined = new Behavior().url;

export async function usesDrain(b: Behavior): Promise<void> {
  if (b.sendBinary(new Uint8Array(1)) === 'queued' && !(await b.drained())) return;
  const ms: number | undefined = b.latency;
  // @ts-expect-error: latency may be undefined before the first pong
  const sure: number = b.latency;
  // @ts-expect-error: send statuses are a closed set
  const wrong: SendStatus = 'failed';
  void [ms, sure, wrong];
}

// sendText takes a string, or UTF-8 bytes sent as they are (issue 16: an onRawText relay makes no string).
export class RawRelay extends Behavior {
  override onRawText(bytes: Buffer): void {
    this.sendText(bytes);
    this.sendText(new Uint8Array(bytes));
    this.sendText(new ArrayBuffer(4));
    this.sendText(new DataView(bytes.buffer));
    // @ts-expect-error: a number is neither text nor bytes
    this.sendText(42);
    // @ts-expect-error: an array of byte values is not bytes
    this.sendText([104, 105]);
  }
}
