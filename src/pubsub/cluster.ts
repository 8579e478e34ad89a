/**
 * The node:cluster backplane: publishes cross the workers of one machine through the primary,
 * over Node's IPC, without Redis. (Being written: issue 11.)
 */
import type { Backplane } from './backplane.js';

/** A backplane for a `node:cluster` worker; the primary must call {@link setupClusterPrimary}. */
export function clusterBackplane(): Backplane {
  throw new Error('clusterBackplane: not written yet');
}

/** Call once in the primary, before forking: relays publishes between workers. */
export function setupClusterPrimary(): void {
  throw new Error('setupClusterPrimary: not written yet');
}
