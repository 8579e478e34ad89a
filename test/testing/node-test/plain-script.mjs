// A plain script (no test runner) using the built wsmount/testing: exits 0 and prints "ok" on success.
import assert from 'node:assert/strict';
import { Behavior, createWebSocketHandler } from 'wsmount';
import { connect, listen } from 'wsmount/testing';

class Echo extends Behavior {
  onText(text) {
    this.sendText(text);
  }
}

const sockets = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
const memory = await connect(sockets, '/echo');
memory.sendText('in memory');
assert.equal(await memory.nextMessage(), 'in memory');
await memory.close();

const server = await listen(sockets);
try {
  const tcp = await connect(server.url('/echo'));
  tcp.sendText('over tcp');
  assert.equal(await tcp.nextMessage(), 'over tcp');
  await tcp.close();
} finally {
  await server.close(); // closes the WebSocket clients it served, then the HTTP server
}
await sockets.close();
console.log('ok');
