// wsmount example: an EXISTING Express app (a tiny job service) gains a live dashboard.
//
// Try it:  npm run build && node demo/gui/app.js          (PORT=… to change 9002)
//          open http://127.0.0.1:9002/dashboard, then in another terminal:
//          curl -X POST localhost:9002/api/jobs -H 'content-type: application/json' -d '{"name":"resize photos"}'
//
// The app was already there: a JSON API (POST /api/jobs, GET /api/jobs, POST /api/jobs/:id/cancel)
// and jobs that advance on a timer. The live part is one route, '/live', mounted on the same
// HTTP server. Whatever happens elsewhere in the app (a route handler, a timer) is pushed to every
// dashboard with `live.broadcast(…)`; `live.clients` is the set of dashboards watching.
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import { Behavior, createWebSocketHandler } from 'wsmount';

const publicDir = fileURLToPath(new URL('public/', import.meta.url));
const demoPages = fileURLToPath(new URL('../public/', import.meta.url)); // the demos' shared style.css

/**
 * Starts the app on `port` (0 picks a free one). `tickMs` is how often every running job
 * advances one step. Resolves with `{ port, url, close() }`; `url` is the app's base URL.
 */
export async function startGuiApp({ port = 0, host = '127.0.0.1', tickMs = 500 } = {}) {
  // ---- the app's own state and job code ------------------------------------------------------
  /** @type {Map<number, {id: number, name: string, steps: number, done: number, progress: number, state: string}>} */
  const jobs = new Map();
  const timers = new Map();
  let nextId = 1;

  function createJob(name, steps) {
    const job = { id: nextId++, name, steps, done: 0, progress: 0, state: 'running' };
    jobs.set(job.id, job);
    publish({ type: 'job.created', job });
    timers.set(job.id, setInterval(() => advance(job), tickMs));
    return job;
  }

  function advance(job) {
    job.done += 1;
    job.progress = Math.round((100 * job.done) / job.steps);
    if (job.done < job.steps) {
      publish({ type: 'job.progress', id: job.id, progress: job.progress });
      return;
    }
    job.state = 'done';
    stopTimer(job.id);
    publish({ type: 'job.done', job });
  }

  /** Returns the cancelled job, or an error message (the HTTP route and the socket share this). */
  function cancelJob(id) {
    const job = jobs.get(id);
    if (job === undefined) return `no job ${id}`;
    if (job.state !== 'running') return `job ${id} is already ${job.state}`;
    job.state = 'cancelled';
    stopTimer(id);
    publish({ type: 'job.cancelled', job });
    return job;
  }

  function stopTimer(id) {
    clearInterval(timers.get(id));
    timers.delete(id);
  }

  // ---- the live dashboard socket: the whole wsmount part ---------------------------------------
  /** Sends one event, as JSON, to every dashboard. */
  function publish(event) {
    live.broadcast(JSON.stringify(event));
  }
  const publishViewers = () => publish({ type: 'viewers', count: live.clients.size });

  class Dashboard extends Behavior {
    static maxPayload = 4 * 1024; // commands are tiny; anything bigger closes with 1009

    onOpen() {
      this.sendText(JSON.stringify({ type: 'snapshot', jobs: [...jobs.values()] }));
      publishViewers(); // this client is already in live.clients
    }

    onText(text) {
      let command;
      try {
        command = JSON.parse(text);
      } catch {
        return this.reply({ type: 'error', message: 'not JSON' });
      }
      if (command?.type !== 'cancel') return this.reply({ type: 'error', message: 'unknown command' });
      if (!Number.isSafeInteger(command.id)) return this.reply({ type: 'error', message: 'cancel needs a numeric id' });
      const result = cancelJob(command.id);
      if (typeof result === 'string') this.reply({ type: 'error', message: result });
    }

    onBinary() {
      this.reply({ type: 'error', message: 'send JSON text' });
    }

    onClose() {
      publishViewers(); // this client has already left live.clients
    }

    reply(message) {
      this.sendText(JSON.stringify(message));
    }
  }

  const live = createWebSocketHandler(
    { '/live': Dashboard },
    // Browsers send Origin: only pages served by this app may connect (tools without Origin may).
    { origins: (origin, req) => origin === undefined || originHost(origin) === req.headers.host },
  );

  // ---- the Express app, as it was (plus three lines for the dashboard page and its style) -------
  const app = express();
  app.use(express.json({ limit: '4kb' }));

  app.get('/api/jobs', (_req, res) => {
    res.json([...jobs.values()]);
  });
  app.get('/api/jobs/:id', (req, res) => {
    const job = jobs.get(Number(req.params.id));
    if (job === undefined) res.status(404).json({ error: 'no such job' });
    else res.json(job);
  });
  app.post('/api/jobs', (req, res) => {
    const name = typeof req.body?.name === 'string' ? req.body.name.trim().slice(0, 80) : '';
    const steps = req.body?.steps ?? 10;
    if (name === '' || !Number.isInteger(steps) || steps < 1 || steps > 1000) {
      res.status(400).json({ error: 'expected {"name": "…", "steps"?: 1…1000}' });
      return;
    }
    res.status(201).json(createJob(name, steps));
  });
  app.post('/api/jobs/:id/cancel', (req, res) => {
    const result = cancelJob(Number(req.params.id));
    if (typeof result === 'string') res.status(409).json({ error: result });
    else res.json(result);
  });

  app.get('/', (_req, res) => res.redirect('/dashboard'));
  app.get('/dashboard', (_req, res) => res.sendFile('dashboard.html', { root: publicDir }));
  app.get('/style.css', (_req, res) => res.sendFile('style.css', { root: demoPages }));
  app.use(express.static(publicDir));

  // Bad JSON bodies and the like: a JSON error, not Express's HTML page.
  app.use((err, _req, res, _next) => {
    res.status(err.status ?? 500).json({ error: err.expose ? err.message : 'internal error' });
  });

  // ---- one HTTP server for both ----------------------------------------------------------------
  const server = http.createServer(app);
  live.attach(server);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const bound = server.address().port;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

  return {
    port: bound,
    url: `http://${shownHost}:${bound}`,
    async close() {
      for (const id of [...timers.keys()]) stopTimer(id);
      await live.close({ timeout: 2000 }); // 1001 to every dashboard, waits until they are gone
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function originHost(origin) {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

// `node demo/gui/app.js` runs it; importing this file (the tests do) does not.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await startGuiApp({ port: Number(process.env.PORT ?? 9002), host: process.env.HOST ?? '127.0.0.1' });
  console.log(`job service with a live dashboard: ${app.url}/dashboard  (Ctrl+C to stop)`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      await app.close();
      process.exit(0);
    });
  }
}
