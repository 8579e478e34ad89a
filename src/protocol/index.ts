export { CloseCode, Opcode, isValidWireCloseCode, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD } from './constants.js';
export { ProtocolError, type ProtocolErrorCode } from './errors.js';
export { applyMask } from './mask.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export {
  COPY_THRESHOLD,
  encodeClosePayload,
  encodeFrame,
  encodeText,
  frameLength,
  headerSize,
  writeHeader,
  type Frame,
  type FrameOptions,
} from './framer.js';
export { FrameParser, type ParserOptions, type ParserSink } from './parser.js';
