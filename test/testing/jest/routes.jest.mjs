// wsmount/testing under Jest (ESM mode), importing the built package by name as a user would.
import { afterAll, expect, test } from '@jest/globals';
import { Behavior, HandshakeRejection, createWebSocketHandler } from 'wsmount';
import { HandshakeError, connect, listen } from 'wsmount/testing';

class Reverse extends Behavior {
  onText(text) {
    this.sendText([...text].reverse().join('.'));
  }
}
class Admin extends Behavior {
  verify(request) {
    if (request.headers.authorization !== 'Bearer secret') throw new HandshakeRejection(401, 'log in first');
  }
}
const sockets = createWebSocketHandler({ '/reverse': Reverse, '/admin': Admin }, { logLevel: 'silent' });

afterAll(() => sockets.close({ timeout: 200 }));

test('reverse, in memory', async () => {
  const client = await connect(sockets, '/reverse');
  client.sendText('abc');
  expect(await client.nextMessage()).toBe('c.b.a');
  expect(await client.close(1000, 'bye')).toEqual({ code: 1000, reason: 'bye' });
});

test('a 401 from verify() is a HandshakeError', async () => {
  const error = await connect(sockets, '/admin').catch((e) => e);
  expect(error).toBeInstanceOf(HandshakeError);
  expect(error.status).toBe(401);
  const ok = await connect(sockets, '/admin', { headers: { authorization: 'Bearer secret' } });
  await ok.close();
});

test('reverse, over TCP', async () => {
  const server = await listen(sockets);
  try {
    const client = await connect(server, '/reverse');
    client.sendText('héllo');
    expect(await client.nextMessage()).toBe('o.l.l.é.h');
    await client.close();
  } finally {
    await server.close();
  }
});
