// wsmount on a node:https server (wss://).
// Try it:  npm run build
//   openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=localhost \
//     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem
//   node demo/mount/https.js              (reads ./key.pem and ./cert.pem, or TLS_KEY / TLS_CERT)
//   curl --cacert cert.pem https://127.0.0.1:3443/health
//   wss://127.0.0.1:3443/echo from a client that trusts cert.pem (NODE_EXTRA_CA_CERTS=cert.pem for Node)
import https from 'node:https';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** `tls` is `{ key, cert }` (PEM). */
export async function start(port = 3443, host = '127.0.0.1', tls = readPem()) {
  const server = https.createServer(tls, (req, res) => {
    res.end(req.url === '/health' ? 'ok' : 'plain HTTPS\n');
  });

  // ── wsmount ─────────────────────────────────────────────────────────────
  const sockets = createWebSocketHandler({ '/echo': Echo });
  sockets.attach(server); // the same handler can also be attached to an http server
  // ─────────────────────────────────────────────────────────────────────────

  server.listen(port, host);
  await once(server, 'listening');
  return {
    server,
    sockets,
    url: `https://${host}:${server.address().port}`,
    async close() {
      await sockets.close(); // close frames first: server.close() waits for upgraded sockets forever
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function readPem() {
  return { key: readFileSync(process.env.TLS_KEY ?? 'key.pem'), cert: readFileSync(process.env.TLS_CERT ?? 'cert.pem') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3443));
  console.log(`node:https on ${app.url}/health, WebSocket on ${app.url.replace('https', 'wss')}/echo`);
  process.once('SIGINT', () => void app.close());
}
