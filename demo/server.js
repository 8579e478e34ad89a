// wsmount demo: the seed's examples on one standalone server that also serves their pages.
// Run: npm install && npm run demo   →   open http://localhost:9001/
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Behavior, createWebSocketServer } from 'wsmount';

const pages = join(fileURLToPath(new URL('.', import.meta.url)), 'public');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

/** /reverse: the text back, reversed by code point and interleaved with dots ("abc" → "c.b.a"). */
class Reverse extends Behavior {
  onText(text) {
    this.sendText([...text].reverse().join('.'));
  }
}

/** /headers: send a header name, get that header's value from the upgrade request. */
class Headers extends Behavior {
  onText(name) {
    const value = this.headers[name.trim().toLowerCase()];
    this.sendText(value === undefined ? `no such header: ${name}` : `${name}: ${value}`);
  }
}

// /chat uses the base Behavior, whose hooks call these server-wide callbacks (the seed's
// set_fn_new_client / set_fn_message_received / set_fn_client_left).
const app = createWebSocketServer(
  { '/chat': Behavior, '/reverse': Reverse, '/headers': Headers },
  {
    port: Number(process.env.PORT ?? 9001),
    host: process.env.HOST ?? '127.0.0.1',
    logLevel: 'info',
    onConnect(client) {
      console.log(`client ${client.id} joined ${client.route} from ${client.remoteAddress}`);
      if (client.route === '/chat') app.handler.broadcast('Hey all, a new client has joined us', { route: '/chat' });
    },
    onMessage(client, message) {
      // Only /chat uses the base Behavior's forwarding; the other routes override onText.
      console.log(`client ${client.id} said: ${message}`);
      app.handler.broadcast(`client ${client.id}: ${message}`, { route: '/chat' });
    },
    onDisconnect(client, code) {
      console.log(`client ${client.id} left ${client.route} (${code})`);
    },
    async onRequest(req, res) {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const file = path === '/' ? 'index.html' : path.slice(1);
      if (file.includes('..') || file.includes('/')) {
        res.writeHead(404).end();
        return;
      }
      try {
        const body = await readFile(join(pages, file));
        res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
      } catch {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      }
    },
  },
);

const port = await app.listen();
console.log(`wsmount demo on http://localhost:${port}/  (Ctrl+C to stop)`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    console.log('closing…');
    await app.close();
    process.exit(0);
  });
}
