// The wsmount demo as a function: one standalone server that answers WebSockets on
// /chat, /headers, /reverse, /notify and /listen, and serves the demo pages over plain HTTP
// on the same port, with the handler's counters at /stats.json. `npm run demo` runs it (demo/server.js); the browser tests start it too.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Behavior, createWebSocketServer } from 'wsmount';

const pages = new URL('./public/', import.meta.url);
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * Starts the demo. Resolves once it listens.
 *
 * @param {{ port?: number, host?: string, log?: (line: string) => void }} [options]
 *   `port` 0 picks a free one; `log` receives the server's log lines (joins, leaves, messages).
 * @returns {Promise<{ port: number, url: string, close(): Promise<void>, handler: import('wsmount').WebSocketHandler }>}
 */
export async function startDemo({ port = 0, host = '127.0.0.1', log = console.log } = {}) {
  // ---- /chat: everyone in the room sees every message ------------------------------------
  class Chat extends Behavior {
    // A person types far slower than this: a script flooding the room is closed with 1008.
    static rateLimit = { messages: 20, interval: 1000 };

    onOpen() {
      log(`chat: client ${this.id} joined from ${this.remoteAddress}`);
      this.sendText(`you are client ${this.id}`);
      this.handler.broadcast('Hey all, a new client has joined us', { route: '/chat' });
    }
    onText(text) {
      log(`chat: client ${this.id} said: ${text}`);
      this.handler.broadcast(`client ${this.id}: ${text}`, { route: '/chat' });
    }
    onClose(code) {
      log(`chat: client ${this.id} left (${code})`);
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
  async function servePage(req, res) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
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
      const body = await readFile(new URL(file, pages));
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  const server = createWebSocketServer(
    { '/chat': Chat, '/headers': Headers, '/reverse': Reverse, '/notify': Notify, '/listen': Listen },
    // At most 50 sockets per address: the demo may be reached from a network (HOST=0.0.0.0).
    { port, host, onRequest: servePage, maxConnectionsPerIp: 50 },
  );
  const bound = await server.listen();
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    url: `http://${shown}:${bound}/`,
    close: () => server.close(),
    handler: server.handler,
  };
}
