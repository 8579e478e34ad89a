// The physical limit: a raw TCP server with just enough HTTP to answer the upgrade (101 with the
// right Sec-WebSocket-Accept), then no WebSocket at all: /echo writes every chunk back as it came,
// /broadcast (and /publish) writes every chunk it receives to every socket of that room. The generator's masked
// frames come back masked, and the generator validates them the same way.

import { serve } from './common.mjs';
import { upgradeServer } from './raw-upgrade.mjs';

const room = new Set();

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

// The same for fan-out: what arrives in one turn reaches each socket in one write.
let roomCorked = false;
function broadcastChunk(chunk) {
  if (!roomCorked) {
    roomCorked = true;
    for (const s of room) s.cork();
    setImmediate(uncorkRoom);
  }
  for (const s of room) s.write(chunk);
}

function uncorkRoom() {
  roomCorked = false;
  for (const s of room) s.uncork();
}

const { server, clients } = upgradeServer(
  (socket, path, rest) => {
    if (path === '/broadcast' || path === '/publish') {
      room.add(socket);
      socket.on('data', broadcastChunk);
      if (rest.length > 0) broadcastChunk(rest);
    } else {
      socket.on('data', echoChunk);
      if (rest.length > 0) socket.write(rest);
    }
  },
  (socket) => room.delete(socket),
);

serve(server, { library: 'raw TCP', version: process.version }, clients);
