// wsmount over the same routes as the other targets: /echo echoes text and binary, /broadcast
// sends every message it receives to every /broadcast client with handler.broadcast.
// Defaults stay on (heartbeat, backpressure limits…): that is what users get. Only maxPayload is
// raised, to the same limit as the other targets.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Behavior, createWebSocketHandler } from '../../dist/index.js';
import { MAX_PAYLOAD, serve } from './common.mjs';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
  onBinary(bytes) {
    this.sendBinary(bytes);
  }
}

class Broadcast extends Behavior {
  onText(text) {
    this.handler.broadcast(text, { route: '/broadcast' });
  }
  onBinary(bytes) {
    this.handler.broadcast(bytes, { route: '/broadcast' });
  }
}

const handler = createWebSocketHandler({ '/echo': Echo, '/broadcast': Broadcast }, { maxPayload: MAX_PAYLOAD });
const server = http.createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
handler.attach(server);

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const o = handler.options;
serve(
  server,
  {
    library: 'wsmount',
    version: pkg.version,
    options: { maxPayload: o.maxPayload, pingInterval: o.pingInterval, maxBackpressure: o.maxBackpressure, backpressure: o.backpressure },
  },
  () => handler.clients.size,
);
