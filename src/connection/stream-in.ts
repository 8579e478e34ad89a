import { Buffer } from 'node:buffer';
import { ReadyState } from '../behavior-types.js';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import type { FrameParser } from '../protocol/parser.js';
import { Utf8Validator } from '../protocol/utf8.js';
import { beginBatch, flushBatch, inBatch } from './batch.js';
import { Dispatcher } from './dispatch.js';
import { streamInterrupted } from './stream-out.js';
import { STREAM_HIGH_WATER_BYTES, STREAM_LOW_WATER_BYTES, StreamedMessage } from './streamed-message.js';
import { F_ABANDONED, F_COMPRESSED } from './flags.js';

/** Most inflated bytes made from a compressed piece before the consumer's queue is looked at again. */
const INFLATE_STEP = 64 * 1024;

/**
 * Messages received as streams (a layer of `Connection`, see connection.ts), for a route whose
 * behavior overrides `onStream`: the parser hands over payload pieces (parser.ts, streaming
 * mode), which go to the message's queue as they come (inflated one at a time when compressed).
 * Reading stops (`streamHeld`: the parser and the socket pause) while the message holds
 * `STREAM_HIGH_WATER_BYTES` unread, and while the next message waits for the previous one to be
 * read and its `onStream` to settle: one message is handed out at a time, in order.
 */
// A StreamedMessageOwner (streamed-message.ts) by shape: `implements` would name an internal type in the published types.
export abstract class StreamReceiver extends Dispatcher {
  abstract readonly parser: FrameParser;
  /** The message whose bytes are arriving. */
  private get incoming(): StreamedMessage | null {
    return this.extras === null ? null : this.extras.incoming;
  }
  private set incoming(value: StreamedMessage | null) {
    if (value !== null || this.extras !== null) this.extra().incoming = value;
  }
  /** The message handed to `onStream` and not yet read to its end. */
  private get current(): StreamedMessage | null {
    return this.extras === null ? null : this.extras.current;
  }
  private set current(value: StreamedMessage | null) {
    if (value !== null || this.extras !== null) this.extra().current = value;
  }
  /** A message that started while `current` was unread or a hook pending: the parser waits at its start. */
  private get waiting(): StreamedMessage | null {
    return this.extras === null ? null : this.extras.waiting;
  }
  private set waiting(value: StreamedMessage | null) {
    if (value !== null || this.extras !== null) this.extra().waiting = value;
  }
  /** The incoming message arrived compressed (RSV1). */
  private get compressed(): boolean {
    return (this.flags & F_COMPRESSED) !== 0;
  }
  private set compressed(on: boolean) {
    this.flags = on ? this.flags | F_COMPRESSED : this.flags & ~F_COMPRESSED;
  }
  /** Its inflated bytes so far. */
  private get inflatedBytes(): number {
    return this.extras === null ? 0 : this.extras.inflatedBytes;
  }
  private set inflatedBytes(value: number) {
    if (value !== 0 || this.extras !== null) this.extra().inflatedBytes = value;
  }
  /** A compressed piece stopped at its output step: `'piece'` or `'last'` (the trailer) goes on when the consumer reads. */
  private get inflateDue(): 'piece' | 'last' | null {
    return this.extras === null ? null : this.extras.inflateDue;
  }
  private set inflateDue(value: 'piece' | 'last' | null) {
    if (value !== null || this.extras !== null) this.extra().inflateDue = value;
  }
  /** UTF-8 check of a compressed text message, after inflating. */
  private get utf8(): Utf8Validator | null {
    return this.extras === null ? null : this.extras.utf8;
  }
  private set utf8(value: Utf8Validator | null) {
    if (value !== null || this.extras !== null) this.extra().utf8 = value;
  }
  /**
   * A message was left before its end: the connection is closing (1008), and nothing more is
   * handed out or inflated (under context takeover the rest of the window is gone, RFC 7692 §7.2.2).
   */
  private get abandoned(): boolean {
    return (this.flags & F_ABANDONED) !== 0;
  }
  private set abandoned(on: boolean) {
    this.flags = on ? this.flags | F_ABANDONED : this.flags & ~F_ABANDONED;
  }
  private get inflatedOutBound(): ((view: Buffer) => void) | null {
    return this.extras === null ? null : this.extras.inflatedOutBound;
  }
  private set inflatedOutBound(value: ((view: Buffer) => void) | null) {
    if (value !== null || this.extras !== null) this.extra().inflatedOutBound = value;
  }

  /** Takes a token from the rate limit's bucket, or fails the connection (connection.ts). */
  protected abstract takeToken(): boolean;

  // ---- parser events (ParserSink, streaming mode) --------------------------------------------

  onStreamStart(isText: boolean, compressed: boolean): void {
    this.incoming = null;
    // Closing (or a message was left early): what still arrives is read only to reach the close frame.
    if (this.state !== ReadyState.OPEN || this.abandoned) return;
    this.counters.messagesIn++;
    this.active = true;
    if (this.limits.rateCapacity > 0 && !this.takeToken()) return;
    const m = new StreamedMessage(this, isText, this.limits.maxPayload);
    this.incoming = m;
    this.compressed = compressed;
    this.inflatedBytes = 0;
    this.utf8 = compressed && isText ? new Utf8Validator() : null;
    if (compressed && !this.deflate?.beginStream()) {
      this.owner.log.error(`wsmount: connection ${this.behavior.id} received a compressed message as a stream, which this runtime's zlib cannot inflate piece by piece; closing it with 1011`);
      this.fail(CloseCode.InternalError, 'cannot inflate a streamed message here');
      return;
    }
    if (this.current !== null || this.busy) {
      // Usually a short wait (the reader is finishing the last message): the parser stops, the
      // socket reads on into it until STREAM_HIGH_WATER_BYTES wait there (connection.ts onData).
      this.waiting = m;
      this.hold(false);
      return;
    }
    this.handOut(m);
  }

  onStreamData(data: Buffer): void {
    const m = this.incoming;
    if (m === null) return;
    // A message still arriving is activity (idleTimeout), however long it takes.
    this.active = true;
    if (this.compressed) {
      this.inflatePiece(data, 'piece');
      return;
    }
    m.push(data);
    if (!m.released && m.queuedCost >= STREAM_HIGH_WATER_BYTES) this.hold();
  }

  onStreamEnd(): void {
    if (this.incoming === null) return;
    if (this.compressed && !this.inflatePiece(null, 'last')) return;
    this.endIncoming();
  }

  private endIncoming(): void {
    const m = this.incoming as StreamedMessage;
    if (this.compressed) {
      (this.deflate as NonNullable<typeof this.deflate>).endStream(this.inflatedBytes);
      // RFC 7692 §6.1 with RFC 6455 §8.1: a compressed text message is checked once inflated.
      if (this.utf8 !== null && !this.utf8.end()) {
        this.failStream(new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence (after inflating)'));
        return;
      }
    }
    this.incoming = null;
    this.utf8 = null;
    m.end();
  }

  // ---- inflating, one piece at a time --------------------------------------------------------

  /**
   * Inflates a piece (`data`, or with null the rest of the one that stopped at its step), pausing
   * once the consumer has enough unread. Returns whether the piece is done.
   */
  private inflatePiece(data: Buffer | null, kind: 'piece' | 'last'): boolean {
    const d = this.deflate as NonNullable<typeof this.deflate>;
    const out = (this.inflatedOutBound ??= this.inflatedOut.bind(this));
    let piece: Buffer | null = data;
    for (;;) {
      const m = this.incoming;
      if (m === null) return false;
      if (this.abandoned) return true; // left early: closing with 1008, nothing more is inflated
      const r = d.inflatePiece(piece, kind === 'last' && piece === null && this.inflateDue === null, INFLATE_STEP, out);
      piece = null;
      if (this.incoming !== m) return false; // failed while inflating (too big, bad UTF-8)
      if (r === 'error') {
        this.failStream(new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, `compressed message does not inflate (${d.streamError})`));
        return false;
      }
      if (r === 'done') {
        this.inflateDue = null;
        return true;
      }
      this.inflateDue = kind;
      if (m.queuedCost >= STREAM_HIGH_WATER_BYTES) {
        this.hold();
        return false;
      }
    }
  }

  private inflatedOut(view: Buffer): void {
    const m = this.incoming;
    if (m === null) return;
    this.inflatedBytes += view.length;
    if (this.inflatedBytes > this.limits.maxStreamBytes) {
      this.failStream(new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `streamed message inflates to over maxStreamBytes (${this.limits.maxStreamBytes} bytes)`));
      return;
    }
    if (this.utf8 !== null && !this.utf8.write(view)) {
      this.failStream(new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8 (after inflating)'));
      return;
    }
    m.push(Buffer.from(view));
  }

  // ---- handing messages out, in order --------------------------------------------------------

  private handOut(m: StreamedMessage): void {
    this.current = m;
    let result: unknown;
    try {
      result = this.behavior.onStream(m);
    } catch (error) {
      this.hookFailed(error, 'onStream');
      return;
    }
    this.track(result, 'onStream');
    if (!this.busy) this.dropUntaken();
  }

  /**
   * `onStream` returned (or its promise settled) and nobody started reading its message: it is
   * not wanted. Dropped, and what is still to come of it is read and thrown away, so the
   * connection goes on (rather than waiting for ever for a reader that will not come).
   */
  private dropUntaken(): void {
    const m = this.current;
    if (m === null || m.isTaken || this.state !== ReadyState.OPEN) return;
    this.owner.log.debug(`wsmount: ${this.behavior.route} onStream returned without reading its message (connection ${this.behavior.id}); the message is dropped`);
    m.discard();
  }

  /** The message that waited may go now: the last one is read and no hook is pending. */
  private handOutWaiting(): void {
    const w = this.waiting;
    if (w === null || this.current !== null || this.busy || this.state !== ReadyState.OPEN) return;
    this.waiting = null;
    this.handOut(w);
    if (this.state === ReadyState.OPEN && this.waiting === null) this.unhold();
  }

  /** @internal */
  protected override hooksIdle(): void {
    this.dropUntaken();
    this.handOutWaiting();
  }

  /** @internal StreamedMessageOwner: the consumer took bytes. */
  streamPulled(m: StreamedMessage): void {
    if (!this.streamHeld || m !== this.incoming || this.waiting !== null || m.queuedCost > STREAM_LOW_WATER_BYTES) return;
    this.unhold();
  }

  /** @internal StreamedMessageOwner: the consumer is done with `m`. */
  streamFinished(m: StreamedMessage, early: boolean): void {
    if (m === this.current) this.current = null;
    if (early) {
      // Left before the end: the rest cannot be skipped without reading it. Decided after the
      // microtasks, so that an exception leaving the loop (which rejects onStream) closes with 1011.
      this.abandoned = true;
      this.waiting = null;
      if (this.state === ReadyState.OPEN) setImmediate(closeUnread, this);
      if (m === this.incoming && this.streamHeld) this.unhold();
      return;
    }
    this.handOutWaiting();
  }

  /** @internal StreamedMessageOwner: `text()`/`bytes()` passed `maxPayload`. */
  streamTooBig(_m: StreamedMessage, limit: number): void {
    if (this.state !== ReadyState.OPEN) return;
    this.owner.log.info(`wsmount: closing connection ${this.behavior.id} with 1009: a streamed message collected with text()/bytes() is over maxPayload (${limit} bytes)`);
    this.fail(CloseCode.MessageTooBig, 'message too big');
  }

  // ---- pausing -------------------------------------------------------------------------------

  private hold(pauseSocket = true): void {
    if (pauseSocket) this.socket.pause();
    if (this.streamHeld) return;
    this.streamHeld = true;
    this.parser.pause();
  }

  /** Reads on: what the parser kept is parsed now (in one write batch, as a chunk is), then the socket. */
  private unhold(): void {
    if (!this.streamHeld) return;
    this.streamHeld = false;
    const s = this.socket;
    const batch = !inBatch();
    s.cork();
    if (batch) beginBatch();
    try {
      const due = this.inflateDue;
      if (due === null || this.inflatePiece(null, due)) {
        if (due === 'last' && this.incoming !== null) this.endIncoming();
        if (!this.streamHeld) this.parser.resume();
      }
    } finally {
      if (batch) flushBatch();
      s.uncork();
    }
    if (this.streamHeld) return;
    if (this.mayRead()) s.resume();
    this.readingResumed();
  }

  /** @internal Reading resumed after a hold (connection.ts: a FIN that came meanwhile is handled now). */
  protected readingResumed(): void {}

  /** @internal Whether a message is being received as a stream or read by its consumer. */
  protected get streamInProgress(): boolean {
    return this.incoming !== null || this.current !== null;
  }

  /**
   * @internal The connection is closing or gone: the message arriving will never be complete
   * (its consumer sees `error` once it has read what came), one waiting is never handed out, and
   * reading goes on to the peer's close frame.
   */
  protected interruptStreams(code: number, why: string): void {
    // Most connections stream nothing: no error is made (a stack trace) for them.
    if (this.incoming === null && this.waiting === null && !this.streamHeld) return;
    this.interruptWith(streamInterrupted(code, why));
  }

  /** @internal As {@link interruptStreams}, with the error the reader sees (a protocol violation's own). */
  protected interruptWith(error: ProtocolError): void {
    const m = this.incoming;
    this.incoming = null;
    this.waiting = null;
    this.inflateDue = null;
    if (m !== null) {
      m.abort(error);
      if (this.compressed) this.deflate?.endStream(this.inflatedBytes);
    }
    if (this.streamHeld) {
      this.streamHeld = false;
      if (!this.parser.stopped) this.parser.resume();
      if (this.mayRead()) this.socket.resume();
      this.readingResumed();
    }
  }

  /** A streamed message broke a rule: its consumer sees `error`, the connection fails with its code. */
  private failStream(error: ProtocolError): void {
    this.interruptWith(error);
    this.onProtocolError(error);
  }

  /** Fails the connection for a protocol error (connection.ts). */
  abstract onProtocolError(error: ProtocolError): void;
}

function closeUnread(c: StreamReceiver): void {
  if (c.state !== ReadyState.OPEN) return;
  c.close(CloseCode.PolicyViolation, 'message not read to the end');
}
