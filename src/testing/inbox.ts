import { TestClientError } from './errors.js';
import type { CloseInfo } from './types.js';

interface Waiter<T> {
  message(item: T): void;
  closed(info: CloseInfo): void;
}

function describe(info: CloseInfo): string {
  return info.reason === '' ? `${info.code}` : `${info.code} ${JSON.stringify(info.reason)}`;
}

/** The `'CLOSED'` error of a wait that the connection's end cut short. */
export function closedError(what: string, info: CloseInfo): TestClientError {
  return new TestClientError('CLOSED', `the connection closed (${describe(info)}) before ${what} arrived`, info.code, info.reason);
}

/**
 * A test client's received messages until someone takes them: `next()` with a timeout, or async
 * iteration. Messages that arrived before the connection closed are still handed out after it;
 * then waits end (`next()` rejects with `'CLOSED'`, iteration ends).
 */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: Waiter<T>[] = [];
  #closed: CloseInfo | null = null;

  /** Messages received and not yet taken. */
  get size(): number {
    return this.#items.length;
  }

  /** A message arrived: to the oldest waiter, or kept. */
  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.message(item);
    else this.#items.push(item);
  }

  /** The connection is gone: every wait ends, and later ones once the kept messages are taken. */
  close(info: CloseInfo): void {
    this.#closed = info;
    for (const waiter of this.#waiters.splice(0)) waiter.closed(info);
  }

  /** The next message; rejects with `'TIMEOUT'` after `timeout` ms, or `'CLOSED'` when none is left. */
  next(timeout: number): Promise<T> {
    const queued = this.#items.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed !== null) return Promise.reject(closedError('a message', this.#closed));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        message: (item) => {
          clearTimeout(timer);
          resolve(item);
        },
        closed: (info) => {
          clearTimeout(timer);
          reject(closedError('a message', info));
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
        reject(new TestClientError('TIMEOUT', `no message within ${timeout} ms`));
      }, timeout);
      this.#waiters.push(waiter);
    });
  }

  /** Every message in order, each as `map` makes it; ends when the connection closes and none is left. */
  iterator<U>(map: (item: T) => U): AsyncIterator<U> {
    return {
      next: (): Promise<IteratorResult<U>> => {
        const queued = this.#items.shift();
        if (queued !== undefined) return Promise.resolve({ done: false, value: map(queued) });
        if (this.#closed !== null) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => {
          this.#waiters.push({
            message: (item) => resolve({ done: false, value: map(item) }),
            closed: () => resolve({ done: true, value: undefined }),
          });
        });
      },
      return: (): Promise<IteratorResult<U>> => Promise.resolve({ done: true, value: undefined }),
    };
  }
}
