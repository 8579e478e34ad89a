// Run with `node --test test/testing/node-test/` after `npm run build`: wsmount/testing in
// node:test, against the built package (imported by name, as a user would).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Behavior, HandshakeRejection, createWebSocketHandler } from 'wsmount';
import { HandshakeError, connect, listen } from 'wsmount/testing';

class Reverse extends Behavior {
  onText(text) {
    this.sendText([...text].reverse().join('.'));
  }
}
class Admin extends Behavior {
  verify(req) {
    if (req.headers.authorization !== 'Bearer secret') throw new HandshakeRejection(401, 'log in first');
  }
  onOpen() {
    this.sendText('welcome');
  }
}

const sockets = createWebSocketHandler({ '/reverse': Reverse, '/admin': Admin }, { logLevel: 'silent' });
after(() => sockets.close({ timeout: 200 }));

describe('wsmount/testing under node:test', () => {
  test('in memory: reverse', async () => {
    const client = await connect(sockets, '/reverse');
    client.sendText('abc');
    assert.equal(await client.nextMessage(), 'c.b.a');
    assert.deepEqual(await client.close(), { code: 1000, reason: '' });
  });

  test('in memory: verify() refuses with 401', async () => {
    await assert.rejects(connect(sockets, '/admin'), (error) => error instanceof HandshakeError && error.status === 401);
  });

  test('over TCP: verify() accepts with the header', async () => {
    const server = await listen(sockets);
    try {
      const client = await connect(server, '/admin', { headers: { authorization: 'Bearer secret' } });
      assert.equal(await client.nextMessage(), 'welcome');
      await client.close();
    } finally {
      await server.close();
    }
  });
});
