// One process of the cluster demo: a chat server whose rooms are topics. A message published
// here reaches the room's members on every process, through the backplane:
//   - in a node:cluster worker, clusterBackplane() (the primary relays between workers);
//   - otherwise Redis pub/sub: redisBackplane() over an ioredis client connected to REDIS_URL.
// demo/cluster/main.js starts two of these. One can also be run by hand, on as many hosts as you
// like, all sharing one Redis:
//   REDIS_URL=redis://127.0.0.1:6379 PORT=9011 node demo/cluster/server.js
//
// Socket /rooms/:room?name=… (the page at http://host:port/rooms/lobby opens it). The page sends
// {type:'say', text} and {type:'rename', name}; the server sends the page
//   {type:'welcome', id, name, room, process: {pid, port, backplane}, peerPort}   to the one who joined
//   {type:'joined'|'left', id, name, from}      to everyone else in the room, on every process
//   {type:'message', id, name, text, from}      to everyone in the room, the sender included
//   {type:'renamed', id, was, name, from}       to everyone in the room, the sender included
// where `id` names the person everywhere ("<pid>.<client id>") and `from` is the process they are
// connected to: {pid, port}.
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Behavior, clusterBackplane, createWebSocketServer, redisBackplane } from 'wsmount';

const port = Number(process.env.PORT ?? 9011);
const host = process.env.HOST ?? '127.0.0.1';
/** The other process's port, for the page's link to it (main.js sets it). */
const peerPort = process.env.PEER_PORT === undefined ? null : Number(process.env.PEER_PORT);

// ---- the backplane: node:cluster inside a worker, else Redis ----------------------------------
let backplane;
let redis;
if (cluster.isWorker) {
  backplane = clusterBackplane(); // the primary called setupClusterPrimary() before forking us
} else {
  const { Redis } = await import('ioredis');
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect(); // fails early if Redis is not there; wsmount subscribes on a duplicate it owns
  backplane = redisBackplane(redis);
}
const me = { pid: process.pid, port, backplane: cluster.isWorker ? 'node:cluster' : 'Redis' };
const from = { pid: me.pid, port };

/** A name as shown to everyone: no control or direction-changing characters, at most 24 code points. */
function cleanName(raw) {
  const name = String(raw ?? '').replace(/[\p{Cc}\p{Cf}\s]+/gu, ' ').trim();
  return [...name].slice(0, 24).join('').trim();
}

class Room extends Behavior {
  static rateLimit = { messages: 20, interval: 1000 }; // a flooding script is closed with 1008
  static maxPayload = 4096;

  verify() {
    return /^[\w-]{1,32}$/.test(this.params.room); // any other room name: 403
  }
  onOpen() {
    const name = cleanName(this.query.get('name')) || `guest-${randomBytes(2).toString('hex')}`;
    this.data = { id: `${me.pid}.${this.id}`, name, topic: `room:${this.params.room}` };
    this.subscribe(this.data.topic);
    this.sendText(JSON.stringify({ type: 'welcome', id: this.data.id, name, room: this.params.room, process: me, peerPort }));
    this.toRoom({ type: 'joined' }); // everyone else, on every process
  }
  onText(json) {
    let command;
    try {
      command = JSON.parse(json);
    } catch {
      return;
    }
    if (command?.type === 'say' && typeof command.text === 'string' && command.text.trim() !== '') {
      const text = [...command.text.trim()].slice(0, 1000).join('');
      this.toRoom({ type: 'message', text }, { self: true });
    } else if (command?.type === 'rename' && typeof command.name === 'string') {
      const name = cleanName(command.name);
      if (name === '' || name === this.data.name) return;
      const was = this.data.name;
      this.data.name = name;
      this.toRoom({ type: 'renamed', was }, { self: true });
    }
  }
  onClose() {
    this.toRoom({ type: 'left' }); // publish works in onClose too
  }
  /** Publishes an event about this person to the room: on this process and every other. */
  toRoom(event, options) {
    const { id, name, topic } = this.data;
    this.publish(topic, JSON.stringify({ ...event, id, name, from }), options);
  }
}

// ---- the pages: /rooms/<room> is the chat page; its script and the shared stylesheet ---------
const files = {
  '/room.js': [new URL('./public/room.js', import.meta.url), 'text/javascript'],
  '/socket.js': [new URL('../public/socket.js', import.meta.url), 'text/javascript'], // the demos' shared socket
  '/style.css': [new URL('../public/style.css', import.meta.url), 'text/css'], //        and stylesheet
};
const roomPage = new URL('./public/room.html', import.meta.url);

async function servePage(req, res) {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/') {
    res.writeHead(302, { Location: '/rooms/lobby' }).end();
    return;
  }
  const [file, type] = /^\/rooms\/[\w-]{1,32}$/.test(path) ? [roomPage, 'text/html'] : (files[path] ?? []);
  if (file === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const body = await readFile(file);
  res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8` }).end(body);
}

const server = createWebSocketServer(
  { '/rooms/:room': Room },
  {
    port,
    host,
    backplane,
    onRequest: servePage,
    // Presence on this process: onSubscription is told each time a room's local count changes.
    onSubscription(client, topic, count, previous) {
      console.log(`[pid ${me.pid} :${port}] ${topic}: ${count} here (${client.data.name} ${count > previous ? 'came' : 'went'})`);
    },
  },
);
await server.listen().catch((error) => {
  console.error(`[pid ${me.pid}] cannot listen on ${host}:${port}: ${error.message} (PORT=… moves the ports)`);
  process.exit(1);
});
const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
const url = `http://${shown}:${port}/rooms/lobby`;
console.log(`[pid ${me.pid} :${port}] chat on ${url} (backplane: ${me.backplane})`);

// ---- stopping ---------------------------------------------------------------------------------
let closing;
function stop() {
  closing ??= (async () => {
    await server.close(); // each socket gets 1001: the pages start reconnecting
    await redis?.quit();
    process.exit(0);
  })();
}
process.on('SIGTERM', stop);
if (process.send) {
  // Started by main.js: it stops us by pid (SIGTERM) on Ctrl+C, so the terminal's SIGINT to the
  // whole process group is left to it; and if main.js itself dies, our channel to it closes.
  process.on('SIGINT', () => {});
  process.once('disconnect', stop);
  process.send({ type: 'ready', pid: me.pid, port, url });
} else {
  process.on('SIGINT', stop);
}
