// Shared by the demo/http2 examples: the certificate, and the HTTP/2 sessions a shutdown must end.
import { readFileSync } from 'node:fs';

/** `{ key, cert }` from ./key.pem and ./cert.pem, or the files named by TLS_KEY and TLS_CERT. */
export function readPem() {
  return { key: readFileSync(process.env.TLS_KEY ?? 'key.pem'), cert: readFileSync(process.env.TLS_CERT ?? 'cert.pem') };
}

/**
 * On Node 20 and 22, `server.close()` on an http2 server stops accepting connections but waits
 * for every open HTTP/2 session, and clients (browsers above all) keep theirs open. Node 24
 * closes them itself. This keeps the sessions; `close()` sends each a GOAWAY (`session.close()`:
 * streams still open finish first, so close the WebSockets before).
 */
export function trackSessions(server) {
  const sessions = new Set();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return {
    close() {
      for (const session of sessions) session.close();
    },
  };
}
