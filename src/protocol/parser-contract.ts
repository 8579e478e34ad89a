import type { Buffer } from 'node:buffer';
import type { ProtocolError } from './errors.js';

// The FrameParser's contract (parser.ts): what it reports, and the limits and role it is given.

/** Where the parser reports what it read. One object per connection: no closures per event. */
export interface ParserSink {
  /**
   * A complete message. `data` is owned by the sink. `compressed` is true when its first frame had
   * RSV1 set (only possible with `allowRsv1`): `data` is then the compressed payload, not yet
   * checked as UTF-8. Otherwise text `data` is already validated UTF-8.
   */
  onMessage(data: Buffer, isText: boolean, compressed: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** A valid close frame. `code` is 1005 when the frame carried none. The parser then stops. */
  onCloseFrame(code: number, reason: string): void;
  /** The peer broke the protocol: fail the connection with `error.closeCode`. The parser then stops. */
  onProtocolError(error: ProtocolError): void;
  /**
   * Streaming mode ({@link ParserOptions.streaming}): a data message starts (its first frame's
   * header has been read, its payload not yet). `compressed`: RSV1 was set, the pieces that
   * follow are compressed and text is not yet checked as UTF-8.
   */
  onStreamStart?(isText: boolean, compressed: boolean): void;
  /**
   * Streaming mode: payload bytes of the open message, as they arrive (a view into the pushed
   * chunk, unmasked, owned by the sink). Uncompressed text has been checked as UTF-8 so far.
   */
  onStreamData?(data: Buffer): void;
  /** Streaming mode: the open message's final frame has been read (and its text is complete UTF-8). */
  onStreamEnd?(): void;
}

/** Limits and role for a {@link FrameParser}. */
export interface ParserOptions {
  /** `true` on the server side: every frame must be masked. `false`: no frame may be masked. */
  expectMasked: boolean;
  /** Largest message in bytes (all fragments together); over it fails with 1009. */
  maxPayload: number;
  /** Most frames in one message; over it fails with 1008. */
  maxFragments: number;
  /**
   * permessage-deflate was negotiated: RSV1 may be set on the first frame of a data message
   * (RFC 7692 §6.1) and marks the message compressed; RSV1 on a continuation or control frame
   * still fails with 1002. The parser does not inflate: it hands the compressed payload to the
   * sink, which inflates it and checks text as UTF-8 afterwards (RFC 7692 §6.1, §7.2.2).
   */
  allowRsv1?: boolean;
  /**
   * Streaming mode: data messages are not joined but handed to the sink piece by piece
   * (`onStreamStart`, `onStreamData`, `onStreamEnd`), so a message of any size costs no memory
   * here. `maxPayload` and `maxFragments` then do not apply; `maxStreamBytes` bounds the bytes
   * of one message on the wire (the sink bounds what a compressed one inflates to).
   */
  streaming?: boolean;
  /** Streaming mode: largest message in bytes on the wire (Infinity: none); over it fails with 1009. */
  maxStreamBytes?: number;
}
