/**
 * The vocabulary around a `Behavior` (behavior.ts): the public constants its users write
 * (`ReadyState`, `Backpressure`), the shape of a behavior class as the handler reads its
 * per-route statics (`BehaviorClass`), and the handler's private channel into an instance
 * (`BehaviorInit`, `BehaviorInternals`). Re-exported from behavior.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Behavior } from './behavior.js';
import type { BackpressurePolicy, Connection, RateLimit } from './connection/index.js';
import type { WebSocketHandler } from './handler.js';
import type { PerMessageDeflateOptions } from './extensions/permessage-deflate/options.js';
import type { NegotiatedPerMessageDeflate } from './extensions/permessage-deflate/session.js';

/** The WebSocket extensions a connection agreed in its handshake (`this.extensions`). */
export interface NegotiatedExtensions {
  /** permessage-deflate's parameters (RFC 7692), or null: the connection is not compressed. */
  readonly perMessageDeflate: NegotiatedPerMessageDeflate | null;
}

/**
 * The request that opened a WebSocket: an `http.IncomingMessage` for an HTTP/1.1 upgrade, an
 * `http2.Http2ServerRequest` for an HTTP/2 extended CONNECT (RFC 8441), the same object the
 * compatibility API gives apps. Both have `headers`, `url`, `method`, `httpVersion` and
 * `socket.remoteAddress`. Over HTTP/2 the host is in `headers[':authority']` (there is no
 * `host` header) and `method` is `'CONNECT'`.
 */
export type UpgradeRequest = IncomingMessage | Http2ServerRequest;

/** Which protocol carries a WebSocket: HTTP/1.1 (TLS or not), HTTP/2 over TLS, cleartext HTTP/2. */
export type WebSocketTransport = 'http/1.1' | 'h2' | 'h2c';

/** The transport a request arrived on. Read it while the request is live (over HTTP/2 its socket is a proxy). @internal */
export function transportOf(request: UpgradeRequest): WebSocketTransport {
  if (request.httpVersionMajor !== 2) return 'http/1.1';
  return (request.socket as { encrypted?: boolean }).encrypted === true ? 'h2' : 'h2c';
}

/** What the handler tells a new behavior about its connection. @internal */
export interface BehaviorInit {
  id: number;
  request: UpgradeRequest;
  params: Record<string, string>;
  route: string;
  query: string;
  handler: WebSocketHandler;
}

type AnyBehavior = Behavior;

/** Access to a behavior's private slots for the handler and connection. @internal */
export interface BehaviorInternals {
  init(b: AnyBehavior, init: BehaviorInit): void;
  connect(b: AnyBehavior, connection: Connection): void;
  connection(b: AnyBehavior): Connection | null;
  /** Headers `verify()` asked for on the 101, as name/value pairs, or null. */
  responseHeaders(b: AnyBehavior): readonly (readonly [string, string])[] | null;
  abandon(b: AnyBehavior): void;
  /**
   * `onOpen()` has been called and returned `opened`: the request is let go once that settles,
   * unless the route keeps it (`static keepRequest`).
   */
  opened(b: AnyBehavior, opened: unknown): void;
  /** The request, released or not (wsmount's own code: the testing helper's close()). */
  requestOf(b: AnyBehavior): UpgradeRequest | undefined;
}

/** @internal Set by Behavior's static block (`setInternals`); not exported from the package. */
// eslint-disable-next-line import/no-mutable-exports
export let internals: BehaviorInternals;

/** @internal Behavior's static block hands over its private slots' accessors here, once. */
export function setInternals(value: BehaviorInternals): void {
  internals = value;
}

/**
 * The backpressure policies by name, for a route's static: `static override backpressure =
 * Backpressure.Drop` keeps its literal type, where a bare `'drop'` is widened to `string` by
 * TypeScript and refused (or write `'drop' as const`).
 */
export const Backpressure = { Close: 'close', Drop: 'drop' } as const;

/** `readyState` values, as in the browser's `WebSocket`. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
/** A `readyState` value. */
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

/** A class that can serve a route: `Behavior` or a subclass of it. */
export interface BehaviorClass {
  new (): Behavior;
  readonly protocols: readonly string[];
  readonly requireProtocol: boolean;
  readonly maxPayload: number | undefined;
  readonly maxFragments: number | undefined;
  readonly maxStreamBytes: number | undefined;
  readonly maxBackpressure: number | undefined;
  readonly backpressure: BackpressurePolicy | undefined;
  readonly pingInterval: number | undefined;
  readonly pongTimeout: number | undefined;
  readonly idleTimeout: number | undefined;
  readonly maxConnections: number | undefined;
  readonly rateLimit: RateLimit | false | undefined;
  readonly perMessageDeflate: boolean | PerMessageDeflateOptions | undefined;
  readonly keepRequest: boolean;
}
