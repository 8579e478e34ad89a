// tRPC v11 over WebSocket (its ws adapter, applyWSSHandler) on a wsmount route, beside a plain
// Behavior route, on one handler and one http.Server.
// Try it:  npm run build && node demo/ws/trpc.js
//   a query, a mutation and a subscription, with tRPC's own client (over the ws package):
//   node --input-type=module -e "import { createTRPCClient, createWSClient, wsLink } from '@trpc/client'; import WS from 'ws'; const ws = createWSClient({ url: 'ws://127.0.0.1:3000/trpc', WebSocket: WS }); const trpc = createTRPCClient({ links: [wsLink({ client: ws })] }); console.log(await trpc.hello.query('you'), await trpc.add.mutate(5)); trpc.countdown.subscribe(3, { onData: console.log, onComplete: () => ws.close() })"
//   and the Behavior route next to it:
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import http from 'node:http';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { initTRPC } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { WebSocketServer, wsRoute } from 'wsmount/ws';

const t = initTRPC.create();

// Input validators: tRPC takes a plain function that returns the value or throws (no zod needed).
const optionalName = (value) => {
  if (value === undefined || typeof value === 'string') return value;
  throw new Error('expected a name (a string) or nothing');
};
const integer = (value) => {
  if (Number.isInteger(value)) return value;
  throw new Error('expected an integer');
};

/**
 * The router. `state.total` is what `add` adds to; `state.countdowns` counts the subscription's
 * generators: `running` goes back to 0 once each has ended, whether it ran out or its client
 * unsubscribed or left (tRPC then aborts `signal` and calls the generator's return()).
 */
function appRouter(state) {
  return t.router({
    hello: t.procedure.input(optionalName).query(({ input }) => `Hello, ${input ?? 'world'}!`),
    add: t.procedure.input(integer).mutation(({ input }) => (state.total += input)),
    // A v11 subscription: an async generator; each yield is one message to the client.
    countdown: t.procedure.input(integer).subscription(async function* ({ input, signal }) {
      const c = state.countdowns;
      c.started++;
      c.running++;
      try {
        for (let n = input; n >= 0; n--) {
          yield n;
          await delay(10, undefined, { signal }); // an unsubscribe aborts the wait at once
        }
      } finally {
        c.running--;
        c.finished++;
      }
    }),
  });
}

/** A plain wsmount route on the same handler. */
class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTP\n');
  });
  const state = { total: 0, countdowns: { started: 0, running: 0, finished: 0 } };

  // ── wsmount ─────────────────────────────────────────────────────────────
  // Make the WebSocketServer first to keep what applyWSSHandler returns.
  const wss = new WebSocketServer({ noServer: true });
  const trpc = applyWSSHandler({ wss, router: appRouter(state) }); // { broadcastReconnectNotification() }
  const sockets = createWebSocketHandler({ '/trpc': wsRoute(wss), '/echo': Echo });
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    wss,
    trpc,
    state,
    url: `http://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // close frames (1001) first: server.close() waits for upgraded sockets forever
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3000));
  const ws = app.url.replace('http', 'ws');
  console.log(`tRPC on ${ws}/trpc, an echo route on ${ws}/echo`);
  process.once('SIGINT', () => {
    app.trpc.broadcastReconnectNotification(); // tRPC clients reconnect (to another instance, in a deploy)
    void app.close();
  });
}
