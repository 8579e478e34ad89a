// GraphQL over WebSocket with graphql-ws (written for ws) on a wsmount route, beside a plain
// Behavior route, on one handler and one http.Server.
// Try it:  npm run build && node demo/ws/graphql.js
//   a subscription, with graphql-ws's own client (over the ws package):
//   node --input-type=module -e "import { createClient } from 'graphql-ws'; import WS from 'ws'; const c = createClient({ url: 'ws://127.0.0.1:3000/graphql', webSocketImpl: WS }); c.subscribe({ query: 'subscription { countdown(from: 3) }' }, { next: (r) => console.log(r.data), error: console.error, complete: () => c.dispose() })"
//   and the Behavior route next to it:
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import http from 'node:http';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { buildSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { wsRoute } from 'wsmount/ws';

const schema = buildSchema(`
  type Query {
    hello(name: String): String!
  }
  type Subscription {
    "from, from - 1, …, 0, one every few milliseconds"
    countdown(from: Int!): Int!
    "one greeting per language, then done"
    greetings: String!
  }
`);

/**
 * The resolvers, as graphql-ws's `roots` (one object per operation type). A subscription field
 * returns an async iterator; each value it yields is the root of one result ({ countdown: 3 }).
 * `countdowns` counts the generators: `running` goes back to 0 once every one has ended, whether
 * it ran out or its client unsubscribed or left (graphql-ws then calls its return()).
 */
function resolvers(countdowns) {
  return {
    query: {
      hello: ({ name }) => `Hello, ${name ?? 'world'}!`,
    },
    subscription: {
      countdown: async function* ({ from }) {
        countdowns.started++;
        countdowns.running++;
        try {
          for (let n = from; n >= 0; n--) {
            yield { countdown: n };
            await delay(10);
          }
        } finally {
          countdowns.running--;
          countdowns.finished++;
        }
      },
      greetings: async function* () {
        for (const hi of ['Hi', 'Bonjour', 'Hola', 'Ciao']) yield { greetings: hi };
      },
    },
  };
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
  const countdowns = { started: 0, running: 0, finished: 0 };

  // ── wsmount ─────────────────────────────────────────────────────────────
  // wsRoute((wss) => …) hands graphql-ws a ws-style WebSocketServer: useServer sets its
  // handleProtocols (only 'graphql-transport-ws' is spoken) and listens for 'connection'.
  let graphql; // what useServer returns: { dispose() }
  const GraphQL = wsRoute((wss) => {
    graphql = useServer({ schema, roots: resolvers(countdowns) }, wss);
  });
  const sockets = createWebSocketHandler({ '/graphql': GraphQL, '/echo': Echo });
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    wss: GraphQL.wss, // the WebSocketServer graphql-ws was given (its `clients` are the GraphQL connections)
    graphql,
    countdowns,
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
  console.log(`graphql-ws on ${ws}/graphql, an echo route on ${ws}/echo`);
  process.once('SIGINT', () => void app.close());
}
