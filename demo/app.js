// The wsmount demo as a function: one standalone server that answers WebSockets on
// /chat, /headers, /reverse, /notify and /listen, and serves the demo pages over plain HTTP
// on the same port, with the handler's counters at /stats.json and /metrics (Prometheus) and the live dashboard
// (wsmount/dashboard) at /dashboard/. `npm run demo` runs it (demo/server.js); the browser tests start it too.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Behavior, createWebSocketServer, prometheusHandler } from 'wsmount';
import { createDashboard } from 'wsmount/dashboard';

const pages = new URL('./public/', import.meta.url);
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Longest chat name and message, in code points. */
const MAX_NAME = 24;
const MAX_TEXT = 1000;

/**
 * A chat name as shown to everyone: control characters and bidirectional overrides removed
 * (they could fake other lines or reorder what is shown around the name), runs of white space
 * made one space, at most MAX_NAME code points. '' when nothing visible is left.
 */
function chatName(raw) {
  const name = String(raw ?? '')
    .normalize('NFC')
    .replace(/[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu, ' ')
    .replace(/\s+/gu, ' ')
    .trim();
  return [...name].slice(0, MAX_NAME).join('').trim();
}

/** "guest-7f3a": the name of someone who did not give one. */
function guestName() {
  return `guest-${randomBytes(2).toString('hex')}`;
}

/**
 * Starts the demo. Resolves once it listens.
 *
 * @param {{ port?: number, host?: string, log?: (line: string) => void, dashboard?: import('wsmount/dashboard').DashboardOptions, handlerOptions?: import('wsmount').HandlerOptions }} [options]
 *   `port` 0 picks a free one; `log` receives the server's log lines (joins, leaves, messages);
 *   `dashboard`: options for the dashboard at /dashboard/ (its `interval`, `span`…);
 *   `handlerOptions`: handler options over the demo's own (the dashboard's screenshot script
 *   sets a short heartbeat).
 * @returns {Promise<{ port: number, url: string, close(): Promise<void>, handler: import('wsmount').WebSocketHandler, dashboard: import('wsmount/dashboard').Dashboard }>}
 */
export async function startDemo({ port = 0, host = '127.0.0.1', log = console.log, dashboard: dashboardOptions = {}, handlerOptions = {} } = {}) {
  // ---- /chat: everyone in the room sees every message ------------------------------------
  // Each participant has a name, given in the query string (/chat?name=alice) and changeable
  // later. The page sends JSON commands: {"type":"say","text":"…"} and {"type":"rename","name":"…"}.
  // The server sends JSON events:
  //   {type:'welcome', you:{id,name}, people:[{id,name}…]}  to the one who joined (people includes them)
  //   {type:'joined'|'left', id, name}                      to everyone else
  //   {type:'message', id, name, text}                      to everyone, the sender included: a page
  //                                                         shows its own message when it comes back,
  //                                                         once, in the order everyone sees it
  //   {type:'renamed', id, from, name}                      to everyone
  //   {type:'error', message}                               to the one whose command was refused
  class Chat extends Behavior {
    // A person types far slower than this: a script flooding the room is closed with 1008.
    static rateLimit = { messages: 20, interval: 1000 };
    // A command is a name or a message of at most 1,000 characters, as JSON.
    static maxPayload = 16 * 1024;

    onOpen() {
      this.data = { name: chatName(this.query.get('name')) || guestName() };
      log(`chat: ${this.who} joined from ${this.remoteAddress}`);
      const people = [...this.handler.clientsOf('/chat')].map((c) => ({ id: c.id, name: c.data.name ?? '' }));
      this.reply({ type: 'welcome', you: { id: this.id, name: this.data.name }, people });
      this.toOthers({ type: 'joined', id: this.id, name: this.data.name });
    }
    onText(json) {
      let command;
      try {
        command = JSON.parse(json);
      } catch {
        return this.reply({ type: 'error', message: 'not JSON: send {"type":"say","text":"…"}' });
      }
      if (command?.type === 'say' && typeof command.text === 'string') {
        const text = command.text.trim();
        if (text === '') return this.reply({ type: 'error', message: 'nothing to send' });
        if ([...text].length > MAX_TEXT) return this.reply({ type: 'error', message: `too long: at most ${MAX_TEXT} characters` });
        log(`chat: ${this.who} said: ${JSON.stringify(text)}`);
        this.toAll({ type: 'message', id: this.id, name: this.data.name, text });
      } else if (command?.type === 'rename' && typeof command.name === 'string') {
        const name = chatName(command.name);
        if (name === '') return this.reply({ type: 'error', message: 'a name needs at least one visible character' });
        if (name === this.data.name) return;
        const from = this.data.name;
        this.data.name = name;
        log(`chat: client ${this.id} renamed from ${JSON.stringify(from)} to ${JSON.stringify(name)}`);
        this.toAll({ type: 'renamed', id: this.id, from, name });
      } else {
        this.reply({ type: 'error', message: 'unknown command: send {"type":"say","text":"…"} or {"type":"rename","name":"…"}' });
      }
    }
    onClose(code) {
      log(`chat: ${this.who} left (${code})`);
      // This client has already left the route's clients: the others hear of it.
      this.toAll({ type: 'left', id: this.id, name: this.data.name });
    }

    /** "alice (client 3)", for the server's log; the name is quoted, so it cannot fake a log line. */
    get who() {
      return `${JSON.stringify(this.data.name)} (client ${this.id})`;
    }
    reply(event) {
      this.sendText(JSON.stringify(event));
    }
    toAll(event) {
      this.handler.broadcast(JSON.stringify(event), { route: '/chat' });
    }
    toOthers(event) {
      this.handler.broadcast(JSON.stringify(event), { route: '/chat', filter: (c) => c !== this });
    }
  }

  // ---- /headers: a header of this connection's upgrade request, by name -------------------
  class Headers extends Behavior {
    onText(text) {
      const name = text.trim();
      const key = name.toLowerCase(); // Node gives header names in lower case
      if (name === '') {
        this.sendText('type a header name, e.g. User-Agent');
      } else if (Object.hasOwn(this.headers, key)) {
        const value = this.headers[key];
        this.sendText(`${name}: ${Array.isArray(value) ? value.join(', ') : value}`);
      } else {
        this.sendText(`no such header: ${name}`);
      }
    }
  }

  // ---- /reverse: "abc" → "c.b.a", by code point so emoji stay whole ------------------------
  class Reverse extends Behavior {
    onText(text) {
      this.sendText([...text].reverse().join('.'));
    }
  }

  // ---- /notify and /listen: event sources and prioritized listeners ----------------------
  // Each /notify connection is a source. A /listen connection subscribes with
  // "<source id> <priority>"; a source's message goes to its highest-priority listener only
  // (on a tie, the one that subscribed first).

  /** source id → { source, subscribers: [{ listener, priority }] in subscription order } */
  const sources = new Map();

  class Notify extends Behavior {
    onOpen() {
      sources.set(this.id, { source: this, subscribers: [] });
      log(`notify: source ${this.id} opened`);
      this.sendText(`your source id is ${this.id}`);
    }
    onText(text) {
      const { subscribers } = sources.get(this.id);
      let best;
      for (const s of subscribers) if (best === undefined || s.priority > best.priority) best = s;
      if (best === undefined) {
        this.sendText('nobody is listening: event dropped');
        return;
      }
      best.listener.sendText(`event from source ${this.id}: ${text}`);
      this.sendText(`delivered to listener ${best.listener.id} (priority ${best.priority})`);
      log(`notify: source ${this.id} → listener ${best.listener.id}: ${text}`);
    }
    onClose() {
      for (const { listener } of sources.get(this.id).subscribers) {
        listener.data.sources.delete(this.id);
        listener.sendText(`source ${this.id} has gone: subscription dropped`);
      }
      sources.delete(this.id);
      log(`notify: source ${this.id} closed`);
    }
  }

  class Listen extends Behavior {
    onOpen() {
      this.data = { sources: new Set() }; // ids of the sources this listener subscribed to
    }
    onText(text) {
      const words = text.trim().split(/\s+/);
      if (words.length !== 2 || !words.every((w) => /^-?\d+$/.test(w))) {
        const why = words.length === 1 && /^\d+$/.test(words[0]) ? 'missing priority' : 'bad input';
        this.sendText(`error: ${why} in "${text}": send "<source id> <priority>", e.g. "7 5"`);
        return;
      }
      const [id, priority] = words.map(Number);
      const source = sources.get(id);
      if (source === undefined) {
        this.sendText(`error: unknown source ${id}`);
        return;
      }
      const mine = source.subscribers.find((s) => s.listener === this);
      if (mine) mine.priority = priority;
      else source.subscribers.push({ listener: this, priority });
      this.data.sources.add(id);
      this.sendText(`subscribed to source ${id} with priority ${priority}`);
      log(`listen: listener ${this.id} subscribed to source ${id} with priority ${priority}`);
    }
    onClose() {
      for (const id of this.data.sources) {
        const source = sources.get(id);
        source.subscribers = source.subscribers.filter((s) => s.listener !== this);
      }
      log(`listen: listener ${this.id} left`);
    }
  }

  // ---- plain HTTP: the pages ("/" → index.html, "/chat" or "/chat.html" → chat.html) -------

  /** The bar of links every page shows, with the current page marked (one copy, for all pages). */
  const PAGES = [['chat.html', 'Chat'], ['headers.html', 'Headers'], ['reverse.html', 'Reverse'], ['notify.html', 'Notify'], ['listen.html', 'Listen'], ['stats.html', 'Stats']];
  function topbar(file) {
    const links = PAGES.map(([href, label]) => `    <a href="${href}"${href === file ? ' aria-current="page"' : ''}>${label}</a>`).join('\n');
    return `<header class="topbar"><div class="topbar-inner">\n  <a class="brand" href="./">wsmount <span>demo</span></a>\n  <nav aria-label="Demo pages">\n${links}\n  </nav>\n</div></header>`;
  }

  async function servePage(req, res) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    // The live dashboard: its page, feed and snapshot.json under /dashboard/. A real app puts
    // its own authentication in front of it (it shows addresses); the demo shows it to anyone.
    if (path === '/dashboard' || path.startsWith('/dashboard/')) return dashboard(req, res);
    // The same counters in Prometheus' text format, for a scrape_config to point at.
    if (path === '/metrics') return metrics(req, res);
    if (path === '/stats.json') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(server.handler.stats()));
      return;
    }
    let file = path === '/' ? 'index.html' : path.slice(1);
    if (extname(file) === '') file += '.html';
    if (!/^[\w-]+\.\w+$/.test(file)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    try {
      let body = await readFile(new URL(file, pages));
      if (extname(file) === '.html') body = body.toString('utf8').replace('<!-- topbar: filled in by demo/app.js -->', topbar(file));
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  const server = createWebSocketServer(
    { '/chat': Chat, '/headers': Headers, '/reverse': Reverse, '/notify': Notify, '/listen': Listen },
    // At most 50 sockets per address: the demo may be reached from a network (HOST=0.0.0.0).
    { port, host, onRequest: servePage, maxConnectionsPerIp: 50, ...handlerOptions },
  );
  const metrics = prometheusHandler(server.handler);
  const dashboard = createDashboard(server.handler, { path: '/dashboard', title: 'wsmount demo', ...dashboardOptions });
  const bound = await server.listen();
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    url: `http://${shown}:${bound}/`,
    // The dashboard first: its open feeds would otherwise keep the HTTP server from closing.
    close: () => {
      dashboard.close();
      return server.close();
    },
    handler: server.handler,
    dashboard,
  };
}
