import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { Behavior, ReadyState } from '../behavior.js';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeText } from '../protocol/utf8.js';
import { Inbound, MESSAGES_HIGH_WATER_BYTES, MESSAGES_HIGH_WATER_COUNT, MESSAGES_LOW_WATER_BYTES, MESSAGES_LOW_WATER_COUNT, type MessageStream, MessageQueue } from './inbound.js';
import type { DeflateSession } from '../extensions/permessage-deflate/session.js';
import { OrderedSender } from './ordered-sender.js';
import type { HookName, RouteShared } from './types.js';
import { F_BUSY, F_CLOSE_PENDING, F_HOOK_BROKEN, F_RAW_TEXT, F_STREAMING } from './flags.js';

const baseOnRawText = Behavior.prototype.onRawText;
const baseOnStream = Behavior.prototype.onStream;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * Where incoming data messages go (a layer of `Connection`, see connection.ts): to the
 * `messages()` iterator, to the hooks one at a time while a hook's promise is pending (the
 * others wait in a backlog, and reading pauses above the high-water mark), and what a hook
 * failure does. `onClose` runs once the last pending hook has settled.
 */
export abstract class Dispatcher extends OrderedSender {
  /** @internal the active `messages()` iterator, which takes data messages instead of the hooks. */
  get inbox(): MessageQueue | null {
    return this.extras === null ? null : this.extras.inbox;
  }
  set inbox(value: MessageQueue | null) {
    if (value !== null || this.extras !== null) this.extra().inbox = value;
  }
  /** @internal A promise returned by `onOpen`, `onText` or `onBinary` has not settled yet: later messages wait in `backlog`. */
  protected get busy(): boolean {
    return (this.flags & F_BUSY) !== 0;
  }
  protected set busy(on: boolean) {
    this.flags = on ? this.flags | F_BUSY : this.flags & ~F_BUSY;
  }
  private get backlog(): Inbound | null {
    return this.extras === null ? null : this.extras.backlog;
  }
  private set backlog(value: Inbound | null) {
    if (value !== null || this.extras !== null) this.extra().backlog = value;
  }
  /** @internal The socket closed while `busy`: `onClose` runs once the last hook settles. */
  protected get closePending(): boolean {
    return (this.flags & F_CLOSE_PENDING) !== 0;
  }
  protected set closePending(on: boolean) {
    this.flags = on ? this.flags | F_CLOSE_PENDING : this.flags & ~F_CLOSE_PENDING;
  }
  /** A hook failed: the connection is closing with 1011 and no more data messages are delivered. */
  private get hookBroken(): boolean {
    return (this.flags & F_HOOK_BROKEN) !== 0;
  }
  private set hookBroken(on: boolean) {
    this.flags = on ? this.flags | F_HOOK_BROKEN : this.flags & ~F_HOOK_BROKEN;
  }
  private get hookDoneBound(): (() => void) | null {
    return this.extras === null ? null : this.extras.hookDoneBound;
  }
  private set hookDoneBound(value: (() => void) | null) {
    if (value !== null || this.extras !== null) this.extra().hookDoneBound = value;
  }
  private get hookRejectedBound(): ((error: unknown) => void) | null {
    return this.extras === null ? null : this.extras.hookRejectedBound;
  }
  private set hookRejectedBound(value: ((error: unknown) => void) | null) {
    if (value !== null || this.extras !== null) this.extra().hookRejectedBound = value;
  }
  private get drainRejectedBound(): ((error: unknown) => void) | null {
    return this.extras === null ? null : this.extras.drainRejectedBound;
  }
  private set drainRejectedBound(value: ((error: unknown) => void) | null) {
    if (value !== null || this.extras !== null) this.extra().drainRejectedBound = value;
  }
  /** The hook whose promise is pending while `busy`. */
  private pendingHook: HookName = 'onOpen';
  /** The behavior overrides `onRawText`: text goes there as bytes, not to `onText`. */
  private get rawText(): boolean {
    return (this.flags & F_RAW_TEXT) !== 0;
  }
  /** The behavior overrides `onStream`: every message arrives there as a stream (stream-in.ts). */
  protected get streaming(): boolean {
    return (this.flags & F_STREAMING) !== 0;
  }

  /** @internal */
  constructor(socket: Duplex, behavior: Behavior, route: RouteShared, deflate: DeflateSession | null) {
    super(socket, behavior, route, deflate);
    if (behavior.onRawText !== baseOnRawText) this.flags |= F_RAW_TEXT;
    if (behavior.onStream !== baseOnStream) this.flags |= F_STREAMING;
  }

  // ---- receiving ------------------------------------------------------------------------------

  /**
   * Starts `Behavior.messages()`: see there. Throws if an iterator is already active. After the
   * connection closed, returns an iterator that is already done. Messages waiting behind a
   * pending hook move into the iterator, in order.
   */
  messages(): MessageStream {
    if (this.streaming) {
      throw new Error(`messages() is not used on ${this.behavior.route}: its behavior overrides onStream, so every message arrives there as a stream`);
    }
    if (this.inbox !== null && !this.inbox.finished) {
      throw new Error(
        `messages() is already active on connection ${this.behavior.id}: only one iterator at a time (break out of the first one to release it)`,
      );
    }
    if (this.state === ReadyState.CLOSED && (this.backlog === null || this.backlog.length === 0)) {
      this.inbox = null;
      return new MessageQueue(null);
    }
    const queue = new MessageQueue(this);
    this.inbox = queue;
    const backlog = this.backlog;
    if (backlog !== null) {
      while (backlog.length > 0) {
        const data = backlog.shift();
        queue.inbound.push(data, backlog.lastText);
      }
    }
    if (this.state === ReadyState.CLOSED) queue.end();
    return queue;
  }

  /** @internal queued incoming messages grew: pause reading above the high-water mark. */
  queueGrew(): void {
    if (this.readPaused || this.state !== ReadyState.OPEN) return;
    if (this.waitingCount() >= MESSAGES_HIGH_WATER_COUNT || this.waitingBytes() >= MESSAGES_HIGH_WATER_BYTES) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  /** @internal queued incoming messages shrank: resume reading below the low-water mark. */
  queueShrank(): void {
    if (this.readPaused && this.waitingCount() <= MESSAGES_LOW_WATER_COUNT && this.waitingBytes() <= MESSAGES_LOW_WATER_BYTES) {
      this.resumeReading();
    }
  }

  /** Messages waiting for the `messages()` iterator or behind a pending hook. */
  private waitingCount(): number {
    return (this.inbox?.inbound.length ?? 0) + (this.backlog?.length ?? 0);
  }

  /** Their payload bytes. */
  private waitingBytes(): number {
    return (this.inbox?.inbound.bytes ?? 0) + (this.backlog?.bytes ?? 0);
  }

  /** @internal */
  protected resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    if (this.mayRead()) this.socket.resume();
  }

  /** @internal hands a data message to the iterator, the backlog, or the hook. */
  dispatch(data: Buffer, isText: boolean): void {
    if (this.hookBroken) return;
    const inbox = this.inbox;
    if (inbox !== null) {
      inbox.push(data, isText);
    } else if (this.busy) {
      (this.backlog ??= new Inbound()).push(data, isText);
      this.queueGrew();
    } else {
      this.deliver(data, isText);
    }
  }

  private deliver(data: Buffer, isText: boolean): void {
    const b = this.behavior;
    const hook: HookName = isText ? (this.rawText ? 'onRawText' : 'onText') : 'onBinary';
    try {
      this.track(isText ? (this.rawText ? b.onRawText(data) : b.onText(decodeText(data))) : b.onBinary(data), hook);
    } catch (error) {
      this.hookFailed(error, hook);
    }
  }

  /**
   * @internal A hook that orders later messages (`onOpen`, `onText`, `onRawText`, `onBinary`)
   * returned `result`: while it is a pending promise, messages wait in the backlog.
   */
  track(result: unknown, hook: HookName): void {
    if (result === undefined || !isThenable(result)) return;
    this.busy = true;
    this.pendingHook = hook;
    result.then(
      (this.hookDoneBound ??= this.hookDone.bind(this)),
      (this.hookRejectedBound ??= this.hookRejected.bind(this)),
    );
  }

  /** The pending hook settled: deliver what waited, in order, until one is pending again. */
  private hookDone(): void {
    this.busy = false;
    const backlog = this.backlog;
    if (backlog !== null && backlog.length > 0) {
      const s = this.socket;
      const corked = s.writable;
      if (corked) s.cork();
      while (backlog.length > 0 && !this.busy) {
        const data = backlog.shift();
        const isText = backlog.lastText;
        if (this.inbox !== null) this.inbox.push(data, isText);
        else this.deliver(data, isText);
      }
      if (corked) s.uncork();
      this.queueShrank();
    }
    if (!this.busy) {
      if (this.closePending) this.reportClose();
      else this.hooksIdle();
    }
  }

  /** @internal No hook promise is pending any more: a message received as a stream may be handed on (stream-in.ts). */
  protected hooksIdle(): void {}

  private hookRejected(error: unknown): void {
    this.busy = false;
    this.hookFailed(error, this.pendingHook);
    if (this.closePending) this.reportClose();
  }

  /** @internal Runs `onClose` (connection.ts). */
  protected abstract reportClose(): void;

  // ---- hook failures --------------------------------------------------------------------------

  /** Catches a rejected promise returned by `onDrain`, the hook that does not order messages. */
  watch(result: unknown): void {
    if (isThenable(result)) result.then(undefined, (this.drainRejectedBound ??= (error: unknown) => this.hookFailed(error, 'onDrain')));
  }

  /**
   * A hook threw: log it, tell `onError`, close with 1011, and drop the messages still waiting
   * for the hooks and any that arrive while closing. One bad handler never takes the process down.
   */
  hookFailed(error: unknown, hook: HookName): void {
    const b = this.behavior;
    if (error instanceof ProtocolError && this.state !== ReadyState.OPEN) {
      // A streamed message's reading rejected because the connection ended (the peer left, a
      // violation, a close): not the hook's fault, and onClose (or onError) reports the reason.
      this.owner.log.debug(`wsmount: ${b.route} ${hook} ended with the connection ${b.id}: ${error.code} (${error.closeCode})`);
      return;
    }
    const err = error instanceof Error ? error : new Error(String(error));
    this.owner.log.error(`wsmount: ${b.route} ${hook} threw (connection ${b.id}; closing it with 1011)`, err);
    try {
      b.onError(err);
    } catch (hookError) {
      this.owner.log.error(`wsmount: ${b.route} onError threw (connection ${b.id})`, hookError);
    }
    this.hookBroken = true;
    if (this.backlog !== null && this.backlog.length > 0) {
      this.owner.log.debug(`wsmount: dropping ${this.backlog.length} messages that waited for connection ${this.behavior.id}'s failed hook`);
      this.backlog.clear();
      this.queueShrank();
    }
    if (this.state === ReadyState.OPEN) this.close(CloseCode.InternalError, 'internal error');
  }
}
