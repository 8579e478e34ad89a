// wsmount on Express 5 behind node:http2 (with HTTP/1.1 too).
//
// Express 5 does not speak HTTP/2: it gives every request the prototype of http.IncomingMessage
// and every response that of http.ServerResponse, which an http2 request is not. Passing the app
// straight to http2.createSecureServer() serves HTTP/1.1 clients, and wsmount's WebSockets over
// HTTP/2 work too (they never reach Express), but the first plain HTTP/2 request (any browser)
// throws a TypeError outside any handler and crashes the process. `http2Express(app)` below gives
// HTTP/2 requests Express's methods on Node's Http2ServerRequest/Response instead.
//
// Try it:  npm run build, make key.pem and cert.pem (see demo/http2/node.js), then
//   node demo/http2/express.js
//   curl --http2 --cacert cert.pem https://localhost:3443/health
import http2 from 'node:http2';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { readPem, trackSessions } from './tls.js';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/**
 * The request listener for an http2 server: HTTP/1.1 requests go to `app` as usual, HTTP/2 ones
 * to the same app with Express's request and response methods on Node's Http2ServerRequest and
 * Http2ServerResponse. Not covered: sub-apps mounted with `app.use(express())` (they put their
 * HTTP/1.1 prototypes back), and `req.host`/`req.hostname`, which read `Host` (HTTP/2 sends
 * `:authority`).
 */
export function http2Express(app) {
  const field = (value) => ({ configurable: true, enumerable: true, writable: true, value });
  const request = Object.create(http2.Http2ServerRequest.prototype, Object.getOwnPropertyDescriptors(express.request));
  const response = Object.create(http2.Http2ServerResponse.prototype, Object.getOwnPropertyDescriptors(express.response));
  const overHttp2 = Object.create(app, {
    request: field(Object.create(request, { app: field(app) })),
    response: field(Object.create(response, { app: field(app) })),
  });
  return (req, res) => (req.httpVersionMajor === 2 ? app.handle.call(overHttp2, req, res) : app(req, res));
}

/** `tls` is `{ key, cert }` (PEM). `bridge: false` passes the app to http2 as is (HTTP/2 requests then crash). */
export async function start(port = 3443, host = '127.0.0.1', tls = readPem(), { bridge = true } = {}) {
  const app = express();
  app.get('/health', (_req, res) => {
    res.send('ok');
  });

  const server = http2.createSecureServer({ ...tls, allowHTTP1: true }, bridge ? http2Express(app) : app);

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(server); // HTTP/2 extended CONNECT streams and HTTP/1.1 upgrades alike
  const sessions = trackSessions(server); // Node < 24: server.close() waits for every HTTP/2 session
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    url: `https://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // WebSockets first: each gets 1001 and its stream ends cleanly
      sessions.close();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3443));
  console.log(`Express on ${app.url}/health (h2 and HTTP/1.1), WebSocket on ${app.url.replace('https', 'wss')}/echo`);
  process.once('SIGINT', () => void app.close());
}
