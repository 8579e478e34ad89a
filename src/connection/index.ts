export { Connection } from './connection.js';
export {
  MESSAGES_HIGH_WATER_BYTES,
  MESSAGES_HIGH_WATER_COUNT,
  MESSAGES_LOW_WATER_BYTES,
  MESSAGES_LOW_WATER_COUNT,
  type MessageStream,
} from './inbound.js';
export { STREAM_HIGH_WATER_BYTES, STREAM_LOW_WATER_BYTES, StreamedMessage } from './streamed-message.js';
export { STREAM_FRAGMENT_SIZE, type ReadableStreamLike, type SendStreamOptions, type StreamChunk, type StreamSource } from './stream-out.js';
export { type BackpressurePolicy, type RateLimit, type SendStatus, timerDelay } from './types.js';
/** @internal */
export type { ConnectionLimits, ConnectionOwner } from './types.js';
