// wsmount on Hono with @hono/node-server over HTTP/2 (with HTTP/1.1 too).
// Try it:  npm run build, make key.pem and cert.pem (see demo/http2/node.js), then
//   node demo/http2/hono.js
//   curl --http2 --cacert cert.pem https://localhost:3443/health
import http2 from 'node:http2';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { readPem, trackSessions } from './tls.js';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** `tls` is `{ key, cert }` (PEM). */
export async function start(port = 3443, host = '127.0.0.1', tls = readPem()) {
  const app = new Hono();
  app.get('/health', (c) => c.text('ok'));

  const server = serve({
    fetch: app.fetch,
    port,
    hostname: host,
    createServer: http2.createSecureServer,
    serverOptions: { ...tls, allowHTTP1: true },
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(server); // serve() returns the http2 server (listening starts on the next tick)
  const sessions = trackSessions(server); // Node < 24: server.close() waits for every HTTP/2 session
  // ─────────────────────────────────────────────────────────────────────────

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
  console.log(`Hono on ${app.url}/health (h2 and HTTP/1.1), WebSocket on ${app.url.replace('https', 'wss')}/echo`);
  process.once('SIGINT', () => void app.close());
}
