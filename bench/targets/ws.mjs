// ws, written the idiomatic way: one WebSocketServer per path with noServer: true, routed from the
// http server's 'upgrade' event, and the documented broadcast loop (also for /publish: ws has no
// topics; one topic every client subscribed to is that loop).
//
// Pure JS vs native is chosen by the environment run.mjs passes: WS_NO_BUFFER_UTIL=1 and
// WS_NO_UTF_8_VALIDATE=1 for "ws", neither for "ws+native". This file reports which optional
// addons ws actually loaded, and refuses to run if that does not match what was asked for.

import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';
import { http, MAX_PAYLOAD, serve } from './common.mjs';
import { wsRoutes } from './ws-routes.mjs';

const require = createRequire(import.meta.url);
const wantNative = process.env.BENCH_WS_NATIVE === '1';

// permessage-deflate is off by default for a ws server; stated here so nobody has to look it up.
const options = { noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false };
const { echo, room } = wsRoutes(WebSocketServer, WebSocket, options);

const server = http.createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  const wss = pathname === '/echo' ? echo : pathname === '/broadcast' || pathname === '/publish' ? room : null;
  if (wss === null) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

// Which optional addons did ws load? They are CommonJS modules in require's cache once loaded;
// a native one brings its .node binary along (bufferutil's JS fallback would not).
const cached = Object.keys(require.cache);
const loaded = (name) => cached.some((p) => p.includes(`/node_modules/${name}/`) && p.endsWith('.node'));
const native = { bufferutil: loaded('bufferutil'), 'utf-8-validate': loaded('utf-8-validate') };
let note = '';
if (wantNative) {
  if (!native.bufferutil) throw new Error('ws+native: ws did not load the native bufferutil addon');
  // ws uses node:buffer's isUtf8 (itself native) when Node has it (>= 18.14) and then never
  // loads utf-8-validate: report it rather than pretend.
  if (!native['utf-8-validate']) note = 'utf-8-validate not loaded: ws validates UTF-8 with node:buffer isUtf8 on this Node';
} else if (native.bufferutil || native['utf-8-validate']) {
  throw new Error('ws (pure JS): a native addon was loaded despite WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE');
}

serve(
  server,
  { library: wantNative ? 'ws+native' : 'ws', version: require('ws/package.json').version, native, note, perMessageDeflate: false },
  () => echo.clients.size + room.clients.size,
);
