// wsmount demo: `npm run demo`, then open http://localhost:9001/ (PORT and HOST to change).
import { startDemo } from './app.js';

const demo = await startDemo({
  port: Number(process.env.PORT ?? 9001),
  host: process.env.HOST ?? '127.0.0.1',
});
console.log(`wsmount demo on ${demo.url}  (Ctrl+C to stop)`);

// Ctrl+C: close every WebSocket (1001, so the pages start reconnecting), then the HTTP server;
// the process then exits by itself. A second Ctrl+C kills it at once.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    console.log('closing…');
    await demo.close();
    console.log('closed');
  });
}
