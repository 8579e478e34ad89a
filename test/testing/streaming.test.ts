/**
 * Issue 15 through wsmount/testing's client: `client.sendStream(source)` sends one fragmented
 * message (RFC 6455 §5.4), every frame masked with its own key (§5.3), with backpressure, and
 * `connect(…, { streamMessages: true })` + `client.nextStream()` receive each message as a stream,
 * with backpressure and UTF-8 checked as it arrives (§8.1). Against the real handler, served with
 * listen(); the 1 GiB runs put the server in a child process (fixtures/streaming-server.ts) so
 * that the server's RSS and the client's are each measured alone.
 */
import { rssBound } from '../helpers/rss-floor.js';
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { Behavior, type Routes, STREAM_HIGH_WATER_BYTES, type StreamedMessage, createWebSocketHandler } from '../../src/index.js';
import { type ClientStreamedMessage, type Listening, type TestClient, connect, listen } from '../../src/testing/index.js';
import { selfSignedCertificate } from '../helpers/certs.js';
import { IpcChild, compileForChildren } from '../helpers/child.js';
import { bounded } from '../helpers/fixture.js';
import { clientFrames } from './fixtures/client-frames.js';
import { type CountAnswer, Count, Pattern } from './fixtures/stream-routes.js';
import { patternHolds, patternMiB, patternSource } from './fixtures/stream-pattern.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

/**
 * The bound on the client's RSS growth (the test process): what it reads is handed out (64 KiB
 * socket reads) and what it sends is masked into fresh buffers, all garbage that V8 collects once
 * some 64 MiB of external memory has been allocated since the last collection, so its RSS peak
 * is that garbage (measured here 4–61 MiB) and 64 MiB would be a coin toss; a client that kept
 * the message would grow by 1 GiB.
 */
const CLIENT_RSS_BOUND = 128 * MiB;
const QUIET = { logLevel: 'silent' as const };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await bounded(Promise.resolve(f()));
});

async function serve(routes: Routes): Promise<Listening> {
  const server = await listen(routes, { handlerOptions: QUIET });
  cleanups.push(() => server.close());
  return server;
}

function track(client: TestClient): TestClient {
  cleanups.push(() => client.terminate());
  return client;
}

/** Reads a streamed message to its end: its bytes, and the chunks' lengths. */
async function readAll(message: ClientStreamedMessage): Promise<{ data: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  for await (const chunk of message) parts.push(Buffer.from(chunk));
  return { data: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

/** What a promise settled with, without throwing. */
function outcome<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** A promise and its resolve function, for gating a source. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

function sha256(parts: Iterable<Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

// ---- 1 GiB each way, the server in a child process ---------------------------------------------

class ServerChild extends IpcChild {
  port = 0;

  static async start(script: string): Promise<ServerChild> {
    const child = new ServerChild(spawn(process.execPath, ['--expose-gc', script], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), 'streaming server');
    await child.waitReady(15_000);
    child.port = (await child.call<{ port: number }>('start')).port;
    return child;
  }

  async stop(): Promise<void> {
    if (this.running) await this.call('close', {}, 5000).catch(() => undefined);
    await this.disconnectThenKill(2000);
  }
}

/** Samples this process's RSS every 10 ms until `stop()`. */
function rssSampler(): { stop(): { base: number; peak: number } } {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  return {
    stop: () => {
      clearInterval(timer);
      return { base, peak: Math.max(peak, process.memoryUsage.rss()) };
    },
  };
}

const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

describe('1 GiB through real sockets: server RSS growth < 64 MiB (or the growth of raw TCP + 16 MiB where that is more: Node 24), the client bounded too', () => {
  let script = '';
  let removeBuild: () => Promise<void> = async () => {};
  let child: ServerChild | null = null;

  beforeAll(async () => {
    const build = await compileForChildren({
      prefix: 'wsmount-testing-streams-',
      include: ['src', join('test', 'testing', 'fixtures'), join('test', 'reliability', 'fixtures', 'ipc.ts')],
      compilerOptions: { noUnusedParameters: false, noUnusedLocals: false },
      mustEmit: join('test', 'testing', 'fixtures', 'streaming-server.js'),
    });
    script = join(build.out, 'test', 'testing', 'fixtures', 'streaming-server.js');
    removeBuild = build.remove;
    child = await ServerChild.start(script);
  }, 60_000);

  afterAll(async () => {
    await child?.stop();
    await removeBuild();
  });

  test('upload: client.sendStream() of a 1 GiB generator into an onStream route that counts it', { timeout: 180_000 }, async () => {
    const server = child as ServerChild;
    const client = track(await connect(`ws://127.0.0.1:${server.port}/count`));
    await server.call('begin');
    const rss = rssSampler();
    const started = performance.now();
    const sent = await client.sendStream(patternSource(1024));
    const answer = JSON.parse(String(await client.nextMessage({ timeout: 120_000 }))) as CountAnswer;
    const seconds = (performance.now() - started) / 1000;
    const own = rss.stop();
    const theirs = await server.call<{ base: number; peak: number }>('end');
    console.info(
      `wsmount/testing upload of 1 GiB: ${(1024 / seconds).toFixed(0)} MiB/s; server RSS +${mib(theirs.peak - theirs.base)} MiB, client (test process) RSS +${mib(own.peak - own.base)} MiB`,
    );
    expect(sent).toBe(GiB);
    expect(answer).toEqual({ bytes: GiB, intact: true, text: false });
    // The 64 MiB, or Node's own raw TCP floor (+16 MiB) where that is higher (Node 24).
    // The server reads the gigabyte ('in'); the client, this process, writes it ('out'), so the
    // client's floor is raw TCP's for sending (Node 24: ~150 MiB, above the receiving side's ~85).
    const { bound } = await rssBound('in', GiB);
    const clientFloor = (await rssBound('out', GiB)).floor;
    expect(theirs.peak - theirs.base).toBeLessThan(bound);
    expect(own.peak - own.base).toBeLessThan(Math.max(CLIENT_RSS_BOUND, clientFloor + CLIENT_RSS_BOUND / 2));
    expect(await client.close()).toEqual({ code: 1000, reason: '' });
  });

  test('download: a route sendStream()s a 1 GiB generator; the client reads it with nextStream()', { timeout: 180_000 }, async () => {
    const server = child as ServerChild;
    const client = track(await connect(`ws://127.0.0.1:${server.port}/pattern`, undefined, { streamMessages: true }));
    await server.call('begin');
    const rss = rssSampler();
    const started = performance.now();
    client.sendText('1024');
    const message = await client.nextStream();
    let bytes = 0;
    let intact = true;
    let mostQueued = 0;
    for await (const chunk of message) {
      if (!patternHolds(chunk, bytes)) intact = false;
      bytes += chunk.length;
      mostQueued = Math.max(mostQueued, message.queuedBytes);
    }
    const seconds = (performance.now() - started) / 1000;
    const own = rss.stop();
    const theirs = await server.call<{ base: number; peak: number }>('end');
    console.info(
      `wsmount/testing download of 1 GiB: ${(1024 / seconds).toFixed(0)} MiB/s; server RSS +${mib(theirs.peak - theirs.base)} MiB, client (test process) RSS +${mib(own.peak - own.base)} MiB`,
    );
    expect({ bytes, intact, isText: message.isText, complete: message.complete }).toEqual({ bytes: GiB, intact: true, isText: false, complete: true });
    expect(mostQueued).toBeLessThanOrEqual(STREAM_HIGH_WATER_BYTES + MiB);
    // The next message is collected whole by nextMessage(), streaming client or not.
    expect(JSON.parse(String(await client.nextMessage()))).toEqual({ sent: GiB });
    // The server writes ('out'); the client, this process, reads ('in').
    const { bound } = await rssBound('out', GiB);
    const clientFloor = (await rssBound('in', GiB)).floor;
    expect(theirs.peak - theirs.base).toBeLessThan(bound);
    expect(own.peak - own.base).toBeLessThan(Math.max(CLIENT_RSS_BOUND, clientFloor + CLIENT_RSS_BOUND / 2));
    expect(await client.close()).toEqual({ code: 1000, reason: '' });
  });
});

// ---- every transport -----------------------------------------------------------------------------

describe('over every transport the client speaks: in memory, TCP, TLS, h2c, h2', () => {
  const { key, cert } = selfSignedCertificate();
  const routes = { '/count': Count, '/pattern': Pattern };
  const transports: Array<{ name: string; open: (path: string, streamMessages: boolean) => Promise<TestClient> }> = [
    {
      name: 'in memory',
      open: async (path, streamMessages) => {
        const handler = createWebSocketHandler(routes, QUIET);
        cleanups.push(() => handler.close());
        return connect(handler, path, { streamMessages });
      },
    },
    { name: 'TCP', open: async (path, streamMessages) => connect(await serve(routes), path, { streamMessages }) },
    {
      name: 'TLS',
      open: async (path, streamMessages) => {
        const server = await listen(routes, { tls: { key, cert }, handlerOptions: QUIET });
        cleanups.push(() => server.close());
        return connect(server, path, { streamMessages, ca: cert });
      },
    },
    {
      name: 'h2c',
      open: async (path, streamMessages) => {
        const server = await listen(routes, { http2: true, handlerOptions: QUIET });
        cleanups.push(() => server.close());
        return connect(server, path, { streamMessages, http2: true });
      },
    },
    {
      name: 'h2',
      open: async (path, streamMessages) => {
        const server = await listen(routes, { http2: true, tls: { key, cert }, handlerOptions: QUIET });
        cleanups.push(() => server.close());
        return connect(server, path, { streamMessages, http2: true, ca: cert });
      },
    },
  ];

  for (const t of transports) {
    test(`${t.name}: 16 MiB up in 100,000-byte frames and 16 MiB down, byte for byte`, { timeout: 60_000 }, async () => {
      const expected = sha256(patternSource(16));
      const up = track(await t.open('/count?hash', false));
      expect(await up.sendStream(patternSource(16), { fragmentSize: 100_000 })).toBe(16 * MiB);
      expect(JSON.parse(String(await up.nextMessage({ timeout: 30_000 })))).toEqual({ bytes: 16 * MiB, intact: true, text: false, sha256: expected });
      await up.close();

      const down = track(await t.open('/pattern', true));
      down.sendText('16 100000');
      const message = await down.nextStream();
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of message) {
        expect(chunk.length).toBeLessThanOrEqual(100_000);
        hash.update(chunk);
        bytes += chunk.length;
      }
      expect(bytes).toBe(16 * MiB);
      expect(hash.digest('hex')).toBe(expected);
      expect(JSON.parse(String(await down.nextMessage()))).toEqual({ sent: 16 * MiB });
      expect(await down.close()).toEqual({ code: 1000, reason: '' });
    });
  }
});

// ---- sending --------------------------------------------------------------------------------------

interface Seen {
  text: boolean;
  chunks: Buffer[];
  error?: { code: string; closeCode: number };
}

/** A route that records every message it takes as a stream, and the pongs and close it sees. */
function recorder(): { routes: Routes; seen: Seen[]; pongs: Array<{ data: string; bytesReceived: number }>; closes: number[]; behaviors: Behavior[] } {
  const seen: Seen[] = [];
  const pongs: Array<{ data: string; bytesReceived: number }> = [];
  const closes: number[] = [];
  const behaviors: Behavior[] = [];
  let reading: StreamedMessage | null = null;
  class Recording extends Behavior {
    override onOpen(): void {
      behaviors.push(this);
    }
    override onStream(message: StreamedMessage): Promise<void> {
      const entry: Seen = { text: message.isText, chunks: [] };
      seen.push(entry);
      reading = message;
      // Every chunk as it comes, and how the message failed if it did.
      return pipeInto(message, entry);
    }
    override onPong(data: Buffer): void {
      pongs.push({ data: data.toString(), bytesReceived: reading?.bytesReceived ?? -1 });
    }
    override onClose(code: number): void {
      closes.push(code);
    }
  }
  return { routes: { '/record': Recording }, seen, pongs, closes, behaviors };
}

const joined = (s: Seen | undefined): Buffer => Buffer.concat(s?.chunks ?? []);

async function pipeInto(message: StreamedMessage, entry: Seen): Promise<void> {
  const it = message[Symbol.asyncIterator]();
  for (;;) {
    const r = await it.next().catch((error: { code: string; closeCode: number }) => {
      entry.error = { code: error.code, closeCode: error.closeCode };
      return null;
    });
    if (r === null || r.done === true) return;
    entry.chunks.push(Buffer.from(r.value));
  }
}

describe('client.sendStream()', () => {
  test('RFC 6455 §5.1, §5.3, §5.4: one fragmented message, every frame masked with a fresh key, chunks over fragmentSize split, an empty final frame', async () => {
    const server = await serve(routes());
    // A TCP proxy between the client and the server keeps every byte the client sends.
    const sent: Buffer[] = [];
    const proxy = net.createServer((down) => {
      const up = net.connect(server.port, '127.0.0.1');
      down.on('data', (bytes: Buffer) => {
        sent.push(Buffer.from(bytes));
        up.write(bytes);
      });
      up.pipe(down);
      for (const s of [down, up]) s.on('error', () => {});
      down.on('close', () => up.destroy());
      up.on('close', () => down.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const client = track(await connect(`ws://127.0.0.1:${(proxy.address() as net.AddressInfo).port}/count?hash`));
    const chunks = [patternMiB(0).subarray(0, 100_000), patternMiB(0).subarray(100_000, 150_000), patternMiB(0).subarray(150_000, 300_000)];
    expect(await client.sendStream(chunks, { fragmentSize: 65_536 })).toBe(300_000);
    expect(JSON.parse(String(await client.nextMessage()))).toEqual({ bytes: 300_000, intact: true, text: false, sha256: sha256(chunks) });
    // The source's buffers are never masked in place.
    expect(patternHolds(chunks[0] as Buffer, 0) && (chunks[0] as Buffer)[1] === patternMiB(0)[1]).toBe(true);

    const bytes = Buffer.concat(sent);
    const frames = clientFrames(bytes.subarray(bytes.indexOf('\r\n\r\n') + 4));
    expect(frames.map((f) => [f.opcode, f.fin, f.payload.length])).toEqual([
      [0x2, false, 65_536],
      [0x0, false, 34_464],
      [0x0, false, 50_000],
      [0x0, false, 65_536],
      [0x0, false, 65_536],
      [0x0, false, 18_928],
      [0x0, true, 0],
    ]);
    expect(frames.every((f) => f.rsv === 0)).toBe(true);
    expect(new Set(frames.map((f) => f.key.toString('hex'))).size).toBe(frames.length);
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(Buffer.concat(chunks));
    await client.close();
  });

  test('text: string chunks with a surrogate pair split between them, byte chunks with a code point split between them', async () => {
    const { routes: r, seen } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    // '😀' is two UTF-16 units; 'é' is two UTF-8 bytes.
    expect(await client.sendStream(['a\ud83d', '\ude00b', 'c'])).toBe(Buffer.byteLength('a😀bc'));
    expect(await client.sendStream([Buffer.from([0x78, 0xc3]), Buffer.from([0xa9, 0x79])], { text: true })).toBe(4);
    await expect.poll(() => seen.length === 2 && seen[1]?.chunks.length === 2).toBe(true);
    expect(seen.map((s) => [s.text, joined(s).toString()])).toEqual([
      [true, 'a😀bc'],
      [true, 'xéy'],
    ]);
    // Text from bytes that are not UTF-8: rejected before anything is sent.
    await expect(client.sendStream([Buffer.from([0xff])], { text: true })).rejects.toThrow(TypeError);
    expect(client.state).toBe('open');
    await client.close();
  });

  test('sources: a Node Readable, a web ReadableStream, a sync iterable, an ArrayBuffer and typed arrays; an empty source sends an empty message', async () => {
    const { routes: r, seen } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    expect(await client.sendStream(Readable.from([Buffer.from('rea'), Buffer.from('dable')]))).toBe(8);
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('web'));
        controller.enqueue(new Uint8Array([0x21]));
        controller.close();
      },
    });
    expect(await client.sendStream(web)).toBe(4);
    expect(await client.sendStream([new Uint16Array([0x6968]).buffer, new DataView(new Uint8Array([0x21]).buffer)])).toBe(3);
    expect(await client.sendStream([])).toBe(0);
    await expect.poll(() => seen.length).toBe(4);
    expect(seen.map((s) => [s.text, joined(s).toString('latin1')])).toEqual([
      [false, 'readable'],
      [false, 'web!'],
      [false, 'hi!'],
      [false, ''],
    ]);
    await client.close();
  });

  test('backpressure: the source is never read ahead of the socket', async () => {
    const reader = gate();
    let read = 0;
    class Stall extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        for await (const chunk of message) {
          read += chunk.length;
          await reader.wait; // reads one chunk, then waits: the server stops reading at 1 MiB unread
        }
        this.sendText(String(read));
      }
    }
    const client = track(await connect(await serve({ '/stall': Stall }), '/stall'));
    let pulled = 0;
    function* source(): Generator<Buffer> {
      for (let i = 0; i < 64; i++) {
        pulled++;
        yield patternMiB(i);
      }
    }
    const done = client.sendStream(source());
    // The server's queue, the kernel's buffers and the client's socket fill, then the source is
    // no longer pulled (the same count 100 ms apart), far from its end.
    let last = -1;
    await expect.poll(() => [last, (last = pulled)][0] === pulled, { interval: 100, timeout: 20_000 }).toBe(true);
    expect(pulled).toBeLessThan(64);
    reader.open();
    expect(await done).toBe(64 * MiB);
    expect(await client.nextMessage({ timeout: 20_000 })).toBe(String(64 * MiB));
    await client.close();
  });

  test('other sends made meanwhile wait and follow it, in order; another sendStream() queues too', async () => {
    const { routes: r, seen } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    const g = gate();
    async function* slow(): AsyncGenerator<string> {
      yield 'one,';
      await g.wait;
      yield 'two';
    }
    const first = client.sendStream(slow());
    await expect.poll(() => joined(seen[0]).toString()).toBe('one,');
    expect(client.sendText('after')).toBe(true);
    const second = client.sendStream(['second']);
    expect(client.sendBinary(Buffer.from('last'))).toBe(true);
    await sleep(50);
    expect(seen.length).toBe(1);
    g.open();
    expect(await first).toBe(7);
    expect(await second).toBe(6);
    await expect.poll(() => seen.length).toBe(4);
    expect(seen.map((s) => joined(s).toString())).toEqual(['one,two', 'after', 'second', 'last']);
    await client.close();
  });

  test('RFC 6455 §5.5: pings and pongs go out between its fragments: the server\'s ping is answered, and client.ping() resolves, mid-message', async () => {
    const { routes: r, seen, pongs, behaviors } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    await expect.poll(() => behaviors.length).toBe(1);
    const g = gate();
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 8; i++) yield patternMiB(i);
      await g.wait;
      for (let i = 8; i < 16; i++) yield patternMiB(i);
    }
    const done = client.sendStream(source());
    await expect.poll(() => joined(seen[0]).length, { timeout: 10_000 }).toBe(8 * MiB);
    behaviors[0]?.ping('from the server');
    await expect.poll(() => pongs.length).toBe(1);
    expect(pongs[0]).toEqual({ data: 'from the server', bytesReceived: 8 * MiB });
    expect((await client.ping('from the client')).toString()).toBe('from the client');
    g.open();
    expect(await done).toBe(16 * MiB);
    await expect.poll(() => joined(seen[0]).length).toBe(16 * MiB);
    expect(seen[0]?.error).toBeUndefined();
    await client.close();
  });

  test('a source that throws after a frame: rejects with its error and the client closes with 1011', async () => {
    const { routes: r, seen, closes } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    const failure = new Error('the disk went away');
    async function* failing(): AsyncGenerator<string> {
      yield 'begun';
      throw failure;
    }
    await expect(client.sendStream(failing())).rejects.toBe(failure);
    expect(await client.closed).toEqual({ code: 1011, reason: 'message source failed' });
    await expect.poll(() => closes).toEqual([1011]);
    expect(seen[0]?.error).toEqual({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1011 });
  });

  test('signal: aborted before its first frame it rejects with the reason and the connection stays open; aborted mid-message the client closes with 1011', async () => {
    const { routes: r, seen } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    const early = new AbortController();
    early.abort(new Error('never mind'));
    await expect(client.sendStream(['x'], { signal: early.signal })).rejects.toThrow('never mind');
    expect(client.state).toBe('open');
    expect(await client.sendStream(['still fine'])).toBe(10);
    await expect.poll(() => joined(seen[0]).toString()).toBe('still fine');

    const late = new AbortController();
    let released = false;
    async function* endless(): AsyncGenerator<string> {
      try {
        for (;;) {
          yield 'more ';
          await sleep(1);
        }
      } finally {
        released = true;
      }
    }
    const result = outcome(client.sendStream(endless(), { signal: late.signal }));
    await expect.poll(() => joined(seen[1]).length).toBeGreaterThan(0);
    late.abort(new Error('stop now'));
    const r2 = await result;
    expect(r2.ok).toBe(false);
    expect((r2 as { error: Error }).error.message).toBe('stop now');
    expect(await client.closed).toEqual({ code: 1011, reason: 'message aborted' });
    await expect.poll(() => released).toBe(true);
    await expect.poll(() => seen[1]?.error).toEqual({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1011 });
  });

  test('the server closing mid-message: sendStream() rejects with WS_STREAM_INTERRUPTED and its close code, and the source is released', async () => {
    const { routes: r, seen, behaviors } = recorder();
    const client = track(await connect(await serve(r), '/record'));
    await expect.poll(() => behaviors.length).toBe(1);
    let released = false;
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        for (let i = 0; ; i++) {
          yield patternMiB(i);
          await sleep(1);
        }
      } finally {
        released = true;
      }
    }
    const result = outcome(client.sendStream(endless()));
    await expect.poll(() => joined(seen[0]).length).toBeGreaterThan(0);
    behaviors[0]?.close(4001, 'enough');
    const r2 = await result;
    expect(r2.ok).toBe(false);
    expect((r2 as { error: unknown }).error).toMatchObject({ name: 'ProtocolError', code: 'WS_STREAM_INTERRUPTED', closeCode: 4001 });
    expect(await client.closed).toEqual({ code: 4001, reason: 'enough' });
    await expect.poll(() => released).toBe(true);
  });

  test('refusals: a fragmentSize that is not a positive integer; a closing connection', async () => {
    const client = track(await connect(await serve(routes()), '/count'));
    await expect(client.sendStream(['x'], { fragmentSize: 0 })).rejects.toThrow(RangeError);
    await expect(client.sendStream(['x'], { fragmentSize: 1.5 })).rejects.toThrow(RangeError);
    const closing = client.close();
    await expect(client.sendStream(['x'])).rejects.toMatchObject({ code: 'WS_STREAM_INTERRUPTED' });
    await closing;
    await expect(client.sendStream(['x'])).rejects.toMatchObject({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1000 });
  });

  test('with permessage-deflate agreed a streamed message goes uncompressed', async () => {
    class Deflating extends Count {
      static override perMessageDeflate = true;
    }
    const client = track(await connect(await serve({ '/count': Deflating }), '/count', { perMessageDeflate: true }));
    expect(client.perMessageDeflate).not.toBeNull();
    expect(await client.sendStream(patternSource(2))).toBe(2 * MiB);
    expect(JSON.parse(String(await client.nextMessage()))).toEqual({ bytes: 2 * MiB, intact: true, text: false });
    expect(client.compressedOut).toBe(0);
    await client.close();
  });
});

// ---- receiving ------------------------------------------------------------------------------------

function routes(): { '/count': typeof Count; '/pattern': typeof Pattern } {
  return { '/count': Count, '/pattern': Pattern };
}

describe('connect(…, { streamMessages: true }) and client.nextStream()', () => {
  test('a text stream whose code points are split between chunks: the chunks are raw UTF-8, TextDecoder or text() joins them', async () => {
    class SplitText extends Behavior {
      override onOpen(): void {
        const bytes = Buffer.from('a😀é!');
        // Cut inside the 4-byte emoji and inside the 2-byte é.
        const parts = [bytes.subarray(0, 3), bytes.subarray(3, 6), bytes.subarray(6)];
        void this.sendStream(parts, { text: true }).then(() => this.sendStream(parts, { text: true }));
      }
    }
    const client = track(await connect(await serve({ '/split': SplitText }), '/split', { streamMessages: true }));
    const first = await client.nextStream();
    expect(first.isText).toBe(true);
    const { data, chunks } = await readAll(first);
    expect(chunks).toEqual([3, 3, 2]);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    expect(decoder.decode(data.subarray(0, 3), { stream: true }) + decoder.decode(data.subarray(3), { stream: false })).toBe('a😀é!');
    expect(await (await client.nextStream()).text()).toBe('a😀é!');
    await client.close();
  });

  test('RFC 6455 §8.1: a bad byte in the middle of a text stream fails the connection with 1007 at once; the reader sees WS_INVALID_UTF8 after the valid chunk', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const closed = new Promise<number>((resolve) => {
      wss.on('connection', (ws) => {
        ws.on('close', (code) => resolve(code));
        // ws sends Buffers as they are: a text message whose second fragment is not UTF-8, never finished.
        ws.send(Buffer.from('valid '), { binary: false, fin: false });
        ws.send(Buffer.from([0x62, 0xff]), { binary: false, fin: false });
      });
    });
    const client = track(await connect(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, undefined, { streamMessages: true }));
    const message = await client.nextStream();
    const it = message[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('valid ');
    await expect(it.next()).rejects.toMatchObject({ name: 'ProtocolError', code: 'WS_INVALID_UTF8', closeCode: 1007 });
    expect((await client.closed).code).toBe(1007);
    expect(await closed).toBe(1007);
  });

  test('the server closing mid-message: the reader gets what came, then WS_STREAM_INTERRUPTED with the close code; a dropped connection gives 1006', async () => {
    let cut: 'close' | 'terminate' = 'close';
    class CutOff extends Behavior {
      override onOpen(): void {
        const self = this;
        async function* source(): AsyncGenerator<Buffer> {
          yield Buffer.alloc(1000, 1);
          yield Buffer.alloc(1000, 2);
          // Pulled once the two chunks above are with the socket.
          if (cut === 'close') self.close(4002, 'cut off');
          else self.terminate();
          yield Buffer.alloc(1000, 3);
        }
        this.sendStream(source()).catch(() => {});
      }
    }
    const server = await serve({ '/cut': CutOff });
    for (const [how, code] of [['close', 4002], ['terminate', 1006]] as const) {
      cut = how;
      const client = track(await connect(server, '/cut', { streamMessages: true }));
      const message = await client.nextStream();
      const parts: Buffer[] = [];
      const result = await outcome(
        (async () => {
          for await (const chunk of message) parts.push(chunk);
        })(),
      );
      expect(Buffer.concat(parts)).toEqual(Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(1000, 2)]));
      expect(result.ok).toBe(false);
      expect((result as { error: unknown }).error).toMatchObject({ name: 'ProtocolError', code: 'WS_STREAM_INTERRUPTED', closeCode: code });
      expect((await client.closed).code).toBe(code);
      await expect(client.nextStream()).rejects.toMatchObject({ name: 'TestClientError', code: 'CLOSED', closeCode: code });
    }
  });

  test('backpressure: a reader that does not read stops the socket at about 1 MiB unread; reading on gets every byte', async () => {
    const client = track(await connect(await serve(routes()), '/pattern', { streamMessages: true }));
    client.sendText('32');
    const message = await client.nextStream();
    await expect.poll(() => message.queuedBytes, { timeout: 10_000 }).toBeGreaterThanOrEqual(STREAM_HIGH_WATER_BYTES);
    await sleep(200);
    // At most one read past the mark: nothing arrives while the reader waits.
    expect(message.queuedBytes).toBeLessThan(STREAM_HIGH_WATER_BYTES + 256 * 1024);
    expect(message.bytesReceived).toBe(message.queuedBytes);
    let bytes = 0;
    let intact = true;
    for await (const chunk of message) {
      if (!patternHolds(chunk, bytes)) intact = false;
      bytes += chunk.length;
    }
    expect({ bytes, intact }).toEqual({ bytes: 32 * MiB, intact: true });
    expect(JSON.parse(String(await client.nextMessage()))).toEqual({ sent: 32 * MiB });
    await client.close();
  });

  test('client.close() while a message waits unread: its reader gets what came, then WS_STREAM_INTERRUPTED; the close handshake completes', async () => {
    const client = track(await connect(await serve(routes()), '/pattern', { streamMessages: true }));
    client.sendText('64');
    const message = await client.nextStream();
    await expect.poll(() => message.queuedBytes, { timeout: 10_000 }).toBeGreaterThanOrEqual(STREAM_HIGH_WATER_BYTES);
    expect(await client.close(1000, 'enough')).toEqual({ code: 1000, reason: 'enough' });
    let bytes = 0;
    const result = await outcome(
      (async () => {
        for await (const chunk of message) bytes += chunk.length;
      })(),
    );
    expect((result as { error: unknown }).error).toMatchObject({ name: 'ProtocolError', code: 'WS_STREAM_INTERRUPTED', closeCode: 1000 });
    expect(bytes).toBeGreaterThanOrEqual(STREAM_HIGH_WATER_BYTES);
    expect(bytes).toBeLessThan(64 * MiB);
  });

  test('a one-frame message whose last byte fills the high-water mark exactly still ends, both ways (the parser finishes the frame when reading resumes with no input left)', async () => {
    const whole = patternMiB(0).subarray(0, STREAM_HIGH_WATER_BYTES);
    class Late extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        // Reads only once all of it has arrived: reading stopped at its very last byte.
        while (message.bytesReceived < whole.length) await sleep(5);
        let bytes = 0;
        for await (const chunk of message) bytes += chunk.length;
        this.sendText(String(bytes));
        this.sendBinary(whole);
      }
    }
    const client = track(await connect(await serve({ '/late': Late }), '/late', { streamMessages: true }));
    client.sendBinary(whole);
    expect(await client.nextMessage({ timeout: 5000 })).toBe(String(whole.length));
    const message = await client.nextStream();
    await expect.poll(() => message.bytesReceived).toBe(whole.length);
    expect((await readAll(message)).data.length).toBe(whole.length);
    await client.close();
  });

  test('leaving a message early (break) drops the rest of it and the next message comes next; readable() pipes one', async () => {
    const client = track(await connect(await serve(routes()), '/pattern', { streamMessages: true }));
    client.sendText('8');
    const first = await client.nextStream();
    for await (const chunk of first) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(JSON.parse(await (await client.nextStream()).text())).toEqual({ sent: 8 * MiB });
    expect(client.state).toBe('open');
    client.sendText('3');
    const hash = createHash('sha256');
    for await (const chunk of (await client.nextStream()).readable()) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(sha256(patternSource(3)));
    await client.nextStream();
    await client.close();
  });

  test('nextMessage(), nextMessageInfo() and for-await collect whole messages on a streaming client; maxPayload bounds only what is collected', async () => {
    const client = track(await connect(await serve(routes()), '/pattern', { streamMessages: true, maxPayload: 2 * MiB }));
    client.sendText('2');
    const whole = await client.nextMessage();
    expect(Buffer.isBuffer(whole) && whole.length === 2 * MiB && patternHolds(whole, 0)).toBe(true);
    expect(await client.nextMessageInfo()).toEqual({ data: JSON.stringify({ sent: 2 * MiB }), compressed: false });
    // A 4 MiB message goes through as a stream…
    client.sendText('4');
    expect((await readAll(await client.nextStream())).data.length).toBe(4 * MiB);
    expect(client.buffered).toBeLessThanOrEqual(1);
    await client.nextStream();
    // …but collecting it is over maxPayload: 1009.
    client.sendText('4');
    await expect((await client.nextStream()).bytes()).rejects.toMatchObject({ code: 'WS_MESSAGE_TOO_BIG' });
    expect((await client.closed).code).toBe(1009);

    const again = track(await connect(await serve(routes()), '/pattern', { streamMessages: true }));
    again.sendText('1');
    const got: Array<string | number> = [];
    for await (const m of again) {
      got.push(typeof m === 'string' ? m : m.length);
      if (got.length === 2) void again.close();
    }
    expect(got).toEqual([MiB, JSON.stringify({ sent: MiB })]);
  });

  test('nextStream() rejects with TIMEOUT when no message starts, and with a TypeError on a client without streamMessages, whose whole-message API is unchanged', async () => {
    const server = await serve(routes());
    const streaming = track(await connect(server, '/pattern', { streamMessages: true }));
    await expect(streaming.nextStream({ timeout: 50 })).rejects.toMatchObject({ name: 'TestClientError', code: 'TIMEOUT' });
    const plain = track(await connect(server, '/pattern'));
    await expect(plain.nextStream()).rejects.toThrow(TypeError);
    plain.sendText('2');
    const whole = await plain.nextMessage();
    expect(Buffer.isBuffer(whole) && whole.length === 2 * MiB && patternHolds(whole, 0)).toBe(true);
    await plain.close();
    await streaming.close();
  });

  test('RFC 7692: compressed messages are inflated piece by piece as they arrive', async () => {
    class Deflating extends Behavior {
      static override perMessageDeflate = true;
      override onText(text: string): void {
        this.sendText(text.repeat(100_000));
      }
    }
    const client = track(await connect(await serve({ '/d': Deflating }), '/d', { streamMessages: true, perMessageDeflate: true }));
    client.sendText('compressible ');
    const message = await client.nextStream();
    const { data, chunks } = await readAll(message);
    expect(data.toString()).toBe('compressible '.repeat(100_000));
    expect(chunks.length).toBeGreaterThan(1);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(64 * 1024);
    expect(client.compressedIn).toBe(1);
    client.sendText('again ');
    expect(await client.nextMessageInfo()).toEqual({ data: 'again '.repeat(100_000), compressed: true });
    await client.close();
  });
});
