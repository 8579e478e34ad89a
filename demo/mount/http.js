// wsmount on a plain node:http server.
// Try it:  npm run build && node demo/mount/http.js
//   curl http://127.0.0.1:3000/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import http from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTP\n');
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
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
  console.log(`node:http on ${app.url}/health, WebSocket on ${app.url.replace('http', 'ws')}/echo`);
  process.once('SIGINT', () => void app.close());
}
