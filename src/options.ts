import type { Buffer } from 'node:buffer';
import type { BehaviorClass } from './behavior.js';
import type { BackpressurePolicy, ConnectionLimits, RateLimit } from './connection/index.js';
import type { Client } from './handler.js';
import type { OriginPolicy } from './handshake/decide.js';
import type { LogLevel, Logger } from './logger.js';
import type { Backplane } from './pubsub/backplane.js';
import { type DeflateConfig, type PerMessageDeflateOptions, resolvePerMessageDeflate } from './extensions/permessage-deflate/options.js';

// The handler's options: their types, their defaults, and the checks that run when a handler is built.

/** Options for {@link createWebSocketHandler}. Every limit has a safe default. */
export interface HandlerOptions<C extends Client = Client> {
  /** Allowed origins: strings (`'*'` for any), RegExps, or a function. Default: any. Refused with 403. */
  origins?: OriginPolicy;
  /** Largest message in bytes, all fragments together. Default 1 MiB (1,048,576); over it closes with 1009. */
  maxPayload?: number;
  /**
   * permessage-deflate compression (RFC 7692). `false` (default): declined, as in ws, uWS and
   * Bun, since it trades CPU and memory for bandwidth. `true`: the preset
   * ({@link PER_MESSAGE_DEFLATE_PRESET}: messages from 1 KiB compressed, one shared compressor,
   * one inflate window per client that compresses). An object: the preset with your fields over
   * it. A route's `static perMessageDeflate` overrides it. Inflated bytes count against
   * `maxPayload` (1009 past it, decided while inflating).
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Most frames in one message. Default 1024; over it closes with 1008. Does not apply to messages received as streams. */
  maxFragments?: number;
  /**
   * Largest message in bytes a route that takes messages as streams (`onStream`) accepts; over it
   * closes with 1009 (a compressed one counts what it inflates to). Default `Infinity`: a streamed
   * message is never held in memory, so its size alone costs nothing. `maxPayload` still bounds
   * collecting one with `text()`/`bytes()`.
   */
  maxStreamBytes?: number;
  /** Milliseconds to wait for the peer's close frame / TCP close before destroying the socket. Default 10,000. */
  closeTimeout?: number;
  /**
   * Most bytes a connection may have waiting to be sent (`bufferedAmount`). A send that would go
   * past it is dropped and the `backpressure` policy applies. A single message larger than the
   * limit still goes out when nothing is waiting. Default 4 MiB (4,194,304). Over HTTP/2 the
   * write Node is still framing on the stream is left out (the peer may have read part of it),
   * so a stream holds at most twice this (or this plus one message larger than it).
   */
  maxBackpressure?: number;
  /**
   * What happens to a connection whose backlog would pass `maxBackpressure` — the same for
   * `send*()` and `broadcast()`: `'close'` (default) closes the slow consumer with 1008, so it
   * knows it missed messages and can reconnect and resync; `'drop'` drops the message and keeps
   * the connection (the send returns `'dropped'`; for feeds where the next update supersedes).
   */
  backpressure?: BackpressurePolicy;
  /** Milliseconds between heartbeat pings (protocol ping frames). Default 30,000; 0 turns the heartbeat off. */
  pingInterval?: number;
  /** Milliseconds a peer has to answer a heartbeat ping before it is terminated (`onClose` sees 1006). Default 20,000. */
  pongTimeout?: number;
  /**
   * Milliseconds without a data message in either direction after which a connection is closed
   * with 1001. Default 0: off, since the heartbeat already finds dead peers and many apps keep
   * quiet connections open on purpose.
   */
  idleTimeout?: number;
  /**
   * Milliseconds an async `verify()` may take; past it the upgrade is answered 503 and whatever
   * `verify()` decides later is ignored. Default 10,000.
   */
  verifyTimeout?: number;
  /**
   * Most open connections (upgrades in `verify()` count) over all routes; over it → 503 before
   * the 101. Default: no limit, since the right number depends on the app and the machine
   * (measured idle cost is in the README); set it when exposed to the internet.
   */
  maxConnections?: number;
  /**
   * Most open connections (upgrades in `verify()` count) from one IP address; over it → 429.
   * Default: no limit, since behind a reverse proxy or a carrier NAT many users share one
   * address; set it when clients reach the server directly.
   */
  maxConnectionsPerIp?: number;
  /**
   * A per-connection message rate limit (token bucket, data messages and pings count); over it
   * the connection is closed with 1008. Default: off, since a fair rate differs by orders of
   * magnitude between apps (chat vs. a 60 Hz game); `maxPayload` and receive backpressure already
   * bound memory. `false` is off too (as for a route's `static rateLimit`).
   */
  rateLimit?: RateLimit | false;
  /**
   * Milliseconds an upgrade that matches no route is left for other `'upgrade'` listeners on the
   * same server (Vite HMR, socket.io…) before it is answered 404. Default 2,000. When every
   * listener is a wsmount handler the 404 is immediate.
   */
  unclaimedTimeout?: number;
  /** Where to log. Default `console`. */
  logger?: Partial<Logger>;
  /** How much to log (the seed's `loglevel`). Default `'warn'`. */
  logLevel?: LogLevel;
  // Callbacks are methods so that a handler typed for its table is still a `WebSocketHandler`.
  /** Called by the base `Behavior.onOpen` (the seed's `set_fn_new_client`), with any route's client. */
  onConnect?(client: C): void;
  /** Called by the base `Behavior.onClose` (the seed's `set_fn_client_left`). */
  onDisconnect?(client: C, code: number, reason: string): void;
  /** Called by the base `Behavior.onText` / `onBinary` (the seed's `set_fn_message_received`). */
  onMessage?(client: C, data: string | Buffer): void;
  /**
   * Carries topic publishes to handlers in other processes and hosts: `redisBackplane(client)`,
   * `clusterBackplane()` under `node:cluster`, or `memoryBackplane()` for several handlers in one
   * process. Without one, topics reach this handler's clients only. Delivery across processes is
   * at most once (see the README's "Scaling out").
   */
  backplane?: Backplane;
  /**
   * Called when a topic's number of subscribers on this handler changes: `client` subscribed or
   * unsubscribed (or closed, which unsubscribes it from each of its topics), `count` is the new
   * number, `previous` the old one. For presence: `count === 0` means the last one here left.
   */
  onSubscription?(client: C, topic: string, count: number, previous: number): void;
}

/** The options after defaults. */
export interface ResolvedHandlerOptions<C extends Client = Client> extends HandlerOptions<C> {
  maxPayload: number;
  maxFragments: number;
  maxStreamBytes: number;
  closeTimeout: number;
  unclaimedTimeout: number;
  maxBackpressure: number;
  backpressure: BackpressurePolicy;
  pingInterval: number;
  pongTimeout: number;
  idleTimeout: number;
  verifyTimeout: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** `perMessageDeflate` resolved; null when compression is declined. */
  deflate: DeflateConfig | null;
}

const DEFAULT_MAX_PAYLOAD = 1 << 20;
const DEFAULT_MAX_FRAGMENTS = 1024;
const DEFAULT_CLOSE_TIMEOUT = 10_000;
const DEFAULT_UNCLAIMED_TIMEOUT = 2_000;
const DEFAULT_MAX_BACKPRESSURE = 4 << 20;
const DEFAULT_PING_INTERVAL = 30_000;
const DEFAULT_PONG_TIMEOUT = 20_000;
const DEFAULT_VERIFY_TIMEOUT = 10_000;

/** Every handler option by name (the compiler keeps this list equal to `HandlerOptions`' keys). */
const HANDLER_KEYS = {
  origins: 0,
  maxPayload: 0,
  perMessageDeflate: 0,
  maxFragments: 0,
  maxStreamBytes: 0,
  closeTimeout: 0,
  maxBackpressure: 0,
  backpressure: 0,
  pingInterval: 0,
  pongTimeout: 0,
  idleTimeout: 0,
  verifyTimeout: 0,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  rateLimit: 0,
  unclaimedTimeout: 0,
  logger: 0,
  logLevel: 0,
  onConnect: 0,
  onDisconnect: 0,
  onMessage: 0,
  backplane: 0,
  onSubscription: 0,
} satisfies Record<keyof HandlerOptions, 0>;

const SERVER_ONLY = 'an option of createWebSocketServer(), the standalone server; a handler you attach to your own server does not listen:';
/** Names users reach for that belong somewhere else, with where. */
const ELSEWHERE: Readonly<Record<string, string>> = {
  port: `${SERVER_ONLY} give the port to server.listen()`,
  host: `${SERVER_ONLY} give the host to server.listen()`,
  onRequest: `${SERVER_ONLY} your server already answers plain HTTP requests`,
  headersTimeout: `${SERVER_ONLY} set server.headersTimeout on your server`,
  requestTimeout: `${SERVER_ONLY} set server.requestTimeout on your server`,
  keepAliveTimeout: `${SERVER_ONLY} set server.keepAliveTimeout on your server`,
  protocols: 'a static of the route\'s Behavior class: static override protocols = [\'chat\']',
  requireProtocol: 'a static of the route\'s Behavior class: static override requireProtocol = false',
};

/**
 * Throws a `TypeError` for an option key that is not one of the handler's (or of `extra`, the
 * keys a caller such as `createWebSocketServer` adds), suggesting the nearest valid name: a
 * misspelled limit would otherwise be silently ignored and its default kept.
 */
export function checkOptionKeys(options: unknown, extra: readonly string[] = [], fn = 'createWebSocketHandler'): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`wsmount: ${fn}()'s options are an object like { maxPayload: 1 << 20 }, not ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(HANDLER_KEYS, key) || extra.includes(key)) continue;
    const valid = [...Object.keys(HANDLER_KEYS), ...extra];
    const elsewhere = ELSEWHERE[key];
    const near = nearest(key, valid);
    let hint: string;
    if (elsewhere !== undefined) hint = `it is ${elsewhere}`;
    else if (near !== undefined) hint = `did you mean '${near}'?`;
    else hint = `the options are ${valid.join(', ')}`;
    throw new TypeError(`wsmount: ${fn}() has no option '${key}'; ${hint}`);
  }
}

/** The valid name closest to `key` (case ignored, a transposition counts one edit), if close enough to be a slip. */
function nearest(key: string, valid: readonly string[]): string | undefined {
  const slips = Math.max(1, Math.floor(key.length / 4));
  let best: string | undefined;
  let bestDistance = slips + 1;
  for (const name of valid) {
    const d = editDistance(key.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const up = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The options with every default filled in. Throws `TypeError` for an unknown key (see
 * {@link checkOptionKeys}) and `RangeError` for a value out of range.
 */
export function resolveOptions(options: HandlerOptions): ResolvedHandlerOptions {
  checkOptionKeys(options);
  const o: ResolvedHandlerOptions = {
    ...options,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    maxFragments: options.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
    maxStreamBytes: options.maxStreamBytes ?? Infinity,
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    unclaimedTimeout: options.unclaimedTimeout ?? DEFAULT_UNCLAIMED_TIMEOUT,
    maxBackpressure: options.maxBackpressure ?? DEFAULT_MAX_BACKPRESSURE,
    backpressure: options.backpressure ?? 'close',
    pingInterval: options.pingInterval ?? DEFAULT_PING_INTERVAL,
    pongTimeout: options.pongTimeout ?? DEFAULT_PONG_TIMEOUT,
    idleTimeout: options.idleTimeout ?? 0,
    verifyTimeout: options.verifyTimeout ?? DEFAULT_VERIFY_TIMEOUT,
    maxConnections: options.maxConnections ?? Infinity,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? Infinity,
    deflate: resolvePerMessageDeflate(options.perMessageDeflate),
  };
  checkOptions(o);
  return o;
}

function positive(name: string, value: number, zeroAllowed: boolean): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw new RangeError(`wsmount: ${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number, not ${String(value)}`);
  }
}

function checkRate(name: string, rate: RateLimit): void {
  if (typeof rate !== 'object' || rate === null) throw new RangeError(`wsmount: ${name} is { messages, interval } or false (off), not ${String(rate)}`);
  positive(`${name}.messages`, rate.messages, false);
  // A bucket smaller than one token could never pass a message.
  if (rate.messages < 1) throw new RangeError(`wsmount: ${name}.messages must be at least 1, not ${rate.messages}`);
  positive(`${name}.interval`, rate.interval, false);
}

function checkOptions(o: ResolvedHandlerOptions): void {
  positive('maxPayload', o.maxPayload, false);
  positive('maxFragments', o.maxFragments, false);
  positive('maxStreamBytes', o.maxStreamBytes, false);
  positive('closeTimeout', o.closeTimeout, false);
  positive('unclaimedTimeout', o.unclaimedTimeout, true);
  positive('maxBackpressure', o.maxBackpressure, false);
  positive('pingInterval', o.pingInterval, true);
  positive('pongTimeout', o.pongTimeout, false);
  positive('idleTimeout', o.idleTimeout, true);
  positive('verifyTimeout', o.verifyTimeout, false);
  positive('maxConnections', o.maxConnections, true);
  positive('maxConnectionsPerIp', o.maxConnectionsPerIp, true);
  if (o.backpressure !== 'close' && o.backpressure !== 'drop') throw new RangeError(`wsmount: backpressure is 'close' or 'drop', not ${String(o.backpressure)}`);
  if (o.rateLimit !== undefined && o.rateLimit !== false) checkRate('rateLimit', o.rateLimit);
  const backplane: unknown = o.backplane;
  if (backplane === undefined) return;
  const b = backplane as { connect?: unknown; publish?: unknown; duplicate?: unknown } | null;
  // A Redis client has a connect() too (ioredis, node-redis): it is not a Backplane.
  const redisClient = typeof b?.publish === 'function' && (typeof b.duplicate === 'function' || typeof b.connect !== 'function');
  if (typeof b?.connect !== 'function' || redisClient) {
    const hint = redisClient ? ' (this is a Redis client: wrap it, backplane: redisBackplane(client))' : '';
    throw new TypeError(
      `wsmount: backplane is a Backplane (redisBackplane(client), clusterBackplane(), memoryBackplane()), not ${backplane === null ? 'null' : typeof backplane === 'object' ? 'this object' : typeof backplane}${hint}`,
    );
  }
}

/** A route's limits: its class's static overrides over the handler's options. @internal */
export function routeLimits(cls: BehaviorClass, o: ResolvedHandlerOptions, pattern: string): ConnectionLimits {
  const pingInterval = cls.pingInterval ?? o.pingInterval;
  const pongTimeout = cls.pongTimeout ?? o.pongTimeout;
  const idleTimeout = cls.idleTimeout ?? o.idleTimeout;
  const maxBackpressure = cls.maxBackpressure ?? o.maxBackpressure;
  const policy = cls.backpressure ?? o.backpressure;
  const setting = cls.rateLimit === undefined ? o.rateLimit : cls.rateLimit;
  const rate = setting === false ? undefined : setting;
  const at = `${pattern}: `;
  if (cls.maxPayload !== undefined) positive(`${at}maxPayload`, cls.maxPayload, false);
  if (cls.maxFragments !== undefined) positive(`${at}maxFragments`, cls.maxFragments, false);
  if (cls.maxStreamBytes !== undefined) positive(`${at}maxStreamBytes`, cls.maxStreamBytes, false);
  positive(`${at}pingInterval`, pingInterval, true);
  positive(`${at}pongTimeout`, pongTimeout, false);
  positive(`${at}idleTimeout`, idleTimeout, true);
  positive(`${at}maxBackpressure`, maxBackpressure, false);
  if (cls.maxConnections !== undefined) positive(`${at}maxConnections`, cls.maxConnections, true);
  if (policy !== 'close' && policy !== 'drop') throw new RangeError(`wsmount: ${at}backpressure is 'close' or 'drop', not ${String(policy)}`);
  if (rate !== undefined) checkRate(`${at}rateLimit`, rate);
  return {
    maxPayload: cls.maxPayload ?? o.maxPayload,
    maxFragments: cls.maxFragments ?? o.maxFragments,
    maxStreamBytes: cls.maxStreamBytes ?? o.maxStreamBytes,
    closeTimeout: o.closeTimeout,
    maxBackpressure,
    dropOnBackpressure: policy === 'drop',
    pingInterval,
    pongTimeout,
    idleTimeout,
    rateCapacity: rate?.messages ?? 0,
    rateRefill: rate === undefined ? 0 : rate.messages / rate.interval,
  };
}

/**
 * A route's compression: its class's `static perMessageDeflate` when set, else the handler's
 * `perMessageDeflate`. Throws like the handler option, naming the route. @internal
 */
export function routeDeflate(
  cls: { readonly perMessageDeflate?: boolean | PerMessageDeflateOptions | undefined },
  o: ResolvedHandlerOptions,
  pattern: string,
): DeflateConfig | null {
  return cls.perMessageDeflate === undefined ? o.deflate : resolvePerMessageDeflate(cls.perMessageDeflate, `${pattern}: static `);
}
