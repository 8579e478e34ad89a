/**
 * Fairness between connections within one turn of the event loop.
 *
 * A send loop written the documented way (`if (send(chunk) === 'queued') await drained()`)
 * resumes from the socket's 'drain'. When writes complete at once, Node emits 'drain' on the
 * next tick, and on Node 22+ (64 KiB stream buffers) a 16 KiB send to a fast reader is not even
 * 'queued': either way the loop would run again and again before the event loop gets back to
 * I/O, and with many fast readers HTTP requests and new handshakes wait for seconds. So:
 *
 * - a connection that has sent {@link BYTES_PER_TURN} in this turn gets `'queued'` for its sends
 *   (they are still written) and waits for the next turn to be told it may go on;
 * - at most {@link SYNC_DRAINS_PER_TURN} drains a turn are told at once, over all connections;
 * - the rest are told from the check phase (setImmediate, after the loop has polled for I/O),
 *   at most {@link DRAINS_PER_CHECK} a turn, in the order they came.
 *
 * A turn, here, runs from one check phase in which wsmount had work to the next.
 */

/** Bytes a connection sends in one turn before its sends say `'queued'`. */
export const BYTES_PER_TURN: number = 64 * 1024;
/** Drains told at once in one turn, over all connections. */
export const SYNC_DRAINS_PER_TURN = 64;
/** Drains told from one check phase; the rest wait for the next. */
export const DRAINS_PER_CHECK = 64;

/** What a queued drain notice is delivered to. */
export interface DrainTarget {
  noticeDrain(): void;
}

let turn = 1;
let tickDue = false;
let syncDrainsLeft = SYNC_DRAINS_PER_TURN;
const due: DrainTarget[] = [];

function tick(): void {
  tickDue = false;
  turn++;
  syncDrainsLeft = SYNC_DRAINS_PER_TURN;
  if (due.length === 0) return;
  const batch = due.splice(0, DRAINS_PER_CHECK);
  if (due.length > 0) ensureTick();
  for (let i = 0; i < batch.length; i++) (batch[i] as DrainTarget).noticeDrain();
}

function ensureTick(): void {
  if (tickDue) return;
  tickDue = true;
  setImmediate(tick);
}

/** This turn's number, for counting a connection's bytes per turn (starts the next turn's tick). */
export function currentTurn(): number {
  ensureTick();
  return turn;
}

/**
 * This turn's number without scheduling anything: a connection whose count was taken with
 * `currentTurn()` compares with it to know whether that turn is still running.
 */
export function turnNow(): number {
  return turn;
}

/** Whether a drain may be told at once (this turn's budget is not spent). */
export function takeSyncDrain(): boolean {
  ensureTick();
  if (syncDrainsLeft === 0) return false;
  syncDrainsLeft--;
  return true;
}

/** Tells `target` from a coming check phase. The caller makes sure it is queued once. */
export function queueDrainNotice(target: DrainTarget): void {
  due.push(target);
  ensureTick();
}
