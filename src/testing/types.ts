/**
 * The test client's public data types: what it sends and receives, its options, and how a
 * connection ended. The client itself is in client.ts.
 */
import type { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { BinaryData } from '../protocol/framer.js';

/** Bytes a test client can send: Buffers, typed arrays, DataViews and ArrayBuffers. */
export type TestBinary = BinaryData;

/** How a connection ended: the close code and reason (1006 and `''` when it dropped). */
export interface CloseInfo {
  /** The peer's close code (1005 for an empty close frame), the code we failed with, or 1006. */
  code: number;
  /** The close reason. */
  reason: string;
}

/** The HTTP response that opened the WebSocket. */
export interface HandshakeResponse {
  /** 101 over HTTP/1.1; 200 over HTTP/2 (RFC 8441 §5). */
  status: number;
  /** Response headers by lower-case name (over HTTP/2 without pseudo-headers); a repeated header is an array. */
  headers: Readonly<Record<string, string | string[]>>;
}

/**
 * What a test client's WebSocket runs over: `'http/1.1'` (an upgrade on its own TCP or TLS
 * connection, or in memory), `'h2'` (an RFC 8441 extended CONNECT stream in an HTTP/2
 * connection over TLS) or `'h2c'` (the same over cleartext HTTP/2).
 */
export type TestTransport = 'http/1.1' | 'h2' | 'h2c';

/** A frame for {@link TestClient.sendFrame}: anything at all, valid or not. */
export interface RawFrameSpec {
  /** The 4-bit opcode (0–15, invalid ones included). */
  opcode: number;
  /** Final fragment. Default `true`. */
  fin?: boolean;
  /** RSV bits as a 3-bit number (RSV1 = 4, RSV2 = 2, RSV3 = 1). Default 0. */
  rsv?: number;
  /** Mask the frame (clients must, RFC 6455 §5.3): `true` (default), `false`, or a 4-byte key. */
  mask?: boolean | Uint8Array;
  /** The payload; a string is UTF-8. Default empty. No length limit, for control frames too. */
  payload?: string | TestBinary;
}

/** Client behavior after the handshake. */
export interface TestClientOptions {
  /** Default timeout of {@link TestClient.nextMessage} and {@link TestClient.ping}, ms. Default 5,000. */
  messageTimeout?: number;
  /**
   * Milliseconds to wait for the server to finish the closing handshake and close the TCP
   * connection (over HTTP/2: end its stream) before the client destroys its socket (over HTTP/2:
   * resets its stream). Default 2,000.
   */
  closeTimeout?: number;
  /**
   * Largest message the client accepts, bytes; over it the client fails the connection with 1009.
   * Default 64 MiB. A compressed message counts its inflated size, checked while inflating.
   */
  maxPayload?: number;
  /** Answer pings with pongs. Default `true`; `false` lets a test check a server's heartbeat. */
  autoPong?: boolean;
  /**
   * Receive every data message as a stream of chunks, as it arrives, instead of whole: take each
   * with {@link TestClient.nextStream}, so that a message of any size (a 1 GiB download) costs
   * the client a bounded amount of memory. Default `false`.
   *
   * - Reading pauses (the socket stops being read, so TCP or HTTP/2 flow control holds the
   *   server back) once about 1 MiB of the message arriving waits unread, and resumes at
   *   256 KiB, as a server's `onStream` does. Pings are answered once reading goes on.
   * - Text is checked as UTF-8 as it arrives: a bad byte fails the connection with 1007 at once.
   * - `maxPayload` does not bound a streamed message; it bounds what `text()`/`bytes()` collect.
   * - `nextMessage()`, `nextMessageInfo()` and `for await (const m of client)` still work: they
   *   collect each message whole (up to `maxPayload`), their timeout covering the whole message.
   * - Compressed messages (permessage-deflate) are inflated piece by piece as they arrive.
   *
   * ```ts
   * const client = await connect(server, '/download', { streamMessages: true });
   * const message = await client.nextStream();
   * for await (const chunk of message) hash.update(chunk);
   * ```
   */
  streamMessages?: boolean;
}

/**
 * A message received as a stream ({@link TestClient.nextStream}, with `streamMessages: true`):
 * an async iterable of `Buffer`s, each a piece of payload as it arrived (a frame's payload, or
 * the part of it one read brought; inflated, when it came compressed).
 *
 * ```ts
 * const message = await client.nextStream();
 * let bytes = 0;
 * for await (const chunk of message) bytes += chunk.length;
 * ```
 *
 * - Read it one way only: iterate it, or take {@link ClientStreamedMessage.readable}, or collect
 *   it with `text()`/`bytes()`.
 * - Text arrives as UTF-8 bytes, checked as they come; a code point may be split between two
 *   chunks (decode with `new TextDecoder().decode(chunk, { stream: true })`, or collect it).
 * - Leaving early (`break`, `return()`, destroying the readable) discards the rest of the message:
 *   it is read on and dropped, and the next message comes next. The connection stays open.
 * - If the connection closes before the message ends (the server closed or went away, a
 *   protocol error, `client.close()`), the iterator rejects once what arrived has been read, with
 *   a `ProtocolError` whose `code` is the violation's (`'WS_INVALID_UTF8'`…) or
 *   `'WS_STREAM_INTERRUPTED'`, and whose `closeCode` is the connection's close code.
 */
export interface ClientStreamedMessage extends AsyncIterable<Buffer> {
  /** Whether it is a text message (its chunks are UTF-8 bytes). */
  readonly isText: boolean;
  /** Payload bytes received so far (after inflating, when it came compressed). */
  readonly bytesReceived: number;
  /** Payload bytes received and not yet read. */
  readonly queuedBytes: number;
  /** Whether the whole message has arrived (it may not all be read yet). */
  readonly complete: boolean;
  /** The iterator over its chunks. Throws if the message is already being read. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer>;
  /** The message as a Node `Readable` of bytes, for `pipeline(message.readable(), file)`. */
  readable(): Readable;
  /** Collects the whole message as a string. Over the client's `maxPayload` it fails the connection with 1009 and rejects. */
  text(): Promise<string>;
  /** Collects the whole message as one `Buffer`, bounded like `text()`. */
  bytes(): Promise<Buffer>;
}

/** A received message: text as a string, binary as a Buffer. */
export type TestMessage = string | Buffer;

/** A test client's state, as the browser's `readyState` would say it. */
export type TestClientState = 'open' | 'closing' | 'closed';

/** A received message and how it arrived ({@link TestClient.nextMessageInfo}). */
export interface MessageInfo {
  /** The message: text as a string, binary as a Buffer. */
  data: TestMessage;
  /** It arrived compressed: permessage-deflate, RSV1 set on its first frame (RFC 7692 §6). */
  compressed: boolean;
}
