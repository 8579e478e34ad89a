// wsmount on a plain node:http2 server: WebSockets over HTTP/2 (RFC 8441) and over HTTP/1.1.
// Try it:  npm run build
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=localhost \
//     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem
//   node demo/http2/node.js               (reads ./key.pem and ./cert.pem, or TLS_KEY / TLS_CERT)
//   curl --http2 --cacert cert.pem https://localhost:3443/health
//   then open https://localhost:3443/ in Chrome (accept the certificate): its WebSocket to
//   wss://localhost:3443/echo rides the page's HTTP/2 connection as an extended CONNECT stream.
import http2 from 'node:http2';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { readPem, trackSessions } from './tls.js';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>wsmount over HTTP/2</title><pre id="log"></pre>
<script>
  const ws = new WebSocket(\`wss://\${location.host}/echo\`);
  ws.onopen = () => ws.send('hello over ' + performance.getEntriesByType('navigation')[0].nextHopProtocol);
  ws.onmessage = (e) => (document.getElementById('log').textContent += e.data + '\\n');
</script>`;

/** `tls` is `{ key, cert }` (PEM). */
export async function start(port = 3443, host = '127.0.0.1', tls = readPem()) {
  // allowHTTP1: HTTP/1.1 clients (curl --http1.1, Node's https, old proxies) are served too.
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => {
    if (req.url === '/health') res.end('ok');
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    else res.writeHead(404).end('not found\n');
  });

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
      sessions.close(); // then GOAWAY to every HTTP/2 connection (browsers keep theirs open)
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 3443));
  console.log(`node:http2 on ${app.url}/ (h2 and HTTP/1.1), WebSocket on ${app.url.replace('https', 'wss')}/echo`);
  process.once('SIGINT', () => void app.close());
}
