// wsmount on Fastify 5 over HTTP/2 (with HTTP/1.1 too): WebSockets as RFC 8441 streams and as upgrades.
// Try it:  npm run build, make key.pem and cert.pem (see demo/http2/node.js), then
//   node demo/http2/fastify.js
//   curl --http2 --cacert cert.pem https://localhost:3443/health
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { readPem } from './tls.js';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** `tls` is `{ key, cert }` (PEM). */
export async function start(port = 3443, host = '127.0.0.1', tls = readPem()) {
  const app = Fastify({
    http2: true,
    https: { ...tls, allowHTTP1: true },
    // Node < 24: app.close() would wait for every open HTTP/2 session; this closes them.
    forceCloseConnections: true,
  });
  app.get('/health', async () => 'ok');

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(app.server); // Fastify's http2 server exists before listen()
  app.addHook('preClose', () => sockets.close()); // WebSockets first, then the sessions and the server
  // ─────────────────────────────────────────────────────────────────────────

  await app.listen({ port, host });
  return {
    server: app.server,
    sockets,
    url: `https://${host}:${app.server.address().port}`,
    close: () => app.close(),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3443));
  console.log(`Fastify on ${app.url}/health (h2 and HTTP/1.1), WebSocket on ${app.url.replace('https', 'wss')}/echo`);
  process.once('SIGINT', () => void app.close());
}
