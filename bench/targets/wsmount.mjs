// wsmount over the same routes as the other targets: /echo echoes text and binary, /broadcast
// sends every message it receives to every /broadcast client with handler.broadcast.
// Defaults stay on (heartbeat, backpressure limits…): that is what users get. Only maxPayload is
// raised, to the same limit as the other targets.

import { Behavior, createWebSocketHandler } from '../../dist/index.js';
import { MAX_PAYLOAD } from './common.mjs';
import { reportedOptions, serveHandler, version } from './wsmount-serve.mjs';

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
serveHandler(handler, { library: 'wsmount', version, options: reportedOptions(handler.options) });
