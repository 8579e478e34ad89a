/**
 * Messages as streams (issue 15), through a raw client on a real socket: `onStream` receiving
 * fragments as they arrive (RFC 6455 §5.4) with incremental UTF-8 checks (§8.1), and
 * `sendStream` writing one fragmented message from a source, with control frames between its
 * fragments (§5.5) and other messages after it, never inside it.
 */
import { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { Behavior, type StreamedMessage, createWebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { RawClient, type RawFrame, closePayload } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { serve, connect, defer } = useFixture();

const seen: { text: boolean; chunks: Buffer[]; error?: { code: string; closeCode: number } }[] = [];
const opened: Behavior[] = [];
const closes: number[] = [];

class Sink extends Behavior {
  static override maxPayload = 1024;
  override onOpen(): void {
    opened.push(this);
  }
  override async onStream(message: StreamedMessage): Promise<void> {
    const entry: (typeof seen)[number] = { text: message.isText, chunks: [] };
    seen.push(entry);
    try {
      for await (const chunk of message) entry.chunks.push(Buffer.from(chunk));
    } catch (error) {
      const e = error as { code: string; closeCode: number };
      entry.error = { code: e.code, closeCode: e.closeCode };
    }
  }
  override onClose(code: number): void {
    closes.push(code);
  }
}

async function openSink(): Promise<Awaited<ReturnType<typeof connect>>> {
  seen.length = 0;
  opened.length = 0;
  closes.length = 0;
  const server = await serve({ '/sink': Sink });
  const client = await connect(server.port, '/sink');
  await waitFor(() => opened.length === 1, 2000, 'open');
  return client;
}

/** Reads frames until a data message ends; returns its frames. */
async function message(client: Awaited<ReturnType<typeof connect>>, timeout = 5000): Promise<RawFrame[]> {
  const frames: RawFrame[] = [];
  for (;;) {
    const f = await client.nextFrame(timeout);
    if (f.opcode >= 8) continue;
    frames.push(f);
    if (f.fin) return frames;
  }
}

describe('receiving as a stream', () => {
  test('fragments arrive one by one, before the message ends; maxPayload does not bound a stream', async () => {
    const client = await openSink();
    client.send(0x2, Buffer.alloc(3000, 1), { fin: false });
    await waitFor(() => (seen[0]?.chunks.length ?? 0) > 0, 2000, 'first fragment');
    expect(Buffer.concat(seen[0]!.chunks).length).toBe(3000);
    client.send(0x0, Buffer.alloc(3000, 2), { fin: false });
    await waitFor(() => Buffer.concat(seen[0]!.chunks).length === 6000, 2000, 'second fragment');
    client.send(0x0, Buffer.alloc(0), { fin: true });
    client.send(0x1, 'after', { fin: true });
    await waitFor(() => seen.length === 2 && Buffer.concat(seen[1]!.chunks).toString() === 'after', 2000, 'next message');
    expect(seen[0]!.text).toBe(false);
    expect(seen[1]!.text).toBe(true);
    expect(closes).toEqual([]);
  });

  test('RFC 6455 §8.1: a bad UTF-8 byte in the middle of a text stream fails with 1007 at once, and the reader sees WS_INVALID_UTF8', async () => {
    const client = await openSink();
    // "é" split across two frames is fine.
    client.send(0x1, Buffer.from([0x61, 0xc3]), { fin: false });
    client.send(0x0, Buffer.from([0xa9, 0x62]), { fin: false });
    await waitFor(() => Buffer.concat(seen[0]?.chunks ?? []).toString() === 'aéb', 2000, 'split code point');
    client.send(0x0, Buffer.from([0x63, 0xff]), { fin: false });
    const close = await client.expectClose();
    expect(close.code).toBe(1007);
    await waitFor(() => seen[0]!.error !== undefined, 2000, 'reader error');
    expect(seen[0]!.error).toEqual({ code: 'WS_INVALID_UTF8', closeCode: 1007 });
  });

  test('the peer closing mid-message ends the reader with WS_STREAM_INTERRUPTED', async () => {
    const client = await openSink();
    client.send(0x2, Buffer.alloc(10, 7), { fin: false });
    await waitFor(() => seen.length === 1, 2000, 'start');
    client.send(0x8, closePayload(1001));
    await waitFor(() => seen[0]!.error !== undefined, 2000, 'reader error');
    expect(seen[0]!.error).toEqual({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1001 });
  });
});

class Streamer extends Behavior {
  override onOpen(): void {
    opened.push(this);
  }
}

async function openStreamer(): Promise<{ client: Awaited<ReturnType<typeof connect>>; b: Behavior }> {
  opened.length = 0;
  const server = await serve({ '/s': Streamer });
  const client = await connect(server.port, '/s');
  await waitFor(() => opened.length === 1, 2000, 'open');
  return { client, b: opened[0] as Behavior };
}

describe('sending from a source', () => {
  test('an async generator becomes one fragmented message; a send made meanwhile follows it, never inside it', async () => {
    const { client, b } = await openStreamer();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    async function* source(): AsyncGenerator<string> {
      yield 'héllo ';
      await gate;
      yield 'wörld';
    }
    const sent = b.sendStream(source());
    await new Promise((r) => setTimeout(r, 20));
    expect(b.sendText('next')).toBe('queued');
    release();
    expect(await sent).toBe(Buffer.byteLength('héllo wörld'));
    const first = await message(client);
    expect(first.map((f) => f.opcode)).toEqual([0x1, 0x0, 0x0]);
    expect(Buffer.concat(first.map((f) => f.payload)).toString()).toBe('héllo wörld');
    const second = await message(client);
    expect(second).toHaveLength(1);
    expect(second[0]!.payload.toString()).toBe('next');
  });

  test('a Readable with chunks over fragmentSize is split; a ping in the middle is answered between fragments', async () => {
    const { client, b } = await openStreamer();
    const data = Buffer.alloc(10_000);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    let pulls = 0;
    const readable = new Readable({
      read() {
        pulls++;
        if (pulls === 1) this.push(data);
        else if (pulls === 2) setTimeout(() => this.push(data), 30);
        else this.push(null);
      },
    });
    const sent = b.sendStream(readable, { fragmentSize: 4096 });
    const f1 = await client.nextFrame();
    expect(f1).toMatchObject({ opcode: 0x2, fin: false });
    client.send(0x9, 'p');
    const frames: RawFrame[] = [f1];
    let pongAt = -1;
    for (;;) {
      const f = await client.nextFrame();
      if (f.opcode === 0xa) {
        pongAt = frames.length;
        continue;
      }
      frames.push(f);
      if (f.fin) break;
    }
    expect(await sent).toBe(20_000);
    expect(pongAt).toBeGreaterThan(0);
    expect(pongAt).toBeLessThan(frames.length);
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(Buffer.concat([data, data]));
    expect(Math.max(...frames.map((f) => f.payload.length))).toBe(4096);
  });

  test('a source that fails after its first chunk rejects and closes with 1011, with no other data frame', async () => {
    const { client, b } = await openStreamer();
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('part');
      await new Promise((r) => setTimeout(r, 10));
      throw new Error('disk on fire');
    }
    const sent = b.sendStream(source());
    b.sendText('never');
    await expect(sent).rejects.toThrow('disk on fire');
    const close = await client.expectClose();
    expect(close.code).toBe(1011);
    const data = close.before.filter((f) => f.opcode < 8);
    expect(data.map((f) => [f.opcode, f.fin, f.payload.toString()])).toEqual([[0x2, false, 'part']]);
  });

  test('a source that fails before its first chunk rejects and the connection goes on', async () => {
    const { client, b } = await openStreamer();
    async function* source(): AsyncGenerator<Buffer> {
      await Promise.resolve();
      throw new Error('no file');
    }
    await expect(b.sendStream(source())).rejects.toThrow('no file');
    expect(b.sendText('still here')).toBe('sent');
    const f = await client.nextFrame();
    expect(f.payload.toString()).toBe('still here');
  });

  test('the peer closing mid-stream rejects with WS_STREAM_INTERRUPTED and releases the source', async () => {
    const { client, b } = await openStreamer();
    let finished = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          yield Buffer.alloc(100);
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        finished = true;
      }
    }
    const sent = b.sendStream(source());
    await client.nextFrame();
    client.send(0x8, closePayload(1000));
    await expect(sent).rejects.toMatchObject({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1000 });
    await waitFor(() => finished, 2000, 'source released');
  });
});

describe('stopping a message half sent', () => {
  test('an abort signal after the first fragment rejects with its reason and closes with 1011; messages queued behind are dropped', async () => {
    const { client, b } = await openStreamer();
    const controller = new AbortController();
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from('one');
      await new Promise((r) => setTimeout(r, 1000));
      yield Buffer.from('two');
    }
    const sent = b.sendStream(source(), { signal: controller.signal });
    expect(b.sendText('queued behind')).toBe('queued');
    const f = await client.nextFrame();
    expect([f.opcode, f.fin, f.payload.toString()]).toEqual([0x2, false, 'one']);
    controller.abort(new Error('user cancelled'));
    await expect(sent).rejects.toThrow('user cancelled');
    const close = await client.expectClose();
    expect([close.code, close.reason]).toEqual([1011, 'message aborted']);
    expect(close.before).toEqual([]);
  });

  test('an already aborted signal, or a string instead of a source, only rejects: nothing was sent, the connection goes on', async () => {
    const { client, b } = await openStreamer();
    const reason = new Error('too late');
    await expect(b.sendStream([Buffer.from('x')], { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(b.sendStream('whole' as unknown as string[])).rejects.toThrow(/send it with sendText/);
    await expect(b.sendStream([Buffer.alloc(1)], { fragmentSize: 0 })).rejects.toThrow(RangeError);
    expect(b.sendText('fine')).toBe('sent');
    const f = await client.nextFrame();
    expect([f.opcode, f.fin, f.payload.toString()]).toEqual([0x1, true, 'fine']);
  });

  test('a peer that ends TCP and reads nothing is closed by the close timer, and a stream to it is rejected', async () => {
    opened.length = 0;
    const server = await serve({ '/s': Streamer }, { closeTimeout: 300 });
    const client = await connect(server.port, '/s');
    await waitFor(() => opened.length === 1, 2000, 'open');
    const b = opened[0] as Behavior;
    // The peer stops reading, then half-closes: our backlog can never drain.
    client.socket.pause();
    let pulled = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        pulled++;
        yield Buffer.alloc(256 * 1024);
      }
    }
    const sent = b.sendStream(endless());
    await waitFor(() => pulled > 4, 2000, 'backlog');
    client.socket.end();
    await expect(sent).rejects.toMatchObject({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1006 });
    await waitFor(() => b.readyState === Behavior.CLOSED, 3000, 'closed by the close timer');
  });
});

describe('over HTTP/2 (RFC 8441)', () => {
  test('a stream in, echoed as a stream out, on an extended CONNECT stream', async () => {
    class PipeBack extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        await this.sendStream(message, { text: message.isText });
      }
    }
    const server = http2.createServer();
    const handler = createWebSocketHandler({ '/pipe': PipeBack }, { logLevel: 'silent' }).attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    defer(async () => {
      session.destroy();
      await handler.close({ timeout: 300 });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const client = await RawClient.connectH2((server.address() as AddressInfo).port, '/pipe', {}, session);
    const pieces = [Buffer.alloc(70_000, 1), Buffer.alloc(5, 2), Buffer.alloc(300_000, 3)];
    client.send(0x2, pieces[0]!, { fin: false });
    client.send(0x0, pieces[1]!, { fin: false });
    client.send(0x0, pieces[2]!, { fin: true });
    const frames = await message(client);
    expect(frames[0]!.opcode).toBe(0x2);
    expect(frames.slice(1).every((f) => f.opcode === 0)).toBe(true);
    expect(Buffer.concat(frames.map((f) => f.payload)).equals(Buffer.concat(pieces))).toBe(true);
    client.destroy();
  });
});

describe('a message waiting its turn', () => {
  test('while the last onStream is pending, the next message waits and the socket stops once 1 MiB of it is kept', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const got: number[] = [];
    class Slow extends Behavior {
      override onOpen(): void {
        opened.push(this);
      }
      override async onStream(message: StreamedMessage): Promise<void> {
        let n = 0;
        for await (const chunk of message) n += chunk.length;
        got.push(n);
        if (got.length === 1) await gate;
      }
    }
    opened.length = 0;
    const server = await serve({ '/slow': Slow });
    const client = await connect(server.port, '/slow');
    await waitFor(() => opened.length === 1, 2000, 'open');
    client.send(0x2, Buffer.alloc(10, 1));
    await waitFor(() => got.length === 1, 2000, 'first message');
    // 32 MiB more, in one message, while the first onStream has not settled.
    const big = Buffer.alloc(32 << 20, 2);
    client.send(0x2, big);
    let last = -1;
    for (let i = 0; i < 50; i++) {
      const now = server.srv.handler.stats().bytesIn;
      if (now === last) break;
      last = now;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(got).toEqual([10]);
    // The server read what the kernel and its parser hold at most, not the whole 32 MiB.
    expect(server.srv.handler.stats().bytesIn).toBeLessThan(8 << 20);
    release();
    await waitFor(() => got.length === 2, 10_000, 'second message');
    expect(got).toEqual([10, 32 << 20]);
  });
});
