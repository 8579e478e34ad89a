/**
 * graphql-ws over wsmount/ws: demo/ws/graphql.js mounts graphql-ws's `useServer` (written for ws)
 * on '/graphql' with `wsRoute`, beside a plain Behavior route ('/echo'), on one handler and one
 * http.Server. The real graphql-ws client (`createClient`, over the `ws` package) runs queries
 * and subscriptions against it.
 *
 * One module graph for `graphql`: graphql 16 ships CommonJS (`main`) and ESM (`module`) copies.
 * Node, running the demo, loads the CommonJS one for the demo and for graphql-ws alike. Under
 * vitest the demo is transformed and its `import 'graphql'` resolves through `module` to the ESM
 * copy, while graphql-ws (external) gets the CommonJS one: two `graphql` instances, and graphql's
 * realm check throws ("Cannot use GraphQLSchema … from another module or realm"). The `vi.mock`
 * below gives the demo the CommonJS copy, as Node does; nothing in wsmount is involved.
 *
 * The clients never retry (`retryAttempts: 0`): a close is seen once, as it happened. Every wait
 * is bounded; clients are disposed and the demo closed after each test.
 */
import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { type Client, type ClientOptions, type FormattedExecutionResult, type SubscribePayload, createClient } from 'graphql-ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WS from 'ws';
import type { WebSocketHandler } from '../../src/index.js';
import type { WebSocketServer } from '../../src/compat/index.js';
import { within } from '../helpers/fixture.js';
import { startWsDemo, stopWsDemos } from './ws-demos.js';
import { type OpenSocket, openWebSocket } from '../mount/examples.js';

// The demo's 'graphql' is the copy graphql-ws loads (see above): index.js, not the `module` index.mjs.
vi.mock('graphql', () => import('graphql/index.js'));

interface GraphQLDemo {
  server: Server;
  sockets: WebSocketHandler;
  /** The WebSocketServer graphql-ws's useServer was given. */
  wss: WebSocketServer;
  /** What useServer returned. */
  graphql: { dispose(): Promise<void> };
  /** The countdown subscription's generators: started, still running, finished (returned or run out). */
  countdowns: { started: number; running: number; finished: number };
  url: string;
  close(): Promise<void>;
}
/** What a graphql-ws error sink gets for a request the server refused: GraphQL errors. */
interface FormattedError {
  message: string;
  locations?: { line: number; column: number }[];
}

/** A close as the client's WebSocket reported it (graphql-ws's 'closed' event gets ws's CloseEvent). */
interface Closed {
  code: number;
  reason: string;
}

const clients: Client[] = [];
const raws: WS[] = [];
const peers: OpenSocket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await within(Promise.resolve(c.dispose()), 3000, 'disposing a client').catch(() => {});
  for (const r of raws.splice(0)) {
    r.on('error', () => {}); // terminate() on a socket still in its handshake (a refused one) emits 'error'
    r.terminate();
  }
  for (const p of peers.splice(0)) p.ws.close();
  await stopWsDemos();
});

function startDemo(): Promise<GraphQLDemo & { ws: string }> {
  return startWsDemo<GraphQLDemo>('graphql');
}

/** The real graphql-ws client over the ws package; the closes its socket saw go to `closes`. */
function client(app: { ws: string }, options: Partial<ClientOptions> = {}): { client: Client; closes: Closed[] } {
  const closes: Closed[] = [];
  const c = createClient({
    url: `${app.ws}/graphql`,
    webSocketImpl: WS,
    retryAttempts: 0,
    ...options,
    on: {
      closed: (event) => {
        const e = event as Closed;
        closes.push({ code: e.code, reason: String(e.reason) });
      },
      ...options.on,
    },
  });
  clients.push(c);
  return { client: c, closes };
}

/** One operation through the client's sink: what `next` got, in order, and how it ended. */
interface Outcome {
  results: FormattedExecutionResult<Record<string, unknown>, unknown>[];
  ended: Promise<{ completed: true } | { completed: false; error: unknown }>;
  unsubscribe: () => void;
}

function run(c: Client, payload: SubscribePayload): Outcome {
  const results: FormattedExecutionResult<Record<string, unknown>, unknown>[] = [];
  let unsubscribe: () => void = () => {};
  const ended = new Promise<{ completed: true } | { completed: false; error: unknown }>((resolve) => {
    unsubscribe = c.subscribe(payload, {
      next: (result) => void results.push(result),
      error: (error) => resolve({ completed: false, error }),
      complete: () => resolve({ completed: true }),
    });
  });
  return { results, ended, unsubscribe };
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

const countdownValues = (results: FormattedExecutionResult<Record<string, unknown>, unknown>[]): unknown[] => results.map((r) => (r.data as { countdown?: unknown } | null | undefined)?.countdown);

describe('graphql-ws (useServer) on a wsRoute, the graphql-ws client', () => {
  it('answers a query', async () => {
    const app = await startDemo();
    const { client: c } = client(app, { lazy: false });
    const named = run(c, { query: 'query Hello($name: String) { hello(name: $name) }', variables: { name: 'wsmount' } });
    expect(await within(named.ended, 5000, 'the query')).toEqual({ completed: true });
    expect(named.results).toEqual([{ data: { hello: 'Hello, wsmount!' } }]);

    const plain = run(c, { query: '{ hello }' });
    expect(await within(plain.ended, 5000, 'the second query')).toEqual({ completed: true });
    expect(plain.results).toEqual([{ data: { hello: 'Hello, world!' } }]);
    // One connection served both, with the subprotocol graphql-ws's handleProtocols chose.
    expect([...app.wss.clients].map((s) => s.protocol)).toEqual(['graphql-transport-ws']);
    expect(app.sockets.stats().handshakesAccepted).toBe(1);
  });

  it('streams a whole subscription in order, then completes; its generator has ended', async () => {
    const app = await startDemo();
    const { client: c } = client(app);
    const sub = run(c, { query: 'subscription { countdown(from: 5) }' });
    expect(await within(sub.ended, 5000, 'the countdown')).toEqual({ completed: true });
    expect(countdownValues(sub.results)).toEqual([5, 4, 3, 2, 1, 0]);
    expect(sub.results.every((r) => r.errors === undefined)).toBe(true);
    expect(app.countdowns).toEqual({ started: 1, running: 0, finished: 1 });

    // A second subscription on the same client (and a different field).
    const greetings = run(c, { query: 'subscription { greetings }' });
    expect(await within(greetings.ended, 5000, 'the greetings')).toEqual({ completed: true });
    expect(greetings.results.map((r) => (r.data as { greetings: string }).greetings)).toEqual(['Hi', 'Bonjour', 'Hola', 'Ciao']);
  });

  it("an invalid query gets the protocol's error: the sink's error() with GraphQL validation errors, no result", async () => {
    const app = await startDemo();
    const { client: c, closes } = client(app, { lazy: false });
    const bad = run(c, { query: '{ nope }' });
    const outcome = await within(bad.ended, 5000, 'the invalid query');
    expect(outcome.completed).toBe(false);
    const errors = (outcome as { error: FormattedError[] }).error;
    expect(Array.isArray(errors)).toBe(true);
    expect(errors.map((e) => e.message)).toEqual(['Cannot query field "nope" on type "Query".']);
    expect(errors[0]?.locations).toEqual([{ line: 1, column: 3 }]);
    expect(bad.results).toEqual([]);

    // A missing required argument, likewise; the connection stays up and serves the next request.
    const missing = run(c, { query: 'subscription { countdown }' });
    const second = await within(missing.ended, 5000, 'the subscription without its argument');
    expect(second.completed).toBe(false);
    expect((second as { error: FormattedError[] }).error.map((e) => e.message)).toEqual([
      'Field "countdown" argument "from" of type "Int!" is required, but it was not provided.',
    ]);
    const good = run(c, { query: '{ hello }' });
    expect(await within(good.ended, 5000, 'a query after the errors')).toEqual({ completed: true });
    expect(good.results).toEqual([{ data: { hello: 'Hello, world!' } }]);
    expect(closes).toEqual([]);
    expect(app.wss.clients.size).toBe(1);
    expect(app.countdowns.started).toBe(0);
  });

  it('unsubscribing returns the server-side generator; the connection stays', async () => {
    const app = await startDemo();
    const { client: c } = client(app, { lazy: false });
    const sub = run(c, { query: 'subscription { countdown(from: 100000) }' });
    await until('three countdown values', () => sub.results.length >= 3);
    expect(countdownValues(sub.results).slice(0, 3)).toEqual([100000, 99999, 99998]);
    expect(app.countdowns).toEqual({ started: 1, running: 1, finished: 0 });

    sub.unsubscribe(); // the client sends 'complete'; graphql-ws calls the generator's return()
    await until('the generator to be returned', () => app.countdowns.running === 0);
    expect(app.countdowns).toEqual({ started: 1, running: 0, finished: 1 });
    expect(app.wss.clients.size).toBe(1);
    expect(app.sockets.clients.size).toBe(1);
    // The client's sink gets nothing more, and the connection serves the next request.
    const seen = sub.results.length;
    const again = run(c, { query: '{ hello }' });
    expect(await within(again.ended, 5000, 'a query after unsubscribing')).toEqual({ completed: true });
    expect(sub.results.length).toBe(seen);
  });

  it('disposing the client closes its connection (1000) and returns its running subscriptions on the server', async () => {
    const app = await startDemo();
    const { client: c, closes } = client(app);
    const one = run(c, { query: 'subscription { countdown(from: 100000) }' });
    const two = run(c, { query: 'subscription { countdown(from: 50000) }' });
    await until('both subscriptions to stream', () => one.results.length >= 2 && two.results.length >= 2);
    expect(app.countdowns).toEqual({ started: 2, running: 2, finished: 0 });
    expect(app.wss.clients.size).toBe(1); // one connection carries both
    expect(app.sockets.clientsOf('/graphql').size).toBe(1);

    await within(Promise.resolve(c.dispose()), 5000, 'dispose()');
    await until('the server to drop the connection', () => app.wss.clients.size === 0 && app.sockets.clients.size === 0);
    await until('both generators to be returned', () => app.countdowns.running === 0);
    expect(app.countdowns).toEqual({ started: 2, running: 0, finished: 2 });
    expect(app.sockets.stats().closesByCode).toEqual({ '1000': 1 });
    expect(closes.map((x) => x.code)).toEqual([1000]);
  });

  it('the Behavior route works on the same server while a subscription streams', async () => {
    const app = await startDemo();
    const { client: c } = client(app, { lazy: false }); // the connection stays after the countdown, whatever the timing
    const sub = run(c, { query: 'subscription { countdown(from: 30) }' });
    await until('the subscription to start', () => sub.results.length >= 1);

    const echo = await openWebSocket(`${app.ws}/echo`);
    peers.push(echo);
    echo.ws.send('over the Behavior route');
    expect(await echo.next()).toBe('over the Behavior route');
    expect(app.sockets.stats().connectionsByRoute).toEqual({ '/graphql': 1, '/echo': 1 });
    expect(app.sockets.clients.size).toBe(2);
    expect(app.wss.clients.size).toBe(1); // the Behavior connection is not one of graphql-ws's

    expect(await within(sub.ended, 5000, 'the countdown')).toEqual({ completed: true });
    expect(countdownValues(sub.results)).toEqual(Array.from({ length: 31 }, (_, i) => 30 - i));
    echo.ws.send('still here');
    expect(await echo.next()).toBe('still here');
  });

  it('sockets.close() sends 1001 to the graphql-ws client, ends its subscription on both sides, and resolves', async () => {
    const app = await startDemo();
    const { client: c, closes } = client(app);
    const sub = run(c, { query: 'subscription { countdown(from: 100000) }' });
    await until('the subscription to stream', () => sub.results.length >= 2);
    const echo = await openWebSocket(`${app.ws}/echo`);
    peers.push(echo);

    await within(app.sockets.close(), 5000, 'sockets.close()');
    expect(app.sockets.clients.size).toBe(0);
    expect(app.wss.clients.size).toBe(0);
    await until('the client to see the close', () => closes.length === 1);
    expect(closes[0]?.code).toBe(1001);
    // With no retries, the running subscription's sink gets the close as its error.
    const outcome = await within(sub.ended, 5000, 'the subscription to end');
    expect(outcome.completed).toBe(false);
    expect((outcome as { error: { code?: unknown } }).error.code).toBe(1001);
    expect((await within(echo.closed, 5000, 'the echo socket to close')).code).toBe(1001);
    await until('the generator to be returned', () => app.countdowns.running === 0);
    expect(app.countdowns).toEqual({ started: 1, running: 0, finished: 1 });
    expect(app.sockets.stats().closesByCode).toEqual({ '1001': 2 });
  });

  it("useServer's dispose() closes its connections with 1001 and resolves; the route then answers 503, the Behavior route goes on", async () => {
    const app = await startDemo();
    const { client: c, closes } = client(app);
    const sub = run(c, { query: 'subscription { countdown(from: 100000) }' });
    await until('the subscription to stream', () => sub.results.length >= 2);
    const echo = await openWebSocket(`${app.ws}/echo`);
    peers.push(echo);

    await within(app.graphql.dispose(), 5000, "useServer's dispose()"); // closes each of wss.clients, then wss.close(cb)
    expect(app.wss.clients.size).toBe(0);
    await until('the client to see the close', () => closes.length === 1);
    expect(closes).toEqual([{ code: 1001, reason: 'Going away' }]);
    await until('the generator to be returned', () => app.countdowns.running === 0);
    expect(app.countdowns).toEqual({ started: 1, running: 0, finished: 1 });

    // The closed WebSocketServer's route refuses new upgrades; the handler and its other route are untouched.
    const refused = new WS(`${app.ws}/graphql`, 'graphql-transport-ws');
    raws.push(refused);
    const status = await within(
      new Promise<number | string>((resolve) => {
        refused.once('unexpected-response', (req, res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        refused.once('open', () => resolve('opened'));
      }),
      5000,
      'an upgrade after dispose()',
    );
    expect(status).toBe(503);
    echo.ws.send('after dispose');
    expect(await echo.next()).toBe('after dispose');
    expect(app.sockets.clients.size).toBe(1);
  });

  it("a client that offers no subprotocol is accepted, then closed by graphql-ws with 4406 (as over ws)", async () => {
    const app = await startDemo();
    const raw = new WS(`${app.ws}/graphql`);
    raws.push(raw);
    const closed = new Promise<Closed>((resolve) => raw.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await within(
      new Promise<void>((resolve, reject) => {
        raw.once('open', () => resolve());
        raw.once('error', reject);
      }),
      5000,
      'opening a socket without a subprotocol',
    );
    expect(raw.protocol).toBe('');
    expect(await within(closed, 5000, 'the close')).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });
    await until('the server to drop it', () => app.wss.clients.size === 0 && app.sockets.clients.size === 0);
    expect(app.sockets.stats().closesByCode).toEqual({ '4406': 1 });
  });

  it("a client that offers only another subprotocol gets none back (graphql-ws's handleProtocols says false), and ws refuses that", async () => {
    const app = await startDemo();
    const raw = new WS(`${app.ws}/graphql`, 'graphql-ws'); // subscriptions-transport-ws, not spoken by graphql-ws 6
    raws.push(raw);
    const error = await within(
      new Promise<Error>((resolve, reject) => {
        raw.once('open', () => reject(new Error('opened')));
        raw.once('error', resolve);
      }),
      5000,
      'the client to give up',
    );
    expect(error.message).toBe('Server sent no subprotocol');
    await until('the server to drop it', () => app.wss.clients.size === 0 && app.sockets.clients.size === 0);
  });
});
