export type { Backplane, BackplaneLink, BackplaneNode, BackplaneStage, BackplaneStats } from './backplane.js';
export { type MemoryBackplane, memoryBackplane } from './memory.js';
export { MAX_TOPIC_LENGTH, type PublishOptions } from './topics.js';
/** @internal */
export { Topics, checkTopic } from './topics.js';
export { type IoRedisLike, type NodeRedisLike, type RedisBackplaneClient, type RedisBackplaneOptions, redisBackplane } from './redis.js';
export { CLUSTER_MESSAGE_KEY, type ClusterBackplaneOptions, clusterBackplane } from './cluster.js';
export { type ClusterPrimary, type ClusterPrimaryOptions, type ClusterRelayStats, setupClusterPrimary } from './cluster-primary.js';
