import { Buffer } from 'node:buffer';
import { CloseCode, Opcode } from './constants.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import { headerViolation, readClosePayload } from './frame-rules.js';
import { applyMask, copyUnmasked, keyOf, unmaskWhole } from './mask.js';
import type { ParserOptions, ParserSink } from './parser-contract.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';
import { forgetViewed, viewOf } from './views.js';

export type { ParserOptions, ParserSink } from './parser-contract.js';

const HEADER = 0;
const LENGTH16 = 1;
const LENGTH64 = 2;
const MASK_KEY = 3;
const PAYLOAD = 4;
const STOPPED = 5;

const EMPTY = Buffer.alloc(0);
/** The parser's input list while it has none (frozen: a push into it would be a bug, and throws). */
const NO_CHUNKS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** The bits of `FrameParser.bits`. */
const B_COMPRESSED = 1;
const B_PAUSED = 2;
const B_RUNNING = 4;

/**
 * The incremental RFC 6455 frame parser: bytes in, events out (to a {@link ParserSink}).
 *
 * Correct for any chunking. Payload bytes are sliced out of the incoming chunks without copying
 * and unmasked in place, so `push` takes ownership of the chunks it is given; fragments are
 * joined once, when the final frame arrives. It never throws on bad input and never does I/O:
 * a violation becomes one `onProtocolError` call, after which the parser ignores all input.
 */
export class FrameParser {
  private readonly sink: ParserSink;
  /** Read where used, never copied: parsers of one route share one options object. */
  private readonly options: ParserOptions;

  /** Unread input; `NO_CHUNKS` while there is none (an idle connection keeps no array). */
  private chunks: Buffer[] = NO_CHUNKS;
  /** Read position in `chunks[0]`. */
  private offset = 0;
  private buffered = 0;
  private state = HEADER;

  /** `compressed`, `paused` and `running`, one bit each: a field costs 8 bytes in every connection's parser, a bit nothing (`fin`, read on every frame, stays a field). */
  private bits = 0;

  // Current frame.
  private fin = false;
  private opcode = 0;
  private length = 0;
  private position = 0;
  /** The frame's masking key, as the little-endian 32-bit word of its 4 bytes (see {@link keyOf}). */
  private mask = 0;

  // Current data message (opcode 0 when none is open).
  private messageOpcode = 0;
  private messageLength = 0;
  private fragments = 0;
  private first: Buffer | null = null;
  /** The current data frame, when its payload spans chunks: copied here as it arrives (readPayload). */
  private frame: Buffer | null = null;
  private rest: Buffer[] | null = null;
  private utf8: Utf8Validator | null = null;
  /** The open message's first frame had RSV1 set. */
  private get compressed(): boolean {
    return (this.bits & B_COMPRESSED) !== 0;
  }
  private set compressed(on: boolean) {
    this.bits = on ? this.bits | B_COMPRESSED : this.bits & ~B_COMPRESSED;
  }
  /** `pause()` was called: input is kept until `resume()`. */
  private get paused(): boolean {
    return (this.bits & B_PAUSED) !== 0;
  }
  private set paused(on: boolean) {
    this.bits = on ? this.bits | B_PAUSED : this.bits & ~B_PAUSED;
  }
  /** `run()` is on the stack: a `resume()` from a sink callback lets it go on instead of re-entering. */
  private get running(): boolean {
    return (this.bits & B_RUNNING) !== 0;
  }
  private set running(on: boolean) {
    this.bits = on ? this.bits | B_RUNNING : this.bits & ~B_RUNNING;
  }

  // A control frame whose payload spans chunks.
  private control: Buffer[] | null = null;

  constructor(sink: ParserSink, options: ParserOptions) {
    this.sink = sink;
    this.options = options;
  }

  /** Whether the parser has stopped (after a close frame or a protocol error). */
  get stopped(): boolean {
    return this.state === STOPPED;
  }

  /**
   * Between frames with nothing kept: no input buffered, no data message open, not paused, not
   * stopped (a control frame in pieces is in the PAYLOAD state). A fresh parser would read what
   * comes next exactly as this one would.
   */
  get atRest(): boolean {
    return this.state === HEADER && this.buffered === 0 && this.messageOpcode === 0 && this.bits === 0;
  }

  /** Bytes received but not yet consumed into a frame or message. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Stops parsing and drops everything buffered. */
  stop(): void {
    this.state = STOPPED;
    this.chunks = NO_CHUNKS;
    this.buffered = 0;
    this.offset = 0;
    this.first = null;
    this.frame = null;
    this.rest = null;
    this.control = null;
  }

  /**
   * Stops handing out events after the current one, keeping unread input (more may still be
   * pushed) until {@link resume}. For a sink that finishes a message asynchronously (inflating
   * on the thread pool) and must see what follows it in order.
   */
  pause(): void {
    this.paused = true;
  }

  /** Whether {@link pause} is in effect. */
  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Undoes {@link pause} and parses the input kept meanwhile, at once. In streaming mode this
   * also finishes a frame whose last payload byte was handed out just before the pause (its end,
   * `onStreamEnd`, is due even with no input left).
   */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.running && this.state !== STOPPED) this.run();
  }

  /** Feeds bytes from the peer. The parser takes ownership of `chunk` (it unmasks in place). */
  push(chunk: Buffer): void {
    if (this.state === STOPPED || chunk.length === 0) return;
    if (this.chunks === NO_CHUNKS) this.chunks = [chunk];
    else this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (!this.paused && !this.running) this.run();
  }

  private run(): void {
    this.running = true;
    try {
      this.loop();
    } finally {
      this.running = false;
      // All input consumed: the array goes (a connection that falls idle keeps none).
      if (this.buffered === 0 && this.state !== STOPPED) this.chunks = NO_CHUNKS;
      forgetViewed();
    }
  }

  private loop(): void {
    for (;;) {
      if (this.paused) return;
      switch (this.state) {
        case HEADER:
          if (this.buffered < 2) return;
          if (this.wholeSmallFrame()) break;
          if (!this.readHeader()) return;
          break;
        case LENGTH16:
          if (this.buffered < 2) return;
          this.length = (this.byte() << 8) | this.byte();
          this.afterLength();
          break;
        case LENGTH64: {
          if (this.buffered < 8) return;
          const hi = ((this.byte() << 24) | (this.byte() << 16) | (this.byte() << 8) | this.byte()) >>> 0;
          const lo = ((this.byte() << 24) | (this.byte() << 16) | (this.byte() << 8) | this.byte()) >>> 0;
          // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
          if (hi >= 0x80000000) {
            this.fail('WS_LENGTH_OVERFLOW', CloseCode.ProtocolError, 'the top bit of a 64-bit payload length is set');
            return;
          }
          this.length = hi * 0x100000000 + lo;
          this.afterLength();
          break;
        }
        case MASK_KEY: {
          if (this.buffered < 4) return;
          const b0 = this.byte();
          const b1 = this.byte();
          const b2 = this.byte();
          this.mask = b0 | (b1 << 8) | (b2 << 16) | (this.byte() << 24);
          this.state = PAYLOAD;
          break;
        }
        case PAYLOAD:
          if (!this.readPayload()) return;
          break;
        default:
          return;
      }
    }
  }

  private byte(): number {
    const chunk = this.chunks[0] as Buffer;
    const b = chunk[this.offset++] as number;
    if (this.offset === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    this.buffered--;
    return b;
  }

  /** Takes up to `max` bytes from the first chunk, as a view. */
  private take(max: number): Buffer {
    const chunk = this.chunks[0] as Buffer;
    const available = chunk.length - this.offset;
    let piece: Buffer;
    if (max >= available) {
      piece = this.offset === 0 ? chunk : viewOf(chunk, this.offset, chunk.length);
      this.chunks.shift();
      this.offset = 0;
    } else {
      piece = viewOf(chunk, this.offset, this.offset + max);
      this.offset += max;
    }
    this.buffered -= piece.length;
    return piece;
  }

  private fail(code: ProtocolErrorCode, closeCode: number, message: string): void {
    this.failWith(new ProtocolError(code, closeCode, message));
  }

  private failWith(error: ProtocolError): void {
    this.stop();
    this.sink.onProtocolError(error);
  }

  /**
   * The common frame at once: a masked, unfragmented, uncompressed text or binary frame with a
   * 7- or 16-bit length (under 64 KiB), whole in the first chunk, no message open, not streaming.
   * Read straight from the chunk (no byte-by-byte header, no key and payload states), unmasked,
   * checked (UTF-8 for text, maxPayload) and handed to the sink, as the general path would.
   * Returns false, having consumed and changed nothing, for any other frame and for one that
   * would be refused: the general path then reads it, with its own checks and verdicts.
   */
  private wholeSmallFrame(): boolean {
    const chunk = this.chunks[0] as Buffer;
    const o = this.offset;
    const available = chunk.length - o;
    if (available < 6) return false;
    const b0 = chunk[o] as number;
    const b1 = chunk[o + 1] as number;
    // FIN set, RSV bits clear, opcode text (0x81) or binary (0x82); the mask bit set, a 7-bit
    // length or 126 (a 16-bit length follows).
    if ((b0 !== 0x82 && b0 !== 0x81) || b1 < 0x80 || b1 === 0x80 + 127) return false;
    let length = b1 & 0x7f;
    let k = o + 2;
    if (length === 126) {
      if (available < 8) return false;
      length = ((chunk[k] as number) << 8) | (chunk[k + 1] as number);
      k += 2;
    }
    const start = k + 4;
    const end = start + length;
    const options = this.options;
    if (end > chunk.length || this.messageOpcode !== 0 || !options.expectMasked || options.streaming === true || length > options.maxPayload || options.maxFragments < 1) {
      return false;
    }
    const mask = (chunk[k] as number) | ((chunk[k + 1] as number) << 8) | ((chunk[k + 2] as number) << 16) | ((chunk[k + 3] as number) << 24);
    let data: Buffer = EMPTY;
    if (length > 0) {
      data = viewOf(chunk, start, end);
      unmaskWhole(data, mask);
    }
    const isText = b0 === 0x81;
    // RFC 6455 §8.1: text must be valid UTF-8. A frame that is not is masked back (the XOR again)
    // and left to the general path, which fails it with its own verdict.
    if (isText && !isValidUtf8(data)) {
      unmaskWhole(data, mask);
      return false;
    }
    if (end === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    } else {
      this.offset = end;
    }
    this.buffered -= end - o;
    this.sink.onMessage(data, isText, false);
    return true;
  }

  /** Reads the first two header bytes and checks every rule they decide (frame-rules.ts). */
  private readHeader(): boolean {
    const b0 = this.byte();
    const b1 = this.byte();
    const options = this.options;
    const violation = headerViolation(b0, b1, this.messageOpcode !== 0, options.allowRsv1 === true, options.expectMasked);
    if (violation !== null) {
      this.failWith(violation);
      return false;
    }
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const length = b1 & 0x7f;
    this.fin = fin;
    this.opcode = opcode;
    this.position = 0;
    if (opcode === Opcode.Text || opcode === Opcode.Binary) this.compressed = (b0 & 0x70) !== 0;
    if (length === 126) {
      this.state = LENGTH16;
    } else if (length === 127) {
      this.state = LENGTH64;
    } else {
      this.length = length;
      this.afterLength();
    }
    return this.state !== STOPPED;
  }

  /** Runs once the frame's payload length is known: limits, then on to the key or payload. */
  private afterLength(): void {
    if (this.opcode < 8 && this.options.streaming === true) {
      this.streamFrame();
      return;
    }
    if (this.opcode < 8) {
      // Checked from the header, before any payload is buffered. A compressed message may be a
      // little longer than what it inflates to (stored blocks: 5 bytes per 64 KiB, zlib's
      // deflateBound allows ~1/8 plus a few bytes): its inflated size is held to maxPayload
      // exactly, while inflating; here it gets that margin, so an incompressible message of
      // maxPayload bytes still passes.
      const limit = this.compressed ? this.options.maxPayload + Math.ceil(this.options.maxPayload / 8) + 1024 : this.options.maxPayload;
      if (this.messageLength + this.length > limit) {
        this.fail('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message over maxPayload (${this.options.maxPayload} bytes)`);
        return;
      }
      if (this.opcode !== Opcode.Continuation) {
        this.messageOpcode = this.opcode;
        this.fragments = 0;
      }
      if (++this.fragments > this.options.maxFragments) {
        this.fail('WS_TOO_MANY_FRAGMENTS', CloseCode.PolicyViolation, `message in over maxFragments (${this.options.maxFragments}) frames`);
        return;
      }
    }
    this.state = this.options.expectMasked ? MASK_KEY : PAYLOAD;
  }

  /**
   * Streaming mode: a data frame's length is known. The limit is the message's bytes on the wire
   * so far (a compressed one gets the same margin as under maxPayload; what it inflates to is
   * bounded by the sink). A new message is announced before any of its payload.
   */
  private streamFrame(): void {
    const max = this.options.maxStreamBytes ?? Infinity;
    const limit = this.compressed ? max + Math.ceil(max / 8) + 1024 : max;
    if (this.messageLength + this.length > limit) {
      this.fail('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `streamed message over maxStreamBytes (${max} bytes)`);
      return;
    }
    this.state = this.options.expectMasked ? MASK_KEY : PAYLOAD;
    if (this.opcode === Opcode.Continuation) return;
    this.messageOpcode = this.opcode;
    (this.sink.onStreamStart as (isText: boolean, compressed: boolean) => void)(this.opcode === Opcode.Text, this.compressed);
  }

  /** Streaming mode: hands payload pieces to the sink as they come; false when it needs more input, is paused or stopped. */
  private streamPayload(): boolean {
    const sink = this.sink;
    const text = this.messageOpcode === Opcode.Text && !this.compressed;
    while (this.position < this.length) {
      if (this.buffered === 0) return false;
      const piece = this.dataPiece();
      if (piece === null) return false;
      (sink.onStreamData as (data: Buffer) => void)(piece);
      if (this.paused || this.state === STOPPED) return false;
    }
    this.state = HEADER;
    if (!this.fin) return true;
    if (text && !this.textEnded()) {
      this.fail('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence');
      return false;
    }
    this.messageOpcode = 0;
    this.messageLength = 0;
    this.compressed = false;
    (sink.onStreamEnd as () => void)();
    return this.state !== STOPPED;
  }

  /**
   * Checks the next piece of an uncompressed text message (already counted in `position`) as
   * UTF-8 so far. A message that is whole in this piece (the common case) is checked as a whole,
   * with no validator: a connection keeps one only while a text message spans pieces.
   */
  private textValid(piece: Buffer): boolean {
    // Whole and valid: done. Whole and not valid goes through the validator too, which tells a
    // bad byte from a message cut inside a code point (a different close reason, at the end).
    if (this.utf8 === null && this.fin && piece.length === this.length && isValidUtf8(piece)) return true;
    const v = (this.utf8 ??= new Utf8Validator());
    if (v.write(piece)) return true;
    this.utf8 = null;
    return false;
  }

  /** Whether the text message that just ended ends on a code point boundary; lets its validator go. */
  private textEnded(): boolean {
    const v = this.utf8;
    if (v === null) return true;
    this.utf8 = null;
    return v.end();
  }

  /**
   * Takes the next piece of a data frame's payload (input must be buffered), unmasked, counted,
   * and for uncompressed text checked as UTF-8 so far; null when that check failed (stopped).
   */
  private dataPiece(): Buffer | null {
    const piece = this.take(this.length - this.position);
    if (this.options.expectMasked) applyMask(piece, keyOf(this.mask), this.position);
    this.position += piece.length;
    this.messageLength += piece.length;
    // RFC 6455 §8.1: fail fast on invalid UTF-8, piece by piece (after inflating, when compressed).
    if (this.messageOpcode === Opcode.Text && !this.compressed && !this.textValid(piece)) {
      this.fail('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8');
      return null;
    }
    return piece;
  }

  /**
   * Copies the next piece of a frame that spans chunks into `frame`, unmasked (checking text
   * as UTF-8 so far). Returns the frame once complete, null while it is not
   * (more input is needed, or the check failed: stopped).
   */
  private assemblePiece(): Buffer | null {
    const frame = this.frame as Buffer;
    const at = this.position;
    const chunk = this.chunks[0] as Buffer;
    const n = Math.min(this.length - at, chunk.length - this.offset);
    const src = this.offset === 0 && n === chunk.length ? chunk : chunk.subarray(this.offset, this.offset + n);
    if (this.options.expectMasked) copyUnmasked(src, frame, at, keyOf(this.mask), at);
    else frame.set(src, at);
    if (this.offset + n === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    } else {
      this.offset += n;
    }
    this.buffered -= n;
    const piece = frame.subarray(at, at + n);
    this.position = at + n;
    this.messageLength += n;
    // RFC 6455 §8.1: fail fast on invalid UTF-8, piece by piece (after inflating, when compressed).
    if (this.messageOpcode === Opcode.Text && !this.compressed && !this.textValid(piece)) {
      this.frame = null;
      this.fail('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8');
      return null;
    }
    if (this.position < this.length) return null;
    this.frame = null;
    return frame;
  }

  /** Consumes payload bytes; returns false when it needs more input or has stopped. */
  private readPayload(): boolean {
    if (this.opcode >= 8) {
      // Control frame: wait for the whole (at most 125 byte) payload.
      while (this.position < this.length) {
        if (this.buffered === 0) return false;
        const piece = this.take(this.length - this.position);
        if (this.options.expectMasked) applyMask(piece, keyOf(this.mask), this.position);
        this.position += piece.length;
        (this.control ??= []).push(piece);
      }
      const pieces = this.control;
      this.control = null;
      const payload = pieces === null ? EMPTY : pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, this.length);
      this.state = HEADER;
      this.dispatchControl(payload);
      return this.state !== STOPPED;
    }
    if (this.options.streaming === true) return this.streamPayload();

    while (this.position < this.length) {
      if (this.buffered === 0) return false;
      let piece: Buffer | null;
      if (this.frame !== null) {
        piece = this.assemblePiece();
      } else if (this.position === 0 && this.length > (this.chunks[0] as Buffer).length - this.offset) {
        // The frame spans chunks: it is copied into a buffer of its own as it arrives, unmasked
        // on the way (copyUnmasked), so its bytes are still in the cache when they are handed on
        // (and written out, for an echo), instead of being unmasked in the socket's chunks and
        // copied by a concatenation at the end. The message never pins a socket chunk either.
        this.frame = Buffer.allocUnsafe(this.length);
        piece = this.assemblePiece();
      } else {
        piece = this.dataPiece();
      }
      if (piece === null) {
        if (this.state === STOPPED) return false;
        continue;
      }
      if (this.first === null) this.first = piece;
      else (this.rest ??= []).push(piece);
    }
    this.state = HEADER;
    if (!this.fin) return true;

    const isText = this.messageOpcode === Opcode.Text;
    const compressed = this.compressed;
    if (isText && !compressed && !this.textEnded()) {
      this.fail('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence');
      return false;
    }
    const first = this.first;
    const rest = this.rest;
    const data = first === null ? EMPTY : rest === null ? first : Buffer.concat([first, ...rest], this.messageLength);
    this.first = null;
    this.rest = null;
    this.messageOpcode = 0;
    this.messageLength = 0;
    this.fragments = 0;
    this.compressed = false;
    this.sink.onMessage(data, isText, compressed);
    return this.state !== STOPPED;
  }

  /** Dispatches a complete control frame. */
  private dispatchControl(payload: Buffer): void {
    if (this.opcode === Opcode.Ping) {
      this.sink.onPing(payload);
    } else if (this.opcode === Opcode.Pong) {
      this.sink.onPong(payload);
    } else {
      const close = readClosePayload(payload);
      if (close instanceof ProtocolError) {
        this.failWith(close);
        return;
      }
      this.stop();
      this.sink.onCloseFrame(close.code, close.reason);
    }
  }
}
