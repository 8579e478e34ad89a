/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
/** A frame opcode. */
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Well-known close codes (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reported locally when a close frame carried no code; never sent. */
  NoStatus: 1005,
  /** Reported locally when the connection dropped without a close frame; never sent. */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reported locally on a TLS failure; never sent. */
  TlsHandshake: 1015,
} as const;

/**
 * Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2):
 * 1000–1003, 1007–1014 (IANA registered), 3000–4999. 1004–1006 and 1015 are reserved
 * and must never be sent; everything else below 3000 is reserved for the protocol.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  if (code >= 1000 && code <= 1003) return true;
  return code >= 1007 && code <= 1014;
}

/** The longest payload a control frame may carry (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
/** The longest close reason: 125 bytes less the 2-byte code (RFC 6455 §5.5.1). */
export const MAX_CLOSE_REASON = 123;
