/**
 * Review of the outgoing batch and the arena (connection/batch.ts, Sender.flushOut/sendSmall):
 * paths out-batch.test.ts does not cover. Frames held for a batch (a list, or a run framed into
 * the shared 64 KiB arena) must leave in send order whatever else is written (compressed frames,
 * streamed messages, the close), bytes handed to a socket must never be overwritten (the arena is
 * shared by all connections and replaced when full), nothing may follow the close frame, and
 * the counters count each message once.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { expect, test } from 'vitest';
import { Behavior, type SendStatus } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/server.js';
import { type RawClient, type RawFrame, encodeClientFrame } from '../helpers/raw.js';
import { h2Fixture } from '../transport/http2-helpers.js';

const fx = useFixture();
const { mount, connect } = fx;
const h2 = h2Fixture(fx);

const listeners: Listener[] = [];
class Listener extends Behavior {
  override onOpen(): void {
    listeners.push(this);
  }
}

let onSpeak: (text: string, speaker: Behavior) => void = () => {};
class Speaker extends Behavior {
  override onText(text: string): void {
    onSpeak(text, this);
  }
}

type Mounted = Awaited<ReturnType<typeof mount>>;

async function setUp(count: number, options: Parameters<typeof mount>[1] = {}, headers?: Record<string, string>): Promise<{ clients: RawClient[]; speaker: RawClient; handler: Mounted['handler'] }> {
  listeners.length = 0;
  const { port, handler } = await mount({ '/listen': Listener, '/speak': Speaker }, { pingInterval: 0, ...options });
  const clients: RawClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await connect(port, '/listen', headers));
  await waitFor(() => listeners.length === count, 2000, 'the listeners');
  const speaker = await connect(port, '/speak');
  return { clients, speaker, handler };
}

async function frames(client: RawClient, n: number, timeout = 5000): Promise<RawFrame[]> {
  const got: RawFrame[] = [];
  while (got.length < n) got.push(await client.nextFrame(timeout));
  return got;
}

/** The payload of message `i` for listener `c`: sizes from 0 to 4096 bytes, text or binary, some multi-byte. */
function messageFor(c: number, i: number): { text: boolean; data: Buffer | string } {
  const kind = (c + i) % 4;
  const tag = `${c}:${i}:`;
  if (kind === 0) return { text: true, data: tag };
  if (kind === 1) return { text: true, data: tag + 'é€😀'.repeat(((i * 37) % 300) + 1) }; // multi-byte, ≤ 1365 UTF-16 units
  if (kind === 2) return { text: false, data: Buffer.concat([Buffer.from(tag), Buffer.alloc(4096 - tag.length, (c * 31 + i) & 0xff)]) };
  return { text: false, data: Buffer.concat([Buffer.from(tag), Buffer.alloc((i * 101) % 3000, (c * 7 + i) & 0xff)]) };
}

test('the arena: interleaved small sends to 3 connections over many arenas, one reader paused for a while, every byte arrives as sent and in order', async () => {
  const { clients, speaker } = await setUp(3);
  const rounds = 60; // 3 x 60 messages of up to 4 KiB a chunk: several 64 KiB arenas per chunk
  const chunks = 4;
  const statuses: SendStatus[] = [];
  onSpeak = (text) => {
    const k = Number(text);
    for (let i = 0; i < rounds; i++) {
      for (let c = 0; c < 3; c++) {
        const l = listeners[c] as Listener;
        const m = messageFor(c, k * rounds + i);
        statuses.push(m.text ? l.sendText(m.data as string) : l.sendBinary(m.data as Buffer));
      }
    }
  };
  // Client 0 does not read: its socket keeps views of old arenas in its queue while new arenas
  // are filled (and, were a view ever rewritten, its bytes would change before they leave).
  const slow = clients[0] as RawClient;
  slow.socket.pause();
  for (let k = 0; k < chunks; k++) {
    speaker.send(0x1, String(k));
    await sleep(20);
  }
  await sleep(50);
  slow.socket.resume();
  expect(statuses.every((s) => s !== 'dropped')).toBe(true);
  for (let c = 0; c < 3; c++) {
    const got = await frames(clients[c] as RawClient, rounds * chunks);
    for (let j = 0; j < rounds * chunks; j++) {
      const m = messageFor(c, j);
      const f = got[j] as RawFrame;
      expect(f.opcode, `listener ${c} message ${j}`).toBe(m.text ? 0x1 : 0x2);
      const want = m.text ? Buffer.from(m.data as string) : (m.data as Buffer);
      expect(f.payload.equals(want), `listener ${c} message ${j}`).toBe(true);
    }
  }
});

test('a lone surrogate sent as text in a batch is framed with the byte count it is written with (U+FFFD, 3 bytes)', async () => {
  const { clients, speaker } = await setUp(1);
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('a\uD800b');
    l.sendText('x'.repeat(1365)); // the longest text taken into the arena (1365 x 3 <= 4096)
    l.sendText('end');
  };
  speaker.send(0x1, 'go');
  const got = await frames(clients[0] as RawClient, 3);
  expect(got[0]?.payload.equals(Buffer.from('a\uD800b'))).toBe(true);
  expect(got[0]?.payload.length).toBe(5);
  expect(got[1]?.payload.toString()).toBe('x'.repeat(1365));
  expect(got[2]?.payload.toString()).toBe('end');
});

function inflate(payload: Buffer): Buffer {
  // server_no_context_takeover: each message inflates alone (RFC 7692 §7.2.2).
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

test('permessage-deflate: compressed messages (small, and large ones compressed on the thread pool) do not overtake the uncompressed ones held before them, nor the close', async () => {
  const { clients, speaker } = await setUp(1, { perMessageDeflate: { threshold: 100 } }, {
    'Sec-WebSocket-Extensions': 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  });
  const client = clients[0] as RawClient;
  expect(client.headers['sec-websocket-extensions'] ?? '').toContain('permessage-deflate');
  const mid = 'm'.repeat(500);
  const large = Buffer.alloc(300_000, 0x61).toString();
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('one'); // under the threshold: into the arena, held
    l.sendText(mid); // compressed
    l.sendText('two'); // held again
    l.sendText(large); // compressed, maybe on the thread pool
    l.sendText('three'); // behind it
    l.sendBinary(Buffer.from([1, 2, 3]));
    l.close(4001, 'done');
  };
  speaker.send(0x1, 'go');
  const got = await frames(client, 7);
  const text = (f: RawFrame): string => ((f.rsv & 0x4) !== 0 ? inflate(f.payload) : f.payload).toString();
  expect(got.map((f) => f.opcode)).toEqual([0x1, 0x1, 0x1, 0x1, 0x1, 0x2, 0x8]);
  expect(text(got[0] as RawFrame)).toBe('one');
  expect(text(got[1] as RawFrame)).toBe(mid);
  expect((got[1]?.rsv ?? 0) & 0x4).toBe(0x4);
  expect(text(got[2] as RawFrame)).toBe('two');
  expect(text(got[3] as RawFrame)).toBe(large);
  expect(text(got[4] as RawFrame)).toBe('three');
  expect(got[6]?.payload.readUInt16BE(0)).toBe(4001);
});

test('sendStream() between small sends: the held frames go first, the stream next, what was sent after it last', async () => {
  const { clients, speaker } = await setUp(1);
  let streamed: Promise<number> | null = null;
  onSpeak = () => {
    const l = listeners[0] as Listener;
    l.sendText('before');
    streamed = l.sendStream(['s1', 's2', 's3'], { text: true });
    l.sendText('after');
  };
  speaker.send(0x1, 'go');
  const client = clients[0] as RawClient;
  const got: RawFrame[] = [];
  while (!(got.length > 0 && got.at(-1)?.payload.toString() === 'after')) got.push(await client.nextFrame(3000));
  expect(await (streamed as unknown as Promise<number>)).toBe(6);
  expect(got[0]?.payload.toString()).toBe('before');
  const middle = got.slice(1, -1);
  expect(Buffer.concat(middle.map((f) => f.payload)).toString()).toBe('s1s2s3');
  expect(middle[0]?.opcode).toBe(0x1);
  expect(middle.at(-1)?.fin).toBe(true);
});

test('sends after close() in the same hook are dropped; nothing follows the close frame; a connection terminated mid-batch gets what was sent before', async () => {
  const { clients, speaker, handler } = await setUp(2);
  const statuses: SendStatus[] = [];
  onSpeak = () => {
    const [a, b] = listeners as [Listener, Listener];
    handler.broadcast('all-1', { route: '/listen' });
    a.sendText('a-own');
    a.close(4002, 'bye');
    statuses.push(a.sendText('a-late'), a.sendBinary(Buffer.from([9])));
    b.sendText('b-own');
    b.terminate();
    statuses.push(b.sendText('b-late'));
    handler.broadcast('all-2', { route: '/listen' });
  };
  speaker.send(0x1, 'go');
  const [ca, cb] = clients as [RawClient, RawClient];
  const close = await ca.expectClose(3000, { echo: true });
  expect(close.code).toBe(4002);
  expect(close.before.map((f) => f.payload.toString())).toEqual(['all-1', 'a-own']);
  const bGot = await frames(cb, 2);
  expect(bGot.map((f) => f.payload.toString())).toEqual(['all-1', 'b-own']);
  expect(await cb.waitClosed(3000)).toBe(true);
  await sleep(30);
  expect(cb.pending()).toEqual([]);
  expect(statuses).toEqual(['dropped', 'dropped', 'dropped']);
});

test('counters: messagesOut and bytesOut count each held message once, arena or list, as the frames on the wire', async () => {
  const { clients, speaker, handler } = await setUp(2);
  await sleep(20);
  const before = handler.stats();
  onSpeak = () => {
    const [a, b] = listeners as [Listener, Listener];
    a.sendText('x'.repeat(10)); // arena: 12 bytes
    handler.broadcast('y'.repeat(200), { route: '/listen' }); // list: 204 bytes, twice
    a.sendBinary(Buffer.alloc(4096)); // arena: 4100 bytes
    b.sendText('z'); // arena: 3 bytes
  };
  speaker.send(0x1, 'go');
  await frames(clients[0] as RawClient, 3);
  await frames(clients[1] as RawClient, 2);
  const after = handler.stats();
  expect(after.messagesOut - before.messagesOut).toBe(5);
  expect(after.bytesOut - before.bytesOut).toBe(12 + 204 * 2 + 4100 + 3);
});

test("a small send that says 'queued' to a reader that stopped reading: drained() resolves once it reads again, all in order", async () => {
  const { clients, speaker } = await setUp(1, { maxBackpressure: 64 * 1024 * 1024 });
  const client = clients[0] as RawClient;
  client.socket.pause();
  const statuses: SendStatus[] = [];
  let drained: Promise<boolean> | null = null;
  let bufferedInHook = -1;
  let n = 0;
  onSpeak = () => {
    const l = listeners[0] as Listener;
    // Fill the kernel buffers and the socket queue across several chunks.
    for (let i = 0; i < 300; i++) statuses.push(l.sendBinary(Buffer.alloc(4000, n++ & 0xff)));
    bufferedInHook = l.bufferedAmount;
    drained ??= l.drained();
  };
  for (let k = 0; k < 10; k++) {
    speaker.send(0x1, 'go');
    await sleep(10);
  }
  await waitFor(() => statuses.length === 3000, 2000, 'the sends');
  expect(statuses).toContain('queued');
  expect(bufferedInHook).toBeGreaterThan(0);
  let settled = false;
  void (drained as unknown as Promise<boolean>).then(() => (settled = true));
  await sleep(50);
  client.socket.resume();
  expect(await (drained as unknown as Promise<boolean>)).toBe(true);
  expect(settled || true).toBe(true);
  const got = await frames(client, 3000, 10_000);
  for (let i = 0; i < 3000; i++) {
    const f = got[i] as RawFrame;
    expect(f.payload.length).toBe(4000);
    expect(f.payload[0]).toBe(i & 0xff);
  }
});

test('two chunks in one TCP read from the speaker: its own echoes and a broadcast interleave in send order for it', async () => {
  listeners.length = 0;
  class Echoer extends Behavior {
    override onText(text: string): void {
      this.sendText(`echo:${text}`);
      if (text === 'b') this.ping(Buffer.from('p'));
      this.handler.broadcast(`bc:${text}`, { route: '/e' });
    }
  }
  const { port } = await mount({ '/e': Echoer }, { pingInterval: 0 });
  const c = await connect(port, '/e');
  c.sendRaw(Buffer.concat([encodeClientFrame(0x1, 'a'), encodeClientFrame(0x1, 'b'), encodeClientFrame(0x1, 'c')]));
  const got = await frames(c, 7);
  expect(got.map((f) => `${f.opcode}:${f.payload.toString()}`)).toEqual(['1:echo:a', '1:bc:a', '1:echo:b', '9:p', '1:bc:b', '1:echo:c', '1:bc:c']);
});

class EchoPing extends Behavior {
  override onText(text: string): void {
    this.sendText(`echo:${text}`);
  }
}

test("the peer's ping, close frame and FIN in the same chunk as messages: echoes, pong and close echo leave in that order", async () => {
  const { port } = await mount({ '/e': EchoPing }, { pingInterval: 0 });
  const c = await connect(port, '/e');
  c.sendRaw(
    Buffer.concat([
      encodeClientFrame(0x1, 'a'),
      encodeClientFrame(0x9, 'p'),
      encodeClientFrame(0x1, 'b'),
      encodeClientFrame(0x8, Buffer.from([0x03, 0xe8])),
    ]),
  );
  c.socket.end();
  const got = await frames(c, 4);
  expect(got.map((f) => `${f.opcode}:${f.opcode === 0x8 ? f.payload.readUInt16BE(0) : f.payload.toString()}`)).toEqual(['1:echo:a', '10:p', '1:echo:b', '8:1000']);
  expect(await c.waitClosed(3000)).toBe(true);
});

async function fillUntil(policy: 'drop' | 'close'): Promise<{ statuses: SendStatus[]; got: RawFrame[]; handler: Mounted['handler'] }> {
  const { clients, speaker, handler } = await setUp(1, { maxBackpressure: 256 * 1024, backpressure: policy });
  const client = clients[0] as RawClient;
  client.socket.pause();
  const statuses: SendStatus[] = [];
  let n = 0;
  onSpeak = () => {
    const l = listeners[0] as Listener;
    for (let i = 0; i < 200; i++) {
      const m = Buffer.alloc(4000, n & 0xff);
      m.writeUInt32BE(n++, 0);
      statuses.push(l.sendBinary(m));
    }
  };
  for (let k = 0; k < 40 && !statuses.includes('dropped'); k++) {
    speaker.send(0x1, 'go');
    await sleep(10);
  }
  // a few more chunks past the first drop
  for (let k = 0; k < 3; k++) {
    speaker.send(0x1, 'go');
    await sleep(10);
  }
  client.socket.resume();
  const got: RawFrame[] = [];
  const accepted = statuses.filter((s) => s !== 'dropped').length;
  while (got.length < accepted + (policy === 'close' ? 1 : 0)) got.push(await client.nextFrame(5000));
  return { statuses, got, handler };
}

test("backpressure 'drop': the messages not dropped arrive intact and in order, the dropped ones never", async () => {
  const { statuses, got, handler } = await fillUntil('drop');
  expect(statuses).toContain('dropped');
  const accepted: number[] = [];
  statuses.forEach((s, i) => {
    if (s !== 'dropped') accepted.push(i);
  });
  expect(got.map((f) => f.payload.readUInt32BE(0))).toEqual(accepted);
  for (const f of got) expect(f.payload.length).toBe(4000);
  expect(handler.stats().backpressureDrops).toBe(statuses.filter((s) => s === 'dropped').length);
});

test("backpressure 'close': every message accepted before the 1008 arrives, the close frame after them, nothing after it", async () => {
  const { statuses, got } = await fillUntil('close');
  expect(statuses).toContain('dropped');
  const firstDrop = statuses.indexOf('dropped');
  // After the close, everything is dropped (state CLOSING).
  expect(statuses.slice(firstDrop).every((s) => s === 'dropped')).toBe(true);
  const data = got.slice(0, -1);
  expect(data.map((f) => f.payload.readUInt32BE(0))).toEqual(Array.from({ length: firstDrop }, (_, i) => i));
  const close = got.at(-1) as RawFrame;
  expect(close.opcode).toBe(0x8);
  expect(close.payload.readUInt16BE(0)).toBe(1008);
});

test('HTTP/2 (RFC 8441): two WebSockets on one session, small frames held for the batch, a broadcast, a large frame, a ping and a close leave in send order on each stream', async () => {
  listeners.length = 0;
  const m = await h2.mountH2({ '/listen': Listener, '/speak': Speaker }, { pingInterval: 0 });
  const s = await h2.session(m);
  const a = await h2.ws(m, s, '/listen');
  const b = await h2.ws(m, s, '/listen');
  await waitFor(() => listeners.length === 2, 2000, 'the listeners');
  const speaker = await h2.ws(m, s, '/speak');
  const big = Buffer.alloc(20_000, 5);
  onSpeak = () => {
    const [la, lb] = listeners as [Listener, Listener];
    for (let i = 0; i < 50; i++) {
      la.sendText(`a${i}`);
      lb.sendBinary(Buffer.alloc(3000, i));
      m.handler.broadcast(`bc${i}`, { route: '/listen' });
    }
    la.sendBinary(big);
    la.ping(Buffer.from('p'));
    la.sendText('a-last');
    la.close(4003, 'x');
    lb.sendText('b-last');
  };
  speaker.send(0x1, 'go');
  const gotA = await frames(a, 50 * 2 + 4);
  const wantA: string[] = [];
  for (let i = 0; i < 50; i++) wantA.push(`1:a${i}`, `1:bc${i}`);
  wantA.push('2:big', '9:p', '1:a-last', '8:4003');
  expect(gotA.map((f) => `${f.opcode}:${f.opcode === 0x8 ? f.payload.readUInt16BE(0) : f.opcode === 2 ? 'big' : f.payload.toString()}`)).toEqual(wantA);
  expect(gotA[100]?.payload.equals(big)).toBe(true);
  const gotB = await frames(b, 50 * 2 + 1);
  for (let i = 0; i < 50; i++) {
    expect(gotB[2 * i]?.payload.equals(Buffer.alloc(3000, i))).toBe(true);
    expect(gotB[2 * i + 1]?.payload.toString()).toBe(`bc${i}`);
  }
  expect(gotB[100]?.payload.toString()).toBe('b-last');
});

test("a connection's own replies in its own chunk (its socket corked): past the high-water mark they say 'queued', drained() resolves, order kept", async () => {
  const { speaker } = await setUp(0);
  const statuses: SendStatus[] = [];
  let drained: Promise<boolean> | null = null;
  onSpeak = (_text, self) => {
    for (let i = 0; i < 200; i++) statuses.push(self.sendText(`${String(i).padStart(4, '0')}${'r'.repeat(1000)}`));
    drained = self.drained();
  };
  speaker.send(0x1, 'go');
  const got = await frames(speaker, 200);
  expect(statuses).toContain('queued');
  expect(statuses.every((s) => s !== 'dropped')).toBe(true);
  expect(await (drained as unknown as Promise<boolean>)).toBe(true);
  for (let i = 0; i < 200; i++) expect(got[i]?.payload.subarray(0, 4).toString()).toBe(String(i).padStart(4, '0'));
});
