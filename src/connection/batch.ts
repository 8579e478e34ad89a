import { Buffer } from 'node:buffer';
import { viewOfMemory } from '../protocol/views.js';

// ---- write batching ---------------------------------------------------------------------------

/** What holds small frames during a batch and writes them in one go when it ends (sender.ts). */
export interface BatchedOutput {
  flushOut(): void;
  /** Takes the run of frames it framed in the arena, as one view, at the end of its list. */
  takeRun(view: Buffer): void;
}

/** A chunk from some socket is being handled: small frames for any socket wait for its end. */
let batching = false;
/** The connections holding frames in this batch, flushed (one write each) when it ends. */
const batched: BatchedOutput[] = [];
/** The last list of frames joined in this batch, and what it gave: see {@link joinFrames}. */
let lastFrames: readonly Buffer[] | null = null;
let lastJoined: Buffer | null = null;

/**
 * While one incoming chunk is handled, small frames sent to any connection are kept in that
 * connection's list (sender.ts) and go out as one buffer, in one write, when the chunk is done:
 * a chunk carrying 16 chat messages reaches each room member in one syscall and one
 * `socket.write()`, not 16. `output` is enlisted once, when its list starts.
 */
export function enlist(output: BatchedOutput): void {
  batched.push(output);
}

export function flushBatch(): void {
  batching = false;
  // A write to an in-memory peer can run its handler at once, and its batch flushes the rest
  // of this list (flushOut is a no-op on an emptied list): read the length on every turn.
  for (let i = 0; i < batched.length; i++) (batched[i] as BatchedOutput).flushOut();
  batched.length = 0;
  lastFrames = null;
  lastJoined = null;
}

/** Whether a chunk is being handled right now. */
export function inBatch(): boolean {
  return batching;
}

/** A chunk's handling starts: small frames are held until {@link flushBatch}. */
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

// ---- the arena: small frames a connection frames for itself during a batch ---------------------

/** Size of one arena (frames framed there are at most COPY_THRESHOLD + 4 bytes). */
export const ARENA_BYTES: number = 64 * 1024;

/**
 * The arena small frames are written into during a batch (sender.ts `sendSmall`): a connection's
 * consecutive frames (an echo of the 32 messages in one chunk) sit back to back, and leave as one
 * view of it, with no Buffer object per frame and no copy to join them. Bytes handed out are
 * never written again: a full arena is left to the views that hold it (like Node's own Buffer
 * pool) and a new one is taken.
 */
export let arena: Buffer = Buffer.allocUnsafeSlow(ARENA_BYTES);
/** {@link arena}'s memory, kept for the views handed out (views.ts: read once, not per view). */
let arenaMemory: ArrayBufferLike = arena.buffer;
let arenaOffset: number = arena.byteOffset;
/** Bytes of {@link arena} taken. */
export let arenaUsed: number = 0;

/**
 * The run: the frames framed last in the arena, all by one connection, back to back from
 * `runStart` to `arenaUsed`, not yet in that connection's list. Only the last connection to
 * frame there can extend its run, so the run is kept here, once, rather than in every
 * connection: when another connection frames (or the arena is replaced, or its owner writes or
 * flushes) the run is handed to its owner as one view.
 */
let runOwner: BatchedOutput | null = null;
let runStart = 0;

/** Hands the run, if any, to its owner. */
function endRun(): void {
  const owner = runOwner;
  if (owner === null) return;
  runOwner = null;
  owner.takeRun(viewOfMemory(arenaMemory, arenaOffset + runStart, arenaUsed - runStart));
}

/** Hands `owner` its run now, if it has one: before it writes or lists anything else. */
export function endRunOf(owner: BatchedOutput): void {
  if (runOwner === owner) endRun();
}

/** Whether `owner` has frames in the arena run. */
export function hasRun(owner: BatchedOutput): boolean {
  return runOwner === owner;
}

/**
 * Makes room for `size` bytes (far below {@link ARENA_BYTES}) in the arena for `owner`, after its
 * run when it framed last, or as the start of a new run; returns their offset.
 */
export function arenaTake(owner: BatchedOutput, size: number): number {
  if (arenaUsed + size > ARENA_BYTES) {
    endRun();
    arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
    arenaMemory = arena.buffer;
    arenaOffset = arena.byteOffset;
    arenaUsed = 0;
  } else if (runOwner !== owner) {
    endRun();
  }
  const at = arenaUsed;
  if (runOwner === null) {
    runOwner = owner;
    runStart = at;
  }
  arenaUsed = at + size;
  return at;
}

/**
 * The frames of one connection's list as one buffer. A broadcast or publish gives every
 * recipient the same frames (the same Buffer objects) in the same order, so a list equal, frame
 * for frame, to the one joined just before reuses its buffer: one copy for all recipients, as a
 * raw TCP server writes one chunk to every socket. The joined buffer is never written to again.
 */
export function joinFrames(frames: readonly Buffer[], bytes: number): Buffer {
  const last = lastFrames;
  if (last !== null && last.length === frames.length) {
    let same = true;
    for (let i = 0; i < frames.length; i++) {
      if (last[i] !== frames[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastJoined as Buffer;
  }
  const joined = Buffer.concat(frames, bytes);
  lastFrames = frames;
  lastJoined = joined;
  return joined;
}
