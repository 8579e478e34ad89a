// The README's pictures of the live dashboard (wsmount/dashboard): starts the demo (demo/app.js)
// with a 2 s heartbeat, drives it with real WebSocket clients for a while (people joining and
// leaving the chat, a tide of /reverse traffic, closes with several codes, a chat flooder closed
// by the rate limit, and three clients that stop reading), then saves the page as PNGs with
// headless Chromium (Debian's, through playwright-core). Not part of `npm test`.
//
//   npm run build && node demo/dashboard/screenshot.mjs        (DURATION=… seconds, to change the 100)
//
// Writes demo/screenshots/dashboard.png (light) and dashboard-dark.png (dark colour scheme).
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { startDemo } from '../app.js';

const DURATION = Number(process.env.DURATION ?? 100);
const out = fileURLToPath(new URL('../screenshots/', import.meta.url));
mkdirSync(out, { recursive: true });

const demo = await startDemo({
  port: 0,
  log: () => {},
  dashboard: { span: 120_000, title: 'wsmount demo' },
  handlerOptions: { pingInterval: 2000, maxConnectionsPerIp: 200, logLevel: 'error' },
});
const ws = `ws://127.0.0.1:${demo.port}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const open = (path) =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(`${ws}${path}`);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });

/**
 * A client that sends masked text frames by hand and can stop reading: its socket is paused, so
 * the server's replies pile up in the server's buffers (a slow consumer).
 */
async function stalledClient(path) {
  const socket = net.connect(demo.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const key = randomBytes(16).toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise((resolve) => socket.once('data', resolve)); // the 101
  socket.pause();
  return {
    socket,
    sendText(text) {
      const payload = Buffer.from(text);
      const mask = randomBytes(4);
      const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : payload.length < 65536 ? Buffer.from([0x81, 0xfe, payload.length >> 8, payload.length & 255]) : Buffer.concat([Buffer.from([0x81, 0xff, 0, 0, 0, 0]), Buffer.from([(payload.length >>> 24) & 255, (payload.length >>> 16) & 255, (payload.length >>> 8) & 255, payload.length & 255])]);
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      socket.write(Buffer.concat([head, mask, payload]));
    },
  };
}

const chat = [];
const reverse = [];
const timers = [];
const every = (ms, fn) => timers.push(setInterval(fn, ms));

// The reverse tide: ten clients, a rate that swells and ebbs over 40 s.
for (let i = 0; i < 10; i++) reverse.push(await open('/reverse'));
const started = Date.now();
every(50, () => {
  const t = (Date.now() - started) / 1000;
  const perTick = Math.max(1, Math.round(4 + 3.5 * Math.sin((2 * Math.PI * t) / 40)));
  for (const r of reverse) if (r.readyState === WebSocket.OPEN) for (let k = 0; k < perTick; k++) r.send('wsmount dashboard '.repeat(8));
});
// The chat: people join over the first two thirds and talk now and then (each message goes to all).
every(Math.max(200, Math.floor((DURATION * 1000 * 0.66) / 30)), async () => {
  if (chat.length < 30) chat.push(await open(`/chat?name=guest${chat.length}`));
});
every(700, () => {
  const talker = chat[Math.floor(Math.random() * chat.length)];
  if (talker?.readyState === WebSocket.OPEN) talker.send(JSON.stringify({ type: 'say', text: 'hello from the screenshot script' }));
});
// Leaving, with several codes: a normal close, a going-away, a custom code, and a vanished peer.
const leaving = [(c) => c.close(1000), (c) => c.close(1001), (c) => c.close(4001, 'moved'), (c) => c.terminate()];
let left = 0;
every(6000, () => {
  const c = chat.find((x) => x.readyState === WebSocket.OPEN);
  if (c !== undefined && chat.length > 8) leaving[left++ % leaving.length](c);
});
// A script flooding the chat, closed with 1008 by the route's rate limit, twice.
for (const at of [0.3, 0.6]) {
  setTimeout(async () => {
    const flooder = await open('/chat?name=flooder');
    for (let i = 0; i < 40; i++) flooder.send(JSON.stringify({ type: 'say', text: `spam ${i}` }));
  }, DURATION * 1000 * at);
}
// Three clients that stop reading: their replies wait in the server, 2.5 MiB, 1.2 MiB, 0.4 MiB.
// They come late: not answering pings either, they are cut off after the 20 s pong timeout.
const stalled = [];
setTimeout(async () => {
  for (const target of [2.5, 1.2, 0.4]) {
    const client = await stalledClient('/reverse');
    stalled.push(client);
    const behavior = () => [...demo.handler.clientsOf('/reverse')].find((b) => b.remotePort === client.socket.localPort);
    for (let i = 0; i < 200 && (behavior()?.bufferedAmount ?? 0) < target * 1024 * 1024; i++) {
      client.sendText('x'.repeat(100_000));
      await sleep(60);
    }
  }
}, Math.max(0, DURATION - 12) * 1000);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const pages = [];
  for (const colorScheme of ['light', 'dark']) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'en-US', colorScheme });
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${demo.url}dashboard/`);
    pages.push([colorScheme, page]);
  }
  for (let s = 0; s < DURATION; s += 10) {
    await sleep(10_000);
    console.log(`${s + 10} s: ${demo.handler.stats().connections} connections`);
  }
  for (const [colorScheme, page] of pages) {
    const file = `${out}${colorScheme === 'light' ? 'dashboard.png' : 'dashboard-dark.png'}`;
    await page.screenshot({ path: file, fullPage: true });
    console.log(`wrote ${file}`);
  }
} finally {
  await browser.close();
  for (const t of timers) clearInterval(t);
  for (const c of stalled) c.socket.destroy();
  await demo.close();
}
