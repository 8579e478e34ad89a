/** handler.clientsOf(pattern): a live per-route view of the client set. */
import { expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { RawClient } from '../helpers/raw.js';
import { startServer, waitFor } from '../helpers/server.js';

class Chat extends Behavior {}
class Room extends Behavior {}

test('clientsOf(pattern) holds only that route’s open clients and follows joins and leaves', async () => {
  const s = await startServer({ '/chat': Chat, '/rooms/:id': Room });
  try {
    const handler = s.srv.handler;
    const chat = await RawClient.connect(s.port, '/chat');
    const a = await RawClient.connect(s.port, '/rooms/a');
    const b = await RawClient.connect(s.port, '/rooms/b');
    await waitFor(() => handler.clients.size === 3, 3000, 'three clients');
    expect(handler.clientsOf('/chat').size).toBe(1);
    expect([...handler.clientsOf('/rooms/:id')].map((c) => c.params['id']).sort()).toEqual(['a', 'b']);
    expect([...handler.clientsOf('/chat')][0]).toBeInstanceOf(Chat);
    await a.close(1000);
    await waitFor(() => handler.clientsOf('/rooms/:id').size === 1, 3000, 'room client to leave');
    expect(handler.clientsOf('/chat').size).toBe(1);
    expect(() => handler.clientsOf('/nope')).toThrow(/no route/);
    chat.destroy();
    b.destroy();
  } finally {
    await s.close();
  }
});
