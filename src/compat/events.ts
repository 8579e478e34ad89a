/**
 * The WHATWG-style events of the ws face (socket.ts): `addEventListener`/`removeEventListener`
 * and the `onopen`/`onmessage`/`onclose`/`onerror` attributes, layered on the Node-style events
 * the face emits (`'message'` with `(data, isBinary)`, `'close'` with `(code, reason)`, …), the
 * way ws layers them: each listener is wrapped once, in a function that builds the event object.
 */
import type { Buffer } from 'node:buffer';
import type { EventEmitter } from 'node:events';

/** What `message` events carry in `data`: a string for text, else by `binaryType`. */
export type Data = string | Buffer | ArrayBuffer | Buffer[];

/** The event types `addEventListener` takes. */
export type WebSocketEventType = 'open' | 'message' | 'close' | 'error';

/**
 * What an event's `target` is typed as: the socket's members that ws's `WebSocket` shares, so
 * that ws-typed handlers (`(event: WebSocket.MessageEvent) => void`) fit the `on<type>`
 * attributes. At run time it is the socket itself.
 */
export interface WebSocketEventTarget {
  readonly readyState: 0 | 1 | 2 | 3;
  readonly protocol: string;
  readonly extensions: string;
  readonly bufferedAmount: number;
  send(data: string | Buffer | ArrayBuffer | ArrayBufferView, callback?: (error?: Error) => void): void;
  close(code?: number, reason?: string | Buffer): void;
  terminate(): void;
}

/** An event with no more than its type and target (`open`). */
export interface Event<Target = WebSocketEventTarget> {
  readonly type: string;
  readonly target: Target;
}

/** A `message` event: `data` is a string for a text message, else as `binaryType` says. */
export interface MessageEvent<Target = WebSocketEventTarget> extends Event<Target> {
  readonly data: Data;
}

/** A `close` event. `wasClean` is false when the connection ended without a close handshake (1006). */
export interface CloseEvent<Target = WebSocketEventTarget> extends Event<Target> {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** An `error` event: the error, and its message. */
export interface ErrorEvent<Target = WebSocketEventTarget> extends Event<Target> {
  readonly error: unknown;
  readonly message: string;
}

/** The event each type's listeners get. */
export interface WebSocketEventMap<Target = WebSocketEventTarget> {
  open: Event<Target>;
  message: MessageEvent<Target>;
  close: CloseEvent<Target>;
  error: ErrorEvent<Target>;
}

/** A listener: a function, or an object with `handleEvent`. */
export type EventListenerLike<E> = ((event: E) => void) | { handleEvent(event: E): void };

/** Options of `addEventListener`: `once` removes the listener after its first call. */
export interface EventListenerOptions {
  once?: boolean | undefined;
}

type Listener = EventListenerLike<never>;

// Symbol keys, not a `listener` property: Node's emitter reads `.listener` as a once-wrapper's
// target (listeners(), removeListener()), which would hide our wrappers from us and let
// `removeListener(type, f)` remove what `addEventListener(type, f)` added (ws keeps them apart).
const kListener = Symbol('wsmount.listener');
const kAttribute = Symbol('wsmount.attribute');

/** A wrapper registered on the emitter, and what it wraps. */
interface Wrapper {
  (this: EventEmitter, ...args: unknown[]): void;
  [kListener]: Listener;
  /** Registered by an `on<type>` attribute rather than by `addEventListener`. */
  [kAttribute]: boolean;
}

const TYPES: ReadonlySet<string> = new Set(['open', 'message', 'close', 'error']);

function call(listener: Listener, target: EventEmitter, event: object): void {
  if (typeof listener === 'function') (listener as (this: EventEmitter, e: object) => void).call(target, event);
  else (listener as { handleEvent(e: object): void }).handleEvent(event);
}

/** Builds the event object of `type` from the emitter's arguments for it. */
function eventOf(type: string, target: EventEmitter, args: readonly unknown[]): object {
  switch (type) {
    case 'message': {
      const [data, isBinary] = args as [Buffer | ArrayBuffer | Buffer[], boolean];
      // Text arrives as a Buffer on the Node-style event; the WHATWG one gives a string.
      return { type, target, data: isBinary ? data : String(data) };
    }
    case 'close': {
      const [code, reason] = args as [number, Buffer];
      return { type, target, code, reason: String(reason), wasClean: code !== 1006 };
    }
    case 'error': {
      const [error] = args;
      return { type, target, error, message: error instanceof Error ? error.message : String(error) };
    }
    default:
      return { type, target };
  }
}

function wrap(type: string, listener: Listener, attribute: boolean): Wrapper {
  const wrapper = function (this: EventEmitter, ...args: unknown[]): void {
    call(listener, this, eventOf(type, this, args));
  } as Wrapper;
  wrapper[kListener] = listener;
  wrapper[kAttribute] = attribute;
  return wrapper;
}

function wrappers(target: EventEmitter, type: string): Wrapper[] {
  // listeners(), not rawListeners(): a `once` registration shows as our wrapper itself.
  return (target.listeners(type) as unknown[]).filter((l): l is Wrapper => typeof (l as Partial<Wrapper>)[kAttribute] === 'boolean');
}

/** `addEventListener`: a listener added twice for one type is called once (as in the DOM and ws). */
export function addEventListener(target: EventEmitter, type: string, listener: unknown, options?: EventListenerOptions): void {
  if (!TYPES.has(type) || !isListener(listener)) return;
  for (const w of wrappers(target, type)) {
    if (w[kListener] === listener && !w[kAttribute]) return;
  }
  const wrapper = wrap(type, listener, false);
  if (options?.once === true) target.once(type, wrapper);
  else target.on(type, wrapper);
}

/** `removeEventListener`: removes what `addEventListener` added (not the `on<type>` attribute's). */
export function removeEventListener(target: EventEmitter, type: string, listener: unknown): void {
  for (const w of wrappers(target, type)) {
    if (w[kListener] === listener && !w[kAttribute]) {
      target.removeListener(type, w);
      return;
    }
  }
}

/** Reads an `on<type>` attribute: its function, or null. */
export function getAttribute(target: EventEmitter, type: string): Listener | null {
  for (const w of wrappers(target, type)) if (w[kAttribute]) return w[kListener];
  return null;
}

/** Sets an `on<type>` attribute: replaces the previous one; anything but a function clears it. */
export function setAttribute(target: EventEmitter, type: string, listener: unknown): void {
  for (const w of wrappers(target, type)) {
    if (w[kAttribute]) target.removeListener(type, w);
  }
  if (typeof listener === 'function') target.on(type, wrap(type, listener as Listener, true));
}

function isListener(value: unknown): value is Listener {
  return typeof value === 'function' || (typeof value === 'object' && value !== null && typeof (value as { handleEvent?: unknown }).handleEvent === 'function');
}
