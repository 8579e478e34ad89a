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

test('a route’s set is made when first asked for, from the handler’s set in join order, and kept live after; stats count the route’s clients before and after; one route shares the handler’s set', async () => {
  const s = await startServer({ '/chat': Chat, '/rooms/:id': Room });
  try {
    const handler = s.srv.handler;
    const order = ['a', 'b', 'c', 'd'];
    const rooms: RawClient[] = [];
    const chats: RawClient[] = [];
    for (const id of order) {
      rooms.push(await RawClient.connect(s.port, `/rooms/${id}`));
      chats.push(await RawClient.connect(s.port, '/chat'));
      await waitFor(() => handler.clients.size === rooms.length + chats.length, 3000, 'joined');
    }
    // Before any clientsOf(): the counts come from the route's own count.
    expect(handler.stats().connectionsByRoute).toEqual({ '/chat': 4, '/rooms/:id': 4 });
    await rooms[1]?.close(1000);
    await waitFor(() => handler.stats().connectionsByRoute['/rooms/:id'] === 3, 3000, 'room b to leave');
    const set = handler.clientsOf('/rooms/:id');
    expect([...set].map((c) => c.params['id'])).toEqual(['a', 'c', 'd']);
    expect(handler.clientsOf('/rooms/:id')).toBe(set);
    // Live from then on: a join and a leave show in the same set object.
    rooms.push(await RawClient.connect(s.port, '/rooms/e'));
    await waitFor(() => set.size === 4, 3000, 'room e to join');
    await rooms[0]?.close(1000);
    await waitFor(() => set.size === 3, 3000, 'room a to leave');
    expect([...set].map((c) => c.params['id'])).toEqual(['c', 'd', 'e']);
    expect(handler.stats().connectionsByRoute).toEqual({ '/chat': 4, '/rooms/:id': 3 });
    // A broadcast to the route reaches exactly its clients.
    expect(handler.broadcast('hi rooms', { route: '/rooms/:id' })).toBe(3);
    expect(handler.broadcast('hi chat', { route: '/chat' })).toBe(4);
    for (const r of rooms.slice(2)) expect((await r.nextFrame()).payload.toString()).toBe('hi rooms');
    for (const c of chats) expect((await c.nextFrame()).payload.toString()).toBe('hi chat');
    for (const c of [...rooms.slice(2), ...chats]) c.destroy();
    await waitFor(() => handler.clients.size === 0 && set.size === 0, 3000, 'all to leave');
    expect(handler.stats().connectionsByRoute).toEqual({ '/chat': 0, '/rooms/:id': 0 });
  } finally {
    await s.close();
  }
  const one = await startServer({ '/only': Chat });
  try {
    const handler = one.srv.handler;
    expect(handler.clientsOf('/only')).toBe(handler.clients);
    const c = await RawClient.connect(one.port, '/only');
    await waitFor(() => handler.clients.size === 1, 3000, 'one client');
    expect(handler.stats().connectionsByRoute).toEqual({ '/only': 1 });
    c.destroy();
    await waitFor(() => handler.clients.size === 0, 3000, 'it leaves');
    expect(handler.stats().connectionsByRoute).toEqual({ '/only': 0 });
  } finally {
    await one.close();
  }
});
