/**
 * Stable string codes for every way a peer can violate the protocol. Users can switch on
 * `error.code`; each maps to the close code the connection is failed with.
 */
export type ProtocolErrorCode =
  | 'WS_UNMASKED_FRAME'
  | 'WS_MASKED_FRAME'
  | 'WS_RESERVED_BITS'
  | 'WS_UNKNOWN_OPCODE'
  | 'WS_CONTROL_TOO_LONG'
  | 'WS_CONTROL_FRAGMENTED'
  | 'WS_UNEXPECTED_CONTINUATION'
  | 'WS_EXPECTED_CONTINUATION'
  | 'WS_LENGTH_OVERFLOW'
  | 'WS_INVALID_UTF8'
  | 'WS_INVALID_CLOSE_PAYLOAD'
  | 'WS_INVALID_CLOSE_CODE'
  | 'WS_MESSAGE_TOO_BIG'
  | 'WS_TOO_MANY_FRAGMENTS'
  /** permessage-deflate: a compressed message is not a valid DEFLATE stream (1007). */
  | 'WS_INVALID_COMPRESSED_DATA'
  /**
   * A message received or sent as a stream could not be completed: the connection closed (or
   * failed) first. Its `closeCode` is the connection's close code (1006: the TCP connection
   * dropped). Not a violation by itself: the reason is whatever closed the connection.
   */
  | 'WS_STREAM_INTERRUPTED';

/**
 * A violation of RFC 6455 by the peer. The protocol core never throws it: it reports it as
 * a "fail the connection" event, and the connection closes with {@link ProtocolError.closeCode}.
 */
export class ProtocolError extends Error {
  /** The close code the connection is failed with (1002, 1007, 1008, 1009…). */
  readonly closeCode: number;
  /** A stable string code to switch on. */
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, closeCode: number, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.closeCode = closeCode;
  }
}
