import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { type Behavior, ReadyState } from '../behavior.js';
import type { Counters } from '../stats.js';
import type { DeflateSession } from '../extensions/permessage-deflate/session.js';
import { Extras } from './extras.js';
import type { OrderedOutput } from './ordered.js';
import type { ConnectionLimits, ConnectionOwner, RouteShared } from './types.js';
import { F_ACTIVE, F_CLOSE_SENT, F_END_HELD, F_INFLATING, F_READ_PAUSED, F_STATE_SHIFT, F_STREAM_HELD, F_USER_PAUSED } from './flags.js';

type Client = Behavior;

/**
 * What a connection is made of, below every layer that acts on it (sender.ts, ordered-sender.ts,
 * dispatch.ts, stream-in.ts, connection.ts): its socket, behavior and route, the boolean state of every layer
 * packed in `flags` (flags.ts) with the ready state, the state few connections use in `extras`
 * (extras.ts), and the slots the send path reads on every message. Only reads and writes of
 * state here; the layers above decide. A base class, so that a connection stays one object.
 */
export abstract class ConnectionState {
  readonly socket: Duplex;
  readonly behavior: Client;
  /** @internal The route: what its connections share (its handler, limits and counters), one slot, not three. */
  protected readonly shared: RouteShared;
  /** @internal the route's counters. */
  get counters(): Counters {
    return this.shared.counters;
  }
  /** @internal The boolean state of every layer, one bit each (flags.ts), and the ready state. */
  protected flags = 0;
  /** The ready state: two bits of `flags`, stored XOR OPEN so that 0 (a new connection) is OPEN. */
  get state(): ReadyState {
    return (((this.flags >>> F_STATE_SHIFT) & 3) ^ ReadyState.OPEN) as ReadyState;
  }
  set state(value: ReadyState) {
    this.flags = (this.flags & ~(3 << F_STATE_SHIFT)) | ((value ^ ReadyState.OPEN) << F_STATE_SHIFT);
  }
  /** @internal State most connections never use, made on first use (extras.ts). */
  protected extras: Extras | null = null;
  /** @internal `extras`, made now if it was not there. */
  protected extra(): Extras {
    return (this.extras ??= new Extras());
  }
  /** @internal reading is paused because queued incoming messages are over the high-water mark. */
  get readPaused(): boolean {
    return (this.flags & F_READ_PAUSED) !== 0;
  }
  set readPaused(on: boolean) {
    this.flags = on ? this.flags | F_READ_PAUSED : this.flags & ~F_READ_PAUSED;
  }
  /** @internal The app paused reading (the ws face's `pause()`), until `resume()` or the close. */
  get userPaused(): boolean {
    return (this.flags & F_USER_PAUSED) !== 0;
  }
  set userPaused(on: boolean) {
    this.flags = on ? this.flags | F_USER_PAUSED : this.flags & ~F_USER_PAUSED;
  }
  /** @internal A message received as a stream has enough unread bytes waiting, or the next one waits its turn (stream-in.ts). */
  get streamHeld(): boolean {
    return (this.flags & F_STREAM_HELD) !== 0;
  }
  set streamHeld(on: boolean) {
    this.flags = on ? this.flags | F_STREAM_HELD : this.flags & ~F_STREAM_HELD;
  }
  /** @internal */
  protected get owner(): ConnectionOwner {
    return this.shared.owner;
  }
  /** @internal */
  protected get limits(): ConnectionLimits {
    return this.shared.limits;
  }
  /** @internal */
  protected get closeSent(): boolean {
    return (this.flags & F_CLOSE_SENT) !== 0;
  }
  protected set closeSent(on: boolean) {
    this.flags = on ? this.flags | F_CLOSE_SENT : this.flags & ~F_CLOSE_SENT;
  }
  /** @internal A data message went either way since the last heartbeat sweep. */
  protected get active(): boolean {
    return (this.flags & F_ACTIVE) !== 0;
  }
  protected set active(on: boolean) {
    this.flags = on ? this.flags | F_ACTIVE : this.flags & ~F_ACTIVE;
  }
  /** @internal permessage-deflate, when negotiated (the seam: extensions/permessage-deflate/session.ts). */
  readonly deflate: DeflateSession | null;
  /** @internal data frames waiting behind one being compressed on the thread pool (ordered.ts). */
  // A field, not in the extras: a compressed connection that sends messages over the inline
  // deflate limit, or any streamed send, sets it and clears it again, and would keep the extras.
  protected ordered: OrderedOutput | null = null;
  /** @internal our close frame, held until the frames in `ordered` are written (RFC 6455 §5.5.1: no data after it). */
  protected get closeHeld(): Buffer | null {
    return this.extras === null ? null : this.extras.closeHeld;
  }
  protected set closeHeld(value: Buffer | null) {
    if (value !== null || this.extras !== null) this.extra().closeHeld = value;
  }
  /** @internal the TCP end (after the peer's close) waits for `closeHeld` to be written. */
  protected get endHeld(): boolean {
    return (this.flags & F_END_HELD) !== 0;
  }
  protected set endHeld(on: boolean) {
    this.flags = on ? this.flags | F_END_HELD : this.flags & ~F_END_HELD;
  }
  /** @internal a received message is being inflated on the thread pool: reading waits for it. */
  protected get inflating(): boolean {
    return (this.flags & F_INFLATING) !== 0;
  }
  protected set inflating(on: boolean) {
    this.flags = on ? this.flags | F_INFLATING : this.flags & ~F_INFLATING;
  }
  /**
   * @internal A ping came while a pong was in flight: only the latest is answered (RFC 6455
   * §5.5.3), with this payload, once that pong is out; reading is paused meanwhile, so a peer that
   * pings and does not read fills its TCP window instead of our memory.
   */
  protected get heldPong(): Buffer | null {
    return this.extras === null ? null : this.extras.heldPong;
  }
  protected set heldPong(value: Buffer | null) {
    if (value !== null || this.extras !== null) this.extra().heldPong = value;
  }
  /**
   * @internal Small frames sent during a batch (batch.ts), not yet given to the socket: they go
   * as one buffer in one write when the batch ends, or before anything else is written.
   */
  protected out: Buffer[] | null = null;
  /** @internal Their bytes, at most the socket's high-water mark. */
  protected outBytes = 0;

  /** @internal */
  constructor(socket: Duplex, behavior: Client, route: RouteShared, deflate: DeflateSession | null) {
    this.socket = socket;
    this.behavior = behavior;
    this.shared = route;
    this.deflate = deflate;
  }


  /** Whether the socket may be resumed: no reason to keep it paused is left. @internal */
  protected mayRead(): boolean {
    return !this.readPaused && !this.userPaused && !this.streamHeld && this.heldPong === null && !this.inflating;
  }

  /**
   * Bytes accepted by `send*()` and not yet handed to the kernel: the socket's `writableLength`
   * (corked bytes included), plus, with compression, messages still being compressed on the
   * thread pool (counted uncompressed) and what waits behind them. Over HTTP/2 it includes the
   * write Node is still framing, which the backpressure policy leaves out.
   */
  get bufferedAmount(): number {
    const ordered = this.ordered;
    const held = this.socket.writableLength + this.outBytes;
    return ordered === null ? held : held + ordered.bytes;
  }
}
