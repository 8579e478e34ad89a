// wsmount on Koa 3.
// Try it:  npm run build && node demo/mount/koa.js
//   curl http://127.0.0.1:3000/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const app = new Koa();
  app.use((ctx) => {
    if (ctx.path === '/health') ctx.body = 'ok';
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  const server = app.listen(port, host); // Koa returns its http.Server (or: http.createServer(app.callback()))
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
  console.log(`Koa on ${app.url}/health, WebSocket on ${app.url.replace('http', 'ws')}/echo`);
  process.once('SIGINT', () => void app.close());
}
