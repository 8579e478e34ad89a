/**
 * Behavior.drained() and Behavior.onDrain(): telling a sender when the socket's backlog is
 * flushed. drained() is true at once when nothing waits, true after a real drain, false when the
 * connection closes first (or is not open); onDrain runs after a 'queued' send once the peer
 * reads; the documented streaming loop keeps the backlog at one message.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type SendStatus } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

let made: Behavior[] = [];
let drains = 0;
let drainBacklog: number[] = [];

class Held extends Behavior {
  override onOpen(): void {
    made.push(this);
  }
  override onDrain(): void {
    drains++;
    drainBacklog.push(this.bufferedAmount);
  }
}

async function open(): Promise<{ client: RawClient; b: Behavior }> {
  made = [];
  drains = 0;
  drainBacklog = [];
  const { port } = await mount({ '/h': Held });
  const client = await connect(port, '/h');
  await waitFor(() => made.length === 1, 2000, 'open');
  return { client, b: made[0] as Behavior };
}

/** With the peer paused, sends 64 KiB messages until the socket holds a backlog. */
function fill(b: Behavior): number {
  let n = 0;
  while (b.bufferedAmount === 0 && n < 4000) {
    b.sendBinary(Buffer.alloc(64 * 1024, n & 0xff));
    n++;
  }
  expect(b.bufferedAmount).toBeGreaterThan(0);
  return n;
}

/** Whether `p` has settled by the time already-queued callbacks have run, and with what. */
async function settledNow<T>(p: Promise<T>): Promise<{ settled: boolean; value?: T }> {
  let out: { settled: boolean; value?: T } = { settled: false };
  void p.then((value) => {
    out = { settled: true, value };
  });
  await new Promise((resolve) => setImmediate(resolve));
  return out;
}

describe('drained()', () => {
  test('resolves true at once when nothing is waiting (no drain event needed)', async () => {
    const { b } = await open();
    expect(b.bufferedAmount).toBe(0);
    expect(await settledNow(b.drained())).toEqual({ settled: true, value: true });
    expect(b.sendText('small')).toBe('sent');
    expect(await settledNow(b.drained())).toEqual({ settled: true, value: true });
  });

  test('waits while the peer does not read, and resolves true once the backlog is flushed', async () => {
    const { client, b } = await open();
    client.socket.pause();
    fill(b);
    expect(b.sendText('tail')).toBe('queued');
    const pending = b.drained();
    const second = b.drained();
    await sleep(100);
    expect(await settledNow(pending)).toEqual({ settled: false });
    client.socket.resume();
    expect(await within(pending, 5000, 'drained()')).toBe(true);
    expect(await within(second, 1000, 'second drained()')).toBe(true);
    expect(b.bufferedAmount).toBe(0);
    expect(b.readyState).toBe(1);
  });

  test('resolves false when the connection closes while waiting (the peer vanishes)', async () => {
    const { client, b } = await open();
    client.socket.pause();
    fill(b);
    const pending = b.drained();
    await sleep(20);
    client.destroy();
    expect(await within(pending, 3000, 'drained()')).toBe(false);
    expect(b.readyState).toBe(3);
    // After the close it answers false at once.
    expect(await settledNow(b.drained())).toEqual({ settled: true, value: false });
  });

  test('resolves false when the server terminates the connection while waiting', async () => {
    const { client, b } = await open();
    client.socket.pause();
    fill(b);
    const pending = b.drained();
    b.terminate();
    expect(await within(pending, 3000, 'drained()')).toBe(false);
  });

  test('in verify() (no connection yet) it resolves false', async () => {
    let result: boolean | undefined;
    class Early extends Behavior {
      override async verify(): Promise<void> {
        result = await this.drained();
      }
    }
    const { port } = await mount({ '/e': Early });
    await connect(port, '/e');
    expect(result).toBe(false);
  });
});

describe('onDrain()', () => {
  test("is not called for 'sent' sends, and is called after a 'queued' send once the peer reads, with the backlog empty", async () => {
    const { client, b } = await open();
    for (let i = 0; i < 5; i++) expect(b.sendText(`m${i}`)).toBe('sent');
    await sleep(50);
    expect(drains).toBe(0);
    client.socket.pause();
    fill(b);
    expect(b.sendText('x')).toBe('queued');
    await sleep(100);
    expect(drains).toBe(0);
    client.socket.resume();
    await waitFor(() => drains >= 1, 5000, 'onDrain');
    expect(drainBacklog[0]).toBe(0);
  });

  test('an async onDrain that rejects reaches onError and closes the connection with 1011', async () => {
    const errors: string[] = [];
    class BadDrain extends Behavior {
      override onOpen(): void {
        made.push(this);
      }
      override async onDrain(): Promise<void> {
        await sleep(1);
        throw new Error('drain failed');
      }
      override onError(error: Error): void {
        errors.push(error.message);
      }
    }
    made = [];
    const { port } = await mount({ '/bad': BadDrain });
    const client = await connect(port, '/bad');
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    client.socket.pause();
    const n = fill(b);
    client.socket.resume();
    let code: number | undefined;
    let data = 0;
    for (;;) {
      const f = await client.nextFrame(5000);
      if (f.opcode === 0x8) {
        code = f.payload.readUInt16BE(0);
        break;
      }
      data++;
    }
    client.send(0x8, closePayload(1011));
    expect(data).toBe(n);
    expect(code).toBe(1011);
    expect(errors).toEqual(['drain failed']);
  });
});

describe('the streaming loop from the docs', () => {
  test("send; on 'queued' await drained(): every chunk arrives in order and the backlog never holds more than one message", async () => {
    const CHUNK = 64 * 1024;
    const N = 60;
    let maxBacklog = 0;
    let statuses: SendStatus[] = [];
    let finished: boolean | undefined;
    class Streamer extends Behavior {
      override async onText(): Promise<void> {
        for (let i = 0; i < N; i++) {
          const chunk = Buffer.alloc(CHUNK, i & 0xff);
          chunk.writeUInt32BE(i, 0);
          const s = this.sendBinary(chunk);
          statuses.push(s);
          maxBacklog = Math.max(maxBacklog, this.bufferedAmount);
          if (s === 'queued' && !(await this.drained())) {
            finished = false;
            return;
          }
        }
        finished = true;
      }
    }
    statuses = [];
    const { port } = await mount({ '/s': Streamer });
    const client = await connect(port, '/s');
    client.send(0x1, 'go');
    const got: number[] = [];
    while (got.length < N) {
      const f = await client.nextFrame(5000);
      got.push(f.payload.readUInt32BE(0));
      // A slow reader, now and then.
      if (got.length % 10 === 0) await sleep(5);
    }
    await waitFor(() => finished !== undefined, 2000, 'the loop');
    expect(finished).toBe(true);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(statuses).not.toContain('dropped');
    expect(maxBacklog).toBeLessThanOrEqual(CHUNK + 10);
  });
});

describe('the documented streaming loop takes turns with the rest of the event loop', () => {
  test('a fast reader: at most 64 KiB of 16 KiB messages per turn, so the loop yields (any Node stream buffer size)', async () => {
    const perTurn: number[] = [];
    let done = false;
    class Stream extends Behavior {
      override async onOpen(): Promise<void> {
        // A turn counter: one tick per check phase while the stream runs.
        let turn = 0;
        const tick = (): void => {
          turn++;
          if (!done) setImmediate(tick);
        };
        setImmediate(tick);
        const chunk = Buffer.alloc(16 * 1024, 0x61);
        for (let i = 0; i < 400 && this.readyState === Behavior.OPEN; i++) {
          perTurn[turn] = (perTurn[turn] ?? 0) + 1;
          if (this.sendBinary(chunk) === 'queued' && !(await this.drained())) break;
        }
        done = true;
      }
    }
    const { port } = await mount({ '/s': Stream });
    const client = await connect(port, '/s'); // reads as fast as frames come
    await waitFor(() => done, 10_000, 'the stream');
    client.destroy();
    const busiest = Math.max(...perTurn.filter((n) => n !== undefined));
    const turns = perTurn.filter((n) => n !== undefined).length;
    // 64 KiB a turn is four 16 KiB messages, plus the one that crosses it; two ticks of ours may
    // share one of wsmount's turns.
    expect(busiest).toBeLessThanOrEqual(10);
    expect(turns).toBeGreaterThanOrEqual(400 / 10);
  });
});

describe('drained() waiting for its turn', () => {
  test('resolves false when the connection is terminated before its turn comes', async () => {
    let result: boolean | undefined;
    class Waiter extends Behavior {
      override async onText(): Promise<void> {
        // This turn's drains told at once are used up (as by 64 other streams), so this one waits
        // for the check phase, which comes before the socket's 'close' is handled.
        for (let i = 0; i < 64; i++) void this.drained();
        const waiting = this.drained();
        this.terminate();
        result = await waiting;
      }
    }
    const { port } = await mount({ '/w': Waiter });
    const client = await connect(port, '/w');
    client.send(0x1, 'go');
    await waitFor(() => result !== undefined, 2000, 'drained() to settle');
    expect(result).toBe(false);
  });
});
