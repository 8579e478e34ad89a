import { Buffer } from 'node:buffer';
import type { ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { encodeClosePayload, encodeFrame, encodeText, type Frame, toBuffer } from '../protocol/framer.js';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from '../protocol/constants.js';
import type { ProtocolError } from '../protocol/errors.js';
import { type SendStreamOptions, type StreamSource, streamInterrupted } from '../connection/stream-out.js';
import type { AcceptedPerMessageDeflate, ClientDeflate } from './deflate.js';
import { TestClientError } from './errors.js';
import { closedError } from './inbox.js';
import type {
  ClientStreamedMessage,
  CloseInfo,
  HandshakeResponse,
  MessageInfo,
  RawFrameSpec,
  TestBinary,
  TestClientOptions,
  TestClientState,
  TestMessage,
  TestTransport,
} from './types.js';
import { PongWaiters } from './pongs.js';
import { ClientReceiver, type ReceiverOwner } from './receiver.js';
import { OrderedWriter, type WriterOwner } from './writer.js';

/** What the handshake agreed besides the subprotocol: passed by `connect()`. */
export interface NegotiatedExtensions {
  /** The response's `Sec-WebSocket-Extensions` value, or `undefined`. */
  readonly extensions: string | undefined;
  /** The permessage-deflate codec when the server accepted it, else `null`. */
  readonly deflate: ClientDeflate | null;
}

/** How the client's byte stream runs, for `connect()` to pass. */
export interface ClientTransport {
  /** The transport's name, {@link TestClient.transport}. */
  readonly name: TestTransport;
  /**
   * Ends the connection at once, with no closing handshake (terminate(), a close timeout). Default
   * `socket.destroy()`; over HTTP/2 it resets only this stream (RST_STREAM CANCEL), never the
   * session that other streams share.
   */
  readonly abort?: (() => void) | undefined;
  /** Over HTTP/2: the extended CONNECT stream, {@link TestClient.http2Stream}. */
  readonly stream?: ClientHttp2Stream | undefined;
}

const EMPTY = Buffer.alloc(0);
const DEFAULT_MESSAGE_TIMEOUT = 5000;
const DEFAULT_CLOSE_TIMEOUT = 2000;
const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;
const NO_EXTENSIONS: NegotiatedExtensions = Object.freeze({ extensions: undefined, deflate: null });
const HTTP1: ClientTransport = Object.freeze({ name: 'http/1.1' });

function bytesOf(data: string | TestBinary | undefined): Buffer {
  if (data === undefined) return EMPTY;
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : toBuffer(data);
}

/**
 * A WebSocket client for tests, on wsmount's own RFC 6455 core: it masks what it sends, parses
 * what it receives with the same strict parser the server uses (in the client role), answers
 * pings, and runs the closing handshake. It can also send anything at all
 * ({@link TestClient.sendFrame}, {@link TestClient.sendRaw}) to test how a server copes with bad
 * input. A server that breaks the protocol makes the client fail the connection with the right
 * close code (1002, 1007, 1009…), reported by {@link TestClient.closed}.
 *
 * With `connect(…, { perMessageDeflate })` it offers permessage-deflate (RFC 7692), checks the
 * server's answer strictly, then inflates what arrives compressed and compresses what it sends.
 *
 * Large messages go both ways as streams: {@link TestClient.sendStream} sends one from a source
 * of chunks, and with `connect(…, { streamMessages: true })` {@link TestClient.nextStream} takes
 * each message as it arrives, both with backpressure, so 1 GiB costs the client a few MiB.
 *
 * Get one from {@link connect}.
 */
export class TestClient implements AsyncIterable<TestMessage> {
  /** The subprotocol the server chose, or `undefined`. */
  readonly protocol: string | undefined;
  /** The response that opened the WebSocket: `101 Switching Protocols`, or `200` over HTTP/2. */
  readonly response: HandshakeResponse;
  /**
   * What the WebSocket runs over: `'http/1.1'` (an upgrade, over TCP, TLS or in memory), `'h2'`
   * or `'h2c'` (an RFC 8441 extended CONNECT stream over HTTP/2 with TLS or in cleartext, from
   * `connect(…, { http2 })`).
   */
  readonly transport: TestTransport;
  /**
   * Over HTTP/2: the RFC 8441 stream the WebSocket runs in, to check what HTTP/2 saw
   * (`http2Stream.rstCode` is 0 after a clean close: no RST_STREAM; `http2Stream.session` is the
   * shared connection). `undefined` over HTTP/1.1. Write to it only through this client.
   */
  readonly http2Stream: ClientHttp2Stream | undefined;
  /**
   * Resolves once the connection is closed (the socket is gone) with the close code and reason:
   * the server's close frame, the code this client failed the connection with, or 1006 when the
   * socket dropped without a close frame. Never rejects.
   */
  readonly closed: Promise<CloseInfo>;
  /** Payloads of the pings received, in order. */
  readonly pings: Buffer[] = [];
  /** The protocol error that made this client fail the connection, if one did. */
  protocolError: ProtocolError | undefined = undefined;
  /** The server's `Sec-WebSocket-Extensions` response header as sent (lines joined with `, `), or `undefined`. */
  readonly extensions: string | undefined;
  /**
   * The permessage-deflate parameters the server accepted (RFC 7692 §7.1), or `null` when it
   * declined or none was offered. The raw header is {@link TestClient.extensions}.
   */
  readonly perMessageDeflate: AcceptedPerMessageDeflate | null;

  readonly #socket: Duplex;
  readonly #abort: () => void;
  readonly #writer: OrderedWriter;
  readonly #receiver: ClientReceiver;
  readonly #deflate: ClientDeflate | null;
  #compressedOut = 0;
  readonly #messageTimeout: number;
  readonly #closeTimeout: number;
  readonly #autoPong: boolean;
  #state: TestClientState = 'open';
  #closeSent = false;
  #closeCode: number = CloseCode.Abnormal;
  #closeReason = '';
  #info: CloseInfo | null = null;
  #resolveClosed!: (info: CloseInfo) => void;
  #closeTimer: NodeJS.Timeout | null = null;
  readonly #pongs = new PongWaiters();

  /**
   * Not for your code: use {@link connect}. Takes over `socket` right after a successful handshake;
   * `early` holds bytes that arrived with the 101 response. Over HTTP/2 `socket` is the
   * extended CONNECT stream and `transport` says how to reset it.
   */
  constructor(
    socket: Duplex,
    early: Buffer,
    protocol: string | undefined,
    response: HandshakeResponse,
    options: TestClientOptions = {},
    negotiated: NegotiatedExtensions = NO_EXTENSIONS,
    transport: ClientTransport = HTTP1,
  ) {
    this.#socket = socket;
    const abort = transport.abort ?? (() => socket.destroy());
    this.#abort = abort;
    this.transport = transport.name;
    this.http2Stream = transport.stream;
    const writing: WriterOwner = {
      writeFailed: () => abort(),
      dataWritable: () => this.#canSend(),
      streamBroken: (code, reason) => void this.close(code, reason),
    };
    this.#writer = new OrderedWriter(socket, writing);
    this.protocol = protocol;
    this.response = response;
    this.extensions = negotiated.extensions;
    this.#deflate = negotiated.deflate;
    this.perMessageDeflate = negotiated.deflate === null ? null : negotiated.deflate.accepted;
    this.#messageTimeout = options.messageTimeout ?? DEFAULT_MESSAGE_TIMEOUT;
    this.#closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.#autoPong = options.autoPong ?? true;
    this.closed = new Promise<CloseInfo>((resolve) => {
      this.#resolveClosed = resolve;
    });
    const events: ReceiverOwner = {
      onPing: (data) => this.#onPing(data),
      onPong: (data) => this.#onPong(data),
      onCloseFrame: (code, reason) => this.#onCloseFrame(code, reason),
      onProtocolError: (error) => this.#onProtocolError(error),
      onEnd: () => this.#onEnd(),
      onClose: () => this.#onSocketClose(),
    };
    this.#receiver = new ClientReceiver(socket, events, this.#deflate, options.maxPayload ?? DEFAULT_MAX_PAYLOAD, options.streamMessages === true);
    this.#receiver.start(early);
  }

  /** `'open'`, `'closing'` (a close frame was sent or received) or `'closed'` (the socket is gone). */
  get state(): TestClientState {
    return this.#state;
  }

  /** Messages received compressed (RSV1 set, RFC 7692 §6): proof that the server compressed. */
  get compressedIn(): number {
    return this.#receiver.compressedIn;
  }

  /** Messages sent compressed: those at least `perMessageDeflate.threshold` bytes long, once agreed. */
  get compressedOut(): number {
    return this.#compressedOut;
  }

  /**
   * Messages received and not yet taken by `nextMessage()` or iteration (with `streamMessages`:
   * messages started and not yet taken by `nextStream()`).
   */
  get buffered(): number {
    return (this.#receiver.streams ?? this.#receiver.messages).size;
  }

  // ---- sending --------------------------------------------------------------------------------

  /**
   * Sends a message: a string as text, anything else as binary. Returns `false` (and sends
   * nothing) once the closing handshake has started or the socket is gone.
   */
  send(data: string | TestBinary): boolean {
    return typeof data === 'string' ? this.sendText(data) : this.sendBinary(data);
  }

  /**
   * Sends a text message (masked; compressed when permessage-deflate was agreed and it is at least
   * `threshold` bytes). `false` if the connection is closing or closed.
   */
  sendText(text: string): boolean {
    if (!this.#canSend()) return false;
    if (this.#deflate === null) return this.#write(encodeText(text, { mask: true }));
    return this.#sendData(Opcode.Text, Buffer.from(text, 'utf8'));
  }

  /**
   * Sends a binary message (masked; compressed when permessage-deflate was agreed and it is at
   * least `threshold` bytes). `false` if the connection is closing or closed.
   */
  sendBinary(data: TestBinary): boolean {
    if (!this.#canSend()) return false;
    return this.#sendData(Opcode.Binary, bytesOf(data));
  }

  /**
   * Sends one message from a source of chunks as it produces them, never reading it ahead: a
   * fragmented message (RFC 6455 §5.4), every frame masked with a fresh key (§5.3), a frame a
   * chunk (split above `fragmentSize`, default 1 MiB), then an empty final frame. Resolves
   * with the payload bytes sent once the final frame is handed to the socket.
   *
   * - `source`: an async or sync iterable of strings and bytes (a generator, a Node `Readable`
   *   such as `fs.createReadStream(path)`), or a web `ReadableStream`.
   * - Text or binary: `{ text }`, by default text if the first chunk is a string. Text from
   *   bytes must be valid UTF-8; a code point may be split between chunks.
   * - Backpressure: after a write that fills the socket it waits for `'drain'` before pulling
   *   the next chunk, so a 1 GiB source costs the client a chunk of memory.
   * - Pings, pongs and a close go out between its fragments; messages sent meanwhile (`send()`,
   *   another `sendStream()`) wait and follow it, in order. It is never compressed.
   * - The source throws, or `signal` aborts: rejects with that error (the signal's reason), and
   *   if a frame was sent the client closes with 1011 (half a message may be followed by nothing
   *   but a close frame). The connection closes first: rejects with a `ProtocolError`
   *   `'WS_STREAM_INTERRUPTED'` whose `closeCode` is the close code, and the source is released.
   * - Rejects at once with a `RangeError` for a `fragmentSize` that is not a positive integer,
   *   and with `'WS_STREAM_INTERRUPTED'` once the closing handshake has started.
   *
   * ```ts
   * async function* chunks() {
   *   for (let i = 0; i < 1024; i++) yield Buffer.alloc(1 << 20, i);
   * }
   * expect(await client.sendStream(chunks())).toBe(1 << 30);
   * ```
   */
  sendStream(source: StreamSource, options: SendStreamOptions = {}): Promise<number> {
    const size = options.fragmentSize;
    if (size !== undefined && (!Number.isInteger(size) || size <= 0)) return Promise.reject(new RangeError(`sendStream(): fragmentSize is a positive integer number of bytes, not ${String(size)}`));
    if (!this.#canSend()) return Promise.reject(streamInterrupted(this.#info?.code ?? CloseCode.Abnormal, 'the connection is closing or closed'));
    return new Promise<number>((resolve, reject) => this.#writer.stream(source, options, resolve, reject));
  }

  /**
   * Sends a ping and resolves with the payload of the matching pong (same payload). Rejects with
   * a {@link TestClientError}: `'TIMEOUT'` after `timeout` ms (default `messageTimeout`), or
   * `'CLOSED'` if the connection closes first. Throws `RangeError` for a payload over 125 bytes.
   */
  ping(data?: string | TestBinary, options: { timeout?: number } = {}): Promise<Buffer> {
    const payload = Buffer.from(bytesOf(data));
    if (payload.length > MAX_CONTROL_PAYLOAD) throw new RangeError('a ping payload is at most 125 bytes');
    if (!this.#canSend()) {
      return Promise.reject(this.#closedError('ping'));
    }
    const pong = this.#pongs.wait(payload, options.timeout ?? this.#messageTimeout);
    this.#writer.writeControl(encodeFrame(Opcode.Ping, payload, { mask: true }));
    return pong;
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2): sends a close frame (default 1000), waits
   * for the server's close frame and for the server to close the TCP connection (over HTTP/2: to
   * end its stream, which this client ends too, so the stream closes with no RST_STREAM), dropping
   * the connection after `closeTimeout`, and resolves with {@link TestClient.closed}'s value. Throws
   * `RangeError` for a code that may not be sent (1005, 1006, 999…) or a reason over 123 bytes.
   * Calling it again, or after the server closed, just returns `closed`.
   */
  close(code: number = CloseCode.Normal, reason = ''): Promise<CloseInfo> {
    const payload = encodeClosePayload(code, reason);
    if (this.#state === 'open' && !this.#closeSent) {
      this.#closeSent = true;
      this.#state = 'closing';
      this.#interruptStreams(code, 'the client closed the connection');
      this.#writer.writeControl(encodeFrame(Opcode.Close, payload, { mask: true }));
      this.#armCloseTimer();
    }
    return this.closed;
  }

  /**
   * Drops the connection with no closing handshake: the server sees it end abnormally (1006).
   * Over TCP the socket is destroyed; over HTTP/2 the stream is reset (RST_STREAM CANCEL) and the
   * HTTP/2 connection stays up for its other streams.
   */
  terminate(): void {
    this.#abort();
  }

  /**
   * Writes one frame exactly as described, valid or not: fragments, bad opcodes, RSV bits,
   * unmasked frames, oversized control frames. A close frame (opcode 8 with FIN) counts as this
   * client's close: it is not sent again in reply. Returns `false` if the socket is no longer
   * writable.
   */
  sendFrame(frame: RawFrameSpec): boolean {
    const payload = bytesOf(frame.payload);
    const fin = frame.fin ?? true;
    if (frame.opcode === Opcode.Close && fin) {
      this.#closeSent = true;
      if (this.#state === 'open') this.#state = 'closing';
      this.#interruptStreams(payload.length >= 2 ? payload.readUInt16BE(0) : CloseCode.NoStatus, 'the client sent a close frame');
      this.#armCloseTimer();
    }
    const bytes = encodeFrame(frame.opcode & 0x0f, payload, { fin, rsv: frame.rsv ?? 0, mask: frame.mask ?? true });
    // A control frame goes out between a streamed message's fragments; a data frame after it.
    return (frame.opcode & 0x08) !== 0 && fin ? this.#writer.writeControl(bytes) : this.#write(bytes);
  }

  /**
   * Writes bytes to the socket as they are (half frames, garbage), after any message still being
   * compressed or streamed. `false` if it is no longer writable.
   */
  sendRaw(bytes: string | TestBinary): boolean {
    return this.#write(bytesOf(bytes));
  }

  // ---- receiving ------------------------------------------------------------------------------

  /**
   * The next message: text as a string, binary as a Buffer. Messages that arrived earlier are
   * kept in order until taken. Rejects with a {@link TestClientError}: `'TIMEOUT'` after
   * `timeout` ms (default `messageTimeout`, 5 s), or `'CLOSED'` (with the close code) when the
   * connection closes with no message left. With `streamMessages` it collects the next streamed
   * message whole (up to `maxPayload`), the timeout covering all of it.
   */
  nextMessage(options: { timeout?: number } = {}): Promise<TestMessage> {
    return this.nextMessageInfo(options).then((m) => m.data);
  }

  /**
   * Like {@link TestClient.nextMessage}, with how the message arrived: `{ data, compressed }`,
   * `compressed` being true when it came with RSV1 set (permessage-deflate). The two share one
   * queue: each message is taken once, by either.
   */
  nextMessageInfo(options: { timeout?: number } = {}): Promise<MessageInfo> {
    const timeout = options.timeout ?? this.#messageTimeout;
    if (this.#receiver.streams !== null) return this.#receiver.nextWhole(timeout, this.closed);
    return this.#receiver.messages.next(timeout);
  }

  /**
   * With `connect(…, { streamMessages: true })`: the next message as a stream of `Buffer`
   * chunks (a {@link ClientStreamedMessage}), as soon as it starts, its payload coming as it
   * arrives, never all of it in memory. Messages are handed out in order; reading pauses while
   * about 1 MiB of the message arriving waits unread. Rejects with a {@link TestClientError}:
   * `'TIMEOUT'` when no message starts within `timeout` ms (default `messageTimeout`), `'CLOSED'`
   * when the connection closes with no message left; with a `TypeError` on a client connected
   * without `streamMessages`.
   *
   * ```ts
   * const client = await connect(server, '/download', { streamMessages: true });
   * const message = await client.nextStream();
   * let bytes = 0;
   * for await (const chunk of message) bytes += chunk.length;
   * ```
   */
  nextStream(options: { timeout?: number } = {}): Promise<ClientStreamedMessage> {
    const streams = this.#receiver.streams;
    if (streams === null) return Promise.reject(new TypeError('wsmount/testing: nextStream() takes messages as streams: connect with { streamMessages: true }'));
    return streams.next(options.timeout ?? this.#messageTimeout);
  }

  /**
   * `for await (const message of client)`: every message in order; the loop ends when the
   * connection closes (after the messages that arrived before the close). Leaving the loop
   * early (`break`) does not close the connection. With `streamMessages` each message is
   * collected whole (up to `maxPayload`); a message cut off by the close ends the loop.
   */
  [Symbol.asyncIterator](): AsyncIterator<TestMessage> {
    if (this.#receiver.streams === null) return this.#receiver.messages.iterator((m) => m.data);
    return this.#receiver.wholeIterator(this.closed);
  }

  /** `await using client = await connect(…)`: closes (1000) at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === 'open') await this.close();
    else await this.closed;
  }

  // ---- internals ------------------------------------------------------------------------------

  #canSend(): boolean {
    return this.#state === 'open' && !this.#closeSent && this.#socket.writable;
  }

  /** Every frame goes out through here, in call order, behind any message still being compressed. */
  #write(frame: Frame | Promise<Frame>): boolean {
    return this.#writer.write(frame);
  }

  /** A data message: compressed from `threshold` bytes once permessage-deflate is agreed (RFC 7692 §7.2.1). */
  #sendData(opcode: typeof Opcode.Text | typeof Opcode.Binary, payload: Buffer): boolean {
    const deflate = this.#deflate;
    if (deflate === null || !deflate.compresses(payload.length)) return this.#write(encodeFrame(opcode, payload, { mask: true }));
    this.#compressedOut++;
    return this.#write(deflate.frame(opcode, payload));
  }

  /** The closing handshake starts, or the connection ends: messages being streamed either way stop. */
  #interruptStreams(code: number, why: string): void {
    const error = streamInterrupted(code, why);
    this.#receiver.interrupt(error);
    this.#writer.cut(error);
  }

  #closedError(what: string, info?: CloseInfo): TestClientError {
    return closedError(what, info ?? this.#info ?? { code: this.#closeCode, reason: this.#closeReason });
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.#socket.destroyed) return;
    this.#closeTimer = setTimeout(() => this.#abort(), this.#closeTimeout);
    this.#closeTimer.unref();
  }

  #onPing(data: Buffer): void {
    this.pings.push(Buffer.from(data));
    // RFC 6455 §5.5.3: answer with the same payload, unless we already sent a close.
    if (this.#autoPong && !this.#closeSent) this.#writer.writeControl(encodeFrame(Opcode.Pong, data, { mask: true }));
  }

  #onPong(data: Buffer): void {
    this.#pongs.pong(data);
  }

  #onCloseFrame(code: number, reason: string): void {
    this.#closeCode = code;
    this.#closeReason = reason;
    // RFC 6455 §5.5.1: echo the close (an empty one for 1005) unless ours went first.
    this.#interruptStreams(code, 'the server closed the connection');
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#writer.writeControl(encodeFrame(Opcode.Close, code === CloseCode.NoStatus ? EMPTY : encodeClosePayload(code, reason), { mask: true }));
    }
    this.#state = 'closing';
    // RFC 6455 §7.1.1: the server should close TCP first; end our half and wait for it a while.
    this.#writer.end();
    this.#armCloseTimer();
  }

  #onProtocolError(error: ProtocolError): void {
    // RFC 6455 §7.1.7: fail the connection with the error's code.
    this.protocolError = error;
    // The message arriving fails with this very error (WS_INVALID_UTF8…); one being sent is cut off.
    this.#receiver.interrupt(error);
    this.#writer.cut(streamInterrupted(error.closeCode, `the client failed the connection: ${error.message}`));
    if (!this.#closeSent) {
      this.#closeCode = error.closeCode;
      this.#closeReason = error.message.length <= 123 ? error.message : error.message.slice(0, 120) + '...';
      this.#closeSent = true;
      this.#writer.writeControl(encodeFrame(Opcode.Close, encodeClosePayload(error.closeCode, this.#closeReason), { mask: true }));
    }
    this.#state = 'closing';
    this.#writer.end();
    this.#armCloseTimer();
  }

  #onEnd(): void {
    this.#interruptStreams(this.#closeCode, 'the connection ended');
    if (this.#state === 'open') this.#state = 'closing';
    this.#writer.end();
    this.#armCloseTimer();
  }

  #onSocketClose(): void {
    if (this.#info !== null) return;
    this.#state = 'closed';
    this.#deflate?.close();
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#closeTimer = null;
    const info: CloseInfo = { code: this.#closeCode, reason: this.#closeReason };
    this.#info = info;
    this.#receiver.close(info);
    this.#writer.cut(streamInterrupted(info.code, 'the connection closed'));
    this.#pongs.rejectAll(this.#closedError('the pong', info));
    this.#resolveClosed(info);
  }
}
