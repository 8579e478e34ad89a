// wsmount demo: WebSockets over HTTP/2 in your browser.  `npm run demo:http2`, then open
// https://localhost:9443/ in Chrome or Edge (Firefox should too; untested) and accept the self-signed certificate.
// The page is loaded over HTTP/2; each WebSocket it opens rides that same connection as an
// extended CONNECT stream (RFC 8441), and the server says which transport carried it.
// TLS_KEY / TLS_CERT name your own key and certificate; without them a throwaway self-signed one
// is made with the openssl CLI. PORT and HOST change where it listens.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { trackSessions } from './tls.js';

/** Numbers each HTTP/2 connection (session), so the page can show which one a socket rides. */
const sessionIds = new WeakMap();
let nextSession = 1;
function sessionOf(request) {
  const session = request.stream?.session;
  if (session === undefined) return null; // HTTP/1.1: a connection of its own
  if (!sessionIds.has(session)) sessionIds.set(session, nextSession++);
  return sessionIds.get(session);
}

/** Tells the page how it arrived, then echoes. */
class Echo extends Behavior {
  onOpen() {
    this.sendText(JSON.stringify({ type: 'hello', id: this.id, transport: this.transport, session: sessionOf(this.request) }));
  }
  onText(text) {
    this.sendText(text);
  }
}

/** A throwaway self-signed certificate for localhost, unless TLS_KEY and TLS_CERT name one. */
export function certificate() {
  if (process.env.TLS_KEY && process.env.TLS_CERT) {
    return { key: readFileSync(process.env.TLS_KEY), cert: readFileSync(process.env.TLS_CERT) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'wsmount-demo-cert-'));
  try {
    // prettier-ignore
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const page = new URL('./public/index.html', import.meta.url);

/**
 * Starts the demo. Resolves once it listens.
 * @param {{ port?: number, host?: string, tls?: { key: Buffer, cert: Buffer } }} [options]
 */
export async function startHttp2Demo({ port = 0, host = '127.0.0.1', tls = certificate() } = {}) {
  const sockets = createWebSocketHandler({ '/echo': Echo }, { maxConnectionsPerIp: 256 });
  // allowHTTP1: browsers that do not speak HTTP/2 (and other origins' pages) still connect.
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true }, async (req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(await readFile(page));
    } else if (req.url === '/stats.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(sockets.stats()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  sockets.attach(server); // extended CONNECT streams and HTTP/1.1 upgrades
  const sessions = trackSessions(server);
  server.listen(port, host);
  await once(server, 'listening');
  const actual = server.address().port;
  return {
    server,
    sockets,
    port: actual,
    url: `https://localhost:${actual}/`,
    async close() {
      await sockets.close(); // 1001 to every WebSocket; their streams end
      sessions.close(); // then GOAWAY each HTTP/2 connection (Node 20/22 wait for them)
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const demo = await startHttp2Demo({ port: Number(process.env.PORT ?? 9443), host: process.env.HOST ?? '127.0.0.1' });
  console.log(`wsmount over HTTP/2 on ${demo.url}  (self-signed: accept the certificate; Ctrl+C to stop)`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      await demo.close();
      console.log('closed');
    });
  }
}
