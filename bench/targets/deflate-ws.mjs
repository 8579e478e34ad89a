// ws with permessage-deflate, for the compression scenario (issue 12): the same routes as
// targets/ws.mjs, with `perMessageDeflate: true` — ws's defaults when compression is on: one
// deflate and one inflate stream per connection, created on first use and kept (context takeover
// both ways unless the client asks otherwise), zlib level 6 / memLevel 8 / windowBits 15,
// threshold 1024 B (applied only under no-context-takeover), at most 10 zlib jobs on the thread
// pool at once (its Limiter).
//   /echo       echoes every message (ws.send(data, { binary: isBinary }): compressed by ws)
//   /broadcast  the documented loop: every message to every client, each socket compressing it
//               with its own deflater
// Pure JS (WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE are set by run.mjs), like the ws target.

import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';
import { http, MAX_PAYLOAD, serve } from './common.mjs';
import { wsRoutes } from './ws-routes.mjs';

const require = createRequire(import.meta.url);

const options = { noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: true };
const { echo, room } = wsRoutes(WebSocketServer, WebSocket, options);

const server = http.createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  const wss = pathname === '/echo' ? echo : pathname === '/broadcast' ? room : null;
  if (wss === null) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

const cached = Object.keys(require.cache);
const loaded = (name) => cached.some((p) => p.includes(`/node_modules/${name}/`) && p.endsWith('.node'));
if (loaded('bufferutil') || loaded('utf-8-validate')) throw new Error('ws (pure JS): a native addon was loaded despite WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE');

/** Connections whose permessage-deflate has created its zlib streams (state that exists). */
function zlibState() {
  let inflaters = 0;
  let deflaters = 0;
  let negotiated = 0;
  for (const wss of [echo, room]) {
    for (const ws of wss.clients) {
      const pmd = ws._extensions?.['permessage-deflate'];
      if (!pmd) continue;
      negotiated++;
      if (pmd._inflate) inflaters++;
      if (pmd._deflate) deflaters++;
    }
  }
  return { negotiated, inflaters, deflaters };
}

serve(
  server,
  { library: 'ws', version: require('ws/package.json').version, perMessageDeflate: 'true (ws defaults)' },
  () => echo.clients.size + room.clients.size,
  zlibState,
);
