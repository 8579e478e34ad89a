/**
 * wsmount/dashboard over real HTTP on loopback: where it answers under a mount path (plain Node,
 * Express, Koa, the whole server), methods, the security headers, the live feed's content and its
 * sharing between viewers, the viewer bound, the timer that runs only while someone watches, and
 * close().
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import Koa from 'koa';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { createDashboard, type Dashboard, type DashboardOptions, type DashboardSnapshot, type DashboardSource, type DashboardState } from 'wsmount/dashboard';
import { connect } from 'wsmount/testing';
import { Behavior, type WebSocketHandler } from '../../src/index.js';
import { Echo, useFixture } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/server.js';
import { FeedReader, request, serveApp } from './helpers.js';

const fixture = useFixture();

class Quiet extends Behavior {}

/** A handler with /echo and /quiet, and a dashboard on an app server mounted the plain-Node way at /admin/ws. */
async function plainApp(options: DashboardOptions = {}, source?: (handler: WebSocketHandler) => DashboardSource) {
  const handler = fixture.handlerFor({ '/echo': Echo, '/quiet': Quiet });
  const dashboard = createDashboard(source?.(handler) ?? handler, { path: '/admin/ws', ...options });
  fixture.defer(() => dashboard.close());
  const { port } = await serveApp(fixture, handler, (req, res) => {
    if ((req.url ?? '').startsWith('/admin/ws')) return dashboard(req, res);
    res.end('app');
  });
  return { handler, dashboard, port };
}

function cspOf(header: string | string[] | undefined): Map<string, string[]> {
  const policy = new Map<string, string[]>();
  for (const part of String(header).split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) policy.set(name, values);
  }
  return policy;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('routing under a mount path', () => {
  test('plain Node with { path }: the page at /admin/ws and /admin/ws/, the feed and snapshot.json beside it (query ignored), anything else under it 404', async () => {
    const { port } = await plainApp();
    for (const path of ['/admin/ws', '/admin/ws/', '/admin/ws?x=1', '/admin/ws/?tab=2']) {
      const page = await request(port, path);
      expect(page.status, path).toBe(200);
      expect(page.headers['content-type'], path).toBe('text/html; charset=utf-8');
      expect(page.body, path).toContain('<title>wsmount · WebSocket dashboard</title>');
    }
    const json = await request(port, '/admin/ws/snapshot.json?fresh=1');
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Object.keys(JSON.parse(json.body) as DashboardState).sort()).toEqual(['history', 'snapshot']);
    for (const path of ['/admin/ws/nope', '/admin/wsx', '/admin/ws/feed/x', '/admin/ws/snapshot.json/', '/admin/ws//feed', '/admin/ws/index.html']) {
      const miss = await request(port, path);
      expect(miss.status, path).toBe(404);
      expect(miss.headers['cache-control'], path).toBe('no-store');
    }
    // The app's own routes are the app's.
    expect((await request(port, '/')).body).toBe('app');
  });

  test('plain Node, an unknown path with next(): next() is called and nothing is written', async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler, { path: '/d' });
    let nexts = 0;
    const { port } = await serveApp(fixture, handler, (req, res) => {
      dashboard(req, res, () => {
        nexts++;
        res.end('the app after next()');
      });
    });
    expect((await request(port, '/d/other')).body).toBe('the app after next()');
    expect((await request(port, '/elsewhere')).body).toBe('the app after next()');
    expect(nexts).toBe(2);
    expect((await request(port, '/d')).status).toBe(200);
    expect(nexts).toBe(2);
  });

  test("Express app.use('/admin/ws', dashboard): the prefix is stripped, an unknown path goes on to the app (next)", async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler);
    fixture.defer(() => dashboard.close());
    const app = express();
    app.use('/admin/ws', dashboard);
    app.use((_req, res) => {
      res.status(404).send('the app’s own 404');
    });
    const { port } = await serveApp(fixture, handler, app);
    expect((await request(port, '/admin/ws')).status).toBe(200);
    expect((await request(port, '/admin/ws/')).body).toContain('<!doctype html>');
    expect(JSON.parse((await request(port, '/admin/ws/snapshot.json')).body)).toHaveProperty('snapshot.routeCount', 1);
    const miss = await request(port, '/admin/ws/nope');
    expect(miss.status).toBe(404);
    expect(miss.body).toBe('the app’s own 404');
    const feed = await FeedReader.open(port, '/admin/ws/feed');
    expect(feed.status).toBe(200);
    await feed.until(() => feed.events.length >= 1);
    expect(feed.events[0]?.event).toBe('init');
    feed.close();
  });

  test("Express with { path } as well: the full URL (req.originalUrl) is read, so the same option works on both", async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler, { path: '/admin/ws/' });
    const app = express();
    app.use('/admin/ws', dashboard);
    const { port } = await serveApp(fixture, handler, app);
    expect((await request(port, '/admin/ws')).status).toBe(200);
    expect((await request(port, '/admin/ws/snapshot.json')).status).toBe(200);
    expect((await request(port, '/admin/ws/nope')).status).toBe(404); // Express's own, after next()
  });

  test('Koa: a middleware hands the raw request over (ctx.respond = false) with { path }; other paths stay Koa’s', async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler, { path: '/admin/ws' });
    fixture.defer(() => dashboard.close());
    const app = new Koa();
    app.use(async (ctx, next) => {
      if (!ctx.path.startsWith('/admin/ws')) return next();
      ctx.respond = false;
      dashboard(ctx.req, ctx.res);
    });
    app.use((ctx) => {
      ctx.body = 'koa';
    });
    const { port } = await serveApp(fixture, handler, app.callback());
    expect((await request(port, '/admin/ws')).body).toContain('<!doctype html>');
    expect((await request(port, '/admin/ws/snapshot.json')).headers['content-type']).toBe('application/json; charset=utf-8');
    expect((await request(port, '/admin/ws/nope')).status).toBe(404);
    expect((await request(port, '/elsewhere')).body).toBe('koa');
    const feed = await FeedReader.open(port, '/admin/ws/feed');
    await feed.until(() => feed.events.length >= 1);
    expect(feed.events[0]?.event).toBe('init');
    feed.close();
  });

  test('the whole server: createServer(dashboard) answers /, /feed and /snapshot.json', async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler);
    fixture.defer(() => dashboard.close());
    const { port } = await serveApp(fixture, handler, dashboard);
    expect((await request(port, '/')).status).toBe(200);
    expect((await request(port, '/snapshot.json')).status).toBe(200);
    expect((await request(port, '/feed', 'HEAD')).headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect((await request(port, '/x')).status).toBe(404);
  });
});

describe('methods and headers', () => {
  test('a method other than GET or HEAD gets 405 with Allow: GET, HEAD on every resource', async () => {
    const { port } = await plainApp();
    for (const path of ['/admin/ws/', '/admin/ws/feed', '/admin/ws/snapshot.json']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const answer = await request(port, path, method);
        expect(answer.status, `${method} ${path}`).toBe(405);
        expect(answer.headers.allow, `${method} ${path}`).toBe('GET, HEAD');
        expect(answer.headers['cache-control']).toBe('no-store');
      }
    }
  });

  test('HEAD: the same head as GET, no body, and a HEAD of the feed is not a viewer', async () => {
    const { port, dashboard } = await plainApp();
    const get = await request(port, '/admin/ws/');
    const head = await request(port, '/admin/ws/', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(get.body));
    expect(head.headers['content-security-policy']).toBe(get.headers['content-security-policy']);
    const feedHead = await request(port, '/admin/ws/feed', 'HEAD');
    expect(feedHead.status).toBe(200);
    expect(feedHead.body).toBe('');
    expect(dashboard.viewers).toBe(0);
    expect(dashboard.live).toBe(false);
  });

  test('every answer is no-store and nosniff, not frameable; the page has a strict CSP: its own inline script and style by hash, its own origin, nothing else', async () => {
    const { port } = await plainApp();
    const page = await request(port, '/admin/ws/');
    const feed = await FeedReader.open(port, '/admin/ws/feed');
    feed.close();
    const answers = [page, await request(port, '/admin/ws/snapshot.json'), await request(port, '/admin/ws/nope'), await request(port, '/admin/ws', 'POST'), { status: feed.status, headers: feed.headers, body: '' }];
    for (const a of answers) {
      expect(a.headers['cache-control']).toBe('no-store');
      expect(a.headers['x-content-type-options']).toBe('nosniff');
      expect(a.headers['x-frame-options']).toBe('DENY');
      expect(a.headers['referrer-policy']).toBe('no-referrer');
      expect(cspOf(a.headers['content-security-policy']).get('default-src')).toEqual(["'none'"]);
    }
    const csp = cspOf(page.headers['content-security-policy']);
    const { createHash } = await import('node:crypto');
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const scripts = [...page.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? '');
    const styles = [...page.body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] ?? '');
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    expect(csp.get('script-src')).toEqual([hash(scripts[0] as string)]);
    expect(csp.get('style-src')).toEqual([hash(styles[0] as string)]);
    expect(csp.get('connect-src')).toEqual(["'self'"]);
    expect(csp.get('img-src')).toEqual(['data:']);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(csp.get('form-action')).toEqual(["'none'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(String(page.headers['content-security-policy'])).not.toMatch(/unsafe-|https?:|\*/);
    // Nothing else is loaded: no src, no stylesheet link, no absolute URL a mount path would break.
    expect(page.body).not.toMatch(/\ssrc=|rel="stylesheet"|href="\/|href="http/);
  });
});

describe('the live feed', () => {
  test('Server-Sent Events: an init event (snapshot and history), then one snapshot per tick with the traffic in it', async () => {
    const { port, handler } = await plainApp({ interval: 100 });
    const feed = await FeedReader.open(port, '/admin/ws/feed');
    fixture.defer(() => feed.close());
    expect(feed.status).toBe(200);
    expect(feed.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(feed.headers['x-accel-buffering']).toBe('no');
    await feed.until(() => feed.events.length >= 1);
    const init = feed.events[0];
    expect(init?.event).toBe('init');
    expect(init?.retry).toBe(2000);
    const state = JSON.parse(init?.data ?? '') as DashboardState;
    expect(state.snapshot.connections).toBe(0);
    expect(state.snapshot.interval).toBe(100);
    expect(state.snapshot.viewers).toBe(1);
    expect(state.history.at(-1)).toEqual(state.snapshot.point);

    const client = await connect(`ws://127.0.0.1:${port}/echo`);
    fixture.defer(async () => {
      await client.close();
    });
    for (let i = 0; i < 20; i++) client.sendText(`message ${i}`);
    for (let i = 0; i < 20; i++) await client.nextMessage();
    const withTraffic = (s: DashboardSnapshot) => s.totals.messagesIn === 20 && s.totals.messagesOut === 20 && s.connections === 1;
    await feed.until(() => feed.snapshots<DashboardSnapshot>().some(withTraffic), 5000, 'a snapshot with the 20 echoes');
    const seen = feed.snapshots<DashboardSnapshot>().find(withTraffic) as DashboardSnapshot;
    expect(seen.point.connections).toBe(1);
    expect(seen.routes.map((r) => [r.pattern, r.connections, r.messagesIn])).toEqual([['/echo', 1, 20], ['/quiet', 0, 0]]);
    expect(seen.routeCount).toBe(2);
    // Some tick between the first and this one saw the 20 messages arrive: its rate is above 0.
    const rates = feed.snapshots<DashboardSnapshot>().map((s) => s.point.messagesInPerSecond ?? 0);
    expect(Math.max(...rates)).toBeGreaterThan(0);
    // The numbers are handler.stats()'s.
    const stats = handler.stats();
    expect(seen.totals.bytesIn).toBeLessThanOrEqual(stats.bytesIn);
    expect(seen.totals.handshakesAccepted).toBe(1);
    // Every event is one JSON document on one data line.
    for (const e of feed.events) expect(e.data.includes('\n')).toBe(false);
  });

  test('a tick is computed once and the same bytes go to every viewer', async () => {
    let calls = 0;
    const { port } = await plainApp({ interval: 100 }, (handler) => ({
      stats: () => {
        calls++;
        return handler.stats();
      },
      clients: handler.clients,
    }));
    const a = await FeedReader.open(port, '/admin/ws/feed');
    const b = await FeedReader.open(port, '/admin/ws/feed');
    fixture.defer(() => a.close());
    fixture.defer(() => b.close());
    await a.until(() => a.snapshots().length >= 5, 5000, 'five ticks at a');
    await b.until(() => b.snapshots().length >= 5, 5000, 'five ticks at b');
    const ticksA = a.events.filter((e) => e.event === 'message').map((e) => e.data);
    const ticksB = b.events.filter((e) => e.event === 'message').map((e) => e.data);
    // b joined after a: from b's first tick on, both got the very same frames.
    const from = ticksA.indexOf(ticksB[0] as string);
    expect(from).toBeGreaterThanOrEqual(0);
    const shared = Math.min(ticksA.length - from, ticksB.length);
    expect(shared).toBeGreaterThanOrEqual(4);
    expect(ticksA.slice(from, from + shared)).toEqual(ticksB.slice(0, shared));
    // One stats() per tick (plus the first viewer's own sample), not one per viewer.
    const distinct = new Set([...ticksA, ...ticksB]).size;
    expect(calls).toBeLessThanOrEqual(distinct + 2);
  });

  test('at most maxViewers pages watch: one more gets 503 with Retry-After (HEAD too); once one leaves, a new one is let in', async () => {
    const { port, dashboard } = await plainApp({ maxViewers: 2 });
    const a = await FeedReader.open(port, '/admin/ws/feed');
    const b = await FeedReader.open(port, '/admin/ws/feed');
    fixture.defer(() => a.close());
    fixture.defer(() => b.close());
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(dashboard.viewers).toBe(2);
    const refused = await request(port, '/admin/ws/feed');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('10');
    expect(refused.body).toBe('too many dashboard viewers (at most 2): try again later\n');
    expect((await request(port, '/admin/ws/feed', 'HEAD')).status).toBe(503);
    // The page and the snapshot are not bounded by it.
    expect((await request(port, '/admin/ws/')).status).toBe(200);
    expect((await request(port, '/admin/ws/snapshot.json')).status).toBe(200);
    a.close();
    await waitFor(() => dashboard.viewers === 1, 2000, 'the viewer to leave');
    const c = await FeedReader.open(port, '/admin/ws/feed');
    fixture.defer(() => c.close());
    expect(c.status).toBe(200);
    expect(dashboard.viewers).toBe(2);
  });

  test("the timer runs only while someone watches, and is unref'd: no stats() call without a viewer", async () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval');
    let calls = 0;
    const { port, dashboard } = await plainApp({ interval: 100 }, (handler) => ({
      stats: () => {
        calls++;
        return handler.stats();
      },
      clients: handler.clients,
    }));
    expect(dashboard.live).toBe(false);
    await sleep(350);
    expect(calls).toBe(0);

    const feed = await FeedReader.open(port, '/admin/ws/feed');
    await feed.until(() => feed.snapshots().length >= 2, 5000, 'two ticks');
    expect(dashboard.live).toBe(true);
    const started = setIntervalSpy.mock.calls.findIndex((call) => call[1] === 100);
    expect(started).toBeGreaterThanOrEqual(0);
    const timer = setIntervalSpy.mock.results[started]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);

    feed.close();
    await waitFor(() => dashboard.viewers === 0, 2000, 'the viewer to leave');
    expect(dashboard.live).toBe(false);
    expect(clearIntervalSpy).toHaveBeenCalledWith(timer);
    const after = calls;
    await sleep(350);
    expect(calls).toBe(after);

    // A new viewer starts it again.
    const again = await FeedReader.open(port, '/admin/ws/feed');
    await again.until(() => again.snapshots().length >= 1, 5000, 'a tick');
    expect(dashboard.live).toBe(true);
    again.close();
    await waitFor(() => !dashboard.live, 2000, 'the timer to stop');
  });

  test('close() ends every feed and stops the timer; a later feed request gets 503, the page and snapshot still answer', async () => {
    const { port, dashboard } = await plainApp({ interval: 100 });
    const feed = await FeedReader.open(port, '/admin/ws/feed');
    await feed.until(() => feed.events.length >= 1);
    dashboard.close();
    await feed.until(() => feed.ended, 2000, 'the feed to end');
    expect(dashboard.viewers).toBe(0);
    expect(dashboard.live).toBe(false);
    const refused = await request(port, '/admin/ws/feed');
    expect(refused.status).toBe(503);
    expect(refused.body).toBe('the dashboard is closed\n');
    expect((await request(port, '/admin/ws/snapshot.json')).status).toBe(200);
  });

  test('a viewer that stops reading misses frames instead of growing the server’s memory', async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler, { interval: 100 });
    fixture.defer(() => dashboard.close());
    // A response whose socket never drains: every write stays in writableLength.
    const writes: string[] = [];
    let pending = 0;
    const stuck = {
      method: 'GET',
      url: '/feed',
      get writableLength() {
        return pending;
      },
      writeHead() {
        return this;
      },
      write(chunk: string) {
        writes.push(chunk);
        pending += Buffer.byteLength(chunk) + 200 * 1024;
        return false;
      },
      on() {
        return this;
      },
      end() {},
    };
    dashboard({ method: 'GET', url: '/feed', headers: {} } as IncomingMessage, stuck as unknown as ServerResponse);
    expect(dashboard.viewers).toBe(1);
    await sleep(600);
    // The init event, one tick (backlog now past 256 KiB), then nothing more.
    expect(writes.length).toBe(2);
  });
});

describe('hostile strings', () => {
  /** A route pattern and an address that would break SSE framing, HTML or a script if written as they are. */
  const PATTERN = '/a\n\nevent\n\ndata\n\n</script><script>alert(1)</script><img src=x onerror=alert(2)>';
  const ADDRESS = '"><img src=x onerror=alert(3)>\r\n\r\ndata\r\n';

  test('travel as JSON strings (one event per tick, exactly as they were) and never into the page, which holds no data', async () => {
    class Plain extends Behavior {}
    const handler = fixture.handlerFor({ [PATTERN]: Plain, '/echo': Echo });
    const hostile: DashboardSource = {
      stats: () => handler.stats(),
      clients: new Set([{ id: 7, route: PATTERN, remoteAddress: ADDRESS, bufferedAmount: 4096, latency: 3 }]),
    };
    const dashboard = createDashboard(hostile, { interval: 100 });
    fixture.defer(() => dashboard.close());
    const { port } = await serveApp(fixture, handler, dashboard);
    const feed = await FeedReader.open(port, '/feed');
    fixture.defer(() => feed.close());
    await feed.until(() => feed.snapshots().length >= 2, 5000, 'two ticks');
    // Only the init event and ticks: nothing injected an event of its own.
    expect(new Set(feed.events.map((e) => e.event))).toEqual(new Set(['init', 'message']));
    const [init, ...ticks] = feed.events;
    expect(feed.raw.split('\n\n').filter((block) => block !== '').length).toBe(feed.events.length);
    const state = JSON.parse(init?.data ?? '') as DashboardState;
    expect(state.snapshot.routes.map((r) => r.pattern).sort()).toEqual(['/echo', PATTERN].sort());
    expect(state.snapshot.slowConsumers).toEqual([{ id: 7, route: PATTERN, remoteAddress: ADDRESS, bufferedAmount: 4096, latency: 3 }]);
    for (const tick of ticks) expect((JSON.parse(tick.data) as DashboardSnapshot).slowConsumers[0]?.remoteAddress).toBe(ADDRESS);

    const page = (await request(port, '/')).body;
    expect(page).not.toContain('alert(');
    const json = await request(port, '/snapshot.json');
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['x-content-type-options']).toBe('nosniff');
    expect((JSON.parse(json.body) as DashboardState).snapshot.slowConsumers[0]?.route).toBe(PATTERN);
  });
});

describe('viewers that are gone', () => {
  /** A response as the dashboard sees it, destroyed (its socket closed) when `destroyed` says. */
  function fakeResponse(destroyed: () => boolean) {
    const listeners = new Map<string, (() => void)[]>();
    return {
      writes: [] as string[],
      get destroyed() {
        return destroyed();
      },
      writableLength: 0,
      writeHead() {
        return this;
      },
      write(chunk: string) {
        this.writes.push(chunk);
        return true;
      },
      on(event: string, listener: () => void) {
        listeners.set(event, [...(listeners.get(event) ?? []), listener]);
        return this;
      },
      emit(event: string) {
        for (const l of listeners.get(event) ?? []) l();
      },
      end() {},
    };
  }
  const feedRequest = { method: 'GET', url: '/feed', headers: {} } as IncomingMessage;

  test('a page that left before its feed started is not counted, and starts no timer', () => {
    const dashboard = createDashboard(fixture.handlerFor({ '/echo': Echo }), { interval: 100 });
    fixture.defer(() => dashboard.close());
    const gone = fakeResponse(() => true);
    dashboard(feedRequest, gone as unknown as ServerResponse);
    expect(dashboard.viewers).toBe(0);
    expect(dashboard.live).toBe(false);
  });

  test('a viewer whose response errors or is found destroyed at a tick leaves; the timer stops with the last', async () => {
    const dashboard = createDashboard(fixture.handlerFor({ '/echo': Echo }), { interval: 100 });
    fixture.defer(() => dashboard.close());
    let broken = false;
    const a = fakeResponse(() => broken);
    const b = fakeResponse(() => false);
    dashboard(feedRequest, a as unknown as ServerResponse);
    dashboard(feedRequest, b as unknown as ServerResponse);
    expect(dashboard.viewers).toBe(2);
    b.emit('error');
    expect(dashboard.viewers).toBe(1);
    broken = true;
    await waitFor(() => dashboard.viewers === 0, 2000, 'the destroyed viewer to leave at a tick');
    expect(dashboard.live).toBe(false);
  });
});

describe('options', () => {
  test('an unknown key is a TypeError naming the options; a value out of range a RangeError; a path must be a path', () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    expect(() => createDashboard(handler, { intervall: 1000 } as DashboardOptions)).toThrow(
      new TypeError("wsmount: createDashboard() has no option 'intervall'; the options are path, interval, span, maxViewers, topRoutes, slowConsumers, title"),
    );
    expect(() => createDashboard(handler, { interval: 50 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { interval: 1.5 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { interval: 1000, span: 3601 * 1000 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { maxViewers: 0 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { topRoutes: 101 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { slowConsumers: -1 })).toThrow(RangeError);
    expect(() => createDashboard(handler, { path: 'admin' })).toThrow(TypeError);
    expect(() => createDashboard(handler, { path: '/admin?x' })).toThrow(TypeError);
    expect(() => createDashboard({} as DashboardSource)).toThrow(TypeError);
    const d: Dashboard = createDashboard(handler, { path: '/', slowConsumers: 0, span: 1000, interval: 1000 });
    expect(d.viewers).toBe(0);
  });

  test('the title is escaped in the page', async () => {
    const handler = fixture.handlerFor({ '/echo': Echo });
    const dashboard = createDashboard(handler, { title: '<img src=x onerror=alert(1)> & "co"' });
    const { port } = await serveApp(fixture, handler, dashboard);
    const page = (await request(port, '/')).body;
    expect(page).toContain('<title>&lt;img src=x onerror=alert(1)&gt; &amp; &quot;co&quot; · WebSocket dashboard</title>');
    expect(page).not.toContain('<img');
  });
});
