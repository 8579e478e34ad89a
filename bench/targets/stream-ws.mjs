// ws for the streaming scenario (issue 15), on ws's stream API, `createWebSocketStream(ws)`,
// which is message-based: every chunk written to the duplex is sent as a whole message, every
// message received comes out of it as one chunk (so a message is always buffered whole first).
//
//   /upload?bytes=N   createWebSocketStream(ws).pipe(a counting Writable): it counts the bytes
//                     (first and last byte of every chunk checked, as in the wsmount target) and,
//                     once N bytes are counted, sends "<bytes> ok" with ws.send(). `maxPayload` is
//                     raised to the message size (BENCH_STREAM_BYTES): otherwise ws refuses a
//                     256 MiB message (its default is 100 MiB).
//   /download         the client's first message is JSON { bytes, chunk, mode }; the same
//                     on-the-fly chunks as the wsmount target (lib/stream-data.mjs), sent as
//     mode 'whole'      ONE message: the chunks copied into one Buffer of `bytes` (allocated
//                       once, the cheapest way to build it), written to the duplex once;
//     mode 'messages'   Readable.from(chunks).pipe(duplex): one message per chunk (what ws users
//                       write to stream a large payload: the receiver has to join them);
//     mode 'fragments'  no stream: ws.send(chunk, { fin: false }) per chunk and fin: true on the
//                       last one, i.e. ONE message in fragments, with backpressure by hand (wait for
//                       a send's callback once bufferedAmount passes 1 MiB).
//
// Pure JS (WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE) unless BENCH_WS_NATIVE=1 (the ws+native
// target: bufferutil unmasks the upload natively), as targets/ws.mjs.

import { createRequire } from 'node:module';
import { Readable, Writable } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { downloadChunks, uploadChunkOk } from '../lib/stream-data.mjs';
import { http, serve } from './common.mjs';

const require = createRequire(import.meta.url);
const wantNative = process.env.BENCH_WS_NATIVE === '1';
const MAX = Number(process.env.BENCH_STREAM_BYTES ?? 256 * 2 ** 20);
const HIGH_WATER = 1 << 20;

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX, perMessageDeflate: false });
let messagesRead = 0;
let streamsSent = 0;

function upload(ws, expected) {
  const duplex = createWebSocketStream(ws);
  let received = 0;
  let bad = '';
  duplex.on('error', () => {});
  duplex.pipe(
    new Writable({
      write(chunk, _encoding, callback) {
        if (bad === '' && !uploadChunkOk(chunk, received)) bad = ` bad at offset ${received}`;
        received += chunk.length;
        messagesRead++;
        if (received >= expected) ws.send(`${received}${bad === '' ? ' ok' : bad}`);
        callback();
      },
    }),
  );
}

async function fragments(ws, p) {
  let last = null;
  let sent = 0;
  for (const chunk of downloadChunks(p.bytes, p.chunk)) {
    sent += chunk.length;
    const fin = sent === p.bytes;
    last = new Promise((resolve, reject) => ws.send(chunk, { binary: true, fin }, (e) => (e ? reject(e) : resolve())));
    if (ws.bufferedAmount > HIGH_WATER) await last;
  }
  await last;
}

function download(ws) {
  const duplex = createWebSocketStream(ws);
  duplex.on('error', () => {});
  ws.once('message', async (data) => {
    const p = JSON.parse(data.toString());
    if (p.mode === 'whole') {
      const whole = Buffer.allocUnsafe(p.bytes);
      let o = 0;
      for (const chunk of downloadChunks(p.bytes, p.chunk)) o += chunk.copy(whole, o);
      duplex.write(whole, () => streamsSent++);
    } else if (p.mode === 'messages') {
      const source = Readable.from(downloadChunks(p.bytes, p.chunk));
      source.on('end', () => streamsSent++);
      source.pipe(duplex, { end: false });
    } else if (p.mode === 'fragments') {
      await fragments(ws, p);
      streamsSent++;
    } else {
      ws.close(1011, `unknown mode ${p.mode}`);
    }
  });
}

const server = http.createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/upload' && url.pathname !== '/download') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (url.pathname === '/upload') upload(ws, Number(url.searchParams.get('bytes')));
    else download(ws);
  });
});

const cached = Object.keys(require.cache);
const loaded = (name) => cached.some((p) => p.includes(`/node_modules/${name}/`) && p.endsWith('.node'));
const native = { bufferutil: loaded('bufferutil'), 'utf-8-validate': loaded('utf-8-validate') };
if (wantNative && !native.bufferutil) throw new Error('ws+native: ws did not load the native bufferutil addon');
if (!wantNative && (native.bufferutil || native['utf-8-validate'])) throw new Error('ws (pure JS): a native addon was loaded despite WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE');

serve(
  server,
  { library: wantNative ? 'ws+native' : 'ws', version: require('ws/package.json').version, native, maxPayload: MAX, perMessageDeflate: false },
  () => wss.clients.size,
  () => ({ messagesRead, streamsSent }),
);
