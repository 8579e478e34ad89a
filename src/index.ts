export {
  Backpressure,
  Behavior,
  ReadyState,
  type BehaviorClass,
  type BinaryData,
  type NegotiatedExtensions,
  type UpgradeRequest,
  type WebSocketTransport,
} from './behavior.js';
export {
  PER_MESSAGE_DEFLATE_PRESET,
  type DeflateConfig,
  type PerMessageDeflateOptions,
} from './extensions/permessage-deflate/options.js';
export type { DeflateNegotiationConfig, WindowBits } from './extensions/permessage-deflate/negotiate.js';
export type { NegotiatedPerMessageDeflate } from './extensions/permessage-deflate/session.js';
export {
  MESSAGES_HIGH_WATER_BYTES,
  MESSAGES_HIGH_WATER_COUNT,
  MESSAGES_LOW_WATER_BYTES,
  MESSAGES_LOW_WATER_COUNT,
  STREAM_FRAGMENT_SIZE,
  STREAM_HIGH_WATER_BYTES,
  STREAM_LOW_WATER_BYTES,
  StreamedMessage,
  type BackpressurePolicy,
  type MessageStream,
  type RateLimit,
  type ReadableStreamLike,
  type SendStatus,
  type SendStreamOptions,
  type StreamChunk,
  type StreamSource,
} from './connection/index.js';
export type { CompressionStats, ConnectionCounters, DurationHistogram, HandlerStats, RouteStats } from './stats.js';
export { DURATION_BOUNDS, MAX_CLOSE_CODES } from './stats.js';
export {
  DIAGNOSTICS_CHANNELS,
  type BackpressureMessage,
  type ConnectionCloseMessage,
  type ConnectionOpenMessage,
  type HandshakeAcceptedMessage,
  type HandshakeRejectedMessage,
  type ProtocolErrorMessage,
  type UpgradeReceivedMessage,
} from './diagnostics.js';
export { prometheusHandler, prometheusMetrics, type LabeledStatsSource, type PrometheusOptions, type PrometheusSource, type StatsSource } from './metrics/prometheus.js';
export {
  CLUSTER_MESSAGE_KEY,
  MAX_TOPIC_LENGTH,
  clusterBackplane,
  memoryBackplane,
  redisBackplane,
  setupClusterPrimary,
  type Backplane,
  type BackplaneLink,
  type BackplaneNode,
  type BackplaneStage,
  type BackplaneStats,
  type ClusterBackplaneOptions,
  type ClusterPrimary,
  type ClusterPrimaryOptions,
  type ClusterRelayStats,
  type MemoryBackplane,
  type PublishOptions,
  type IoRedisLike,
  type NodeRedisLike,
  type RedisBackplaneClient,
  type RedisBackplaneOptions,
} from './pubsub/index.js';
export {
  WebSocketHandler,
  createWebSocketHandler,
  type BroadcastOptions,
  type CheckedRoutes,
  type Client,
  type ClientOf,
  type HandlerCloseOptions,
  type HandlerOptions,
  type ResolvedHandlerOptions,
  type RouteParamsMismatch,
  type RoutePattern,
  type Routes,
  type UpgradeServer,
} from './handler.js';
export { createWebSocketServer, type WebSocketServer, type WebSocketServerOptions } from './server.js';
export { HandshakeRejection, type Rejection, type RejectionCode } from './handshake/rejection.js';
export type { HandshakeRequest, OriginPolicy } from './handshake/decide.js';
export { CloseCode, Opcode } from './protocol/constants.js';
export { ProtocolError, type ProtocolErrorCode } from './protocol/errors.js';
export type { RouteParams } from './router.js';
export type { LogLevel, Logger } from './logger.js';
