// wsmount with permessage-deflate, for the compression scenario (issue 12): the same routes as
// targets/wsmount.mjs, with `perMessageDeflate: true` (the preset: threshold 1024 B, one shared
// compressor reset after every message — server_no_context_takeover — so a broadcast is
// compressed once; the clients keep their context, so each connection keeps an inflate window).
//   /echo       this.sendText(text)
//   /broadcast  this.handler.broadcast(text, { route: '/broadcast' })
// Defaults stay on (heartbeat, backpressure policy…), as in targets/wsmount.mjs.

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

const handler = createWebSocketHandler({ '/echo': Echo, '/broadcast': Broadcast }, { maxPayload: MAX_PAYLOAD, perMessageDeflate: true });
serveHandler(
  handler,
  { library: 'wsmount', version, perMessageDeflate: 'true (the preset)', options: reportedOptions(handler.options) },
  () => {
    const s = handler.stats();
    // whatever the handler counts about compression (field names may change while issue 12 lands)
    const pick = Object.fromEntries(Object.entries(s).filter(([k]) => /deflate|compress|inflat|zlib/i.test(k)));
    return { stats: pick };
  },
);
