// wsmount beside a framework that claims every upgrade (Nest's WsAdapter, @fastify/websocket, …):
// such a listener destroys or refuses sockets it does not own, so wsmount cannot simply sit beside
// it. Take the framework's 'upgrade' listeners off the server and dispatch by path with handles(req).
// Try it:  npm run build && node demo/mount/dispatcher.js
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
//   ws://127.0.0.1:3000/anything-else goes to the framework (which, here, destroys it).
import http from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** A stand-in for the framework: it installs an 'upgrade' listener that destroys every socket it gets. */
export function greedyFramework(server) {
  const seen = [];
  server.on('upgrade', (req, socket) => {
    seen.push(req.url);
    socket.destroy();
  });
  return { seen };
}

export async function start(port = 3000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTP\n');
  });
  const framework = greedyFramework(server); // install the framework's listener first

  // ── wsmount: our paths to wsmount, every other upgrade to the framework's listeners ──
  const sockets = createWebSocketHandler({ '/echo': Echo });
  const theirs = server.listeners('upgrade');
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req, socket, head) => {
    if (sockets.handles(req)) sockets.handleUpgrade(req, socket, head);
    else for (const listener of theirs) listener.call(server, req, socket, head);
  });
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    framework,
    url: `http://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // close frames first: server.close() waits for upgraded sockets forever
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3000));
  console.log(`dispatcher on ${app.url}: wsmount on ${app.url.replace('http', 'ws')}/echo, every other upgrade to the framework`);
  process.once('SIGINT', () => void app.close());
}
