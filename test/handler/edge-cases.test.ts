/**
 * Edges of the production limits found in review: timeouts past Node's timer range, option
 * validation of every route static, the hook failure that stops delivery for good (RFC 6455
 * §7.1.7: the connection is being failed with 1011), control frames in `bytesOut`, and the
 * connection slot of a client that leaves while `verify()` is still running.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type RateLimit, createWebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

describe('timeouts past the timer range mean "never", not "at once"', () => {
  test('verifyTimeout: Infinity lets a 50 ms verify() open the connection', async () => {
    class Slow extends Behavior {
      override async verify(): Promise<void> {
        await sleep(50);
      }
    }
    const { port, handler } = await mount({ '/v': Slow }, { verifyTimeout: Infinity });
    expect((await rawRequest(port, upgradeRequest('/v'))).status).toBe(101);
    expect(handler.stats().verifyTimeouts).toBe(0);
  });

  test('closeTimeout: Infinity waits for the peer to echo the close frame', async () => {
    const codes: number[] = [];
    class Closer extends Behavior {
      override onOpen(): void {
        this.close(4000, 'bye');
      }
      override onClose(code: number): void {
        codes.push(code);
      }
    }
    const { port } = await mount({ '/c': Closer }, { closeTimeout: Infinity, pingInterval: 0 });
    const client = await connect(port, '/c');
    const close = await client.nextFrame(2000);
    expect(close.opcode).toBe(0x8);
    await sleep(30); // a timer fired "at once" would have destroyed the socket by now
    client.send(0x8, close.payload);
    await waitFor(() => codes.length === 1, 2000, 'onClose');
    expect(codes).toEqual([4000]);
  });
});

describe('every option and route static is validated at construction', () => {
  const bad: [string, () => unknown][] = [
    ['static maxPayload NaN', () => createWebSocketHandler({ '/x': class extends Behavior { static override maxPayload = Number.NaN; } })],
    ['static maxPayload 0', () => createWebSocketHandler({ '/x': class extends Behavior { static override maxPayload = 0; } })],
    ['static maxFragments -1', () => createWebSocketHandler({ '/x': class extends Behavior { static override maxFragments = -1; } })],
    ['rateLimit.messages 0.5 (a bucket that never holds a token)', () => createWebSocketHandler({}, { rateLimit: { messages: 0.5, interval: 10 } })],
    ['rateLimit null', () => createWebSocketHandler({}, { rateLimit: null as unknown as RateLimit })],
    ['unclaimedTimeout -1', () => createWebSocketHandler({}, { unclaimedTimeout: -1 })],
  ];
  test.each(bad)('%s throws RangeError', (_name, make) => {
    expect(make).toThrow(RangeError);
  });
});

test('after an async hook rejects, no later message reaches onText, not even those still unread in the socket', async () => {
  const seen: [string, number][] = [];
  class Fails extends Behavior {
    override async onText(text: string): Promise<void> {
      seen.push([text, this.readyState]);
      await sleep(50);
      if (text === 'm0') throw new Error('boom');
    }
  }
  const { port } = await mount({ '/f': Fails }, { pingInterval: 0 });
  const client = await connect(port, '/f');
  for (let i = 0; i < 40; i++) {
    client.send(0x1, `m${i}`);
    await sleep(1);
  }
  const close = await client.expectClose(3000);
  expect(close.code).toBe(1011);
  await sleep(100);
  expect(seen).toEqual([['m0', 1]]);
});

test('bytesOut counts control frames too: a ping, the pong to a client ping, the close frame', async () => {
  let b: Behavior | undefined;
  class Held extends Behavior {
    override onOpen(): void {
      b = this;
    }
  }
  const { port, handler } = await mount({ '/h': Held }, { pingInterval: 0 });
  const client = await connect(port, '/h');
  await waitFor(() => b !== undefined, 2000, 'open');
  const start = handler.stats().bytesOut;
  (b as Behavior).ping('abc'); // 2 + 3
  expect((await client.nextFrame(2000)).opcode).toBe(0x9);
  client.send(0x9, Buffer.from('hello')); // its pong: 2 + 5
  expect((await client.nextFrame(2000)).opcode).toBe(0xa);
  (b as Behavior).close(1000); // 2 + 2
  expect((await client.nextFrame(2000)).opcode).toBe(0x8);
  expect(handler.stats().bytesOut - start).toBe(5 + 7 + 4);
});

test('a client that leaves during a verify() that never settles gives its connection slot back at once', async () => {
  class Never extends Behavior {
    override verify(): Promise<boolean> {
      return new Promise(() => {});
    }
  }
  const { port, handler } = await mount({ '/n': Never, '/ok': Behavior }, { maxConnections: 1, verifyTimeout: 60_000 });
  const leaving = rawRequest(port, upgradeRequest('/n'), 100).catch(() => 'gone');
  await waitFor(() => handler.stats().pendingHandshakes === 1, 2000, 'the pending verify');
  expect((await rawRequest(port, upgradeRequest('/ok'))).status).toBe(503); // the slot is taken
  await leaving; // rawRequest gives up after 100 ms and destroys its socket
  await waitFor(() => handler.stats().pendingHandshakes === 0, 2000, 'the client to be gone');
  expect((await rawRequest(port, upgradeRequest('/ok'))).status).toBe(101);
  expect(handler.stats().verifyTimeouts).toBe(0);
});
