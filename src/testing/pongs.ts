import { Buffer } from 'node:buffer';
import { TestClientError } from './errors.js';

interface PongWaiter {
  payload: Buffer;
  resolve(data: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A test client's pings still waiting for their pong (RFC 6455 §5.5.3: a pong carries its
 * ping's payload), each with a timeout; the connection's end rejects those left.
 */
export class PongWaiters {
  readonly #waiters: PongWaiter[] = [];

  /**
   * Resolves with the payload of the first pong that matches `payload`; rejects with a
   * `'TIMEOUT'` {@link TestClientError} after `timeout` ms. Call it before sending the ping.
   */
  wait(payload: Buffer, timeout: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const waiter: PongWaiter = {
        payload,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#remove(waiter);
          reject(new TestClientError('TIMEOUT', `no pong within ${timeout} ms`));
        }, timeout),
      };
      this.#waiters.push(waiter);
    });
  }

  /** A pong arrived: settles the oldest wait for its payload. An unsolicited pong is ignored (RFC 6455 §5.5.3). */
  pong(data: Buffer): void {
    const waiter = this.#waiters.find((w) => w.payload.equals(data));
    if (waiter === undefined) return;
    this.#remove(waiter);
    clearTimeout(waiter.timer);
    waiter.resolve(Buffer.from(data));
  }

  /** The connection closed: every wait left rejects with `error`. */
  rejectAll(error: Error): void {
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  #remove(waiter: PongWaiter): void {
    const i = this.#waiters.indexOf(waiter);
    if (i !== -1) this.#waiters.splice(i, 1);
  }
}
