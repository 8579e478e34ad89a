import type { Buffer } from 'node:buffer';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, isValidWireCloseCode } from './constants.js';
import { ProtocolError } from './errors.js';
import { isValidUtf8 } from './utf8.js';

/**
 * What RFC 6455 (and RFC 7692 for RSV1) allows of a frame, decided from its first two header
 * bytes and whether a fragmented data message is open: `null` when the frame may follow, else the
 * error to fail the connection with. Pure: the parser keeps the state, this keeps the rules.
 *
 * @param allowRsv1 permessage-deflate was negotiated (RSV1 marks a data message compressed).
 * @param expectMasked the server's side: every frame must be masked (the client's: none may be).
 */
export function headerViolation(b0: number, b1: number, messageOpen: boolean, allowRsv1: boolean, expectMasked: boolean): ProtocolError | null {
  const opcode = b0 & 0x0f;
  const rsv = (b0 >>> 4) & 7;
  // RFC 6455 §5.2: RSV bits must be 0 unless a negotiated extension defines them. RFC 7692
  // §6.1: permessage-deflate defines RSV1 on the first frame of a data message only.
  if (rsv !== 0 && !(rsv === 4 && allowRsv1 && opcode !== Opcode.Continuation && opcode < 8)) {
    const why = !allowRsv1 || rsv !== 4
      ? `reserved bits set (RSV=${rsv}) with no extension negotiated that defines them`
      : opcode === Opcode.Continuation
        ? 'RSV1 set on a continuation frame (RFC 7692 §6.1: only the first frame of a message)'
        : 'RSV1 set on a control frame (RFC 7692 §6.1: control frames are never compressed)';
    return new ProtocolError('WS_RESERVED_BITS', CloseCode.ProtocolError, why);
  }
  if (opcode >= 8) {
    // RFC 6455 §5.5: control frames.
    if (opcode > Opcode.Pong) return new ProtocolError('WS_UNKNOWN_OPCODE', CloseCode.ProtocolError, `unknown control opcode 0x${opcode.toString(16)}`);
    if ((b0 & 0x80) === 0) return new ProtocolError('WS_CONTROL_FRAGMENTED', CloseCode.ProtocolError, 'control frames must not be fragmented');
    if ((b1 & 0x7f) > MAX_CONTROL_PAYLOAD) return new ProtocolError('WS_CONTROL_TOO_LONG', CloseCode.ProtocolError, 'control frame payload over 125 bytes');
  } else if (opcode === Opcode.Continuation) {
    // RFC 6455 §5.4: a continuation needs an open fragmented message.
    if (!messageOpen) return new ProtocolError('WS_UNEXPECTED_CONTINUATION', CloseCode.ProtocolError, 'continuation frame with no message to continue');
  } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
    if (messageOpen) return new ProtocolError('WS_EXPECTED_CONTINUATION', CloseCode.ProtocolError, 'new data frame while a fragmented message is open');
  } else {
    return new ProtocolError('WS_UNKNOWN_OPCODE', CloseCode.ProtocolError, `unknown data opcode 0x${opcode.toString(16)}`);
  }
  // RFC 6455 §5.1: clients mask every frame; servers mask none.
  const masked = (b1 & 0x80) !== 0;
  if (masked === expectMasked) return null;
  return masked
    ? new ProtocolError('WS_MASKED_FRAME', CloseCode.ProtocolError, 'a server must not mask its frames')
    : new ProtocolError('WS_UNMASKED_FRAME', CloseCode.ProtocolError, 'a client must mask its frames');
}

/** A close frame's payload, read: the code (1005 when it carried none) and the reason. */
export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

const NO_STATUS: CloseFrame = Object.freeze({ code: CloseCode.NoStatus, reason: '' });

/**
 * Reads an unmasked close frame payload (RFC 6455 §5.5.1: empty, or a 2-byte code that may be
 * sent on the wire and a UTF-8 reason); the error to fail the connection with when it is not one.
 */
export function readClosePayload(payload: Buffer): CloseFrame | ProtocolError {
  if (payload.length === 0) return NO_STATUS;
  if (payload.length === 1) return new ProtocolError('WS_INVALID_CLOSE_PAYLOAD', CloseCode.ProtocolError, 'close frame payload of 1 byte');
  const code = payload.readUInt16BE(0);
  if (!isValidWireCloseCode(code)) return new ProtocolError('WS_INVALID_CLOSE_CODE', CloseCode.ProtocolError, `invalid close code ${code}`);
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) return new ProtocolError('WS_INVALID_UTF8', CloseCode.InvalidPayload, 'close reason is not valid UTF-8');
  return { code, reason: reasonBytes.toString('utf8') };
}
