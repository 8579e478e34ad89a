/**
 * The read side of a test client (client.ts): the socket's bytes go through the same strict
 * parser the server uses, in the client role; data messages go to the inbox (inflated first when
 * they arrived compressed), and control frames and the socket's end go back to the client, which
 * owns the connection's state and everything it writes.
 *
 * With `streamMessages` the parser runs in its streaming mode and each data message goes to the
 * inbox as a `StreamedMessage` (the server's own class) as soon as it starts, its payload pushed
 * into it piece by piece; reading pauses while the message arriving has enough unread, as a
 * server's StreamReceiver (connection/stream-in.ts) does.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { FrameParser, type ParserSink } from '../protocol/parser.js';
import { Utf8Validator, decodeText } from '../protocol/utf8.js';
import { streamInterrupted } from '../connection/stream-out.js';
import { STREAM_HIGH_WATER_BYTES, STREAM_LOW_WATER_BYTES, StreamedMessage, type StreamedMessageOwner } from '../connection/streamed-message.js';
import type { ClientDeflate } from './deflate.js';
import { TestClientError } from './errors.js';
import { Inbox, closedError } from './inbox.js';
import type { CloseInfo, MessageInfo, TestMessage } from './types.js';

/** What the receiver reports to its client. @internal */
export interface ReceiverOwner {
  /** A ping (RFC 6455 §5.5.2), its payload. */
  onPing(data: Buffer): void;
  /** A pong (§5.5.3), its payload. */
  onPong(data: Buffer): void;
  /** The server's close frame: the parser has stopped. */
  onCloseFrame(code: number, reason: string): void;
  /** The server broke the protocol (or a limit): fail the connection with `error.closeCode`. */
  onProtocolError(error: ProtocolError): void;
  /** The socket's read side ended (FIN), after everything that arrived before it. */
  onEnd(): void;
  /** The socket is gone, after everything that arrived before it. */
  onClose(): void;
}

/**
 * How far a compressed payload may exceed `maxPayload` before the parser refuses it unread:
 * deflate may expand incompressible data (fixed Huffman codes take up to 9 bits a byte), and the
 * limit that matters is on the inflated message, enforced while inflating.
 */
function compressedLimit(maxPayload: number): number {
  return maxPayload + Math.ceil(maxPayload / 8) + 1024;
}

/** Reads a test client's socket; made by the client, which calls {@link ClientReceiver.start}. @internal */
export class ClientReceiver implements StreamedMessageOwner {
  /** Messages received and not yet taken (whole messages). */
  readonly messages: Inbox<MessageInfo> = new Inbox<MessageInfo>();
  /** With `streamMessages`: messages as streams, handed out as they start; else `null`. */
  readonly streams: Inbox<StreamedMessage> | null;
  readonly #socket: Duplex;
  readonly #owner: ReceiverOwner;
  readonly #parser: FrameParser;
  readonly #deflate: ClientDeflate | null;
  readonly #maxPayload: number;
  #compressedIn = 0;
  /** A compressed message is being inflated on the thread pool; the parser is paused meanwhile. */
  #inflating = false;
  /** The socket ended or closed while inflating: handled once the parser has read what came before. */
  #deferredEnd = false;
  #deferredClose = false;
  #closed = false;

  // Streaming mode.
  /** The message whose payload is arriving. */
  #incoming: StreamedMessage | null = null;
  /** It arrived compressed (RSV1): its pieces are inflated before they go in. */
  #compressed = false;
  /** UTF-8 check of a compressed text message, after inflating (uncompressed text: the parser's). */
  #utf8: Utf8Validator | null = null;
  /** Messages that arrived compressed, for `nextMessageInfo()`. */
  readonly #compressedSet = new WeakSet<StreamedMessage>();
  /** Reading is paused: the message arriving has enough unread. */
  #held = false;
  /** The closing handshake started: what still arrives is read only to reach the close frame. */
  #closing = false;
  #inflatedBound: ((view: Buffer) => void) | null = null;

  constructor(socket: Duplex, owner: ReceiverOwner, deflate: ClientDeflate | null, maxPayload: number, streaming: boolean) {
    this.#socket = socket;
    this.#owner = owner;
    this.#deflate = deflate;
    this.#maxPayload = maxPayload;
    this.streams = streaming ? new Inbox<StreamedMessage>() : null;
    const sink: ParserSink = {
      onMessage: (data, isText, compressed) => this.#onData(data, isText, compressed),
      onPing: (data) => owner.onPing(data),
      onPong: (data) => owner.onPong(data),
      onCloseFrame: (code, reason) => owner.onCloseFrame(code, reason),
      onProtocolError: (error) => owner.onProtocolError(error),
      onStreamStart: (isText, compressed) => this.#onStreamStart(isText, compressed),
      onStreamData: (data) => this.#onStreamData(data),
      onStreamEnd: () => this.#onStreamEnd(),
    };
    // RFC 6455 §5.1: a client must reject masked frames from the server. RFC 7692 §6.1: RSV1
    // marks a compressed message once permessage-deflate is agreed. In streaming mode neither
    // maxPayload nor maxFragments applies.
    this.#parser = new FrameParser(sink, {
      expectMasked: false,
      maxPayload: deflate === null ? maxPayload : compressedLimit(maxPayload),
      maxFragments: Number.MAX_SAFE_INTEGER,
      allowRsv1: deflate !== null,
      streaming,
    });
  }

  /** Starts reading: `early` holds bytes that arrived with the handshake response. */
  start(early: Buffer): void {
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onClose());
    socket.on('error', () => {}); // a reset shows as 1006 in `closed`
    if (early.length > 0) this.#parser.push(early);
    if (socket.destroyed) this.#onClose();
  }

  /** Messages received compressed (RSV1 set, RFC 7692 §6). */
  get compressedIn(): number {
    return this.#compressedIn;
  }

  /** The connection is gone: waits for messages end once those received are taken. */
  close(info: CloseInfo): void {
    this.interrupt(streamInterrupted(info.code, 'the connection closed'));
    this.messages.close(info);
    this.streams?.close(info);
  }

  /**
   * The closing handshake started (or the connection failed): the message arriving is cut off
   * (its reader sees `error` once it has read what came), messages that start from now on are
   * dropped, and reading goes on to the server's close frame.
   */
  interrupt(error: ProtocolError): void {
    this.#closing = true;
    const m = this.#incoming;
    this.#incoming = null;
    if (m !== null) {
      m.abort(error);
      if (this.#compressed) this.#deflate?.endStream();
    }
    this.#unhold();
  }

  // ---- whole messages, in streaming mode (nextMessage(), iteration) ----------------------------

  /**
   * Streaming mode: the next message collected whole (up to `maxPayload`), within `timeout` ms
   * for all of it. If the connection ends before it does, rejects with `'CLOSED'` once the
   * connection is gone (`closed`), as a whole message that never arrived would.
   */
  async nextWhole(timeout: number, closed: Promise<CloseInfo>): Promise<MessageInfo> {
    const streams = this.streams as Inbox<StreamedMessage>;
    const start = performance.now();
    const m = await streams.next(timeout);
    const left = Math.max(0, timeout - (performance.now() - start));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TestClientError('TIMEOUT', `the message did not end within ${timeout} ms`)), left);
    });
    try {
      return await Promise.race([this.#whole(m, closed), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Streaming mode: every message collected whole, in order; ends when the connection closes (or cuts one off). */
  wholeIterator(closed: Promise<CloseInfo>): AsyncIterator<TestMessage> {
    const it = (this.streams as Inbox<StreamedMessage>).iterator((m) => m);
    return {
      next: async (): Promise<IteratorResult<TestMessage>> => {
        const r = await it.next();
        if (r.done === true) return r;
        return this.#whole(r.value, closed).then(
          (m): IteratorResult<TestMessage> => ({ done: false, value: m.data }),
          (): IteratorResult<TestMessage> => ({ done: true, value: undefined }),
        );
      },
      return: (): Promise<IteratorResult<TestMessage>> => Promise.resolve({ done: true, value: undefined }),
    };
  }

  async #whole(m: StreamedMessage, closed: Promise<CloseInfo>): Promise<MessageInfo> {
    const compressed = this.#compressedSet.has(m);
    let bytes: Buffer;
    try {
      bytes = await m.bytes();
    } catch {
      // Cut off (a close, a 1007, a 1009 over maxPayload): the message never arrived whole.
      throw closedError('a message', await closed);
    }
    return { data: m.isText ? decodeText(bytes) : bytes, compressed };
  }

  // ---- streaming mode: parser events and the reader's pace -------------------------------------

  #onStreamStart(isText: boolean, compressed: boolean): void {
    this.#incoming = null;
    if (this.#closing) return;
    const deflate = this.#deflate;
    if (compressed) {
      this.#compressedIn++;
      if (deflate === null || !deflate.beginStream()) {
        this.#fail(new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InternalError, 'cannot inflate a streamed message on this runtime'));
        return;
      }
    }
    const m = new StreamedMessage(this, isText, this.#maxPayload);
    this.#incoming = m;
    this.#compressed = compressed;
    this.#utf8 = compressed && isText ? new Utf8Validator() : null;
    if (compressed) this.#compressedSet.add(m);
    (this.streams as Inbox<StreamedMessage>).push(m);
  }

  #onStreamData(data: Buffer): void {
    const m = this.#incoming;
    if (m === null) return;
    if (!this.#compressed) m.push(data);
    else if (!(this.#deflate as ClientDeflate).inflatePiece(data, (this.#inflatedBound ??= this.#inflatedPiece.bind(this)))) this.#inflateFailed();
    if (this.#incoming === m && !m.released && m.queuedCost >= STREAM_HIGH_WATER_BYTES) this.#hold();
  }

  #onStreamEnd(): void {
    const m = this.#incoming;
    if (m === null) return;
    if (this.#compressed) {
      const deflate = this.#deflate as ClientDeflate;
      if (!deflate.inflatePiece(null, (this.#inflatedBound ??= this.#inflatedPiece.bind(this)))) {
        this.#inflateFailed();
        return;
      }
      if (this.#incoming !== m) return;
      deflate.endStream();
      // RFC 6455 §8.1 with RFC 7692 §6.1: the inflated text ends on a code point boundary.
      if (this.#utf8 !== null && !this.#utf8.end()) {
        this.#fail(new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence (after inflating)'));
        return;
      }
    }
    this.#incoming = null;
    m.end();
  }

  /** Inflated output of the compressed message arriving (a view). */
  #inflatedPiece(view: Buffer): void {
    const m = this.#incoming;
    if (m === null) return;
    if (this.#utf8 !== null && !this.#utf8.write(view)) {
      this.#fail(new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8 (after inflating)'));
      return;
    }
    m.push(Buffer.from(view));
  }

  #inflateFailed(): void {
    if (this.#incoming === null) return; // already failed (bad UTF-8)
    const why = (this.#deflate as ClientDeflate).streamError;
    this.#fail(new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, `compressed message does not inflate (${why})`));
  }

  /** @internal StreamedMessageOwner: the reader took bytes. */
  streamPulled(m: StreamedMessage): void {
    if (this.#held && m === this.#incoming && m.queuedCost <= STREAM_LOW_WATER_BYTES) this.#unhold();
  }

  /** @internal StreamedMessageOwner: the reader is done with `m`; early, the rest of it is dropped as it arrives. */
  streamFinished(m: StreamedMessage, early: boolean): void {
    if (early && m === this.#incoming) this.#unhold();
  }

  /** @internal StreamedMessageOwner: `text()`/`bytes()` passed `maxPayload`. */
  streamTooBig(_m: StreamedMessage, limit: number): void {
    this.#fail(new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message collected over maxPayload (${limit} bytes)`));
  }

  /** Stops reading the socket (and the parser, mid-chunk) until the reader catches up. */
  #hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.#parser.pause();
    this.#socket.pause();
  }

  /** Reads on: first what the parser kept (which may hold again), then the socket. */
  #unhold(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#parser.resume();
    if (this.#held) return;
    if (this.#deferredEnd) this.#onEnd();
    else this.#socket.resume();
  }

  #onData(data: Buffer, isText: boolean, compressed: boolean): void {
    const deflate = this.#deflate;
    if (!compressed || deflate === null) {
      // With deflate agreed the parser's limit has room for compressed payloads; this one is not.
      if (data.length > this.#maxPayload) {
        this.#fail(new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message over maxPayload (${this.#maxPayload} bytes)`));
        return;
      }
      this.messages.push({ data: isText ? decodeText(data) : data, compressed: false });
      return;
    }
    this.#compressedIn++;
    const r = deflate.inflate(data, isText, this.#maxPayload);
    if (!(r instanceof Promise)) {
      this.#inflated(r, isText);
      return;
    }
    // On the thread pool: what follows waits in the parser, so messages stay in order.
    this.#parser.pause();
    this.#inflating = true;
    r.catch((error: unknown) => new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, `inflating failed: ${String(error)}`)).then((v) => {
      this.#inflating = false;
      this.#inflated(v, isText);
      this.#parser.resume(); // may start another inflate
      if (this.#inflating) return;
      if (this.#deferredEnd) this.#onEnd();
      if (this.#deferredClose) this.#onClose();
    });
  }

  #inflated(result: Buffer | ProtocolError, isText: boolean): void {
    if (result instanceof ProtocolError) this.#fail(result);
    else this.messages.push({ data: isText ? decodeText(result) : result, compressed: true });
  }

  /** A violation found after the parser (inflating, sizes): the parser stops, the connection fails. */
  #fail(error: ProtocolError): void {
    this.#parser.stop();
    this.#owner.onProtocolError(error);
  }

  #onEnd(): void {
    if (this.#inflating || this.#held) {
      this.#deferredEnd = true; // the parser still holds what arrived before the end
      return;
    }
    this.#deferredEnd = false;
    this.#parser.stop();
    this.#owner.onEnd();
  }

  #onClose(): void {
    if (this.#closed) return;
    if (this.#inflating) {
      this.#deferredClose = true;
      return;
    }
    this.#closed = true;
    this.#parser.stop();
    this.#owner.onClose();
  }
}
