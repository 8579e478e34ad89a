/**
 * Behavior.verify(): the one place that decides, before the 101, whether a connection is
 * accepted. Sync or async; false → 403, HandshakeRejection → its status, anything else → 500.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, type BehaviorClass, HandshakeRejection, type WebSocketHandler } from '../../src/index.js';
import { expectCompleteRejection, fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { defer, keep, mount, connect } = useFixture();

/** A behavior whose verify() runs `decide`, and which greets with 'open' on onOpen. */
function routeWith(decide: (self: Behavior) => ReturnType<Behavior['verify']>, log?: string[]): BehaviorClass {
  return class extends Behavior {
    override verify(): ReturnType<Behavior['verify']> {
      return decide(this);
    }
    override onOpen(): void {
      log?.push('open');
      this.sendText('open');
    }
  };
}

interface GatedRoute {
  cls: BehaviorClass;
  entered: boolean;
  opened: number;
  release(): void;
}

/**
 * A behavior whose async verify() waits until the test calls `release()` (at the latest, at
 * teardown); `entered` turns true once verify() runs, and `opened` counts onOpen calls.
 */
function gatedRoute(): GatedRoute {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  defer(() => open());
  const route: GatedRoute = {
    cls: class Gated extends Behavior {
      override async verify(): Promise<void> {
        route.entered = true;
        await gate;
      }
      override onOpen(): void {
        route.opened++;
      }
    },
    entered: false,
    opened: 0,
    release: () => open(),
  };
  return route;
}

/** handler.close() resolves within 1 s although `gated`'s verify() still waits; released afterwards, it never opens. */
async function expectPromptCloseAndNoOpen(handler: WebSocketHandler, gated: GatedRoute): Promise<void> {
  const t0 = Date.now();
  await within(handler.close({ timeout: 10_000 }), 3000, 'close');
  expect(Date.now() - t0).toBeLessThan(1000);
  gated.release();
  await sleep(50);
  expect(gated.opened).toBe(0);
}

describe('verify() outcomes', () => {
  test.each([
    ['returns true', () => true],
    ['returns undefined', () => undefined],
    ['resolves true', async () => true],
    ['resolves undefined', async () => {}],
  ])('verify %s → the connection opens', async (_what, decide) => {
    const { port, handler } = await mount({ '/v': routeWith(decide) });
    const client = await connect(port, '/v');
    expect(client.status).toBe(101);
    expect((await client.nextFrame(2000)).payload.toString()).toBe('open');
    expect(handler.clients.size).toBe(1);
  });

  test('sync false → complete 403; onOpen never runs; the rejected behavior reads CLOSED', async () => {
    const log: string[] = [];
    let seen: Behavior | undefined;
    const { port, handler } = await mount({
      '/v': routeWith((self) => {
        seen = self;
        return false;
      }, log),
    });
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/v')), 403);
    expect(log).toEqual([]);
    expect(handler.clients.size).toBe(0);
    expect(seen?.readyState).toBe(Behavior.CLOSED);
  });

  test('async resolve false → 403', async () => {
    const { port } = await mount({ '/v': routeWith(async () => false) });
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/v')), 403);
  });

  test("throw new HandshakeRejection(401, 'no', {'WWW-Authenticate': 'Bearer'}) → 401 with that header and body", async () => {
    const { port } = await mount({
      '/v': routeWith(() => {
        throw new HandshakeRejection(401, 'no', { 'WWW-Authenticate': 'Bearer' });
      }),
    });
    const answer = await rawRequest(port, upgradeRequest('/v'));
    expectCompleteRejection(answer, 401);
    expect(answer.headers['www-authenticate']).toBe('Bearer');
    expect(answer.body).toBe('no\n');
  });

  test('a plain Error thrown → 500 (message not leaked) and logger.error is called with it', async () => {
    const { calls, logger } = fakeLogger();
    const boom = new Error('secret database password');
    const { port } = await mount(
      {
        '/v': routeWith(() => {
          throw boom;
        }),
      },
      { logger, logLevel: 'debug' },
    );
    const answer = await rawRequest(port, upgradeRequest('/v'));
    expectCompleteRejection(answer, 500);
    expect(answer.body).not.toContain('secret');
    const errors = calls.filter((c) => c.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.details).toContain(boom);
  });

  test('async verify resolving after 300 ms → open, and this.data set in verify is visible in onOpen', async () => {
    class Slow extends Behavior {
      override data = { user: '' };
      override async verify(req: http.IncomingMessage): Promise<void> {
        await sleep(300);
        this.data = { user: String(req.headers['x-user']) };
      }
      override onOpen(): void {
        this.sendText(`hello ${this.data.user}`);
      }
    }
    const { port } = await mount({ '/slow': Slow });
    const t0 = Date.now();
    const client = await connect(port, '/slow', { 'X-User': 'ann' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect((await client.nextFrame(2000)).payload.toString()).toBe('hello ann');
  });

  test('async verify rejecting with a HandshakeRejection → its status; with a plain error → 500 and logger.error', async () => {
    const { calls, logger } = fakeLogger();
    const { port } = await mount(
      {
        '/limited': routeWith(async () => {
          await sleep(20);
          throw new HandshakeRejection(429, 'slow down', { 'Retry-After': '7' });
        }),
        '/broken': routeWith(async () => {
          await sleep(20);
          throw new Error('kaput');
        }),
      },
      { logger, logLevel: 'debug' },
    );
    const limited = await rawRequest(port, upgradeRequest('/limited'));
    expectCompleteRejection(limited, 429);
    expect(limited.headers['retry-after']).toBe('7');
    expect(limited.body).toBe('slow down\n');
    expect(calls.filter((c) => c.level === 'error')).toHaveLength(0);

    expectCompleteRejection(await rawRequest(port, upgradeRequest('/broken')), 500);
    expect(calls.filter((c) => c.level === 'error')).toHaveLength(1);
  });

  test('readyState is CONNECTING (0) inside verify, sends there are dropped, and verify gets the request', async () => {
    let state: number | undefined;
    let sendStatus: string | undefined;
    let url: string | undefined;
    class Peek extends Behavior {
      override verify(req: http.IncomingMessage): void {
        state = this.readyState;
        sendStatus = this.sendText('too early');
        url = req.url;
      }
      override onOpen(): void {
        this.sendText(`open ${this.readyState}`);
      }
    }
    const { port } = await mount({ '/peek': Peek });
    const client = await connect(port, '/peek?x=1');
    expect(state).toBe(0);
    expect(sendStatus).toBe('dropped');
    expect(url).toBe('/peek?x=1');
    const first = await client.nextFrame(2000);
    expect(first.payload.toString()).toBe('open 1');
  });
});

describe('verify() and the socket', () => {
  test('a client that disconnects during an async verify never gets onOpen, and the handler does not count it', async () => {
    let entered = false;
    let settled = false;
    let opened = 0;
    class Slow extends Behavior {
      override async verify(): Promise<void> {
        entered = true;
        await sleep(300);
        settled = true;
      }
      override onOpen(): void {
        opened++;
      }
    }
    const { port, handler } = await mount({ '/slow': Slow });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(upgradeRequest('/slow'));
    await waitFor(() => entered, 2000, 'verify entered');
    socket.destroy();
    await waitFor(() => settled, 2000, 'verify settled');
    await sleep(100);
    expect(opened).toBe(0);
    expect(handler.clients.size).toBe(0);
  });

  test('the pending set drains when a client leaves during an async verify: handler.close() resolves promptly', async () => {
    const gated = gatedRoute();
    const { port, handler } = await mount({ '/gated': gated.cls }, { closeTimeout: 10_000 });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(upgradeRequest('/gated'));
    await waitFor(() => gated.entered, 2000, 'verify entered');
    socket.destroy();
    await sleep(100);
    await expectPromptCloseAndNoOpen(handler, gated);
  });

  test('handler.close() during an async verify: the client gets 503 once verify settles, and close() resolves', async () => {
    let entered = false;
    class Slow extends Behavior {
      override async verify(): Promise<void> {
        entered = true;
        await sleep(200);
      }
    }
    const { port, handler } = await mount({ '/slow': Slow });
    const answer = rawRequest(port, upgradeRequest('/slow'));
    await waitFor(() => entered, 2000, 'verify entered');
    const closed = handler.close({ timeout: 5000 });
    expectCompleteRejection(await answer, 503);
    const t0 = Date.now();
    await within(closed, 3000, 'close');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(handler.clients.size).toBe(0);
  });

  test('bytes a client sends right behind its upgrade request (during an async verify) are delivered after open', async () => {
    const got: string[] = [];
    class Slow extends Behavior {
      override async verify(): Promise<void> {
        await sleep(150);
      }
      override onText(text: string): void {
        got.push(text);
        this.sendText(`echo ${text}`);
      }
    }
    const { port } = await mount({ '/slow': Slow });
    const socket = keep(net.connect(port, '127.0.0.1'));
    socket.on('error', () => {});
    const data: Buffer[] = [];
    socket.on('data', (d: Buffer) => data.push(d));
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/slow')), encodeClientFrame(0x1, 'early one'), encodeClientFrame(0x1, 'early two')]));
    await waitFor(() => got.length === 2, 3000, 'early messages');
    expect(got).toEqual(['early one', 'early two']);
    await waitFor(() => Buffer.concat(data).includes('echo early two'), 2000, 'echo');
    expect(Buffer.concat(data).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  });

  test('a client that floods bytes during an async verify is cut off: no onOpen, and close() does not wait for it', async () => {
    const gated = gatedRoute();
    const { port, handler } = await mount({ '/gated': gated.cls });
    const socket = keep(net.connect(port, '127.0.0.1'));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(upgradeRequest('/gated'));
    await waitFor(() => gated.entered, 2000, 'verify entered');
    socket.write(Buffer.alloc(200 * 1024, 0x41));
    const cut = await Promise.race([closed.then(() => true), sleep(2000).then(() => false)]);
    expect(cut).toBe(true);
    await expectPromptCloseAndNoOpen(handler, gated);
  });

  test('handler.close() with a verify that never settles destroys the waiting socket after the timeout and resolves', async () => {
    let entered = false;
    class Forever extends Behavior {
      override verify(): Promise<void> {
        entered = true;
        return new Promise<void>(() => {});
      }
    }
    const { port, handler } = await mount({ '/forever': Forever });
    const answer = rawRequest(port, upgradeRequest('/forever'), 3000);
    await waitFor(() => entered, 2000, 'verify entered');
    const t0 = Date.now();
    await within(handler.close({ timeout: 300 }), 3000, 'close');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    const result = await answer;
    expect(result.closed).toBe(true);
    expect(result.status).toBe(0); // destroyed without an answer
  });

  test.each([
    ['sync', false],
    ['async', true],
  ])('this.terminate() inside a %s verify drops the socket with no answer, and the connection never opens', async (_kind, isAsync) => {
    const events: string[] = [];
    class Dropper extends Behavior {
      override verify(): void | Promise<void> {
        if (!isAsync) {
          this.terminate();
          return;
        }
        return sleep(20).then(() => this.terminate());
      }
      override onOpen(): void {
        events.push('open');
      }
      override onClose(code: number): void {
        events.push(`close ${code}`);
      }
    }
    const connects: number[] = [];
    const { port, handler } = await mount({ '/drop': Dropper }, { onConnect: (c) => connects.push(c.id) });
    const answer = await rawRequest(port, upgradeRequest('/drop'), 2000);
    expect(answer).toMatchObject({ status: 0, closed: true });
    await sleep(100);
    expect(events).toEqual([]);
    expect(connects).toEqual([]);
    expect(handler.clients.size).toBe(0);
  });

  test('HandshakeRejection headers cannot split the response (CR/LF in a value is dropped)', async () => {
    const { port } = await mount({
      '/v': routeWith(() => {
        throw new HandshakeRejection(403, 'nope', { 'X-Evil': 'a\r\nSet-Cookie: stolen=1', 'X-Fine': 'ok' });
      }),
    });
    const answer = await rawRequest(port, upgradeRequest('/v'));
    expectCompleteRejection(answer, 403);
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(answer.headers['x-evil']).toBeUndefined();
    expect(answer.headers['x-fine']).toBe('ok');
  });

  test('bytes sent in the same packet as a sync-verified upgrade (the head) are delivered', async () => {
    const got: string[] = [];
    class Now extends Behavior {
      override onText(text: string): void {
        got.push(text);
      }
    }
    const { port } = await mount({ '/now': Now });
    const socket = keep(net.connect(port, '127.0.0.1'));
    socket.on('error', () => {});
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/now')), encodeClientFrame(0x1, 'in the head')]));
    await waitFor(() => got.length === 1, 3000, 'head message');
    expect(got).toEqual(['in the head']);
  });
});
