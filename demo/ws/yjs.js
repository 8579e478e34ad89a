// Yjs's own WebSocket server (@y/websocket-server, written for ws) on a wsmount route, beside a
// plain Behavior route, on one handler and one http.Server.
// Try it:  npm run build && node demo/ws/yjs.js
//   then, in two more terminals (each one an editor of the document 'notes'):
//   node --input-type=module -e "import * as Y from 'yjs'; import { WebsocketProvider } from 'y-websocket'; import WS from 'ws'; const doc = new Y.Doc(); const text = doc.getText('text'); new WebsocketProvider('ws://127.0.0.1:3000/yjs', 'notes', doc, { WebSocketPolyfill: WS, disableBc: true }).once('sync', () => text.insert(text.length, 'hi from ' + process.pid + '\n')); text.observe(() => console.log(text.toString()))"
//   and the server's copy of it, through the Behavior route:
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:3000/peek/notes'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
import http from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { docs, setupWSConnection } from '@y/websocket-server/utils';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { wsRoute } from 'wsmount/ws';

/** The server's copy of a document: its Y.Text 'text' and how many editors have it open. */
function snapshot(name) {
  const doc = docs.get(name); // @y/websocket-server's documents, by name (absent until someone opens it)
  return JSON.stringify({ doc: name, editors: doc?.conns.size ?? 0, text: doc?.getText('text').toString() ?? '' });
}

/** A plain wsmount route next to Yjs: sends the document's snapshot on open and on each message. */
class Peek extends Behavior {
  onOpen() {
    this.sendText(snapshot(this.params.doc));
  }
  onText() {
    this.sendText(snapshot(this.params.doc));
  }
}

export async function start(port = 3000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTP\n');
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({
    // y-websocket's WebsocketProvider(url, room) connects to `${url}/${room}`: with url
    // ws://host/yjs, the room is the :doc param. setupWSConnection takes the ws-style socket as
    // it takes ws's; docName would default to req.url ('yjs/notes'), the param is just 'notes'.
    '/yjs/:doc': wsRoute((wss) => wss.on('connection', (conn, req) => setupWSConnection(conn, req, { docName: conn.behavior.params.doc }))),
    '/peek/:doc': Peek,
  });
  sockets.attach(server);
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
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
  console.log(`Yjs documents on ${ws}/yjs/<doc>, their server copies on ${ws}/peek/<doc>`);
  process.once('SIGINT', () => void app.close());
}
