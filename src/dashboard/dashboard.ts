import { Buffer } from 'node:buffer';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { DATA_CSP, PAGE_CSP, renderPage } from './page.js';
import { Sampler } from './sampler.js';
import type { Dashboard, DashboardOptions, DashboardSource, DashboardState } from './types.js';

// The dashboard's HTTP face: routing under the app's mount path, the page, the JSON snapshot,
// and the live feed (Server-Sent Events), whose timer runs only while a page watches.

/** Bytes a viewer may have waiting before its frames are skipped (a page that stopped reading). */
const MAX_VIEWER_BACKLOG = 256 * 1024;
/** How long an EventSource waits before reconnecting after the feed ends (the SSE `retry:` field). */
const RETRY_MS = 2000;

const OPTION_KEYS = ['path', 'interval', 'span', 'maxViewers', 'topRoutes', 'slowConsumers', 'title'];

interface Resolved {
  path: string | undefined;
  interval: number;
  span: number;
  maxViewers: number;
  topRoutes: number;
  slowConsumers: number;
  title: string;
}

function integerIn(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`wsmount: createDashboard()'s ${name} must be an integer from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}

function resolveOptions(options: DashboardOptions): Resolved {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`wsmount: createDashboard()'s options are an object like { interval: 1000 }, not ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.includes(key)) throw new TypeError(`wsmount: createDashboard() has no option '${key}'; the options are ${OPTION_KEYS.join(', ')}`);
  }
  const interval = integerIn('interval', options.interval, 1000, 100, 60_000);
  const span = integerIn('span', options.span, 300_000, interval, 3600 * interval);
  let path = options.path;
  if (path !== undefined) {
    if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f || path.includes('?') || path.includes('#')) {
      throw new TypeError(`wsmount: createDashboard()'s path is the URL path it is mounted at, like '/admin/ws', not ${JSON.stringify(path)}`);
    }
    // '/admin/ws/' and '/admin/ws' are the same mount point; '/' is the whole server.
    while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    if (path === '/') path = undefined;
  }
  const title = options.title ?? 'wsmount';
  if (typeof title !== 'string') throw new TypeError(`wsmount: createDashboard()'s title is a string, not ${String(title)}`);
  return {
    path,
    interval,
    span,
    maxViewers: integerIn('maxViewers', options.maxViewers, 8, 1, 1000),
    topRoutes: integerIn('topRoutes', options.topRoutes, 10, 1, 100),
    slowConsumers: integerIn('slowConsumers', options.slowConsumers, 10, 0, 100),
    title,
  };
}

/** Headers on every answer: nothing is cached or sniffed, framed, or sent as a referrer. */
const COMMON: OutgoingHttpHeaders = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** The request's path below the mount point ('' or '/' for the page), or null when it is not under it. */
function subPath(request: IncomingMessage, mount: string | undefined): string | null {
  // Express and Connect keep the full URL in originalUrl and strip their mount path from url.
  const original = (request as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  const target = mount !== undefined && typeof original === 'string' ? original : (request.url ?? '/');
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (mount === undefined) return path;
  if (!path.startsWith(mount)) return null;
  const rest = path.slice(mount.length);
  return rest === '' || rest.charCodeAt(0) === 0x2f ? rest : null;
}

type Resource = 'page' | 'feed' | 'snapshot';

function resourceOf(rest: string): Resource | null {
  switch (rest) {
    case '':
    case '/':
      return 'page';
    case '/feed':
      return 'feed';
    case '/snapshot.json':
      return 'snapshot';
    default:
      return null;
  }
}

function answer(request: IncomingMessage, response: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  response.writeHead(status, { ...COMMON, 'Content-Security-Policy': DATA_CSP, ...headers, 'Content-Length': bytes.length });
  response.end(request.method === 'HEAD' ? undefined : bytes);
}

function text(request: IncomingMessage, response: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
  answer(request, response, status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, `${body}\n`);
}

/**
 * Creates a live dashboard of `source` (a {@link WebSocketHandler}) for the app to mount on a
 * route of its own HTTP server, behind its own authentication: the dashboard shows route
 * patterns, client ids and addresses to whoever can load it.
 *
 * ```ts
 * const dashboard = createDashboard(sockets);
 * app.use('/admin/ws', requireAdmin, dashboard);                       // Express: the prefix is stripped
 * // plain Node: createDashboard(sockets, { path: '/admin/ws' }) and
 * // if (url.startsWith('/admin/ws')) return dashboard(req, res);
 * ```
 *
 * It answers `GET` and `HEAD` for three paths under the mount point: the page (`/`), which
 * loads the others by relative URL; `feed`, a Server-Sent Events stream with one
 * {@link DashboardSnapshot} per `interval`, sampled once per tick and shared by every viewer
 * (the timer runs only while a page watches, and is unref'd); and `snapshot.json`, a
 * {@link DashboardState}. Other methods get 405 (with `Allow`), other paths 404 (or `next()`),
 * a viewer past `maxViewers` 503. Every answer carries `Cache-Control: no-store` and
 * `X-Content-Type-Options: nosniff`; the page a Content-Security-Policy that allows only its
 * own inline script and style (by hash) and requests to its own origin.
 *
 * Throws a `TypeError` for an unknown option key and a `RangeError` for a value out of range.
 */
export function createDashboard(source: DashboardSource, options: DashboardOptions = {}): Dashboard {
  if (typeof source !== 'object' || source === null || typeof source.stats !== 'function' || typeof source.clients?.[Symbol.iterator] !== 'function') {
    throw new TypeError('wsmount: createDashboard() takes a WebSocketHandler (anything with stats() and a clients set)');
  }
  const o = resolveOptions(options);
  const sampler = new Sampler(source, o);
  const page = Buffer.from(renderPage(o.title), 'utf8');
  const viewers = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  function tick(): void {
    const frame = `data: ${JSON.stringify(sampler.sample(viewers.size))}\n\n`;
    for (const viewer of viewers) {
      if (viewer.destroyed) leave(viewer);
      // A page that stopped reading misses frames rather than growing the server's memory.
      else if (viewer.writableLength <= MAX_VIEWER_BACKLOG) viewer.write(frame);
    }
  }

  function stop(): void {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  function leave(viewer: ServerResponse): void {
    if (!viewers.delete(viewer)) return;
    if (viewers.size === 0) stop();
  }

  function watch(request: IncomingMessage, response: ServerResponse): void {
    if (closed) return text(request, response, 503, 'the dashboard is closed', { 'Retry-After': '10' });
    if (viewers.size >= o.maxViewers) {
      return text(request, response, 503, `too many dashboard viewers (at most ${o.maxViewers}): try again later`, { 'Retry-After': '10' });
    }
    const headers: OutgoingHttpHeaders = {
      ...COMMON,
      'Content-Security-Policy': DATA_CSP,
      'Content-Type': 'text/event-stream; charset=utf-8',
      // Proxies such as nginx buffer responses unless told not to: the feed must flow.
      'X-Accel-Buffering': 'no',
    };
    if (request.method === 'HEAD') {
      response.writeHead(200, headers);
      response.end();
      return;
    }
    response.writeHead(200, headers);
    viewers.add(response);
    response.on('close', () => leave(response));
    // A write to a socket that broke is the socket's business: never an unhandled 'error'.
    response.on('error', () => leave(response));
    if (response.destroyed) {
      // The page went away before the feed started: its 'close' has been and gone.
      leave(response);
      return;
    }
    if (timer === null) {
      // The first viewer: a fresh sample now (rates from the last one, if any), then one per interval.
      sampler.sample(viewers.size);
      timer = setInterval(tick, o.interval);
      timer.unref();
    }
    const state: DashboardState = { snapshot: sampler.latest ?? sampler.sample(viewers.size), history: sampler.history() };
    response.write(`retry: ${RETRY_MS}\nevent: init\ndata: ${JSON.stringify(state)}\n\n`);
  }

  function state(): DashboardState {
    // While the feed runs its latest tick is current; else a sample now, at most one per interval.
    const fresh = sampler.latest !== null && (timer !== null || performance.now() - sampler.latestAt < o.interval);
    if (!fresh) sampler.sample(viewers.size);
    return sampler.state(viewers.size);
  }

  const handle = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void => {
    const rest = subPath(request, o.path);
    const resource = rest === null ? null : resourceOf(rest);
    if (resource === null) {
      if (next !== undefined) return next();
      return text(request, response, 404, 'not found: the dashboard has its page, feed and snapshot.json');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return text(request, response, 405, 'method not allowed: GET or HEAD', { Allow: 'GET, HEAD' });
    }
    switch (resource) {
      case 'page':
        response.writeHead(200, { ...COMMON, 'Content-Security-Policy': PAGE_CSP, 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
        response.end(request.method === 'HEAD' ? undefined : page);
        return;
      case 'snapshot':
        return answer(request, response, 200, { 'Content-Type': 'application/json; charset=utf-8' }, JSON.stringify(state()));
      case 'feed':
        return watch(request, response);
    }
  };

  return Object.defineProperties(handle, {
    viewers: { get: () => viewers.size, enumerable: true },
    live: { get: () => timer !== null, enumerable: true },
    state: { value: state, enumerable: true },
    close: {
      value: (): void => {
        closed = true;
        stop();
        for (const viewer of [...viewers]) {
          viewers.delete(viewer);
          viewer.end();
        }
      },
      enumerable: true,
    },
  }) as Dashboard;
}
