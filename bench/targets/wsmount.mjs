// wsmount over the same routes as the other targets: /echo echoes text and binary, /broadcast
// sends every message it receives to every /broadcast client with handler.broadcast, /publish
// publishes it to a topic every /publish client subscribed to.
// Defaults stay on (heartbeat, backpressure limits…): that is what users get. Only maxPayload is
// raised, to the same limit as the other targets.

import diagnostics_channel from 'node:diagnostics_channel';
import { MAX_PAYLOAD } from './common.mjs';
import { notFound, reportedOptions, serveHandler, version } from './wsmount-serve.mjs';

// BENCH_WSMOUNT_DIST: another build's dist/index.js (the `wsmount-base` target: a change measured
// against the build before it, in one interleaved run).
const { Behavior, DIAGNOSTICS_CHANNELS, createWebSocketHandler, prometheusHandler } = await import(process.env.BENCH_WSMOUNT_DIST ?? '../../dist/index.js');

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

// The observability scenario's variants (issue 17), with the same routes:
// - BENCH_OBSERVE=metrics: GET /metrics answers the Prometheus exposition (bench/run.mjs scrapes it
//   every second, as a Prometheus server would);
// - BENCH_OBSERVE=diagnostics: a subscriber on every diagnostics_channel channel, as a tracer
//   would have (it counts the events, so that each message is built and delivered).
const observe = process.env.BENCH_OBSERVE ?? '';
let events = 0;
if (observe === 'diagnostics') {
  for (const name of Object.values(DIAGNOSTICS_CHANNELS)) {
    diagnostics_channel.subscribe(name, () => {
      events++;
    });
  }
}
const metrics = observe === 'metrics' ? prometheusHandler(handler) : null;
const onRequest = (req, res) => {
  if (metrics !== null && req.url === '/metrics') metrics(req, res);
  else notFound(req, res);
};
serveHandler(handler, { library: 'wsmount', version, options: reportedOptions(handler.options), observe }, () => (observe === 'diagnostics' ? { events } : {}), onRequest);
