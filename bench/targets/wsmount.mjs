// wsmount over the same routes as the other targets: /echo echoes text and binary, /broadcast
// sends every message it receives to every /broadcast client with handler.broadcast, /publish
// publishes it to a topic every /publish client subscribed to.
// Defaults stay on (heartbeat, backpressure limits…): that is what users get. Only maxPayload is
// raised, to the same limit as the other targets.

import { Behavior, createWebSocketHandler } from '../../dist/index.js';
import { MAX_PAYLOAD } from './common.mjs';
import { reportedOptions, serveHandler, version } from './wsmount-serve.mjs';

// /echo takes text as its UTF-8 bytes (onRawText, validated) and sends them back as text, as ws's
// echo does (ws.send(data, { binary: false }) with the Buffer it received): the same work on both
// sides, no string made. With BENCH_ECHO_STRINGS=1 (the `wsmount-strings` target) it is
// onText(string) → sendText(string) instead: a decode to a string and an encode back per message.
class Echo extends Behavior {
  onRawText(bytes) {
    this.sendText(bytes);
  }
  onBinary(bytes) {
    this.sendBinary(bytes);
  }
}

class EchoStrings extends Behavior {
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

// A topic: every /publish client subscribes to one topic, and every message received is
// published to it (to every subscriber, the sender included, as /broadcast does).
class Publish extends Behavior {
  onOpen() {
    this.subscribe('bench');
  }
  onText(text) {
    this.handler.publish('bench', text);
  }
  onBinary(bytes) {
    this.handler.publish('bench', bytes);
  }
}

const handler = createWebSocketHandler({ '/echo': process.env.BENCH_ECHO_STRINGS === '1' ? EchoStrings : Echo, '/broadcast': Broadcast, '/publish': Publish }, { maxPayload: MAX_PAYLOAD });
serveHandler(handler, { library: 'wsmount', version, options: reportedOptions(handler.options) });
