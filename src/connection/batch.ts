import type { Duplex } from 'node:stream';

// ---- write batching ---------------------------------------------------------------------------

/** A chunk from some socket is being handled: data written to other sockets waits for its end. */
let batching = false;
/** The other sockets corked while it is handled, uncorked (one write each) when it ends. */
const batched: Duplex[] = [];

/**
 * While one incoming chunk is handled, everything written to any socket is held and goes out in
 * one write per socket when the chunk is done: a chunk carrying 16 chat messages reaches each
 * room member in one syscall, not 16.
 */
export function holdForBatch(socket: Duplex): void {
  if (batching && socket.writableCorked === 0) {
    socket.cork();
    batched.push(socket);
  }
}

export function flushBatch(): void {
  batching = false;
  for (let i = 0; i < batched.length; i++) (batched[i] as Duplex).uncork();
  batched.length = 0;
}

/** Whether a chunk is being handled right now. */
export function inBatch(): boolean {
  return batching;
}

/** A chunk's handling starts: writes to other sockets are held until {@link flushBatch}. */
export function beginBatch(): void {
  batching = true;
}

/**
 * Starts a batch that ends when the current task's microtasks run, unless one is running: a
 * publish made outside any incoming chunk (a timer, an HTTP route, messages arriving from a
 * backplane) is held with every other write of the same task, one write per socket.
 */
export function batchThisTask(): void {
  if (batching) return;
  batching = true;
  queueMicrotask(flushBatch);
}
