// wsmount on Fastify 5.
// Try it:  npm run build && node demo/mount/fastify.js
//   curl http://127.0.0.1:3000/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const app = Fastify();
  app.get('/health', async () => 'ok');

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(app.server); // Fastify's http.Server exists before listen()
  app.addHook('preClose', () => sockets.close()); // else app.close() waits for WebSockets forever
  // ─────────────────────────────────────────────────────────────────────────

  await app.listen({ port, host });
  return {
    server: app.server,
    sockets,
    url: `http://${host}:${app.server.address().port}`,
    close: () => app.close(), // runs preClose: WebSockets first, then the HTTP server
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3000));
  console.log(`Fastify on ${app.url}/health, WebSocket on ${app.url.replace('http', 'ws')}/echo`);
  process.once('SIGINT', () => void app.close());
}
