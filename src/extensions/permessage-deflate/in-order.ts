/**
 * One connection's codec jobs in call order: a job runs at once (synchronously) while none is
 * pending, and behind the last pending one (on the thread pool) otherwise, so the messages of one
 * connection come out in the order they went in whichever path each takes. Shared by the
 * inflater and the deflater. @internal
 */
export class InOrder<T> {
  /** The end of the queue once a job went async; later jobs wait behind it. */
  private tail: Promise<T> | null = null;
  private pending = 0;
  private idle: (() => void) | null = null;

  /** A job is running on the thread pool (later `run`s return Promises). */
  get busy(): boolean {
    return this.pending > 0;
  }

  /** Runs `fn` once no job is pending: now, or when the last pending one settles. */
  whenIdle(fn: () => void): void {
    if (this.pending === 0) fn();
    else this.idle = fn;
  }

  run(job: () => T | Promise<T>): T | Promise<T> {
    if (this.pending > 0) return this.track((this.tail as Promise<T>).then(() => job()));
    const result = job();
    return result instanceof Promise ? this.track(result) : result;
  }

  private track(p: Promise<T>): Promise<T> {
    this.pending++;
    const done = p.finally(() => {
      if (--this.pending === 0 && this.idle !== null) {
        const fn = this.idle;
        this.idle = null;
        fn();
      }
    });
    this.tail = done;
    return done;
  }
}
