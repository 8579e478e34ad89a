/**
 * tRPC v11 over wsmount/ws: demo/ws/trpc.js mounts tRPC's ws adapter (`applyWSSHandler`, written
 * for ws) on '/trpc' with `wsRoute`, beside a plain Behavior route ('/echo'), on one handler and
 * one http.Server. The real tRPC client (`createTRPCClient` with `wsLink` over `createWSClient`,
 * on the `ws` package) runs queries, mutations and subscriptions against it.
 *
 * Every wait is bounded; clients are closed and the demo closed after each test.
 */
import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { TRPCClientError, createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { initTRPC } from '@trpc/server';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import type { WebSocketHandler } from '../../src/index.js';
import type { WebSocketServer } from '../../src/compat/index.js';
import { within } from '../helpers/fixture.js';
import { startWsDemo, stopWsDemos } from './ws-demos.js';
import { type OpenSocket, openWebSocket } from '../mount/examples.js';

/** The demo's router, as a type only (the demo is JS): the same procedures, inputs and outputs. Never called. */
function demoRouterShape() {
  const t = initTRPC.create();
  return t.router({
    hello: t.procedure.input((v: unknown) => v as string | undefined).query((): string => ''),
    add: t.procedure.input((v: unknown) => v as number).mutation((): number => 0),
    countdown: t.procedure.input((v: unknown) => v as number).subscription(async function* (): AsyncGenerator<number> {}),
  });
}
type AppRouter = ReturnType<typeof demoRouterShape>;

interface TrpcDemo {
  server: Server;
  sockets: WebSocketHandler;
  /** The WebSocketServer applyWSSHandler was given. */
  wss: WebSocketServer;
  /** What applyWSSHandler returned. */
  trpc: { broadcastReconnectNotification(): void };
  /** `total`: what `add` added up; `countdowns`: the subscription's generators (started, still running, finished). */
  state: { total: number; countdowns: { started: number; running: number; finished: number } };
  url: string;
  close(): Promise<void>;
}
const wsClients: ReturnType<typeof createWSClient>[] = [];
const peers: OpenSocket[] = [];

afterEach(async () => {
  for (const c of wsClients.splice(0)) await within(c.close(), 3000, 'closing a tRPC client').catch(() => {});
  for (const p of peers.splice(0)) p.ws.close();
  await stopWsDemos();
});

function startDemo(): Promise<TrpcDemo & { ws: string }> {
  return startWsDemo<TrpcDemo>('trpc');
}

/** A tRPC client over its own WebSocket (the ws package); `closes` has the close codes its sockets saw. */
function client(app: { ws: string }) {
  const closes: (number | undefined)[] = [];
  const ws = createWSClient({
    url: `${app.ws}/trpc`,
    WebSocket: WS as unknown as typeof WebSocket,
    retryDelayMs: () => 20,
    onClose: (cause) => void closes.push(cause?.code),
  });
  wsClients.push(ws);
  const trpc = createTRPCClient<AppRouter>({ links: [wsLink<AppRouter>({ client: ws })] });
  return { ws, trpc, closes };
}

/** A running subscription: the values it got, in order, and how it ended. */
function countdown(trpc: ReturnType<typeof client>['trpc'], from: number) {
  const values: number[] = [];
  let started = false;
  let done!: (how: 'complete' | 'error') => void;
  const ended = new Promise<'complete' | 'error'>((resolve) => (done = resolve));
  const subscription = trpc.countdown.subscribe(from, {
    onStarted: () => void (started = true),
    onData: (n) => void values.push(n),
    onComplete: () => done('complete'),
    onError: () => done('error'),
  });
  return { values, ended, subscription, isStarted: () => started };
}

/** Resolves once `check()` holds, polling every 5 ms; fails after `ms`. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  let stop = false;
  const poll = async (): Promise<void> => {
    while (!stop && !check()) await delay(5);
  };
  try {
    await within(poll(), ms, what);
  } finally {
    stop = true;
  }
}

describe('tRPC (applyWSSHandler) on a wsRoute, the tRPC client', () => {
  it('answers queries and mutations over one connection; a bad input gets a BAD_REQUEST', async () => {
    const app = await startDemo();
    const { trpc } = client(app);
    expect(await within(trpc.hello.query('wsmount'), 5000, 'a query')).toBe('Hello, wsmount!');
    expect(await within(trpc.hello.query(undefined), 5000, 'a query without input')).toBe('Hello, world!');
    expect(await within(trpc.add.mutate(5), 5000, 'a mutation')).toBe(5);
    expect(await within(trpc.add.mutate(-2), 5000, 'a second mutation')).toBe(3);
    expect(app.state.total).toBe(3);

    const refused = await within(trpc.add.mutate(1.5).then(() => null, (e: unknown) => e), 5000, 'a mutation with a bad input');
    expect(refused).toBeInstanceOf(TRPCClientError);
    const error = refused as TRPCClientError<AppRouter>;
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.message).toContain('expected an integer');
    expect(app.state.total).toBe(3);

    // All of it over one connection, on the route's WebSocketServer.
    expect(app.wss.clients.size).toBe(1);
    expect(app.sockets.stats().handshakesAccepted).toBe(1);
  });

  it('streams a whole subscription in order, then completes; its generator has ended', async () => {
    const app = await startDemo();
    const { trpc } = client(app);
    const sub = countdown(trpc, 5);
    expect(await within(sub.ended, 5000, 'the countdown')).toBe('complete');
    expect(sub.isStarted()).toBe(true);
    expect(sub.values).toEqual([5, 4, 3, 2, 1, 0]);
    expect(app.state.countdowns).toEqual({ started: 1, running: 0, finished: 1 });
  });

  it('unsubscribing stops the generator on the server; the connection stays and serves the next call', async () => {
    const app = await startDemo();
    const { trpc } = client(app);
    const sub = countdown(trpc, 100000);
    await until('three values', () => sub.values.length >= 3);
    expect(sub.values.slice(0, 3)).toEqual([100000, 99999, 99998]);
    expect(app.state.countdowns).toEqual({ started: 1, running: 1, finished: 0 });

    sub.subscription.unsubscribe(); // the client sends subscription.stop; tRPC aborts the signal and returns the generator
    await until('the generator to end', () => app.state.countdowns.running === 0);
    expect(app.state.countdowns).toEqual({ started: 1, running: 0, finished: 1 });
    expect(app.wss.clients.size).toBe(1);
    expect(app.sockets.clients.size).toBe(1);
    const seen = sub.values.length;
    expect(await within(trpc.hello.query('again'), 5000, 'a query after unsubscribing')).toBe('Hello, again!');
    expect(sub.values.length).toBe(seen);
  });

  it('closing the client closes its connection and stops its running subscriptions on the server', async () => {
    const app = await startDemo();
    const { ws, trpc } = client(app);
    const one = countdown(trpc, 100000);
    const two = countdown(trpc, 50000);
    await until('both subscriptions to stream', () => one.values.length >= 2 && two.values.length >= 2);
    expect(app.state.countdowns).toEqual({ started: 2, running: 2, finished: 0 });
    expect(app.wss.clients.size).toBe(1);

    await within(ws.close(), 5000, 'the client to close');
    await until('the server to drop the connection', () => app.wss.clients.size === 0 && app.sockets.clients.size === 0);
    await until('both generators to end', () => app.state.countdowns.running === 0);
    expect(app.state.countdowns).toEqual({ started: 2, running: 0, finished: 2 });
    // tRPC's client calls close() with no code: the close frame is empty, the server reads 1005.
    expect(app.sockets.stats().closesByCode).toEqual({ '1005': 1 });
  });

  it('the Behavior route works on the same server while a subscription streams', async () => {
    const app = await startDemo();
    const { trpc } = client(app);
    const sub = countdown(trpc, 30);
    await until('the subscription to start', () => sub.values.length >= 1);

    const echo = await openWebSocket(`${app.ws}/echo`);
    peers.push(echo);
    echo.ws.send('over the Behavior route');
    expect(await echo.next()).toBe('over the Behavior route');
    expect(app.sockets.stats().connectionsByRoute).toEqual({ '/trpc': 1, '/echo': 1 });
    expect(app.wss.clients.size).toBe(1); // the Behavior connection is not one of tRPC's

    expect(await within(sub.ended, 5000, 'the countdown')).toBe('complete');
    expect(sub.values).toEqual(Array.from({ length: 31 }, (_, i) => 30 - i));
    expect(await within(trpc.add.mutate(7), 5000, 'a mutation')).toBe(7);
    echo.ws.send('still here');
    expect(await echo.next()).toBe('still here');
  });

  it("broadcastReconnectNotification() (applyWSSHandler's return) reaches the client, which moves to a new connection", async () => {
    const app = await startDemo();
    const { trpc } = client(app);
    expect(await within(trpc.hello.query('first'), 5000, 'a query')).toBe('Hello, first!');
    const [first] = [...app.wss.clients];
    if (first === undefined) throw new Error('no tRPC connection on the server');

    app.trpc.broadcastReconnectNotification();
    await until('the client to reconnect and drop the old connection', () => {
      return app.sockets.stats().handshakesAccepted === 2 && app.wss.clients.size === 1 && !app.wss.clients.has(first);
    });
    expect(await within(trpc.hello.query('second'), 5000, 'a query on the new connection')).toBe('Hello, second!');
    expect(app.wss.clients.size).toBe(1);
  });

  it('sockets.close() sends 1001 to the tRPC client, stops its subscription on the server, and resolves', async () => {
    const app = await startDemo();
    const { trpc, closes } = client(app);
    const sub = countdown(trpc, 100000);
    await until('the subscription to stream', () => sub.values.length >= 2);
    const echo = await openWebSocket(`${app.ws}/echo`);
    peers.push(echo);

    await within(app.sockets.close(), 5000, 'sockets.close()');
    expect(app.sockets.clients.size).toBe(0);
    expect(app.wss.clients.size).toBe(0);
    await until("the client's socket to see the close", () => closes.length >= 1);
    expect(closes[0]).toBe(1001);
    expect((await within(echo.closed, 5000, 'the echo socket to close')).code).toBe(1001);
    await until('the generator to end', () => app.state.countdowns.running === 0);
    expect(app.state.countdowns).toEqual({ started: 1, running: 0, finished: 1 });
    expect(app.sockets.stats().closesByCode).toEqual({ '1001': 2 });
    // The client tries to reconnect; the closed handler, still attached, refuses with 503.
    await until('a reconnect to be refused', () => (app.sockets.stats().handshakesRejectedByStatus['503'] ?? 0) >= 1);
    expect(app.sockets.stats().handshakesAccepted).toBe(2);
  });
});
