// The floor for a WebSocket server mounted on Node's HTTP server (ws and wsmount both are): an
// http.Server whose 'upgrade' listener answers 101 with the right Sec-WebSocket-Accept (nothing
// checked) and keeps the socket, echoing what comes as it came, with no WebSocket framing and no
// per-connection object or closure of its own. What it keeps per idle connection is what Node's
// HTTP server and socket cost before any WebSocket library adds its share (bench/heap-breakdown.mjs
// --targets=http). Not a target of bench/run.mjs.

import { createHash } from 'node:crypto';
import { http, serve } from './common.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
let open = 0;

function echo(chunk) {
  this.write(chunk);
}

function ended() {
  this.end();
}

function closed() {
  open--;
}

function ignore() {}

const server = http.createServer((_req, res) => {
  res.writeHead(426).end();
});
server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'] ?? '';
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  socket.setNoDelay(true);
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  open++;
  socket.on('data', echo);
  socket.on('end', ended);
  socket.on('error', ignore);
  socket.on('close', closed);
  if (head.length > 0) socket.write(head);
});

serve(server, { library: 'node:http upgrade only', version: process.version }, () => open);
