/**
 * In-memory connect() with a peer address: `{ remoteAddress, remotePort }` is what the server
 * sees, so per-address limits can be tested without a port.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { HandshakeError, type TestClient, connect, listen } from '../../src/testing/index.js';

/** Tells the client what the server knows about its peer. */
class Peer extends Behavior {
  override onOpen() {
    const socket = this.request.socket as Partial<Socket>;
    this.sendText(JSON.stringify({ address: this.remoteAddress ?? null, port: this.remotePort ?? null, family: socket.remoteFamily ?? null }));
  }
}

const open: TestClient[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.terminate();
});
async function opened(client: Promise<TestClient>): Promise<{ client: TestClient; peer: { address: string | null; port: number | null; family: string | null } }> {
  const c = await client;
  open.push(c);
  return { client: c, peer: JSON.parse((await c.nextMessage()) as string) };
}
async function refusal(client: Promise<TestClient>): Promise<HandshakeError> {
  const error = await client.then(
    (c) => {
      open.push(c);
      throw new Error('the handshake was accepted');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HandshakeError);
  return error as HandshakeError;
}

describe('connect(handler, path, { remoteAddress, remotePort }) in memory', () => {
  test('maxConnectionsPerIp 1: a second connection from the same address gets 429; another address opens', { timeout: 5000 }, async () => {
    const handler = createWebSocketHandler({ '/peer': Peer }, { maxConnectionsPerIp: 1, logLevel: 'silent' });
    const first = await opened(connect(handler, '/peer', { remoteAddress: '203.0.113.7', remotePort: 40001 }));
    expect(first.peer).toEqual({ address: '203.0.113.7', port: 40001, family: 'IPv4' });

    const second = await refusal(connect(handler, '/peer', { remoteAddress: '203.0.113.7', remotePort: 40002 }));
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBeDefined();
    expect(second.body).toMatch(/too many connections from 203\.0\.113\.7/);

    const other = await opened(connect(handler, '/peer', { remoteAddress: '198.51.100.2' }));
    expect(other.peer).toEqual({ address: '198.51.100.2', port: null, family: 'IPv4' });
    expect(handler.stats().handshakesRejectedByStatus).toEqual({ '429': 1 });

    // The slot comes back once the first connection has gone.
    await first.client.close();
    await expect.poll(() => handler.clients.size).toBe(1);
    const again = await opened(connect(handler, '/peer', { remoteAddress: '203.0.113.7' }));
    expect(again.peer.address).toBe('203.0.113.7');
    await handler.close({ timeout: 200 });
  });

  test('an IPv6 address is seen as IPv6', { timeout: 5000 }, async () => {
    const handler = createWebSocketHandler({ '/peer': Peer }, { logLevel: 'silent' });
    const { peer } = await opened(connect(handler, '/peer', { remoteAddress: '2001:db8::1', remotePort: 65535 }));
    expect(peer).toEqual({ address: '2001:db8::1', port: 65535, family: 'IPv6' });
    await handler.close({ timeout: 200 });
  });

  test('without remoteAddress the peer has no address and no per-address limit applies', { timeout: 5000 }, async () => {
    const handler = createWebSocketHandler({ '/peer': Peer }, { maxConnectionsPerIp: 1, logLevel: 'silent' });
    const a = await opened(connect(handler, '/peer'));
    const b = await opened(connect(handler, '/peer'));
    expect(a.peer).toEqual({ address: null, port: null, family: null });
    expect(b.peer.address).toBeNull();
    await handler.close({ timeout: 200 });
  });

  test('a value that is not an IP address or a port is refused before connecting', async () => {
    const handler = createWebSocketHandler({ '/peer': Peer }, { logLevel: 'silent' });
    await expect(connect(handler, '/peer', { remoteAddress: 'client-a' })).rejects.toThrow(TypeError);
    await expect(connect(handler, '/peer', { remoteAddress: '203.0.113.7/24' })).rejects.toThrow(/IPv4 or IPv6/);
    for (const port of [0, 65536, 1.5, Number.NaN]) {
      await expect(connect(handler, '/peer', { remotePort: port })).rejects.toThrow(RangeError);
    }
    expect(handler.stats().handshakesAccepted).toBe(0);
  });

  test('over TCP the options throw: the server sees the real peer', { timeout: 5000 }, async () => {
    await using server = await listen({ '/peer': Peer }, { handlerOptions: { logLevel: 'silent' } });
    await expect(connect(server, '/peer', { remoteAddress: '203.0.113.7' })).rejects.toThrow(/in-memory connections only/);
    await expect(connect(server.url('/peer'), undefined, { remotePort: 1234 })).rejects.toThrow(TypeError);
    const { peer } = await opened(connect(server, '/peer'));
    expect(peer.address).toBe('127.0.0.1');
  });
});
