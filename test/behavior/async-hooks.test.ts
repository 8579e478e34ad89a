/**
 * Async hooks order the messages behind them: while a promise returned by onOpen, onText or
 * onBinary is pending, later messages wait, in order, and reach the hooks one at a time after it
 * settles; reading pauses while too many wait (16 messages / 1 MiB) and resumes at 4 / 256 KiB;
 * a rejected hook reaches onError, closes with 1011 and drops the waiting messages; onClose is
 * the last hook, after the pending one and the messages behind it; messages() adopts them.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, MESSAGES_HIGH_WATER_COUNT } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { type RawClient, closePayload, encodeClientFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect, gate } = useFixture();

/** Data frames in one TCP write, in order: strings as text, Buffers as binary. */
function burst(payloads: (string | Buffer)[]): Buffer {
  return Buffer.concat(payloads.map((p) => encodeClientFrame(typeof p === 'string' ? 0x1 : 0x2, p)));
}


/** Reads frames up to the server's close frame; returns its code and reason. */
async function serverClose(client: RawClient): Promise<{ code: number | undefined; reason: string; data: string[] }> {
  const data: string[] = [];
  for (;;) {
    const f = await client.nextFrame(3000);
    if (f.opcode === 0x8) return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, reason: f.payload.subarray(2).toString(), data };
    data.push(f.payload.toString());
  }
}

describe('async onText / onBinary: one at a time, in order', () => {
  test('a burst of 100 messages to an onText that awaits a timer each time: all arrive, in order, never more than one in flight', async () => {
    const N = 100;
    const got: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    class Slow extends Behavior {
      override async onText(text: string): Promise<void> {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(1);
        got.push(text);
        inFlight--;
      }
    }
    const { port } = await mount({ '/s': Slow });
    const client = await connect(port, '/s');
    const sent = Array.from({ length: N }, (_, i) => `m${i}`);
    client.sendRaw(burst(sent));
    await waitFor(() => got.length === N, 8000, 'all 100 messages');
    expect(got).toEqual(sent);
    expect(maxInFlight).toBe(1);
  });

  test('text and binary share one order: an async onBinary holds back the onText behind it, and vice versa', async () => {
    const events: string[] = [];
    class Mixed extends Behavior {
      override async onText(text: string): Promise<void> {
        events.push(`text ${text} start`);
        await sleep(20);
        events.push(`text ${text} end`);
      }
      override async onBinary(bytes: Buffer): Promise<void> {
        events.push(`binary ${bytes.length} start`);
        await sleep(20);
        events.push(`binary ${bytes.length} end`);
      }
    }
    const { port } = await mount({ '/m': Mixed });
    const client = await connect(port, '/m');
    client.sendRaw(burst([Buffer.alloc(3), 'a', Buffer.alloc(5), 'b']));
    await waitFor(() => events.length === 8, 3000, 'four messages');
    expect(events).toEqual([
      'binary 3 start',
      'binary 3 end',
      'text a start',
      'text a end',
      'binary 5 start',
      'binary 5 end',
      'text b start',
      'text b end',
    ]);
  });

  test('a sync onText is not held back by anything: replies come at once, in order', async () => {
    const got: string[] = [];
    class Sync extends Behavior {
      override onText(text: string): void {
        got.push(text);
        this.sendText(text);
      }
    }
    const { port } = await mount({ '/s': Sync });
    const client = await connect(port, '/s');
    client.sendRaw(burst(['1', '2', '3']));
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push((await client.nextFrame(2000)).payload.toString());
    expect(replies).toEqual(['1', '2', '3']);
    expect(got).toEqual(['1', '2', '3']);
  });

  test(`reading pauses while ${MESSAGES_HIGH_WATER_COUNT} messages wait behind a pending hook and resumes once they are delivered`, async () => {
    const g = gate();
    const got: string[] = [];
    const paused: boolean[] = [];
    let self: Behavior | undefined;
    class Blocked extends Behavior {
      static override keepRequest = true;
      override async onText(text: string): Promise<void> {
        self = this;
        got.push(text);
        if (text === 'm0') await g.wait;
        paused.push(this.request.socket.isPaused());
      }
    }
    const { port } = await mount({ '/b': Blocked });
    const client = await connect(port, '/b');
    const sent = Array.from({ length: 60 }, (_, i) => `m${i}`);
    client.sendRaw(burst(sent));
    await waitFor(() => self !== undefined && self.request.socket.isPaused(), 3000, 'the pause');
    await sleep(50);
    expect(got).toEqual(['m0']);
    g.open();
    await waitFor(() => got.length === 60, 3000, 'all messages');
    expect(got).toEqual(sent);
    expect(self?.request.socket.isPaused()).toBe(false);
    client.send(0x1, 'later');
    await waitFor(() => got.length === 61, 3000, 'a later message');
  });
});

describe('async onOpen', () => {
  test('messages that arrive while onOpen is pending wait for it, then reach the hooks in order', async () => {
    const events: string[] = [];
    class SlowOpen extends Behavior {
      override async onOpen(): Promise<void> {
        events.push('open start');
        await sleep(100);
        events.push('open end');
      }
      override onText(text: string): void {
        events.push(`text ${text}`);
      }
      override onBinary(bytes: Buffer): void {
        events.push(`binary ${[...bytes].join('')}`);
      }
    }
    const { port } = await mount({ '/o': SlowOpen });
    const client = await connect(port, '/o');
    client.sendRaw(burst(['a', Buffer.from([1, 2]), 'b']));
    await sleep(40);
    expect(events).toEqual(['open start']);
    await waitFor(() => events.length === 5, 3000, 'the messages');
    expect(events).toEqual(['open start', 'open end', 'text a', 'binary 12', 'text b']);
  });
});

describe('a rejected hook', () => {
  test('onError gets the error, the connection closes with 1011, and the messages waiting behind the hook are dropped', async () => {
    const texts: string[] = [];
    const errors: string[] = [];
    const closes: number[] = [];
    class Fails extends Behavior {
      override async onText(text: string): Promise<void> {
        texts.push(text);
        await sleep(50);
        if (text === 'boom') throw new Error('async hook failed');
      }
      override onError(error: Error): void {
        errors.push(error.message);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { port } = await mount({ '/f': Fails });
    const client = await connect(port, '/f');
    client.sendRaw(burst(['boom', 'w1', 'w2', 'w3']));
    const end = await serverClose(client);
    expect(end).toMatchObject({ code: 1011, reason: 'internal error' });
    client.send(0x8, closePayload(1011));
    expect(await client.waitClosed(3000)).toBe(true);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(errors).toEqual(['async hook failed']);
    expect(texts).toEqual(['boom']);
    expect(closes).toEqual([1011]);
  });

  test('an async onOpen that rejects: onError, 1011, and the messages that waited for it never reach onText', async () => {
    const texts: string[] = [];
    const errors: string[] = [];
    class BadOpen extends Behavior {
      override async onOpen(): Promise<void> {
        await sleep(50);
        throw new Error('open failed');
      }
      override onText(text: string): void {
        texts.push(text);
      }
      override onError(error: Error): void {
        errors.push(error.message);
      }
    }
    const { port } = await mount({ '/o': BadOpen });
    const client = await connect(port, '/o');
    client.sendRaw(burst(['a', 'b']));
    expect((await serverClose(client)).code).toBe(1011);
    await sleep(50);
    expect(errors).toEqual(['open failed']);
    expect(texts).toEqual([]);
  });
});

describe('onClose is the last hook', () => {
  test('the peer closes while a hook is pending: the waiting messages are delivered first, then onClose', async () => {
    const events: string[] = [];
    class Slow extends Behavior {
      override async onText(text: string): Promise<void> {
        events.push(`${text} start (readyState ${this.readyState})`);
        await sleep(40);
        events.push(`${text} end`);
      }
      override onClose(code: number, reason: string): void {
        events.push(`close ${code} ${reason}`);
      }
    }
    const { port, handler } = await mount({ '/s': Slow });
    const client = await connect(port, '/s');
    client.sendRaw(Buffer.concat([burst(['a', 'b', 'c']), encodeClientFrame(0x8, closePayload(1000, 'bye'))]));
    const answer = await client.expectClose(3000);
    expect(answer.code).toBe(1000);
    // The socket is gone and the client has left the handler's set before onClose runs.
    await waitFor(() => handler.clients.size === 0, 2000, 'left the set');
    await waitFor(() => events.length === 7, 3000, 'every hook');
    expect(events).toEqual(['a start (readyState 1)', 'a end', 'b start (readyState 3)', 'b end', 'c start (readyState 3)', 'c end', 'close 1000 bye']);
  });

  test('the peer vanishes while onOpen is pending: onClose (1006) runs after onOpen settles', async () => {
    const events: string[] = [];
    class SlowOpen extends Behavior {
      override async onOpen(): Promise<void> {
        events.push('open start');
        await sleep(80);
        events.push('open end');
      }
      override onClose(code: number): void {
        events.push(`close ${code}`);
      }
    }
    const { port } = await mount({ '/o': SlowOpen });
    const client = await connect(port, '/o');
    await waitFor(() => events.length === 1, 2000, 'onOpen');
    client.destroy();
    await waitFor(() => events.length === 3, 3000, 'onClose');
    expect(events).toEqual(['open start', 'open end', 'close 1006']);
  });

  test('a rejected hook with the peer already gone: onError, then onClose, once', async () => {
    const events: string[] = [];
    class Fails extends Behavior {
      override async onText(): Promise<void> {
        await sleep(60);
        throw new Error('late failure');
      }
      override onError(error: Error): void {
        events.push(`error ${error.message}`);
      }
      override onClose(code: number): void {
        events.push(`close ${code}`);
      }
    }
    const { port } = await mount({ '/f': Fails });
    const client = await connect(port, '/f');
    client.send(0x1, 'x');
    await sleep(10);
    client.destroy();
    await waitFor(() => events.length === 2, 3000, 'both hooks');
    await sleep(50);
    expect(events).toEqual(['error late failure', 'close 1006']);
  });
});

describe('messages() adopts what waits behind a pending hook', () => {
  test('an async onText that starts messages() gets the messages that waited behind it first, then later ones; none reach onText twice', async () => {
    const hooks: string[] = [];
    const iterated: string[] = [];
    class Switch extends Behavior {
      override async onText(text: string): Promise<void> {
        hooks.push(text);
        await sleep(80);
        for await (const m of this.messages()) iterated.push(String(m));
      }
    }
    const { port } = await mount({ '/s': Switch });
    const client = await connect(port, '/s');
    client.sendRaw(burst(['first', 'w1', 'w2']));
    await waitFor(() => iterated.length === 2, 3000, 'the waiting messages');
    client.send(0x1, 'later');
    await waitFor(() => iterated.length === 3, 3000, 'a later message');
    expect(hooks).toEqual(['first']);
    expect(iterated).toEqual(['w1', 'w2', 'later']);
  });
});
