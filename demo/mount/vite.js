// wsmount inside the Vite dev server, as a plugin; Vite's own HMR WebSocket keeps working beside it.
// Try it:  npm run build && node demo/mount/vite.js
//   curl http://127.0.0.1:5173/health
//   node --experimental-websocket -e "const ws = new WebSocket('ws://127.0.0.1:5173/echo'); ws.onopen = () => ws.send('hi'); ws.onmessage = (e) => { console.log(e.data); ws.close(); }"
// In a vite.config.js:  export default { plugins: [wsmount(createWebSocketHandler({ '/echo': Echo }))] }
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { Behavior, createWebSocketHandler } from 'wsmount';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

/** The plugin: mounts a wsmount handler on Vite's dev server (not in middleware mode: there, attach it to your own server). */
export function wsmount(sockets) {
  return {
    name: 'wsmount',
    configureServer(server) {
      // ── wsmount ───────────────────────────────────────────────────────────
      if (server.httpServer) sockets.attach(server.httpServer);
      // ───────────────────────────────────────────────────────────────────────
    },
  };
}

export async function start(port = 5173, host = '127.0.0.1') {
  const sockets = createWebSocketHandler({ '/echo': Echo });
  const health = {
    name: 'health',
    configureServer(server) {
      server.middlewares.use('/health', (_req, res) => res.end('ok'));
    },
  };
  const vite = await createServer({
    configFile: false,
    root: fileURLToPath(new URL('.', import.meta.url)),
    logLevel: 'warn',
    server: { port, host, strictPort: true },
    plugins: [wsmount(sockets), health],
  });
  await vite.listen();
  return {
    server: vite.httpServer,
    sockets,
    vite,
    url: `http://${host}:${vite.httpServer.address().port}`,
    async close() {
      await sockets.close(); // close frames first (vite.close() would just destroy every socket)
      await vite.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await start(Number(process.env.PORT ?? 5173));
  console.log(`Vite on ${app.url}/health, WebSocket on ${app.url.replace('http', 'ws')}/echo (HMR on / with subprotocol vite-hmr)`);
  process.once('SIGINT', () => void app.close());
}
