/**
 * What wsmount leaves on an upgrade socket it opens (HTTP/1.1), kept small because every idle
 * connection pays for each property: the note of bytes written before the upgrade and the claim
 * (the handler, then the open connection, under one registered symbol), plus Node's cached peer
 * address (null once the request is let go). No socket timeout property unless the host's server
 * set a timeout, which is then cleared so that it cannot end an idle WebSocket.
 * Real sockets on 127.0.0.1.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { RawClient } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

/** A host server with wsmount attached; its server-side sockets with their own keys when accepted. */
async function host(configure?: (server: http.Server) => void): Promise<{ port: number; sockets: { socket: net.Socket; keys: (string | symbol)[] }[] }> {
  const server = http.createServer((_req, res) => res.end('ok'));
  configure?.(server);
  const sockets: { socket: net.Socket; keys: (string | symbol)[] }[] = [];
  server.on('connection', (socket: net.Socket) => sockets.push({ socket, keys: Reflect.ownKeys(socket) }));
  const handler = createWebSocketHandler({ '/echo': Echo });
  handler.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    await handler.close({ timeout: 500 });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, sockets };
}

function added(entry: { socket: net.Socket; keys: (string | symbol)[] }): string[] {
  return Reflect.ownKeys(entry.socket)
    .filter((k) => !entry.keys.includes(k))
    .map(String)
    .sort();
}

test('an open connection adds two marks and the peer-address cache to its socket, nothing else; the claim is the open connection', async () => {
  const { port, sockets } = await host();
  const client = await RawClient.connect(port, '/echo');
  cleanup.push(() => client.destroy());
  client.send(0x1, 'hi');
  expect((await client.nextFrame(3000)).payload.toString()).toBe('hi');
  await waitFor(() => sockets.length === 1, 2000, 'the server socket');
  const entry = sockets[0] as { socket: net.Socket; keys: (string | symbol)[] };
  // Node's own properties after an upgrade, and ours: a regression here costs every connection.
  const ours = added(entry).filter((k) => k.includes('wsmount') || k === '_peername' || k === 'timeout');
  expect(ours).toEqual(['Symbol(wsmount.claim)', 'Symbol(wsmount.writtenBefore)', '_peername']);
  const claim = (entry.socket as unknown as Record<symbol, unknown>)[Symbol.for('wsmount.claim')];
  expect(claim?.constructor?.name).toBe('Connection');
  expect((entry.socket as unknown as { _peername: unknown })._peername).toBeNull();
});

test("a host server's socket timeout is cleared when the WebSocket opens: no 'timeout' event reaches the socket, and it still echoes", async () => {
  // Node drops its own 'timeout' listener at an upgrade; an app's listener would still fire.
  const { port, sockets } = await host((server) => server.setTimeout(300));
  const client = await RawClient.connect(port, '/echo');
  cleanup.push(() => client.destroy());
  await waitFor(() => sockets.length === 1, 2000, 'the server socket');
  const socket = (sockets[0] as { socket: net.Socket }).socket;
  expect(socket.timeout).toBe(0);
  let timedOut = false;
  socket.on('timeout', () => {
    timedOut = true;
  });
  // Past the host's timeout, idle.
  await sleep(700);
  expect(timedOut).toBe(false);
  client.send(0x1, 'still here');
  expect((await client.nextFrame(3000)).payload.toString()).toBe('still here');
});

test('without a host timeout the socket is given no timeout property', async () => {
  const { port, sockets } = await host();
  const client = await RawClient.connect(port, '/echo');
  cleanup.push(() => client.destroy());
  client.send(0x1, 'x');
  await client.nextFrame(3000);
  const socket = (sockets[0] as { socket: net.Socket }).socket;
  expect(Object.hasOwn(socket, 'timeout')).toBe(false);
});
