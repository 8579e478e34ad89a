/**
 * Behavior.messages(): incoming data messages as an async iterator instead of onText/onBinary —
 * order and exactly-once delivery, one iterator at a time, release on break, the end at close,
 * exceptions in the loop body (1011), and backpressure (the socket pauses above the high-water
 * mark, so the queue stays bounded, and resumes below the low-water mark).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import {
  MESSAGES_HIGH_WATER_BYTES,
  MESSAGES_HIGH_WATER_COUNT,
  MESSAGES_LOW_WATER_COUNT,
  type MessageStream,
} from '../../src/connection/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload, encodeClientFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

/** Reads `n` data frames from the server, as [opcode, text]. */
async function readData(client: RawClient, n: number): Promise<[number, string][]> {
  const out: [number, string][] = [];
  while (out.length < n) {
    const f = await client.nextFrame(3000);
    if (f.opcode === 0x1 || f.opcode === 0x2) out.push([f.opcode, f.payload.toString()]);
  }
  return out;
}

/** Server-side payloads in the order the peer sent them, written in one TCP write. */
function burst(payloads: (string | Buffer)[]): Buffer {
  return Buffer.concat(payloads.map((p) => encodeClientFrame(typeof p === 'string' ? 0x1 : 0x2, p)));
}

describe('messages(): what it yields', () => {
  test('yields text as string and binary as Buffer, in order, and onText/onBinary are not called while it is active', async () => {
    const hooks: unknown[] = [];
    const seen: unknown[] = [];
    class Stream extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) {
          seen.push(typeof m === 'string' ? ['text', m] : ['binary', Buffer.isBuffer(m), [...m]]);
          this.send(m);
        }
      }
      override onText(text: string): void {
        hooks.push(['onText', text]);
      }
      override onBinary(bytes: Buffer): void {
        hooks.push(['onBinary', [...bytes]]);
      }
    }
    const { port } = await mount({ '/s': Stream });
    const client = await connect(port, '/s');
    client.sendRaw(burst(['héllo', Buffer.from([0, 1, 255]), 'third']));
    client.send(0x1, 'frag', { fin: false });
    client.send(0x0, 'mented');
    expect(await readData(client, 4)).toEqual([
      [0x1, 'héllo'],
      [0x2, Buffer.from([0, 1, 255]).toString()],
      [0x1, 'third'],
      [0x1, 'fragmented'],
    ]);
    expect(seen).toEqual([
      ['text', 'héllo'],
      ['binary', true, [0, 1, 255]],
      ['text', 'third'],
      ['text', 'fragmented'],
    ]);
    expect(hooks).toEqual([]);
  });

  test('called in onOpen before any await, it misses nothing: messages sent right after the 101 all reach it', async () => {
    const hooks: string[] = [];
    const seen: string[] = [];
    class Early extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) seen.push(String(m));
      }
      override onText(text: string): void {
        hooks.push(text);
      }
    }
    const { port } = await mount({ '/e': Early });
    const client = await connect(port, '/e');
    const sent = Array.from({ length: 50 }, (_, i) => `m${i}`);
    client.sendRaw(burst(sent));
    await waitFor(() => seen.length === 50, 3000, '50 messages');
    expect(seen).toEqual(sent);
    expect(hooks).toEqual([]);
  });

  test('messages that arrive during an awaited onOpen wait for it and go, first and in order, to the messages() it then calls; none reach onText, none lost or doubled', async () => {
    const got: [string, string][] = [];
    let iterating = false;
    class Late extends Behavior {
      override async onOpen(): Promise<void> {
        await sleep(150);
        iterating = true;
        for await (const m of this.messages()) got.push(['iter', String(m)]);
      }
      override onText(text: string): void {
        got.push(['hook', text]);
      }
    }
    const { port } = await mount({ '/l': Late });
    const client = await connect(port, '/l');
    client.sendRaw(burst(['a', 'b']));
    await sleep(50);
    expect(got).toEqual([]); // onOpen is still pending: they wait
    await waitFor(() => got.length === 2 && iterating, 3000, 'the early messages');
    client.sendRaw(burst(['c', 'd']));
    await waitFor(() => got.length === 4, 3000, 'the later messages');
    expect(got).toEqual([
      ['iter', 'a'],
      ['iter', 'b'],
      ['iter', 'c'],
      ['iter', 'd'],
    ]);
  });

  test('messages that arrive during an awaited onOpen that never iterates reach onText after it settles, in order', async () => {
    const got: string[] = [];
    class Slow extends Behavior {
      override async onOpen(): Promise<void> {
        await sleep(150);
        got.push('open done');
      }
      override onText(text: string): void {
        got.push(text);
      }
    }
    const { port } = await mount({ '/s': Slow });
    const client = await connect(port, '/s');
    client.sendRaw(burst(['a', 'b', 'c']));
    await waitFor(() => got.length === 4, 3000, 'all messages');
    expect(got).toEqual(['open done', 'a', 'b', 'c']);
  });
});

describe('messages(): one iterator at a time, released by break', () => {
  test('a second call while one is active throws a clear error; after break, a new call works', async () => {
    const events: string[] = [];
    class Twice extends Behavior {
      override async onOpen(): Promise<void> {
        const first = this.messages();
        try {
          this.messages();
          events.push('no error');
        } catch (error) {
          events.push(`threw: ${(error as Error).message}`);
        }
        for await (const m of first) {
          events.push(`first ${String(m)}`);
          break;
        }
        for await (const m of this.messages()) events.push(`second ${String(m)}`);
      }
    }
    const { port } = await mount({ '/t': Twice });
    const client = await connect(port, '/t');
    client.send(0x1, 'x');
    await waitFor(() => events.length >= 2, 3000, 'the first message');
    client.send(0x1, 'y');
    await waitFor(() => events.length >= 3, 3000, 'the second message');
    expect(events).toHaveLength(3);
    expect(events[0]).toMatch(/^threw: messages\(\) is already active .*only one iterator at a time/);
    expect(events.slice(1)).toEqual(['first x', 'second y']);
  });

  test('break releases it: queued-but-unread messages, then later ones, go to onText in order, exactly once', async () => {
    const got: string[] = [];
    class Breaker extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) {
          got.push(`iter ${String(m)}`);
          // Let the whole burst be queued behind this one before leaving the loop.
          await sleep(100);
          break;
        }
      }
      override onText(text: string): void {
        got.push(`hook ${text}`);
      }
    }
    const { port } = await mount({ '/b': Breaker });
    const client = await connect(port, '/b');
    client.sendRaw(burst(['1', '2', '3', '4']));
    await waitFor(() => got.length === 4, 3000, 'the burst');
    client.send(0x1, '5');
    await waitFor(() => got.length === 5, 3000, 'a later message');
    await sleep(50);
    expect(got).toEqual(['iter 1', 'hook 2', 'hook 3', 'hook 4', 'hook 5']);
  });

  test('called in verify() it throws: there is no connection yet', async () => {
    let message = '';
    class Early extends Behavior {
      override verify(): void {
        try {
          this.messages();
        } catch (error) {
          message = (error as Error).message;
        }
      }
    }
    const { port } = await mount({ '/v': Early });
    await connect(port, '/v');
    expect(message).toMatch(/once the connection is open/);
  });
});

describe('messages(): the end of the connection and errors', () => {
  test('the iterator yields what it holds and is then done when the peer closes; onClose follows', async () => {
    const events: string[] = [];
    class Slow extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) {
          events.push(String(m));
          await sleep(20);
        }
        events.push('done');
      }
      override onClose(code: number): void {
        events.push(`close ${code}`);
      }
    }
    const { port } = await mount({ '/c': Slow });
    const client = await connect(port, '/c');
    client.sendRaw(burst(['a', 'b', 'c', 'd', 'e']));
    const closed = await client.close(1000, 'bye', 3000);
    expect(closed.code).toBe(1000);
    await waitFor(() => events.includes('done'), 3000, 'the end of the loop');
    const close = events.indexOf('close 1000');
    expect(close).toBeGreaterThanOrEqual(0);
    expect(events.filter((e) => !e.startsWith('close'))).toEqual(['a', 'b', 'c', 'd', 'e', 'done']);
  });

  test('a pending next() resolves done when the socket vanishes (1006), and messages() afterwards is an empty iterator', async () => {
    let ended = false;
    let after: unknown = 'unset';
    class Waiting extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) void m;
        ended = true;
      }
      override async onClose(): Promise<void> {
        after = await this.messages().next();
      }
    }
    const { port } = await mount({ '/w': Waiting });
    const client = await connect(port, '/w');
    await sleep(50);
    client.destroy();
    await waitFor(() => ended && after !== 'unset', 3000, 'the end of the loop');
    expect(after).toEqual({ done: true, value: undefined });
  });

  test('an exception in the loop body rejects onOpen: onError gets it and the connection closes with 1011', async () => {
    const errors: string[] = [];
    class Throws extends Behavior {
      override async onOpen(): Promise<void> {
        for await (const m of this.messages()) {
          if (m === 'boom') throw new Error('loop body failed');
          this.send(m);
        }
      }
      override onError(error: Error): void {
        errors.push(error.message);
      }
    }
    const { port } = await mount({ '/x': Throws });
    const client = await connect(port, '/x');
    client.send(0x1, 'ok');
    client.send(0x1, 'boom');
    const before: string[] = [];
    let code: number | undefined;
    for (;;) {
      const f = await client.nextFrame(3000);
      if (f.opcode !== 0x8) before.push(f.payload.toString());
      else {
        code = f.payload.readUInt16BE(0);
        break;
      }
    }
    client.send(0x8, closePayload(1011));
    expect(await client.waitClosed(3000)).toBe(true);
    expect(before).toEqual(['ok']);
    expect(code).toBe(1011);
    expect(errors).toEqual(['loop body failed']);
  });
});

describe('messages(): backpressure', () => {
  test('a slow consumer pauses the socket at the high-water mark (count): the queue stays bounded and every message arrives in order', async () => {
    const N = 300;
    const SIZE = 8 * 1024;
    // One TCP chunk (at most 64 KiB as read by Node) completes at most this many 8 KiB messages.
    const perChunk = Math.ceil((64 * 1024) / SIZE) + 1;
    const got: number[] = [];
    let maxQueued = 0;
    let sawPaused = false;
    let pausedAtEnd: boolean | undefined;
    class Slow extends Behavior {
      override async onOpen(): Promise<void> {
        const stream: MessageStream = this.messages();
        for await (const m of stream) {
          maxQueued = Math.max(maxQueued, stream.queued + 1);
          if (this.request.socket.isPaused()) sawPaused = true;
          got.push((m as Buffer).readUInt32BE(0));
          if (got.length === N) {
            pausedAtEnd = this.request.socket.isPaused();
            this.sendText('all');
          }
          await sleep(1);
        }
      }
    }
    const { port } = await mount({ '/slow': Slow });
    const client = await connect(port, '/slow');
    const payloads = Array.from({ length: N }, (_, i) => {
      const b = Buffer.alloc(SIZE, i & 0xff);
      b.writeUInt32BE(i, 0);
      return b;
    });
    client.sendRaw(burst(payloads));
    const done = await client.nextFrame(20_000);
    expect(done.payload.toString()).toBe('all');
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(sawPaused).toBe(true);
    expect(maxQueued).toBeGreaterThanOrEqual(MESSAGES_HIGH_WATER_COUNT);
    expect(maxQueued).toBeLessThanOrEqual(MESSAGES_HIGH_WATER_COUNT + perChunk);
    // Drained below the low-water mark: reading resumed.
    expect(pausedAtEnd).toBe(false);
  }, 30_000);

  test('large messages pause at the byte mark (1 MiB) before the count mark', async () => {
    const N = 20;
    const SIZE = 300 * 1024;
    const got: number[] = [];
    let maxQueued = 0;
    let maxBytes = 0;
    class Slow extends Behavior {
      override async onOpen(): Promise<void> {
        const stream = this.messages();
        for await (const m of stream) {
          maxQueued = Math.max(maxQueued, stream.queued + 1);
          maxBytes = Math.max(maxBytes, stream.queuedBytes + (m as Buffer).length);
          got.push((m as Buffer).readUInt32BE(0));
          if (got.length === N) this.sendText('all');
          await sleep(5);
        }
      }
    }
    const { port } = await mount({ '/big': Slow }, { maxPayload: 1 << 20 });
    const client = await connect(port, '/big');
    const payloads = Array.from({ length: N }, (_, i) => {
      const b = Buffer.alloc(SIZE);
      b.writeUInt32BE(i, 0);
      return b;
    });
    client.sendRaw(burst(payloads));
    const done = await client.nextFrame(20_000);
    expect(done.payload.toString()).toBe('all');
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    // 4 messages reach 1 MiB; one 64 KiB chunk completes at most one more 300 KiB message.
    expect(maxQueued).toBeLessThanOrEqual(Math.ceil(MESSAGES_HIGH_WATER_BYTES / SIZE) + 1);
    expect(maxBytes).toBeLessThanOrEqual(MESSAGES_HIGH_WATER_BYTES + SIZE);
  }, 30_000);

  test('break while paused resumes reading: later messages reach onText', async () => {
    const hooks: string[] = [];
    let pausedBeforeBreak = false;
    class Quitter extends Behavior {
      override async onOpen(): Promise<void> {
        const stream = this.messages();
        for await (const m of stream) {
          void m;
          await waitFor(() => this.request.socket.isPaused(), 3000, 'the pause');
          pausedBeforeBreak = stream.queued >= MESSAGES_LOW_WATER_COUNT;
          break;
        }
      }
      override onText(text: string): void {
        hooks.push(text);
      }
    }
    const { port } = await mount({ '/q': Quitter });
    const client = await connect(port, '/q');
    const first = Array.from({ length: 40 }, (_, i) => `m${i}`);
    client.sendRaw(burst(first));
    await waitFor(() => hooks.length === 39, 3000, 'the queued messages, released to onText');
    client.send(0x1, 'after');
    await waitFor(() => hooks.length === 40, 3000, 'a message after the release');
    expect(pausedBeforeBreak).toBe(true);
    expect(hooks).toEqual([...first.slice(1), 'after']);
  });

  test('a server close() while paused still completes the closing handshake promptly (reading resumes)', async () => {
    let closing = false;
    class Stuck extends Behavior {
      override async onOpen(): Promise<void> {
        const it = this.messages();
        await it.next();
        await waitFor(() => this.request.socket.isPaused(), 3000, 'the pause');
        closing = true;
        this.close(1000, 'enough');
        // Never reads again.
      }
    }
    const { port } = await mount({ '/stuck': Stuck }, { closeTimeout: 10_000 });
    const client = await connect(port, '/stuck');
    client.sendRaw(burst(Array.from({ length: 60 }, (_, i) => `m${i}`)));
    // Answer the server's close frame only once it has been sent (so after the pause).
    let code: number | undefined;
    for (;;) {
      const f = await client.nextFrame(3000);
      if (f.opcode === 0x8) {
        code = f.payload.readUInt16BE(0);
        break;
      }
    }
    expect(closing).toBe(true);
    const started = Date.now();
    client.send(0x8, closePayload(1000));
    // Without resuming, our close frame would sit unread until the 10 s close timeout.
    expect(await within(client.waitClosed(5000), 6000, 'the close')).toBe(true);
    expect(code).toBe(1000);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
