// wsmount and socket.io on one http.Server.
// Try it:  npm run build && node demo/mount/socketio.js
//   curl http://127.0.0.1:3000/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/account'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
//   socket.io clients connect as usual (path /socket.io/); emit('ping', x, ack) acks x.
//
// socket.io (engine.io) ends, after 1 s, every upgrade socket outside /socket.io/ on which nothing
// has been written yet. That kills a wsmount handshake whose verify() is still running after 1 s
// and leaves an unknown path with no answer at all. `destroyUpgrade: false` turns that off:
// wsmount then finishes its slow handshakes, and answers unknown paths 404 itself.
import http from 'node:http';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Server } from 'socket.io';
import { Behavior, HandshakeRejection, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** A stand-in for a slow session store: 1.5 s, longer than socket.io's 1 s upgrade timeout. */
async function userFrom(req) {
  await sleep(1500);
  return new URL(req.url, 'http://x').searchParams.get('user');
}

class Account extends Behavior {
  async verify(req) {
    const user = await userFrom(req);
    if (!user) throw new HandshakeRejection(401, 'who are you?');
    this.data = { user };
  }
  onText(text) {
    this.sendText(`${this.data.user}: ${text}`);
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTP\n');
  });
  const io = new Server(server, { destroyUpgrade: false }); // ← keeps socket.io off upgrades it doesn't own
  io.on('connection', (socket) => {
    socket.on('ping', (message, ack) => ack(message));
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo, '/account': Account });
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    io,
    url: `http://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // close frames first: server.close() waits for upgraded sockets forever
      await io.close(); // disconnects socket.io clients, then closes the http.Server
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3000));
  const ws = app.url.replace('http', 'ws');
  console.log(`socket.io and wsmount on ${app.url}: ${ws}/echo, ${ws}/account?user=ada (1.5 s verify), socket.io on /socket.io/`);
  process.once('SIGINT', () => void app.close());
}
