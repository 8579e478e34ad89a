/**
 * The outgoing batch (connection/batch.ts, Sender.flushOut): while an incoming chunk is handled,
 * small frames for any connection are kept in that connection's list and leave as one buffer in
 * one write when the chunk is done; recipients of the same broadcasts share one joined buffer.
 * What must hold whatever is held: frames leave in the order they were sent, whatever else is
 * written meanwhile (large frames, control frames, the close, terminate()); `'queued'` always
 * comes with a drain to come; `bufferedAmount` counts what is held; each recipient gets exactly
 * its own messages.
 */
import type { Duplex } from 'node:stream';
import { expect, test } from 'vitest';
import { Behavior, type SendStatus } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/server.js';
import { countWrites } from '../helpers/writes.js';
import { type RawClient, encodeClientFrame } from '../helpers/raw.js';

const { mount, connect } = useFixture();

const listeners: Listener[] = [];
class Listener extends Behavior {
  socket: Duplex | null = null;
  override onOpen(): void {
    this.socket = this.request.socket;
    listeners.push(this);
  }
}

/** What the speaker's hook does with each text it gets, set by each test. */
let onSpeak: (text: string, speaker: Behavior) => void = () => {};
class Speaker extends Behavior {
  override onText(text: string): void {
    onSpeak(text, this);
  }
}

async function setUp(count: number): Promise<{ clients: RawClient[]; speaker: RawClient; handler: Awaited<ReturnType<typeof mount>>['handler'] }> {
  listeners.length = 0;
  const { port, handler } = await mount({ '/listen': Listener, '/speak': Speaker }, { pingInterval: 0 });
  const clients: RawClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await connect(port, '/listen'));
  await waitFor(() => listeners.length === count, 2000, 'the listeners');
  const speaker = await connect(port, '/speak');
  return { clients, speaker, handler };
}

async function frames(client: RawClient, n: number): Promise<{ opcode: number; payload: Buffer }[]> {
  const got: { opcode: number; payload: Buffer }[] = [];
  while (got.length < n) got.push(await client.nextFrame(3000));
  return got;
}

test('small frames held for the batch leave before a large frame sent after them, and after it what follows, in order', async () => {
  const { clients, speaker, handler } = await setUp(2);
  const big = Buffer.alloc(10_000, 7);
  onSpeak = () => {
    handler.broadcast('a', { route: '/listen' });
    handler.broadcast('b', { route: '/listen' });
    handler.broadcast(big, { route: '/listen' }); // framed as header + payload: written, not held
    handler.broadcast('c', { route: '/listen' });
  };
  speaker.send(0x1, 'go');
  for (const client of clients) {
    const got = await frames(client, 4);
    expect(got.map((f) => f.opcode)).toEqual([0x1, 0x1, 0x2, 0x1]);
    expect(got[0]?.payload.toString()).toBe('a');
    expect(got[1]?.payload.toString()).toBe('b');
    expect(got[2]?.payload.equals(big)).toBe(true);
    expect(got[3]?.payload.toString()).toBe('c');
  }
});

test('a ping and the close frame sent in the same hook go after the data frames sent before them (RFC 6455 §5.5.1: no data after the close)', async () => {
  const { clients, speaker } = await setUp(1);
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('one');
    l.sendText('two');
    l.ping(Buffer.from('p'));
    l.sendText('three');
    l.close(4000, 'bye');
  };
  speaker.send(0x1, 'go');
  const [client] = clients as [RawClient];
  const got = await frames(client, 5);
  expect(got.map((f) => f.opcode)).toEqual([0x1, 0x1, 0x9, 0x1, 0x8]);
  expect(got.map((f) => (f.opcode === 0x8 ? f.payload.readUInt16BE(0) : f.payload.toString()))).toEqual(['one', 'two', 'p', 'three', 4000]);
});

test('terminate() in the same hook still lets the frames sent before it leave', async () => {
  const { clients, speaker } = await setUp(1);
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('last words');
    l.terminate();
  };
  speaker.send(0x1, 'go');
  const [client] = clients as [RawClient];
  const frame = await client.nextFrame(3000);
  expect(frame.payload.toString()).toBe('last words');
  expect(await client.waitClosed(3000)).toBe(true);
});

test('80 KiB sent in one hook: past the high-water mark the held frames are written at once, past the turn share sends say queued, drained() resolves, all arrive in order', async () => {
  const { clients, speaker } = await setUp(1);
  const statuses: SendStatus[] = [];
  let drained: Promise<boolean> | null = null;
  let held = -1;
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('x'.repeat(100));
    held = l.bufferedAmount; // the frame is held for the batch, not yet with the socket
    for (let i = 1; i < 80; i++) statuses.push(l.sendText(`${String(i).padStart(4, '0')}${'y'.repeat(1020)}`));
    drained = l.drained();
  };
  speaker.send(0x1, 'go');
  const [client] = clients as [RawClient];
  const got = await frames(client, 80);
  expect(held).toBe(102);
  // Past the socket's high-water mark (16 KiB on Node 20, 64 KiB on 22+) the held frames go to
  // the socket (the kernel takes them: 'sent'); past the connection's share of the turn
  // (BYTES_PER_TURN, 64 KiB) every send says 'queued', and a drain notice follows.
  expect(statuses[0]).toBe('sent');
  expect(statuses.at(-1)).toBe('queued');
  expect(statuses.indexOf('queued')).toBeGreaterThan(0);
  expect(statuses.slice(statuses.indexOf('queued')).every((s) => s === 'queued')).toBe(true);
  expect(await (drained as unknown as Promise<boolean>)).toBe(true);
  expect(got[0]?.payload.toString()).toBe('x'.repeat(100));
  for (let i = 1; i < 80; i++) expect(got[i]?.payload.subarray(0, 4).toString()).toBe(String(i).padStart(4, '0'));
});

test('recipients of the same broadcasts share one write each; a filter gives each recipient exactly its own messages', async () => {
  const { clients, speaker, handler } = await setUp(3);
  await sleep(20);
  const writes = listeners.map((l) => countWrites(l.socket as Duplex));
  // Listener 1 is left out of odd messages: its list differs from the others'.
  const skip = listeners[1] as Listener;
  onSpeak = (text) => {
    const n = Number(text);
    handler.broadcast(`m${n}`, { route: '/listen', filter: (c) => n % 2 === 0 || c !== skip });
  };
  const sent = Array.from({ length: 8 }, (_, i) => encodeClientFrame(0x1, String(i)));
  speaker.sendRaw(Buffer.concat(sent));
  const all = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'];
  const expected = [all, all.filter((_, i) => i % 2 === 0), all];
  for (let c = 0; c < 3; c++) {
    const got = await frames(clients[c] as RawClient, (expected[c] as string[]).length);
    expect(got.map((f) => f.payload.toString())).toEqual(expected[c]);
  }
  await sleep(30);
  for (const c of clients) expect(c.pending()).toEqual([]);
  expect(writes.map((w) => w.calls)).toEqual([1, 1, 1]);
});
