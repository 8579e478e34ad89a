// The physical limit: a raw TCP server with just enough HTTP to answer the upgrade (101 with the
// right Sec-WebSocket-Accept), then no WebSocket at all: /echo writes every chunk back as it came,
// /broadcast writes every chunk it receives to every /broadcast socket. The generator's masked
// frames come back masked, and the generator validates them the same way.

import { createHash } from 'node:crypto';
import net from 'node:net';
import { serve } from './common.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const room = new Set();
let open = 0;

// Chunks that arrive in the same event-loop turn go back in one write (libuv reads a socket
// several times per turn when data keeps coming): the kernel, not the write count, is the limit.
function echoChunk(chunk) {
  if (!this.writableCorked) {
    this.cork();
    setImmediate(uncork, this);
  }
  this.write(chunk);
}

function uncork(socket) {
  socket.uncork();
}

function broadcastChunk(chunk) {
  for (const s of room) s.write(chunk);
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  open++;
  let head = null;
  const onHead = (chunk) => {
    head = head === null ? chunk : Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16384) socket.destroy();
      return;
    }
    const text = head.subarray(0, end).toString('latin1');
    const path = text.slice(text.indexOf(' ') + 1, text.indexOf(' ', text.indexOf(' ') + 1));
    const key = /\r\nsec-websocket-key:[ \t]*([^\r\n]*)/i.exec(text)?.[1].trim() ?? '';
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.removeListener('data', onHead);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const rest = head.subarray(end + 4);
    head = null;
    if (path === '/broadcast') {
      room.add(socket);
      socket.on('data', broadcastChunk);
      if (rest.length > 0) broadcastChunk(rest);
    } else {
      socket.on('data', echoChunk);
      if (rest.length > 0) socket.write(rest);
    }
  };
  socket.on('data', onHead);
  socket.on('end', () => socket.end());
  socket.on('error', () => {});
  socket.on('close', () => {
    open--;
    room.delete(socket);
  });
});

serve(server, { library: 'raw TCP', version: process.version }, () => open);
