// wsmount on Hono with @hono/node-server.
// Try it:  npm run build && node demo/mount/hono.js
//   curl http://127.0.0.1:3000/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const app = new Hono();
  app.get('/health', (c) => c.text('ok'));

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  const server = serve({ fetch: app.fetch, port, hostname: host }); // serve() returns the http.Server
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  await once(server, 'listening');
  return {
    server,
    sockets,
    url: `http://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // close frames first: server.close() waits for upgraded sockets forever
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3000));
  console.log(`Hono on ${app.url}/health, WebSocket on ${app.url.replace('http', 'ws')}/echo`);
  process.once('SIGINT', () => void app.close());
}
