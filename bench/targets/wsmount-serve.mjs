// What the wsmount targets share: the version of the wsmount they run (dist/, built from this
// repository), the handler options their reports list, and the http.Server (answering plain
// requests 404) that a handler is attached to and served on (common.mjs's serve()).

import { readFileSync } from 'node:fs';
import { http, serve } from './common.mjs';

/** The repository's version: the wsmount in dist/ that the targets import. */
export const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** The handler options (resolved: `handler.options`) that the wsmount targets report. */
export function reportedOptions(o) {
  return { maxPayload: o.maxPayload, pingInterval: o.pingInterval, maxBackpressure: o.maxBackpressure, backpressure: o.backpressure };
}

/** Answers a plain HTTP request 404 (the targets serve WebSockets only). */
export function notFound(_req, res) {
  res.statusCode = 404;
  res.end();
}

/**
 * Attaches `handler` to a new http.Server that answers plain requests with `onRequest` (404 by
 * default) and serves it: `info` is what the target reports, the client count is the handler's,
 * `extra` as in serve().
 */
export function serveHandler(handler, info, extra, onRequest = notFound) {
  const server = http.createServer(onRequest);
  handler.attach(server);
  serve(server, info, () => handler.clients.size, extra);
}
