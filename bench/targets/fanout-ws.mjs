// What ws users write today to fan a room out over several processes: every server PUBLISHes
// what its publisher sends to a Redis channel, and each server has one ioredis subscriber on that
// channel whose handler loops over the server's subscribers (the documented broadcast loop).
// The publisher's own server gets its clients' copies back through Redis like the other one.
//   /sub     a subscriber (a client of the 'sub' WebSocketServer)
//   /pub     every message goes to Redis: pub.publish('fanout', data)
//   /topics  for the memory measurement: "sub:K" adds the socket to K new topics in the usual
//            hand-written index, Map<topic, Set<WebSocket>>, plus each socket's own Set of topics
//            (to leave them all at close), since ws has no topics
// Written fairly: the subscriber takes ioredis' 'messageBuffer' event (the Buffer as it came, no
// UTF-8 decode) and sends it as text with { binary: false }, so no per-client conversion happens;
// one WebSocketServer per path with noServer: true, as in targets/ws.mjs. Pure JS
// (WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE are set by run.mjs), like the ws target.
// BENCH_REDIS_PORT is needed for /pub and /sub; the memory measurement runs without it.

import { createRequire } from 'node:module';
import { WebSocket, WebSocketServer } from 'ws';
import { http, MAX_PAYLOAD, serve } from './common.mjs';

const require = createRequire(import.meta.url);
const CHANNEL = 'fanout';

const options = { noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false };
const subs = new WebSocketServer(options);
const pubs = new WebSocketServer(options);
const topicServer = new WebSocketServer(options);

const redisPort = Number(process.env.BENCH_REDIS_PORT ?? 0);
let pub = null;
if (redisPort > 0) {
  const { default: Redis } = await import('ioredis');
  pub = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true });
  await pub.connect();
  const sub = pub.duplicate();
  await sub.subscribe(CHANNEL);
  sub.on('messageBuffer', (_channel, message) => {
    subs.clients.forEach((client) => {
      if (client.readyState === WebSocket.OPEN) client.send(message, { binary: false });
    });
  });
}

subs.on('connection', (ws) => {
  ws.on('error', () => {});
});

pubs.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data) => {
    pub.publish(CHANNEL, data);
  });
});

// The hand-written topic index a ws user keeps.
const topics = new Map();
const topicsOf = new Map();
let subscriptions = 0;
let nextTopic = 0;

topicServer.on('connection', (ws) => {
  ws.on('error', () => {});
  const mine = new Set();
  topicsOf.set(ws, mine);
  ws.on('message', (data) => {
    const text = data.toString();
    if (!text.startsWith('sub:')) return;
    const k = Number(text.slice(4));
    for (let i = 0; i < k; i++) {
      const topic = `topic:${nextTopic++}`;
      if (mine.has(topic)) continue;
      mine.add(topic);
      let set = topics.get(topic);
      if (set === undefined) topics.set(topic, (set = new Set()));
      set.add(ws);
      subscriptions++;
    }
  });
  ws.on('close', () => {
    for (const topic of mine) {
      const set = topics.get(topic);
      set.delete(ws);
      if (set.size === 0) topics.delete(topic);
      subscriptions--;
    }
    topicsOf.delete(ws);
  });
});

const routes = { '/sub': subs, '/pub': pubs, '/topics': topicServer };
const server = http.createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  const wss = routes[pathname];
  if (wss === undefined || (pub === null && wss !== topicServer)) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

const cached = Object.keys(require.cache);
const loaded = (name) => cached.some((p) => p.includes(`/node_modules/${name}/`) && p.endsWith('.node'));
if (loaded('bufferutil') || loaded('utf-8-validate')) throw new Error('ws (pure JS): a native addon was loaded despite WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE');

serve(
  server,
  {
    library: 'ws',
    version: require('ws/package.json').version,
    relay: pub ? `ioredis ${require('ioredis/package.json').version}: PUBLISH + one subscriber per process, loop over wss.clients` : 'none',
    perMessageDeflate: false,
  },
  () => subs.clients.size + pubs.clients.size + topicServer.clients.size,
  () => ({ subscriptions, topics: topics.size }),
);
