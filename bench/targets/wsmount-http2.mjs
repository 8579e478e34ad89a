// wsmount over HTTP/1.1 and HTTP/2 (RFC 8441) in one process: ONE handler (the wsmount target's
// /echo and /broadcast routes, its defaults, maxPayload raised like every target) attached to
// three servers on 127.0.0.1:
//
// - `http.createServer()` — HTTP/1.1 upgrades (the port run.mjs gets from serve());
// - `http2.createServer()` — cleartext HTTP/2 (h2c, prior knowledge) with Node's defaults: 64 KiB
//   (65,535 B) stream and session receive windows, 16 KiB frames;
// - `http2.createServer({ settings: { initialWindowSize } })` plus `session.setLocalWindowSize()`
//   on every session — the same, with raised receive windows (BENCH_H2_STREAM_WINDOW,
//   BENCH_H2_SESSION_WINDOW, set by run.mjs from its plan; Chrome's 6 MiB and 15 MiB by default).
//
// Cleartext like every other target (no TLS cost on either side; `http2.createServer()` cannot
// serve HTTP/1.1 on the same port, hence two ports, one handler, one process). The ports of the
// HTTP/2 servers go to run.mjs in the ready message's `info`.

import http2 from 'node:http2';
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

const STREAM_WINDOW = Number(process.env.BENCH_H2_STREAM_WINDOW ?? 6 << 20);
const SESSION_WINDOW = Number(process.env.BENCH_H2_SESSION_WINDOW ?? 15 << 20);

const handler = createWebSocketHandler({ '/echo': Echo, '/broadcast': Broadcast }, { maxPayload: MAX_PAYLOAD });
const h2 = http2.createServer();
handler.attach(h2);

const h2big = http2.createServer({ settings: { initialWindowSize: STREAM_WINDOW } });
h2big.on('session', (session) => session.setLocalWindowSize(SESSION_WINDOW));
handler.attach(h2big);

const sessions = new Set();
for (const s of [h2, h2big]) {
  s.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
}

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
const h2Port = await listen(h2);
const h2BigPort = await listen(h2big);

// The HTTP/1.1 server (the port run.mjs gets) is serveHandler's http.createServer().
serveHandler(
  handler,
  {
    library: 'wsmount',
    version,
    transports: 'HTTP/1.1 (http.createServer) + h2c (http2.createServer), one handler',
    h2Port,
    h2BigPort,
    h2Settings: { defaults: http2.getDefaultSettings(), raised: { initialWindowSize: STREAM_WINDOW, sessionWindow: SESSION_WINDOW } },
    options: reportedOptions(handler.options),
  },
  () => ({ h2Sessions: sessions.size }),
);
