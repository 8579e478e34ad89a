/**
 * The handler's live client set and broadcast (the seed's `clients` and `send_message_to_all`).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type Client, type WebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { type RawClient, type RawFrame, closePayload } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

class Quiet extends Behavior {}

async function texts(client: RawClient, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await client.nextFrame(2000)).payload.toString());
  return out;
}

/** Waits briefly and returns whatever frames arrived (asserting silence when empty is expected). */
async function leftover(client: RawClient): Promise<RawFrame[]> {
  await sleep(100);
  return client.pending();
}

describe('clients', () => {
  test('is live: grows on open, contains the behavior during onOpen, shrinks before onClose', async () => {
    const seen: string[] = [];
    class Watch extends Behavior {
      override onOpen(): void {
        seen.push(`open has-self=${this.handler.clients.has(this)} size=${this.handler.clients.size}`);
      }
      override onClose(): void {
        seen.push(`close has-self=${this.handler.clients.has(this)}`);
      }
    }
    const { handler, port } = await mount({ '/w': Watch });
    const live = handler.clients;
    expect(live.size).toBe(0);
    const a = await connect(port, '/w');
    await waitFor(() => live.size === 1, 2000, 'one');
    const b = await connect(port, '/w');
    await waitFor(() => live.size === 2, 2000, 'two');
    expect(handler.clients).toBe(live);
    for (const c of live) expect(c).toBeInstanceOf(Watch);
    await a.close(1000);
    await waitFor(() => live.size === 1, 2000, 'back to one');
    b.destroy();
    await waitFor(() => live.size === 0, 2000, 'empty');
    expect(seen).toEqual(['open has-self=true size=1', 'open has-self=true size=2', 'close has-self=false', 'close has-self=false']);
  });
});

describe('broadcast', () => {
  async function rooms(): Promise<{ handler: WebSocketHandler; port: number; chat: RawClient[]; roomA: RawClient; roomB: RawClient }> {
    const { handler, port } = await mount({ '/chat': Quiet, '/rooms/:id': Quiet });
    const chat = [await connect(port, '/chat'), await connect(port, '/chat')];
    const roomA = await connect(port, '/rooms/a');
    const roomB = await connect(port, '/rooms/b');
    await waitFor(() => handler.clients.size === 4, 2000, 'four clients');
    return { handler, port, chat, roomA, roomB };
  }

  test('reaches every open client and returns how many', async () => {
    const { handler, chat, roomA, roomB } = await rooms();
    expect(handler.broadcast('to all')).toBe(4);
    for (const c of [...chat, roomA, roomB]) {
      const f = await c.nextFrame(2000);
      expect(f.opcode).toBe(0x1);
      expect(f.payload.toString()).toBe('to all');
    }
  });

  test("{ route: '/rooms/:id' } reaches only that route's clients (named by pattern)", async () => {
    const { handler, chat, roomA, roomB } = await rooms();
    expect(handler.broadcast('rooms only', { route: '/rooms/:id' })).toBe(2);
    expect(await texts(roomA, 1)).toEqual(['rooms only']);
    expect(await texts(roomB, 1)).toEqual(['rooms only']);
    expect(handler.broadcast('chat only', { route: '/chat' })).toBe(2);
    for (const c of chat) expect(await texts(c, 1)).toEqual(['chat only']);
    expect(await leftover(roomA)).toEqual([]);
  });

  test('filter picks clients; with route it narrows further', async () => {
    const { handler, chat, roomA, roomB } = await rooms();
    const onlyA = (c: Client): boolean => c.params['id'] === 'a';
    expect(handler.broadcast('for a', { filter: onlyA })).toBe(1);
    expect(handler.broadcast('for a in rooms', { route: '/rooms/:id', filter: onlyA })).toBe(1);
    expect(handler.broadcast('nobody', { route: '/chat', filter: onlyA })).toBe(0);
    expect(await texts(roomA, 2)).toEqual(['for a', 'for a in rooms']);
    expect(await leftover(roomB)).toEqual([]);
    for (const c of chat) expect(await leftover(c)).toEqual([]);
  });

  test('an unknown route throws (a concrete path is not a pattern)', async () => {
    const { handler } = await rooms();
    expect(() => handler.broadcast('x', { route: '/nope' })).toThrow(/no route/);
    expect(() => handler.broadcast('x', { route: '/rooms/a' })).toThrow(/no route/);
  });

  test('binary broadcast: Buffer, Uint8Array view and ArrayBuffer arrive as binary frames', async () => {
    const { handler, chat } = await rooms();
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5]);
    expect(handler.broadcast(Buffer.from([9, 9]), { route: '/chat' })).toBe(2);
    expect(handler.broadcast(new Uint8Array(backing.buffer, 2, 3), { route: '/chat' })).toBe(2);
    expect(handler.broadcast(new Uint8Array([7]).buffer, { route: '/chat' })).toBe(2);
    for (const c of chat) {
      const frames = [await c.nextFrame(2000), await c.nextFrame(2000), await c.nextFrame(2000)];
      expect(frames.map((f) => f.opcode)).toEqual([0x2, 0x2, 0x2]);
      expect(frames.map((f) => [...f.payload])).toEqual([[9, 9], [2, 3, 4], [7]]);
    }
  });

  test('framed once: every client receives identical bytes, small and large (over the copy threshold)', async () => {
    const { handler, chat, roomA, roomB } = await rooms();
    const all = [...chat, roomA, roomB];
    const wires = all.map(() => [] as Buffer[]);
    all.forEach((c, i) => c.socket.on('data', (d: Buffer) => wires[i]?.push(d)));
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    handler.broadcast('small ✓');
    handler.broadcast(big);
    handler.broadcast('x'.repeat(5000));
    for (const c of all) {
      const frames = [await c.nextFrame(3000), await c.nextFrame(3000), await c.nextFrame(3000)];
      expect(frames[1]?.payload.equals(big)).toBe(true);
    }
    const bytes = wires.map((w) => Buffer.concat(w));
    expect(bytes[0]?.length).toBeGreaterThan(75_000);
    for (const b of bytes) expect(b.equals(bytes[0] as Buffer)).toBe(true);
  });

  test('skips clients that are closing and counts only recipients', async () => {
    class Closer extends Behavior {
      override onText(): void {
        this.close(1000);
      }
    }
    const { handler, port } = await mount({ '/c': Closer });
    const closing = await connect(port, '/c');
    const open = await connect(port, '/c');
    await waitFor(() => handler.clients.size === 2, 2000, 'two');
    closing.send(0x1, 'close me');
    expect((await closing.nextFrame(2000)).opcode).toBe(0x8);
    // The closing client has not answered: still in `clients`, but not OPEN.
    expect(handler.clients.size).toBe(2);
    expect(handler.broadcast('only open')).toBe(1);
    expect(await texts(open, 1)).toEqual(['only open']);
    expect(await leftover(closing)).toEqual([]);
    closing.send(0x8, closePayload(1000));
  });

  test('with no clients it returns 0', async () => {
    const { handler } = await mount({ '/c': Quiet });
    expect(handler.broadcast('void')).toBe(0);
    expect(handler.broadcast('void', { route: '/c' })).toBe(0);
  });
});
