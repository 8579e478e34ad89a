/**
 * The test client's public data types: what it sends and receives, its options, and how a
 * connection ended. The client itself is in client.ts.
 */
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
