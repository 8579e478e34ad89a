/**
 * One connection's permessage-deflate: the narrow seam the connection calls (RFC 7692 §7.2).
 * In: a message that arrived with RSV1 set is inflated (counting its size against `maxPayload`
 * while inflating) and, for text, checked as UTF-8 afterwards (§6.1). Out: a message at least
 * `threshold` bytes long becomes a frame with RSV1 set; shorter ones go uncompressed, which the
 * RFC allows between compressed ones under context takeover too (the peer's window only ever
 * holds what was compressed).
 *
 * Results are synchronous up to the measured cut-offs (codec.ts) and Promises beyond them; the
 * connection keeps each direction in order.
 */
import { Buffer } from 'node:buffer';
import { CloseCode } from '../../protocol/constants.js';
import type { ProtocolErrorCode } from '../../protocol/errors.js';
import { type Frame, encodeFrame } from '../../protocol/framer.js';
import { isValidUtf8 } from '../../protocol/utf8.js';
import { type OutgoingMessage, payloadLengthOf } from '../../connection/outgoing.js';
import { type DeflateParams, PerMessageDeflater, deflateOnce } from './deflate.js';
import { DEFAULT_MAX_SYNC_DEFLATE, type InflateResult, PerMessageInflater } from './inflate.js';
import { type StepResult, StreamInflater } from './stream-inflate.js';
import type { PerMessageDeflateAgreement } from './negotiate.js';
import type { DeflateConfig } from './options.js';

/** Compression counters, bumped by every session of a handler. */
export interface DeflateCounters {
  /** Messages received compressed, their payload bytes on the wire, and the bytes they inflated to. */
  compressedMessagesIn: number;
  compressedBytesIn: number;
  inflatedBytesIn: number;
  /** Messages sent compressed (a shared broadcast frame counts once per recipient), their bytes before and after. */
  compressedMessagesOut: number;
  uncompressedBytesOut: number;
  compressedBytesOut: number;
}

/** What inflating a message gave: its bytes, or why the connection must fail. */
export type Inflated =
  | { readonly ok: true; readonly data: Buffer }
  | { readonly ok: false; readonly code: ProtocolErrorCode; readonly closeCode: number; readonly message: string };

/** The negotiated parameters as a behavior sees them (`this.extensions.perMessageDeflate`). */
export interface NegotiatedPerMessageDeflate {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  /** Messages shorter than this many bytes are sent uncompressed. */
  readonly threshold: number;
}

/** What every connection with the same settings and server window shares: made once. */
interface Plan {
  readonly params: DeflateParams;
  /** The key under which an {@link OutgoingMessage} caches the frame compressed once for every no-context-takeover connection with these parameters. */
  readonly key: string;
  readonly codec: { readonly level: number; readonly memLevel: number; readonly maxSyncInput: number };
}

const plans = new WeakMap<DeflateConfig, Map<number, Plan>>();

function planFor(config: DeflateConfig, windowBits: number): Plan {
  let byWindow = plans.get(config);
  if (byWindow === undefined) plans.set(config, (byWindow = new Map()));
  let plan = byWindow.get(windowBits);
  if (plan === undefined) {
    plan = {
      params: { windowBits: windowBits as DeflateParams['windowBits'], level: config.level, memLevel: config.memLevel },
      key: `${Math.max(9, windowBits)}:${config.level}:${config.memLevel}`,
      codec: { level: config.level, memLevel: config.memLevel, maxSyncInput: maxSyncDeflate(config.level) },
    };
    byWindow.set(windowBits, plan);
  }
  return plan;
}

/**
 * One connection's compression. Light until used: an idle compressed connection holds this
 * object and references to shared ones; the inflater is made on the first compressed message
 * received, and a compressor of its own only under server context takeover, on the first send.
 */
export class DeflateSession {
  readonly agreement: PerMessageDeflateAgreement;
  private readonly config: DeflateConfig;
  private readonly plan: Plan;
  private readonly counters: DeflateCounters;
  private inflater: PerMessageInflater | null = null;
  /** Under server context takeover only: this connection's compressor. */
  private deflater: PerMessageDeflater | null = null;

  constructor(agreement: PerMessageDeflateAgreement, config: DeflateConfig, counters: DeflateCounters) {
    this.agreement = agreement;
    this.config = config;
    this.counters = counters;
    this.plan = planFor(config, agreement.serverMaxWindowBits);
  }

  /** Messages shorter than this many bytes are sent uncompressed. */
  get threshold(): number {
    return this.config.threshold;
  }

  private described: { readonly perMessageDeflate: NegotiatedPerMessageDeflate } | null = null;

  /** What a behavior sees as `this.extensions` (made once, on first use). */
  get extensions(): { readonly perMessageDeflate: NegotiatedPerMessageDeflate } {
    return (this.described ??= Object.freeze({ perMessageDeflate: this.describe() }));
  }

  /** The negotiated parameters. */
  describe(): NegotiatedPerMessageDeflate {
    const a = this.agreement;
    return Object.freeze({
      serverNoContextTakeover: a.serverNoContextTakeover,
      clientNoContextTakeover: a.clientNoContextTakeover,
      serverMaxWindowBits: a.serverMaxWindowBits,
      clientMaxWindowBits: a.clientMaxWindowBits,
      threshold: this.threshold,
    });
  }

  // ---- in ----------------------------------------------------------------------------------

  /**
   * Inflates a message that arrived with RSV1 set. `maxBytes` bounds the inflated size (the
   * route's `maxPayload`): past it the result is a 1009 failure, decided while inflating.
   */
  inflate(payload: Buffer, isText: boolean, maxBytes: number): Inflated | Promise<Inflated> {
    const c = this.counters;
    c.compressedMessagesIn++;
    c.compressedBytesIn += payload.length;
    const r = (this.inflater ??= new PerMessageInflater(this.agreement)).inflate([payload], maxBytes);
    return r instanceof Promise ? r.then((v) => this.inflated(v, isText)) : this.inflated(r, isText);
  }

  private inflated(r: InflateResult, isText: boolean): Inflated {
    if (r.kind === 'too-big') {
      return { ok: false, code: 'WS_MESSAGE_TOO_BIG', closeCode: CloseCode.MessageTooBig, message: `message inflates to over maxPayload (${r.limit} bytes)` };
    }
    if (r.kind === 'invalid') {
      // RFC 7692 §7.2.2 names no code; the data is not consistent with the message (RFC 6455 §7.4.1).
      return { ok: false, code: 'WS_INVALID_COMPRESSED_DATA', closeCode: CloseCode.InvalidPayload, message: `compressed message does not inflate (${r.reason})` };
    }
    this.counters.inflatedBytesIn += r.data.length;
    // RFC 7692 §6.1 with RFC 6455 §8.1: a compressed text message is checked once inflated.
    if (isText && !isValidUtf8(r.data)) {
      return { ok: false, code: 'WS_INVALID_UTF8', closeCode: CloseCode.InvalidPayload, message: 'text message is not valid UTF-8 (after inflating)' };
    }
    return { ok: true, data: r.data };
  }

  // ---- in, as a stream (a route that takes messages as streams) ---------------------------

  private streamed: StreamInflater | null = null;

  /**
   * A compressed message received as a stream starts: false when it cannot be inflated piece by
   * piece on this runtime (stream-inflate.ts).
   */
  beginStream(): boolean {
    this.counters.compressedMessagesIn++;
    const a = this.agreement;
    return (this.streamed ??= new StreamInflater(a.clientMaxWindowBits, !a.clientNoContextTakeover)).begin();
  }

  /**
   * Inflates one piece of it (or, with `piece` null, goes on where the last call stopped), handing
   * at most about `step` bytes of output per call to `onOutput` (a view: copy it). With `last`,
   * the piece is the message's trailer (RFC 7692 §7.2.2).
   */
  inflatePiece(piece: Uint8Array | null, last: boolean, step: number, onOutput: (view: Buffer) => void): StepResult {
    const s = this.streamed as StreamInflater;
    if (last) return s.finish(step, onOutput);
    if (piece === null) return s.more(step, onOutput);
    this.counters.compressedBytesIn += piece.length;
    return s.write(piece, step, onOutput);
  }

  /** Why the last piece did not inflate. */
  get streamError(): string {
    return this.streamed?.error ?? 'invalid deflate data';
  }

  /** The streamed message ended (or failed): without context takeover its zlib state goes. */
  endStream(inflated: number): void {
    this.counters.inflatedBytesIn += inflated;
    this.streamed?.end();
  }

  // ---- out ---------------------------------------------------------------------------------

  /** Whether a message of `length` bytes is compressed. */
  compresses(length: number): boolean {
    return length >= this.threshold;
  }

  /** The compressed frame (RSV1 set) for one message of this connection. Call only when {@link compresses}. */
  frame(opcode: number, payload: Buffer): Frame | Promise<Frame> {
    const r = this.agreement.serverNoContextTakeover
      ? payload.length === 0
        ? EMPTY_MESSAGE // RFC 7692 §7.2.3.6
        : deflateOnce(payload, this.plan.params, this.plan.codec)
      : (this.deflater ??= new PerMessageDeflater(this.agreement, this.plan.codec)).deflate(payload);
    return r instanceof Promise ? r.then((c) => this.framed(opcode, payload.length, c)) : this.framed(opcode, payload.length, r);
  }

  /**
   * The compressed frame for a message going to many connections: shared by every
   * no-context-takeover connection with the same parameters (compressed once), this
   * connection's own under context takeover. Call only when {@link compresses}.
   */
  frameShared(message: OutgoingMessage): Frame | Promise<Frame> {
    if (!this.agreement.serverNoContextTakeover || message.length === 0) return this.frame(message.opcode, message.payload);
    const plan = this.plan;
    const shared = message.compressedFor(plan.key, (payload) => {
      const r = deflateOnce(payload, plan.params, plan.codec);
      return r instanceof Promise ? r.then((c) => compressedFrame(message.opcode, c)) : compressedFrame(message.opcode, r);
    });
    const length = message.payload.length;
    if (shared instanceof Promise) return shared.then((f) => this.count(length, f));
    return this.count(length, shared);
  }

  private framed(opcode: number, length: number, compressed: Buffer): Frame {
    return this.count(length, compressedFrame(opcode, compressed));
  }

  private count(length: number, frame: Frame): Frame {
    const c = this.counters;
    c.compressedMessagesOut++;
    c.uncompressedBytesOut += length;
    c.compressedBytesOut += payloadLengthOf(frame);
    return frame;
  }

  /** The connection is gone: give the zlib state back. */
  close(): void {
    this.inflater?.release(true);
    this.deflater?.release(true);
    this.streamed?.close();
  }
}

/**
 * Messages up to this many bytes are compressed on the event loop, longer ones on the thread
 * pool. Measured here (Node 20, JSON-like text, machine loaded): level 1 takes ~80 µs for 16 KiB
 * and ~130-270 µs for 32-64 KiB; level 6 takes ~100-220 µs for 16 KiB but 0.5-0.75 ms for
 * 32-64 KiB. Both keep one message's synchronous work to a few hundred microseconds.
 */
function maxSyncDeflate(level: number): number {
  return level <= 1 ? 64 * 1024 : DEFAULT_MAX_SYNC_DEFLATE;
}

/** The empty message compressed: an empty stored block with its trailer stripped (RFC 7692 §7.2.3.6). */
const EMPTY_MESSAGE: Buffer = Buffer.from([0x00]);

function compressedFrame(opcode: number, compressed: Buffer): Frame {
  return encodeFrame(opcode, compressed, { rsv1: true });
}
