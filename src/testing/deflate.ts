/**
 * permessage-deflate (RFC 7692) for the test client: the `perMessageDeflate` connect option (its
 * type, checks and the offer it sends), and the client's codec once a server accepted (inflate
 * what arrives with RSV1, deflate what goes out from `threshold` bytes, with the client's
 * parameters: the codec in extensions/ is written for the server, so the roles are swapped here).
 */
import type { Buffer } from 'node:buffer';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { type Frame, encodeFrame } from '../protocol/framer.js';
import { isSafeHeaderValue } from '../handshake/tokens.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import type { PerMessageDeflateAcceptance } from '../extensions/permessage-deflate/client-negotiate.js';
import { formatPerMessageDeflateOffer } from '../extensions/permessage-deflate/client-negotiate.js';
import { PerMessageDeflater } from '../extensions/permessage-deflate/deflate.js';
import { PerMessageInflater } from '../extensions/permessage-deflate/inflate.js';
import { StreamInflater } from '../extensions/permessage-deflate/stream-inflate.js';
import type { WindowBits } from '../extensions/permessage-deflate/negotiate.js';

/** An LZ77 window size as a base-2 logarithm, 8 (256 bytes) to 15 (32 KiB) (RFC 7692 §7.1.2). */
export type TestWindowBits = WindowBits;

/**
 * How the test client offers permessage-deflate (RFC 7692) and compresses. Every field is
 * optional: `{}` is the same as `true`, Chrome's offer `permessage-deflate; client_max_window_bits`.
 */
export interface TestPerMessageDeflateOptions {
  /** Offer `server_no_context_takeover`: ask the server to reset its compressor per message. Default `false`. */
  serverNoContextTakeover?: boolean;
  /** Offer `client_no_context_takeover`: the client resets its compressor per message (and says so). Default `false`. */
  clientNoContextTakeover?: boolean;
  /** Offer `server_max_window_bits=N` (8–15): the largest window the server may compress with. Default: not offered. */
  serverMaxWindowBits?: TestWindowBits;
  /**
   * Offer `client_max_window_bits`: `true` (default, as Chrome) without a value, a number 8–15
   * as the largest window the client will compress with, or `false` to leave it out (as Firefox
   * and Safari do; a server that limits the client's window must then decline).
   */
  clientMaxWindowBits?: TestWindowBits | boolean;
  /**
   * Messages shorter than this many bytes are sent uncompressed. Default 0: everything is
   * compressed, as browsers do. `Infinity` never compresses (the client still inflates).
   */
  threshold?: number;
  /** zlib level for what the client compresses, 0 (stored) to 9. Default 6. */
  level?: number;
  /**
   * Send exactly this `Sec-WebSocket-Extensions` value instead of an offer built from the fields
   * above, e.g. several offers (`'permessage-deflate; server_max_window_bits=10, permessage-deflate'`)
   * or an invalid one, to test a server's negotiation. The response is then checked against the
   * valid permessage-deflate offers in it. Not together with the four offer fields.
   */
  offer?: string;
}

/**
 * What the server's `Sec-WebSocket-Extensions` response accepted (`client.perMessageDeflate`):
 * each field as the response states it, a missing flag `false`, a missing window 15.
 */
export interface AcceptedPerMessageDeflate {
  /** The server resets its compressor after every message (`server_no_context_takeover`). */
  readonly serverNoContextTakeover: boolean;
  /**
   * The response asks the client to reset its compressor after every message
   * (`client_no_context_takeover`). The client also does when it offered it.
   */
  readonly clientNoContextTakeover: boolean;
  /** The window the server compresses with at most (`server_max_window_bits`), which the client inflates with. */
  readonly serverMaxWindowBits: TestWindowBits;
  /**
   * The window the client may compress with (`client_max_window_bits`). When the response has
   * none but the client offered a value, the client keeps to its own value.
   */
  readonly clientMaxWindowBits: TestWindowBits;
}

/** The option once checked (made by {@link resolveTestDeflate}, used by connect()). */
export interface ResolvedTestDeflate {
  /** The `Sec-WebSocket-Extensions` value to send. */
  readonly offer: string;
  readonly threshold: number;
  readonly level: number;
}

const KEYS: ReadonlySet<string> = new Set([
  'serverNoContextTakeover',
  'clientNoContextTakeover',
  'serverMaxWindowBits',
  'clientMaxWindowBits',
  'threshold',
  'level',
  'offer',
]);
const OFFER_FIELDS = ['serverNoContextTakeover', 'clientNoContextTakeover', 'serverMaxWindowBits', 'clientMaxWindowBits'] as const;

const PREFIX = 'wsmount/testing: perMessageDeflate';
/** Most output handed on per zlib call when inflating a streamed message. */
const INFLATE_STEP = 64 * 1024;

function windowBits(name: string, value: unknown): WindowBits {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 8 || value > 15) {
    throw new RangeError(`${PREFIX}.${name} must be an integer from 8 to 15, got ${String(value)}`);
  }
  return value as WindowBits;
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new TypeError(`${PREFIX}.${name} must be true or false, got ${typeof value}`);
  return value;
}

/**
 * Checks the `perMessageDeflate` connect option: `undefined`/`false` → null (no offer), `true`
 * → Chrome's offer, an object → the offer it describes. Throws a TypeError or RangeError that
 * names the bad field.
 */
export function resolveTestDeflate(value: unknown): ResolvedTestDeflate | null {
  if (value === undefined || value === false) return null;
  const o = (value === true ? {} : value) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new TypeError(`${PREFIX} must be true, false or an object like { serverNoContextTakeover: true }, got ${String(value)}`);
  }
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) throw new TypeError(`${PREFIX} has no option '${key}'; the options are ${[...KEYS].join(', ')}`);
  }
  const threshold = o['threshold'] ?? 0;
  if (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 0) {
    throw new RangeError(`${PREFIX}.threshold must be a non-negative number of bytes (or Infinity), got ${String(threshold)}`);
  }
  const level = o['level'] ?? 6;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`${PREFIX}.level must be an integer from 0 to 9, got ${String(level)}`);
  }
  const raw = o['offer'];
  if (raw !== undefined) {
    if (typeof raw !== 'string' || raw.trim() === '' || !isSafeHeaderValue(raw)) {
      throw new TypeError(`${PREFIX}.offer must be a non-empty header value (no CR, LF or NUL), got ${JSON.stringify(raw)}`);
    }
    const both = OFFER_FIELDS.filter((k) => o[k] !== undefined);
    if (both.length > 0) throw new TypeError(`${PREFIX}.offer is the whole offer: leave out ${both.join(', ')}`);
    return { offer: raw, threshold, level };
  }
  const cmwb = o['clientMaxWindowBits'] ?? true;
  const offer = formatPerMessageDeflateOffer({
    serverNoContextTakeover: flag('serverNoContextTakeover', o['serverNoContextTakeover']),
    clientNoContextTakeover: flag('clientNoContextTakeover', o['clientNoContextTakeover']),
    serverMaxWindowBits: o['serverMaxWindowBits'] === undefined ? undefined : windowBits('serverMaxWindowBits', o['serverMaxWindowBits']),
    clientMaxWindowBits: typeof cmwb === 'boolean' ? (cmwb ? true : undefined) : windowBits('clientMaxWindowBits', cmwb),
  });
  return { offer, threshold, level };
}

/**
 * The client's half of an accepted permessage-deflate: inflates with the server's window,
 * deflates with the client's. Made by connect(); not for your code.
 */
export class ClientDeflate {
  /** What the response accepted, as `client.perMessageDeflate` shows it. */
  readonly accepted: AcceptedPerMessageDeflate;
  readonly threshold: number;
  private readonly inflater: PerMessageInflater;
  private readonly deflater: PerMessageDeflater;
  /** For a client that takes messages as streams (`streamMessages`): inflates piece by piece, and alone holds the window. */
  private streamed: StreamInflater | null = null;

  constructor(acceptance: PerMessageDeflateAcceptance, options: ResolvedTestDeflate) {
    this.accepted = Object.freeze({
      serverNoContextTakeover: acceptance.serverNoContextTakeover,
      clientNoContextTakeover: acceptance.clientNoContextTakeover,
      serverMaxWindowBits: acceptance.serverMaxWindowBits,
      clientMaxWindowBits: acceptance.clientMaxWindowBits,
    });
    this.threshold = options.threshold;
    // The codec names the peer "client" on the inflate side and itself "server" on the deflate
    // side; the client's inflater follows the server's parameters and its deflater its own.
    this.inflater = new PerMessageInflater({
      clientNoContextTakeover: acceptance.serverNoContextTakeover,
      clientMaxWindowBits: acceptance.serverMaxWindowBits,
    });
    this.deflater = new PerMessageDeflater(
      { serverNoContextTakeover: acceptance.clientResets, serverMaxWindowBits: acceptance.clientWindowBits },
      { level: options.level },
    );
  }

  /**
   * Inflates a message that arrived with RSV1 set (RFC 7692 §7.2.2), counting its size against
   * `maxBytes` while inflating (1009 past it), and checks text as UTF-8 afterwards (1007).
   */
  inflate(payload: Buffer, isText: boolean, maxBytes: number): Buffer | ProtocolError | Promise<Buffer | ProtocolError> {
    const r = this.inflater.inflate([payload], maxBytes);
    const check = (v: Awaited<typeof r>): Buffer | ProtocolError => {
      if (v.kind === 'too-big') return new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message inflates to over maxPayload (${v.limit} bytes)`);
      if (v.kind === 'invalid') {
        return new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, `compressed message does not inflate (${v.reason})`);
      }
      // RFC 7692 §6.1 with RFC 6455 §8.1: a compressed text message is checked once inflated.
      if (isText && !isValidUtf8(v.data)) return new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8 (after inflating)');
      return v.data;
    };
    return r instanceof Promise ? r.then(check) : check(r);
  }

  /**
   * A compressed message received as a stream starts (`streamMessages`). False when this
   * runtime's zlib cannot inflate piece by piece (stream-inflate.ts).
   */
  beginStream(): boolean {
    const a = this.accepted;
    return (this.streamed ??= new StreamInflater(a.serverMaxWindowBits, !a.serverNoContextTakeover)).begin();
  }

  /**
   * Inflates a piece of the streamed message as it arrives, or with `null` its end (the trailer,
   * RFC 7692 §7.2.2), handing all the output to `onOutput` in steps of at most 64 KiB (views:
   * copy them). False when the data does not inflate ({@link ClientDeflate.streamError} says why).
   */
  inflatePiece(piece: Uint8Array | null, onOutput: (view: Buffer) => void): boolean {
    const s = this.streamed as StreamInflater;
    let r = piece === null ? s.finish(INFLATE_STEP, onOutput) : s.write(piece, INFLATE_STEP, onOutput);
    while (r === 'more') r = s.more(INFLATE_STEP, onOutput);
    return r === 'done';
  }

  /** Why the last piece did not inflate. */
  get streamError(): string {
    return this.streamed?.error ?? 'invalid deflate data';
  }

  /** The streamed message ended (or broke off): without context takeover its zlib state goes. */
  endStream(): void {
    this.streamed?.end();
  }

  /** Whether a data message of `length` bytes is sent compressed. Control frames never are (RFC 7692 §6.1). */
  compresses(length: number): boolean {
    return length >= this.threshold;
  }

  /** The masked frame, RSV1 set, for one message (RFC 7692 §7.2.1). Results come in call order. */
  frame(opcode: typeof Opcode.Text | typeof Opcode.Binary, payload: Buffer): Frame | Promise<Frame> {
    const r = this.deflater.deflate(payload);
    const framed = (compressed: Buffer): Frame => encodeFrame(opcode, compressed, { rsv1: true, mask: true });
    return r instanceof Promise ? r.then(framed) : framed(r);
  }

  /** The connection is gone: free the zlib state (after any job still on the thread pool). */
  close(): void {
    this.inflater.release(true);
    this.deflater.release(true);
    this.streamed?.close();
  }
}
