/**
 * Behavior hooks: onOpen/onText/onBinary/onPing/onPong/onClose/onError, hook failures (1011,
 * and the server keeps serving), onClose exactly once per connection with the right code in
 * each close path, and the seed's handler-level callbacks reached through the base class.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type Client, type HandlerOptions, ProtocolError } from '../../src/index.js';
import { Echo, echoes, fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload } from '../helpers/raw.js';
import { type TestServer, sleep, waitFor } from '../helpers/server.js';

const { serve, connect } = useFixture();

/** Reads frames up to the server's close frame and returns its code. */
async function closeCodeFromServer(client: RawClient): Promise<number | undefined> {
  for (;;) {
    const f = await client.nextFrame(3000);
    if (f.opcode === 0x8) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
  }
}

describe('hooks receive what the peer sends', () => {
  test('onOpen, onText (joined fragments), onBinary (a Buffer), onPing (pong already sent), onPong, onClose', async () => {
    const events: unknown[] = [];
    class All extends Behavior {
      override onOpen(): void {
        events.push('open');
      }
      override onText(text: string): void {
        events.push(['text', text]);
      }
      override onBinary(bytes: Buffer): void {
        events.push(['binary', Buffer.isBuffer(bytes), [...bytes]]);
      }
      override onPing(data: Buffer): void {
        events.push(['ping', data.toString()]);
      }
      override onPong(data: Buffer): void {
        events.push(['pong', data.toString()]);
      }
      override onClose(code: number, reason: string): void {
        events.push(['close', code, reason]);
      }
      override onError(error: Error): void {
        events.push(['error', error.message]);
      }
    }
    const s = await serve({ '/all': All });
    const client = await connect(s.port, '/all');
    client.send(0x1, 'héllo');
    client.send(0x1, 'frag', { fin: false });
    client.send(0x0, 'mented', { fin: true });
    client.send(0x2, Buffer.from([0, 1, 255]));
    client.send(0x9, 'are you there');
    const pong = await client.nextFrame(2000);
    expect(pong.opcode).toBe(0xa);
    expect(pong.payload.toString()).toBe('are you there');
    client.send(0xa, 'unsolicited');
    const closed = await client.close(1000, 'bye');
    expect(closed.code).toBe(1000);
    await waitFor(() => events.length === 7, 2000, 'all events');
    expect(events).toEqual([
      'open',
      ['text', 'héllo'],
      ['text', 'fragmented'],
      ['binary', true, [0, 1, 255]],
      ['ping', 'are you there'],
      ['pong', 'unsolicited'],
      ['close', 1000, 'bye'],
    ]);
  });

  test('onError receives a ProtocolError for a peer violation (unmasked frame) and the connection closes with 1002', async () => {
    const errors: Error[] = [];
    const closes: number[] = [];
    class Strict extends Behavior {
      override onError(error: Error): void {
        errors.push(error);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const s = await serve({ '/strict': Strict });
    const client = await connect(s.port, '/strict');
    client.send(0x1, 'naked', { mask: false });
    const { code, tcpClosed } = await client.expectClose(3000);
    expect(code).toBe(1002);
    expect(tcpClosed).toBe(true);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProtocolError);
    expect(closes).toEqual([1002]);
  });
});

describe('a hook that throws or rejects', () => {
  const failing: [string, (c: RawClient) => void, (b: Behavior, e: Error) => void][] = [
    ['onText throws', (c) => c.send(0x1, 'x'), (b, e) => (b.onText = () => { throw e; })],
    ['onText rejects', (c) => c.send(0x1, 'x'), (b, e) => (b.onText = async () => { await sleep(5); throw e; })],
    ['onBinary throws', (c) => c.send(0x2, Buffer.from([1])), (b, e) => (b.onBinary = () => { throw e; })],
    ['onBinary rejects', (c) => c.send(0x2, Buffer.from([1])), (b, e) => (b.onBinary = () => Promise.reject(e))],
    ['onPing throws', (c) => c.send(0x9, 'p'), (b, e) => (b.onPing = () => { throw e; })],
    ['onPong throws', (c) => c.send(0xa, 'p'), (b, e) => (b.onPong = () => { throw e; })],
  ];

  test.each(failing)('%s → onError gets the error, the client gets close 1011, onClose(1011), others are still served', async (_name, trigger, arm) => {
    const boom = new Error('hook failed');
    const seenErrors: Error[] = [];
    const closes: number[] = [];
    const { calls, logger } = fakeLogger();
    class Fragile extends Behavior {
      override onOpen(): void {
        arm(this, boom);
      }
      override onError(error: Error): void {
        seenErrors.push(error);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const s = await serve({ '/fragile': Fragile, '/echo': Echo }, { logger, logLevel: 'debug' });
    const bystander = await connect(s.port, '/echo');
    const client = await connect(s.port, '/fragile');
    trigger(client);
    expect(await closeCodeFromServer(client)).toBe(1011);
    client.send(0x8, closePayload(1011));
    expect(await client.waitClosed(2000)).toBe(true);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(seenErrors).toEqual([boom]);
    expect(closes).toEqual([1011]);
    expect(calls.some((c) => c.level === 'error')).toBe(true);

    await echoes(bystander, 'still served');
    const fresh = await connect(s.port, '/echo');
    await echoes(fresh, 'new clients too');
  });

  test.each([
    ['throws', () => { throw new Error('open failed'); }],
    ['rejects', async () => { throw new Error('open failed'); }],
  ])('onOpen %s → onError, close 1011', async (_how, fail) => {
    const seen: string[] = [];
    class BadOpen extends Behavior {
      override onOpen(): void | Promise<void> {
        return fail();
      }
      override onError(error: Error): void {
        seen.push(error.message);
      }
    }
    const s = await serve({ '/bad': BadOpen });
    const client = await connect(s.port, '/bad');
    expect(await closeCodeFromServer(client)).toBe(1011);
    expect(seen).toEqual(['open failed']);
  });

  test('a non-Error thrown value reaches onError as an Error', async () => {
    const seen: unknown[] = [];
    class Odd extends Behavior {
      override onText(): void {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'a string';
      }
      override onError(error: Error): void {
        seen.push(error);
      }
    }
    const s = await serve({ '/odd': Odd });
    const client = await connect(s.port, '/odd');
    client.send(0x1, 'x');
    expect(await closeCodeFromServer(client)).toBe(1011);
    expect(seen[0]).toBeInstanceOf(Error);
    expect((seen[0] as Error).message).toContain('a string');
  });

  test('onError that throws too is logged; the connection still closes with 1011', async () => {
    const { calls, logger } = fakeLogger();
    class Worse extends Behavior {
      override onText(): void {
        throw new Error('first');
      }
      override onError(): void {
        throw new Error('second');
      }
    }
    const s = await serve({ '/worse': Worse }, { logger, logLevel: 'debug' });
    const client = await connect(s.port, '/worse');
    client.send(0x1, 'x');
    expect(await closeCodeFromServer(client)).toBe(1011);
    expect(calls.filter((c) => c.level === 'error').length).toBeGreaterThanOrEqual(2);
  });

  test('onClose that throws is logged and the client still leaves `clients`', async () => {
    const { calls, logger } = fakeLogger();
    class BadClose extends Behavior {
      override onClose(): void {
        throw new Error('close failed');
      }
    }
    const s = await serve({ '/bc': BadClose, '/echo': Echo }, { logger, logLevel: 'debug' });
    const client = await connect(s.port, '/bc');
    await waitFor(() => s.srv.handler.clients.size === 1, 2000, 'joined');
    await client.close(1000);
    await waitFor(() => s.srv.handler.clients.size === 0, 2000, 'left');
    await waitFor(() => calls.some((c) => c.level === 'error' && /onClose/.test(c.message)), 2000, 'logged');
    await echoes(await connect(s.port, '/echo'), 'fine');
  });
});

describe('onClose is called exactly once, with the right code, in every close path', () => {
  /** Serves, at /t, a behavior that records its opens and closes, and connects one raw client to it. */
  async function openTracked(
    options: HandlerOptions = {},
  ): Promise<{ closes: [number, string][]; made: Behavior[]; s: TestServer; client: RawClient }> {
    const closes: [number, string][] = [];
    const made: Behavior[] = [];
    class Tracked extends Behavior {
      override onOpen(): void {
        made.push(this);
      }
      override onText(text: string): void {
        if (text === 'close 4001') this.close(4001, 'by server');
        if (text === 'terminate') this.terminate();
        if (text === 'throw') throw new Error('boom');
      }
      override onClose(code: number, reason: string): void {
        closes.push([code, reason]);
      }
    }
    const s = await serve({ '/t': Tracked }, options);
    const client = await connect(s.port, '/t');
    return { closes, made, s, client };
  }

  /** Waits for the first onClose, and a little more so that a second one would show; returns `closes`. */
  async function settled<T>(closes: T[]): Promise<T[]> {
    await waitFor(() => closes.length > 0, 3000, 'onClose');
    await sleep(150);
    return closes;
  }

  test('the client closes with 1000 and a reason → (1000, reason)', async () => {
    const { closes, client } = await openTracked();
    const echo = await client.close(1000, 'see you');
    expect(echo.code).toBe(1000);
    expect(echo.tcpClosed).toBe(true);
    expect(await settled(closes)).toEqual([[1000, 'see you']]);
  });

  test('the client closes with an empty close frame → 1005, and the server echoes an empty close', async () => {
    const { closes, client } = await openTracked();
    client.send(0x8, Buffer.alloc(0));
    const echo = await client.expectClose(2000);
    expect(echo.code).toBeUndefined();
    expect(await settled(closes)).toEqual([[1005, '']]);
  });

  test('the client vanishes without a close frame → 1006', async () => {
    const { closes, made, client } = await openTracked();
    await waitFor(() => made.length === 1, 2000, 'open');
    client.destroy();
    expect(await settled(closes)).toEqual([[1006, '']]);
  });

  test('the server closes with 4001 and the client echoes it → 4001', async () => {
    const { closes, client } = await openTracked();
    client.send(0x1, 'close 4001');
    const f = await client.nextFrame(2000);
    expect(f.opcode).toBe(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(4001);
    expect(f.payload.subarray(2).toString()).toBe('by server');
    client.send(0x8, closePayload(4001, 'by server'));
    expect(await client.waitClosed(2000)).toBe(true);
    expect(await settled(closes)).toEqual([[4001, 'by server']]);
  });

  test('terminate() → 1006 at once, no close frame', async () => {
    const { closes, client } = await openTracked();
    client.send(0x1, 'terminate');
    expect(await client.waitClosed(2000)).toBe(true);
    expect(client.pending().filter((f) => f.opcode === 0x8)).toEqual([]);
    expect(await settled(closes)).toEqual([[1006, '']]);
  });

  test('a protocol error → 1002', async () => {
    const { closes, client } = await openTracked();
    client.send(0x3, 'reserved opcode');
    expect((await client.expectClose(2000)).code).toBe(1002);
    expect((await settled(closes)).map((c) => c[0])).toEqual([1002]);
  });

  test('a hook failure → 1011 (the client echoes it)', async () => {
    const { closes, client } = await openTracked();
    client.send(0x1, 'throw');
    expect(await closeCodeFromServer(client)).toBe(1011);
    client.send(0x8, closePayload(1011));
    expect((await settled(closes)).map((c) => c[0])).toEqual([1011]);
  });

  test('handler.close() → 1001 (the client echoes it)', async () => {
    const { closes, made, s, client } = await openTracked();
    await waitFor(() => made.length === 1, 2000, 'open');
    const closing = s.srv.handler.close({ timeout: 2000 });
    expect(await closeCodeFromServer(client)).toBe(1001);
    client.send(0x8, closePayload(1001));
    await within(closing, 3000, 'close');
    expect(await settled(closes)).toEqual([[1001, '']]);
  });

  test('the server closes and the client never answers → 1006 after closeTimeout', async () => {
    const { closes, client } = await openTracked({ closeTimeout: 200 });
    client.send(0x1, 'close 4001');
    expect(await closeCodeFromServer(client)).toBe(4001);
    expect(await client.waitClosed(2000)).toBe(true);
    expect(await settled(closes)).toEqual([[1006, '']]);
  });

  test('both sides close at once (crossing close frames) → one onClose', async () => {
    const { closes, client } = await openTracked();
    client.send(0x1, 'close 4001');
    client.send(0x8, closePayload(4002, 'client'));
    await client.waitClosed(2000);
    expect(await settled(closes)).toHaveLength(1);
    expect([4001, 4002]).toContain(closes[0]?.[0]);
  });
});

describe("the seed's handler-level callbacks through the base Behavior", () => {
  test('a route mapped to Behavior itself calls onConnect(client), onMessage(client, string | Buffer), onDisconnect(client, code, reason)', async () => {
    const events: unknown[] = [];
    let connected: Client | undefined;
    let handlerClientsHadIt = false;
    const s = await serve(
      { '/seed': Behavior },
      {
        onConnect: (client) => {
          connected = client;
          handlerClientsHadIt = client.handler.clients.has(client);
          events.push('connect');
        },
        onMessage: (client, data) => {
          events.push(['message', client === connected, typeof data === 'string' ? data : ['buffer', Buffer.isBuffer(data), [...data]]]);
        },
        onDisconnect: (client, code, reason) => {
          events.push(['disconnect', client === connected, code, reason]);
        },
      },
    );
    const client = await connect(s.port, '/seed');
    client.send(0x1, 'hi');
    client.send(0x2, Buffer.from([9, 8]));
    await waitFor(() => events.length === 3, 2000, 'messages');
    await client.close(1000, 'later');
    await waitFor(() => events.length === 4, 2000, 'disconnect');
    expect(events).toEqual([
      'connect',
      ['message', true, 'hi'],
      ['message', true, ['buffer', true, [9, 8]]],
      ['disconnect', true, 1000, 'later'],
    ]);
    expect(connected).toBeInstanceOf(Behavior);
    expect(handlerClientsHadIt).toBe(true);
  });

  test('async callbacks: messages wait for an async onConnect; a rejecting onConnect or onMessage closes with 1011 and is logged, a rejecting onDisconnect is logged: none is an unhandled rejection', async () => {
    const events: string[] = [];
    let release: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { calls, logger } = fakeLogger();
    const s = await serve(
      { '/slow': Behavior, '/bad-connect': Behavior, '/bad-message': Behavior },
      {
        logger,
        logLevel: 'debug',
        onConnect: async (client) => {
          if (client.route === '/bad-connect') throw new Error('connect failed');
          if (client.route === '/slow') await opened;
          events.push(`connect ${client.route}`);
        },
        onMessage: async (client, data) => {
          if (client.route === '/bad-message') throw new Error('message failed');
          events.push(`message ${String(data)}`);
        },
        onDisconnect: async (client) => {
          events.push(`disconnect ${client.route}`);
          throw new Error('disconnect failed');
        },
      },
    );
    const slow = await connect(s.port, '/slow');
    slow.send(0x1, 'early');
    await sleep(50);
    expect(events).toEqual([]); // the message waits for onConnect's promise
    release();
    await waitFor(() => events.includes('message early'), 2000, 'the early message');
    expect(events).toEqual(['connect /slow', 'message early']);

    const badConnect = await connect(s.port, '/bad-connect');
    expect((await badConnect.expectClose(2000)).code).toBe(1011);
    const badMessage = await connect(s.port, '/bad-message');
    badMessage.send(0x1, 'x');
    expect((await badMessage.expectClose(2000)).code).toBe(1011);
    await slow.close(1000);
    await waitFor(() => calls.filter((c) => /onDisconnect rejected/.test(c.message)).length === 3, 2000, 'three rejected onDisconnect logged');
    expect(calls.some((c) => c.level === 'error' && /onOpen threw/.test(c.message) && String(c.details[0]).includes('connect failed'))).toBe(true);
    expect(calls.some((c) => c.level === 'error' && /onText threw/.test(c.message) && String(c.details[0]).includes('message failed'))).toBe(true);
  });

  test('a subclass that overrides onText and calls super.onText still forwards; one that does not call super does not', async () => {
    const messages: [string, unknown][] = [];
    const connects: string[] = [];
    class Forwarding extends Behavior {
      override onText(text: string): void {
        this.sendText(`saw ${text}`);
        super.onText(text);
      }
    }
    class Silent extends Behavior {
      override onOpen(): void {}
      override onText(text: string): void {
        this.sendText(`kept ${text}`);
      }
    }
    const s = await serve(
      { '/fwd': Forwarding, '/silent': Silent },
      {
        onConnect: (c) => connects.push(c.route),
        onMessage: (c, data) => messages.push([c.route, data]),
      },
    );
    const fwd = await connect(s.port, '/fwd');
    fwd.send(0x1, 'a');
    expect((await fwd.nextFrame(2000)).payload.toString()).toBe('saw a');
    const silent = await connect(s.port, '/silent');
    silent.send(0x1, 'b');
    expect((await silent.nextFrame(2000)).payload.toString()).toBe('kept b');
    await sleep(50);
    expect(messages).toEqual([['/fwd', 'a']]);
    expect(connects).toEqual(['/fwd']);
  });
});
