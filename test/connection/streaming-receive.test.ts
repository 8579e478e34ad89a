/**
 * Issue 15, receiving: a route that overrides `onStream` takes every data message as a stream
 * (/tmp/stream-api.md, "Receiving"). Real sockets on 127.0.0.1, raw clients written apart from
 * src/, exact bytes and close codes.
 *
 * - 1 GiB through `onStream` with the server in its own process (RSS growth under 64 MiB), and a
 *   consumer that stops reading (the server stops reading the socket; RSS stays bounded).
 * - Chunks arrive as fragments do (before the message ends), text is validated incrementally
 *   (code points split across fragments are fine; a bad byte closes 1007 at once), the order of
 *   `onStream` calls, `readable()`, `text()`/`bytes()` and `maxPayload`, `maxStreamBytes`,
 *   `maxFragments`.
 * - Control frames in the middle of a stream (pings answered at once) and the heartbeat during a
 *   slow one; the peer leaving mid-message (`WS_STREAM_INTERRUPTED`), a consumer that stops early
 *   (1008), an `onStream` that throws (1011).
 * - permessage-deflate: compressed fragments inflated one at a time, bounded by maxStreamBytes.
 */
import { rssBound } from '../helpers/rss-floor.js';
import { Buffer } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { Behavior, ProtocolError, type StreamedMessage } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import type { RawClient, RawFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { B0, GiB, MiB, expectedHash, hashUpdate, maskedFrame, patternBytes, templateOf, templates } from './fixtures/streaming-data.js';
import { FrameReader, handshake, useStreamingChild, writeFrames } from './streaming-helpers.js';

const { serve, connect } = useFixture();

// ---- helpers ----------------------------------------------------------------------------------------

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Consumed {
  isText: boolean;
  chunks: Buffer[];
  bytes: number;
  bytesReceived: number;
  error: unknown;
}

/** Reads a streamed message to its end (or its error), keeping copies of the chunks. */
async function consume(message: StreamedMessage, onChunk?: (chunk: Buffer, n: number) => void | Promise<void>): Promise<Consumed> {
  const out: Consumed = { isText: message.isText, chunks: [], bytes: 0, bytesReceived: 0, error: undefined };
  try {
    for await (const chunk of message) {
      expect(Buffer.isBuffer(chunk)).toBe(true);
      out.chunks.push(Buffer.from(chunk));
      out.bytes += chunk.length;
      await onChunk?.(chunk, out.chunks.length);
    }
  } catch (error) {
    out.error = error;
  }
  out.bytesReceived = message.bytesReceived;
  return out;
}

/** A route whose `onStream` consumes each message and hands the result to `results` in order. */
function collector(statics: { maxPayload?: number; maxFragments?: number; maxStreamBytes?: number; perMessageDeflate?: boolean } = {}) {
  const results: Consumed[] = [];
  const errors: Error[] = [];
  const closes: [number, string][] = [];
  const textCalls: unknown[] = [];
  class Collect extends Behavior {
    static override maxPayload = statics.maxPayload;
    static override maxFragments = statics.maxFragments;
    static override maxStreamBytes = statics.maxStreamBytes;
    static override perMessageDeflate = statics.perMessageDeflate;
    override async onStream(message: StreamedMessage): Promise<void> {
      results.push(await consume(message));
    }
    override onText(text: string): void {
      textCalls.push(['text', text]);
    }
    override onBinary(bytes: Buffer): void {
      textCalls.push(['binary', bytes]);
    }
    override onError(error: Error): void {
      errors.push(error);
    }
    override onClose(code: number, reason: string): void {
      closes.push([code, reason]);
    }
  }
  return { Collect, results, errors, closes, textCalls };
}

/** Sends `payload` as one message in fragments of the given sizes (cycled), masked as a client must. */
function sendFragmented(client: RawClient, opcode: number, payload: Buffer, sizes: number[]): number {
  let off = 0;
  let i = 0;
  let frames = 0;
  do {
    const size = sizes[i++ % sizes.length] as number;
    const piece = payload.subarray(off, off + size);
    off += piece.length;
    client.send(frames === 0 ? opcode : 0, piece, { fin: off >= payload.length });
    frames++;
  } while (off < payload.length);
  return frames;
}

/** Reads up to the server's close frame, echoes it (RFC 6455 §5.5.1) and waits for TCP close. */
async function closeEchoed(client: RawClient, timeout = 3000): Promise<{ code: number | undefined; reason: string; before: RawFrame[] }> {
  const { code, reason, before, tcpClosed } = await client.expectClose(timeout, { echo: true });
  expect(tcpClosed).toBe(true);
  return { code, reason, before };
}

function expectInterrupted(error: unknown, closeCode: number): void {
  expect(error).toBeInstanceOf(ProtocolError);
  expect((error as ProtocolError).code).toBe('WS_STREAM_INTERRUPTED');
  expect((error as ProtocolError).closeCode).toBe(closeCode);
}

/** Polls `probe` every 50 ms until it gives the same value 4 times in a row (or `limit` ms pass); returns it. */
async function settledValue(probe: () => number | Promise<number>, limit = 5000): Promise<number> {
  const deadline = Date.now() + limit;
  let last = await probe();
  let same = 0;
  while (same < 4 && Date.now() < deadline) {
    await sleep(50);
    const v = await probe();
    same = v === last ? same + 1 : 0;
    last = v;
  }
  return last;
}

/** `n` bytes (a multiple of 10) of UTF-8 text made of 1-, 2-, 3- and 4-byte code points: 'aé€😀' repeated. */
function utf8Bytes(n: number): Buffer {
  if (n % 10 !== 0) throw new Error('utf8Bytes takes a multiple of 10');
  return Buffer.from('aé€😀'.repeat(n / 10), 'utf8');
}

// ---- 1 GiB, server in its own process ----------------------------------------------------------------

describe('1 GiB through onStream, the server alone in a child process', () => {
  const child = useStreamingChild();

  test('a 1 GiB binary message (1024 fragments of 1 MiB, masked) reaches onStream whole and in order, server RSS growth < 64 MiB (or the growth of raw TCP on this Node + 16 MiB where that is more: Node 24)', async () => {
    const server = child();
    const CHUNK = MiB;
    const COUNT = 1024;
    const t = templates(CHUNK);
    const conts = t.map((p, i) => maskedFrame(B0.cont, p, Buffer.from([0x11 * (i + 1), 0x5a, 0xc3, i])));
    const first = maskedFrame(B0.binaryStart, t[templateOf(0)] as Buffer, Buffer.from([1, 2, 3, 4]));
    const last = maskedFrame(B0.contFin, Buffer.alloc(0));
    const { socket, rest } = await handshake(server.port, '/upload');
    const reader = new FrameReader(socket, rest);
    try {
      const base = await server.call<{ rss: number }>('watchRss');
      function* frames(): Generator<Buffer> {
        yield first;
        for (let k = 1; k < COUNT; k++) yield conts[templateOf(k)] as Buffer;
        yield last;
      }
      const written = await within(
        writeFrames(socket, frames(), () => reader.controls.length > 0 || reader.messages.length > 0),
        40_000,
        'writing 1 GiB',
      );
      expect(written).toBe(COUNT + 1);
      await reader.until(() => reader.messages.some((m) => m.complete), 20_000, "the route's result");
      const { peak } = await server.call<{ peak: number }>('peakRss');
      const result = JSON.parse((reader.messages[0]?.payload as Buffer).toString('utf8')) as Record<string, unknown>;
      expect(result).toMatchObject({ bytes: GiB, hash: expectedHash(CHUNK, COUNT), isText: false, bytesReceived: GiB });
      expect(reader.errors).toEqual([]);
      const { bound, floor } = await rssBound('in', GiB);
      console.log(`[streaming-receive] 1 GiB upload: server RSS peak - baseline = ${((peak - base.rss) / MiB).toFixed(1)} MiB (raw TCP on this Node: ${(floor / MiB).toFixed(1)} MiB), ${String(result.chunks)} chunks`);
      expect(peak - base.rss).toBeLessThan(bound);
    } finally {
      socket.destroy();
    }
  }, 240_000);

  test('a consumer that stops reading: the server stops reading the socket (the client cannot write), RSS stays bounded; once it reads on, all 256 MiB arrive intact', async () => {
    const server = child();
    const CHUNK = MiB;
    const COUNT = 256;
    const t = templates(CHUNK);
    const conts = t.map((p) => maskedFrame(B0.cont, p));
    const first = maskedFrame(B0.binaryStart, t[templateOf(0)] as Buffer);
    // This runtime's raw TCP floor for 256 MiB (a child process moving it) is measured first, with
    // a time limit of its own, so that a slow or stuck measurement is named as such (CI on Node 24
    // once timed out here: the measuring child's client hung in Node's own exit holding the pipe
    // the measurement waited on; test/helpers/fixtures/raw-rss.mjs no longer lets that stall it).
    const { bound } = await within(rssBound('in', COUNT * CHUNK), 120_000, 'the raw TCP RSS floor');
    const { socket, rest } = await handshake(server.port, '/slow-upload');
    const reader = new FrameReader(socket, rest);
    try {
      const base = await server.call<{ rss: number }>('watchRss');
      let written = 0;
      function* frames(): Generator<Buffer> {
        yield first;
        for (let k = 1; k < COUNT; k++) yield conts[templateOf(k)] as Buffer;
        yield maskedFrame(B0.contFin, Buffer.alloc(0));
      }
      const writing = writeFrames(socket, (function* () {
        for (const f of frames()) {
          written++;
          yield f;
        }
      })());
      // Wait until the message has begun on the server (its first chunk is what the consumer
      // waits after), then until the server has stopped taking bytes.
      for (let tries = 0; (await server.call<{ bytesReceived: number }>('probe')).bytesReceived <= 0; tries++) {
        if (tries >= 400) throw new Error('the first chunk did not reach the consumer in 20 s');
        await sleep(50);
      }
      const received = await settledValue(async () => (await server.call<{ bytesReceived: number }>('probe')).bytesReceived, 10_000);
      const probe = await server.call<{ bytesReceived: number; consumed: number }>('probe');
      const { peak } = await server.call<{ peak: number }>('peakRss');
      console.log(
        `[streaming-receive] paused consumer: server received ${(received / MiB).toFixed(2)} MiB, consumer read ${(probe.consumed / MiB).toFixed(2)} MiB, client wrote ${written} of ${COUNT + 1} frames, client buffer ${socket.writableLength} bytes, RSS growth ${((peak - base.rss) / MiB).toFixed(1)} MiB`,
      );
      // "reading the socket pauses once ~1 MiB of the message waits unread"
      expect(received - probe.consumed).toBeLessThanOrEqual(2 * MiB);
      expect(written).toBeLessThan(COUNT + 1);
      expect(socket.writableLength).toBeGreaterThan(0);
      expect(peak - base.rss).toBeLessThan(bound);
      await server.call('release');
      expect(await within(writing, 30_000, 'writing the rest')).toBe(COUNT + 1);
      await reader.until(() => reader.messages.some((m) => m.complete), 20_000, "the route's result");
      const result = JSON.parse((reader.messages[0]?.payload as Buffer).toString('utf8')) as Record<string, unknown>;
      expect(result).toMatchObject({ bytes: COUNT * CHUNK, hash: expectedHash(CHUNK, COUNT), isText: false, bytesReceived: COUNT * CHUNK });
      const after = await server.call<{ peak: number }>('peakRss');
      expect(after.peak - base.rss).toBeLessThan(bound);
    } finally {
      socket.destroy();
    }
  }, 240_000);
});

// ---- what onStream sees ---------------------------------------------------------------------------------

describe('onStream receives every data message of its route as a stream', () => {
  test('chunks are handed over as fragments arrive: the first one before the message ends', async () => {
    const results: Consumed[] = [];
    class Early extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        results.push(
          await consume(message, (_chunk, n) => {
            if (n === 1) this.sendText(`first ${message.bytesReceived}`);
          }),
        );
        this.sendText('end');
      }
    }
    const s = await serve({ '/s': Early });
    const client = await connect(s.port, '/s');
    client.send(0x2, Buffer.from('hello '), { fin: false });
    const first = await client.nextFrame(3000);
    expect(first.opcode).toBe(0x1);
    expect(first.payload.toString()).toBe('first 6');
    client.send(0x0, Buffer.from('stream'), { fin: false });
    client.send(0x0, Buffer.from('ed'), { fin: true });
    const end = await client.nextFrame(3000);
    expect(end.payload.toString()).toBe('end');
    expect(results).toHaveLength(1);
    const r = results[0] as Consumed;
    expect(r.error).toBeUndefined();
    expect(r.isText).toBe(false);
    expect(Buffer.concat(r.chunks).toString()).toBe('hello streamed');
    expect(r.bytesReceived).toBe(14);
  });

  test('single-frame text, single-frame binary and empty messages all go to onStream (never onText/onBinary), in order', async () => {
    const { Collect, results, textCalls, errors } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x1, 'héllo');
    client.send(0x2, Buffer.from([0, 1, 255]));
    client.send(0x1, '');
    client.send(0x2, Buffer.alloc(0));
    client.send(0x1, 'a', { fin: false });
    client.send(0x0, '', { fin: false });
    client.send(0x0, 'b', { fin: true });
    await waitFor(() => results.length === 5, 3000, 'five messages');
    expect(results.map((r) => [r.isText, Buffer.concat(r.chunks).toString('hex'), r.bytesReceived, r.error])).toEqual([
      [true, Buffer.from('héllo').toString('hex'), 6, undefined],
      [false, '0001ff', 3, undefined],
      [true, '', 0, undefined],
      [false, '', 0, undefined],
      [true, Buffer.from('ab').toString('hex'), 2, undefined],
    ]);
    expect(textCalls).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('text: code points split across fragments are accepted, and the chunks are exactly the UTF-8 bytes sent', async () => {
    const { Collect, results, errors } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    const bytes = utf8Bytes(20_000);
    const text = bytes.toString('utf8');
    // Sizes that cut 2-, 3- and 4-byte sequences at every position.
    const frames = sendFragmented(client, 0x1, bytes, [1, 2, 3, 5, 7, 11, 13, 1, 1, 1, 4097]);
    expect(frames).toBeGreaterThan(50);
    await waitFor(() => results.length === 1, 3000, 'the message');
    const r = results[0] as Consumed;
    expect(r.error).toBeUndefined();
    expect(r.isText).toBe(true);
    expect(Buffer.concat(r.chunks).equals(bytes)).toBe(true);
    expect(Buffer.concat(r.chunks).toString('utf8')).toBe(text);
    expect(errors).toEqual([]);
    client.send(0x1, 'still open');
    await waitFor(() => results.length === 2, 3000, 'a second message');
  });

  test('a 40 MiB text message of code points split across 1 MiB + 1 fragments arrives whole (valid UTF-8 over fragment boundaries)', async () => {
    let got: { bytes: number; hash: number; error: unknown } | null = null;
    class Hash extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        let bytes = 0;
        let hash = 0;
        let error: unknown;
        try {
          for await (const chunk of message) {
            bytes += chunk.length;
            hash = hashUpdate(hash, chunk);
          }
        } catch (e) {
          error = e;
        }
        got = { bytes, hash, error };
      }
    }
    const s = await serve({ '/h': Hash });
    const client = await connect(s.port, '/h');
    const frames: Buffer[] = [];
    let all = 0;
    let hash = 0;
    // 40 MiB of text cut in 1 MiB + 1 pieces (sequences split all over).
    const whole = utf8Bytes(40 * MiB);
    for (let off = 0; off < whole.length; off += MiB + 1) {
      const piece = whole.subarray(off, off + MiB + 1);
      const fin = off + MiB + 1 >= whole.length;
      frames.push(maskedFrame((fin ? 0x80 : 0) | (off === 0 ? 0x1 : 0x0), piece));
      all += piece.length;
      hash = hashUpdate(hash, piece);
    }
    await writeFrames(client.socket, frames);
    await waitFor(() => got !== null, 10_000, 'the message');
    expect(got).toEqual({ bytes: all, hash, error: undefined });
  });

  test('order: the next onStream starts only after the previous message was read to its end and the previous onStream settled', async () => {
    const log: string[] = [];
    const gate = deferred<void>();
    let n = 0;
    class Ordered extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const i = ++n;
        log.push(`start ${i}`);
        const r = await consume(message);
        log.push(`read ${i} ${Buffer.concat(r.chunks).toString()}`);
        await gate.promise;
        log.push(`settled ${i}`);
      }
    }
    const s = await serve({ '/o': Ordered });
    const client = await connect(s.port, '/o');
    client.send(0x1, 'one-', { fin: false });
    client.send(0x0, 'a', { fin: true });
    client.send(0x1, 'two');
    await waitFor(() => log.length === 2, 3000, 'the first message read');
    await sleep(150);
    expect(log).toEqual(['start 1', 'read 1 one-a']);
    gate.resolve();
    await waitFor(() => log.length === 6, 3000, 'the second message');
    expect(log).toEqual(['start 1', 'read 1 one-a', 'settled 1', 'start 2', 'read 2 two', 'settled 2']);
  });

  test('order: an onStream that takes its message, returns at once and reads later holds the next message back until the read ends', async () => {
    const log: string[] = [];
    const gate = deferred<void>();
    let n = 0;
    let firstRead = 0;
    class Later extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const i = ++n;
        // When the second message starts, the first must have been read to its end.
        log.push(i === 1 ? 'start 1' : `start ${i} (first message read: ${firstRead} bytes)`);
        if (i === 1) {
          // Taken before onStream returns (a message nobody has started reading by then is dropped).
          const it = message[Symbol.asyncIterator]();
          void (async () => {
            await gate.promise;
            for (let r = await it.next(); r.done !== true; r = await it.next()) firstRead += r.value.length;
          })();
        } else {
          const r = await consume(message);
          log.push(`read ${i} ${Buffer.concat(r.chunks).toString()}`);
        }
        log.push(`returned ${i}`);
      }
    }
    const s = await serve({ '/l': Later });
    const client = await connect(s.port, '/l');
    client.send(0x2, 'first');
    client.send(0x2, 'second');
    await waitFor(() => log.length >= 2, 3000, 'the first onStream');
    await sleep(150);
    expect(log).toEqual(['start 1', 'returned 1']);
    gate.resolve();
    await waitFor(() => log.length === 5, 3000, 'the second message');
    expect(log).toEqual(['start 1', 'returned 1', 'start 2 (first message read: 5 bytes)', 'read 2 second', 'returned 2']);
  });

  test('readable(): a Node Readable over the same bytes (pipeline into a Writable)', async () => {
    const got: { chunks: Buffer[]; isReadable: boolean; error: unknown }[] = [];
    class Piped extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const chunks: Buffer[] = [];
        const readable = message.readable();
        let error: unknown;
        try {
          await pipeline(
            readable,
            new Writable({
              write(chunk: Buffer, _enc, cb) {
                chunks.push(Buffer.from(chunk));
                cb();
              },
            }),
          );
        } catch (e) {
          error = e;
        }
        got.push({ chunks, isReadable: readable instanceof Readable, error });
      }
    }
    const s = await serve({ '/p': Piped });
    const client = await connect(s.port, '/p');
    const payload = patternBytes(3 * MiB + 5, 42);
    sendFragmented(client, 0x2, payload, [MiB - 3, 100_000, 1]);
    await waitFor(() => got.length === 1, 5000, 'the message');
    const g = got[0] as { chunks: Buffer[]; isReadable: boolean; error: unknown };
    expect(g.error).toBeUndefined();
    expect(g.isReadable).toBe(true);
    expect(Buffer.concat(g.chunks).equals(payload)).toBe(true);
  });

  test('text() and bytes() collect a message up to maxPayload', async () => {
    const got: unknown[] = [];
    class Whole extends Behavior {
      static override maxPayload = 1024;
      override async onStream(message: StreamedMessage): Promise<void> {
        got.push(message.isText ? ['text', await message.text()] : ['bytes', [...(await message.bytes())]]);
      }
    }
    const s = await serve({ '/w': Whole });
    const client = await connect(s.port, '/w');
    const text = utf8Bytes(1000).toString('utf8');
    sendFragmented(client, 0x1, Buffer.from(text), [7, 300]);
    client.send(0x2, Buffer.from([9, 8, 7]), { fin: false });
    client.send(0x0, Buffer.from([6]), { fin: true });
    client.send(0x1, Buffer.alloc(1024, 0x61));
    await waitFor(() => got.length === 3, 3000, 'three messages');
    expect(got).toEqual([
      ['text', text],
      ['bytes', [9, 8, 7, 6]],
      ['text', 'a'.repeat(1024)],
    ]);
  });

  for (const method of ['text', 'bytes'] as const) {
    test(`${method}() over maxPayload (1 KiB) rejects and closes with 1009`, async () => {
      const outcome: unknown[] = [];
      class Whole extends Behavior {
        static override maxPayload = 1024;
        override async onStream(message: StreamedMessage): Promise<void> {
          try {
            outcome.push(['value', method === 'text' ? await message.text() : await message.bytes()]);
          } catch (error) {
            outcome.push(['error', error]);
          }
        }
      }
      const s = await serve({ '/w': Whole });
      const client = await connect(s.port, '/w');
      client.send(method === 'text' ? 0x1 : 0x2, Buffer.alloc(600, 0x62), { fin: false });
      client.send(0x0, Buffer.alloc(600, 0x62), { fin: true });
      const closed = await client.expectClose(3000);
      expect(closed.code).toBe(1009);
      await waitFor(() => outcome.length === 1, 3000, `${method}() to settle`);
      expect((outcome[0] as unknown[])[0]).toBe('error');
    });
  }
});

// ---- limits ----------------------------------------------------------------------------------------------

describe('limits on a streamed message', () => {
  test('maxPayload (1 KiB) and maxFragments (4) do not bound a streamed message: 1 MiB in 100 fragments arrives whole', async () => {
    const { Collect, results, closes } = collector({ maxPayload: 1024, maxFragments: 4 });
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    const payload = patternBytes(MiB, 7);
    const frames = sendFragmented(client, 0x2, payload, [Math.ceil(MiB / 100)]);
    expect(frames).toBe(100);
    await waitFor(() => results.length === 1, 5000, 'the message');
    const r = results[0] as Consumed;
    expect(r.error).toBeUndefined();
    expect(Buffer.concat(r.chunks).equals(payload)).toBe(true);
    expect(closes).toEqual([]);
    // A plain message of 1 MiB is not refused on this route either: it is streamed too.
    client.send(0x2, payload);
    await waitFor(() => results.length === 2, 5000, 'the second message');
    expect(Buffer.concat((results[1] as Consumed).chunks).equals(payload)).toBe(true);
  });

  test('static maxStreamBytes: exactly the limit is accepted; one byte over closes with 1009 and the consumer never gets more than the limit', async () => {
    const LIMIT = 256 * 1024;
    const { Collect, results } = collector({ maxStreamBytes: LIMIT });
    const s = await serve({ '/c': Collect });
    const ok = await connect(s.port, '/c');
    sendFragmented(ok, 0x2, patternBytes(LIMIT, 3), [64 * 1024]);
    await waitFor(() => results.length === 1, 3000, 'the message at the limit');
    expect((results[0] as Consumed).error).toBeUndefined();
    expect((results[0] as Consumed).bytes).toBe(LIMIT);

    const over = await connect(s.port, '/c');
    over.send(0x2, patternBytes(LIMIT, 3), { fin: false });
    over.send(0x0, Buffer.from([1]), { fin: false });
    const closed = await over.expectClose(3000);
    expect(closed.code).toBe(1009);
    await waitFor(() => results.length === 2, 3000, 'the consumer of the message over the limit');
    const r = results[1] as Consumed;
    expect(r.error).toBeInstanceOf(ProtocolError);
    expect((r.error as ProtocolError).closeCode).toBe(1009);
    expect(r.bytes).toBeLessThanOrEqual(LIMIT);
  });

  test('handler option maxStreamBytes: a message growing past it closes with 1009 before the client has sent it all', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect }, { maxStreamBytes: MiB });
    const client = await connect(s.port, '/c');
    const piece = patternBytes(64 * 1024, 9);
    const cont = maskedFrame(B0.cont, piece);
    const TOTAL = 1024; // 64 MiB planned
    let closeSeen = false;
    client.socket.on('data', () => {
      // RawClient parses; we only need to stop writing once anything came back.
      closeSeen = true;
    });
    const written = await writeFrames(
      client.socket,
      (function* () {
        yield maskedFrame(B0.binaryStart, piece);
        for (let i = 1; i < TOTAL; i++) yield cont;
      })(),
      () => closeSeen,
    );
    const closed = await client.expectClose(5000);
    expect(closed.code).toBe(1009);
    expect(written).toBeLessThan(TOTAL);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    expect((results[0] as Consumed).error).toBeInstanceOf(ProtocolError);
    expect(((results[0] as Consumed).error as ProtocolError).closeCode).toBe(1009);
    expect((results[0] as Consumed).bytes).toBeLessThanOrEqual(MiB);
  });
});

// ---- UTF-8 ----------------------------------------------------------------------------------------------

describe('text streams are validated incrementally (RFC 6455 §8.1)', () => {
  test('a bad byte after 10 MiB of valid text in several frames: 1007 arrives before the client has finished sending, the iterator rejects with WS_INVALID_UTF8 and never yields the bad byte', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    const good = utf8Bytes(10 * MiB);
    const frames: Buffer[] = [];
    for (let off = 0; off < good.length; off += MiB + 3) frames.push(maskedFrame(off === 0 ? B0.textStart : B0.cont, good.subarray(off, off + MiB + 3)));
    // The bad byte in the middle of a frame: 1000 valid bytes, 0xff, then more valid text.
    const bad = Buffer.concat([Buffer.alloc(1000, 0x61), Buffer.from([0xff]), Buffer.alloc(1000, 0x61)]);
    const badAt = good.length + 1000;
    frames.push(maskedFrame(B0.cont, bad));
    const filler = maskedFrame(B0.cont, Buffer.alloc(MiB, 0x61));
    const PLANNED = frames.length + 64;
    while (frames.length < PLANNED - 1) frames.push(filler);
    frames.push(maskedFrame(B0.contFin, Buffer.alloc(0)));
    let answered = false;
    client.socket.on('data', () => {
      answered = true;
    });
    const written = await writeFrames(client.socket, frames, () => answered);
    const closed = await client.expectClose(5000);
    expect(closed.code).toBe(1007);
    expect(written).toBeLessThan(PLANNED);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    const r = results[0] as Consumed;
    expect(r.error).toBeInstanceOf(ProtocolError);
    expect((r.error as ProtocolError).code).toBe('WS_INVALID_UTF8');
    expect((r.error as ProtocolError).closeCode).toBe(1007);
    expect(r.bytes).toBeLessThanOrEqual(badAt);
    expect(Buffer.concat(r.chunks).equals(Buffer.concat([good, bad]).subarray(0, r.bytes))).toBe(true);
  });

  test('an invalid sequence split across two fragments (E2 | 28) closes with 1007', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x1, Buffer.from([0x61, 0xe2]), { fin: false });
    client.send(0x0, Buffer.from([0x28, 0xa1]), { fin: false });
    const closed = await client.expectClose(3000);
    expect(closed.code).toBe(1007);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    expect(((results[0] as Consumed).error as ProtocolError).code).toBe('WS_INVALID_UTF8');
  });

  test('a text message that ends inside a code point (E2 82 then FIN) closes with 1007', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x1, Buffer.from([0x61, 0xe2]), { fin: false });
    client.send(0x0, Buffer.from([0x82]), { fin: true });
    const closed = await client.expectClose(3000);
    expect(closed.code).toBe(1007);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    const r = results[0] as Consumed;
    expect((r.error as ProtocolError).code).toBe('WS_INVALID_UTF8');
    // A chunk may end inside a code point: what was yielded is a prefix of the bytes sent.
    expect(Buffer.concat(r.chunks).equals(Buffer.from([0x61, 0xe2, 0x82]).subarray(0, r.bytes))).toBe(true);
  });

  test('binary messages are not validated (0xff in a binary stream is fine)', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x2, Buffer.from([0xff, 0xe2]), { fin: false });
    client.send(0x0, Buffer.from([0x28]), { fin: true });
    await waitFor(() => results.length === 1, 3000, 'the message');
    expect(Buffer.concat((results[0] as Consumed).chunks).toString('hex')).toBe('ffe228');
  });
});

// ---- failures -----------------------------------------------------------------------------------------

describe('a stream that does not end normally', () => {
  for (const how of ['break', 'return()'] as const) {
    test(`the consumer stops early (${how}): close 1008 'message not read to the end'`, async () => {
      const closes: [number, string][] = [];
      class Quitter extends Behavior {
        override async onStream(message: StreamedMessage): Promise<void> {
          if (how === 'break') {
            for await (const _chunk of message) break;
          } else {
            const it = message[Symbol.asyncIterator]();
            await it.next();
            await it.return?.();
          }
        }
        override onClose(code: number, reason: string): void {
          closes.push([code, reason]);
        }
      }
      const s = await serve({ '/q': Quitter });
      const client = await connect(s.port, '/q');
      client.send(0x2, Buffer.alloc(1000, 1), { fin: false });
      const closed = await closeEchoed(client);
      expect(closed.code).toBe(1008);
      expect(closed.reason).toBe('message not read to the end');
      await waitFor(() => closes.length === 1, 3000, 'onClose');
      expect(closes[0]).toEqual([1008, 'message not read to the end']);
    });
  }

  test('onStream throws: onError gets the error, close 1011', async () => {
    const errors: Error[] = [];
    const boom = new Error('boom');
    class Thrower extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        for await (const _chunk of message) throw boom;
      }
      override onError(error: Error): void {
        errors.push(error);
      }
    }
    const s = await serve({ '/t': Thrower });
    const client = await connect(s.port, '/t');
    client.send(0x2, Buffer.from('x'));
    const closed = await closeEchoed(client);
    expect(closed.code).toBe(1011);
    expect(errors).toEqual([boom]);
  });

  test('onStream that throws synchronously: close 1011', async () => {
    const errors: Error[] = [];
    class Sync extends Behavior {
      // Throws before returning a promise.
      override onStream(): Promise<void> {
        throw new Error('sync');
      }
      override onError(error: Error): void {
        errors.push(error);
      }
    }
    const s = await serve({ '/t': Sync });
    const client = await connect(s.port, '/t');
    client.send(0x1, 'x');
    const closed = await closeEchoed(client);
    expect(closed.code).toBe(1011);
    expect(errors.map((e) => e.message)).toEqual(['sync']);
  });

  test('the peer sends a close frame mid-message: the pending next() rejects with WS_STREAM_INTERRUPTED, closeCode 1001; the close is echoed', async () => {
    const { Collect, results, closes } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x2, Buffer.alloc(5000, 7), { fin: false });
    await sleep(50);
    const closed = await client.close(1001, 'leaving');
    expect(closed.code).toBe(1001);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    const r = results[0] as Consumed;
    expectInterrupted(r.error, 1001);
    expect(r.bytes).toBe(5000);
    await waitFor(() => closes.length === 1, 3000, 'onClose');
    expect(closes[0]).toEqual([1001, 'leaving']);
  });

  test('the peer drops TCP mid-message: the iterator rejects with WS_STREAM_INTERRUPTED, closeCode 1006', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    client.send(0x1, 'partial ', { fin: false });
    await sleep(50);
    client.destroy();
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    const r = results[0] as Consumed;
    expectInterrupted(r.error, 1006);
    expect(Buffer.concat(r.chunks).toString()).toBe('partial ');
  });

  test('a next() called after the connection is gone rejects too (not a hang, not done)', async () => {
    const outcome = deferred<unknown>();
    const held = deferred<void>();
    class Held extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const it = message[Symbol.asyncIterator]();
        await it.next();
        await held.promise;
        try {
          outcome.resolve(['value', await within(it.next(), 3000, 'next() after the close')]);
        } catch (error) {
          outcome.resolve(['error', error]);
        }
      }
    }
    const s = await serve({ '/h': Held });
    const client = await connect(s.port, '/h');
    client.send(0x2, Buffer.from('abc'), { fin: false });
    await sleep(50);
    client.destroy();
    await sleep(100);
    held.resolve();
    const [kind, error] = (await outcome.promise) as [string, unknown];
    expect(kind).toBe('error');
    expectInterrupted(error, 1006);
  });
});

// ---- control frames and the heartbeat during a stream --------------------------------------------------

describe('control frames during a long incoming stream', () => {
  test('pings between fragments are answered with pongs before the message ends', async () => {
    const { Collect, results } = collector();
    const s = await serve({ '/c': Collect });
    const client = await connect(s.port, '/c');
    const piece = patternBytes(2 * MiB, 5);
    await writeFrames(client.socket, [maskedFrame(B0.binaryStart, piece)]);
    for (let i = 0; i < 3; i++) {
      client.send(0x9, `p-${i}`);
      const pong = await client.nextFrame(3000);
      expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, `p-${i}`]);
      await writeFrames(client.socket, [maskedFrame(B0.cont, piece)]);
    }
    expect(results).toEqual([]);
    client.send(0x0, Buffer.alloc(0), { fin: true });
    await waitFor(() => results.length === 1, 5000, 'the message');
    expect((results[0] as Consumed).bytes).toBe(8 * MiB);
    expect(Buffer.concat((results[0] as Consumed).chunks).equals(Buffer.concat([piece, piece, piece, piece]))).toBe(true);
  });

  test('the heartbeat (pingInterval 200 ms) pings during a slow message; the pongs are seen and the connection lives on', async () => {
    const results: Consumed[] = [];
    let pongs = 0;
    class Slow extends Behavior {
      static override pingInterval = 200;
      static override pongTimeout = 400;
      override async onStream(message: StreamedMessage): Promise<void> {
        results.push(await consume(message));
      }
      override onPong(): void {
        pongs++;
      }
    }
    const s = await serve({ '/s': Slow });
    const client = await connect(s.port, '/s');
    const sent: Buffer[] = [];
    const PINGS = 6;
    for (let i = 0; i < PINGS; i++) {
      const piece = Buffer.from(`piece ${i};`);
      sent.push(piece);
      client.send(i === 0 ? 0x2 : 0x0, piece, { fin: false });
      // Next fragment only once the server has pinged, mid-message, and we answered.
      const ping = await client.nextFrame(3000);
      expect(ping.opcode).toBe(0x9);
      client.send(0xa, ping.payload);
    }
    await waitFor(() => pongs >= PINGS, 3000, 'the server to see the pongs');
    client.send(0x0, Buffer.from('end'), { fin: true });
    await waitFor(() => results.length === 1, 3000, 'the message');
    expect(Buffer.concat((results[0] as Consumed).chunks).toString()).toBe(`${Buffer.concat(sent).toString()}end`);
    expect((results[0] as Consumed).error).toBeUndefined();
    client.send(0x9, 'alive?');
    const pong = await client.nextFrame(3000);
    expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, 'alive?']);
  });

  test('the heartbeat still ends a peer that stops answering in the middle of a message: the iterator rejects with WS_STREAM_INTERRUPTED, 1006', async () => {
    const results: Consumed[] = [];
    class Slow extends Behavior {
      static override pingInterval = 200;
      static override pongTimeout = 300;
      override async onStream(message: StreamedMessage): Promise<void> {
        results.push(await consume(message));
      }
    }
    const s = await serve({ '/s': Slow });
    const client = await connect(s.port, '/s');
    client.send(0x2, Buffer.from('never finished'), { fin: false });
    // No pong: the server must terminate us.
    expect(await client.waitClosed(5000)).toBe(true);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    expectInterrupted((results[0] as Consumed).error, 1006);
  });
});

// ---- backpressure ----------------------------------------------------------------------------------------

describe('backpressure from a slow consumer', () => {
  test('the server stops reading once ~1 MiB waits unread (the client cannot write 48 MiB), and reads on when the consumer does', async () => {
    const gate = deferred<void>();
    let current: StreamedMessage | null = null;
    let consumed = 0;
    let done: { bytes: number; hash: number; error: unknown } | null = null;
    class Lazy extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        current = message;
        let hash = 0;
        let error: unknown;
        try {
          for await (const chunk of message) {
            consumed += chunk.length;
            hash = hashUpdate(hash, chunk);
            await gate.promise;
          }
        } catch (e) {
          error = e;
        }
        done = { bytes: consumed, hash, error };
      }
    }
    const s = await serve({ '/l': Lazy });
    const client = await connect(s.port, '/l');
    const COUNT = 48;
    const t = templates(MiB);
    const frames = [maskedFrame(B0.binaryStart, t[templateOf(0)] as Buffer)];
    for (let k = 1; k < COUNT; k++) frames.push(maskedFrame(B0.cont, t[templateOf(k)] as Buffer));
    frames.push(maskedFrame(B0.contFin, Buffer.alloc(0)));
    let written = 0;
    const writing = writeFrames(
      client.socket,
      (function* () {
        for (const f of frames) {
          written++;
          yield f;
        }
      })(),
    );
    await waitFor(() => current !== null, 3000, 'onStream');
    const received = await settledValue(() => (current as StreamedMessage).bytesReceived);
    expect(received - consumed).toBeLessThanOrEqual(2 * MiB);
    expect(received).toBeLessThan(COUNT * MiB);
    expect(written).toBeLessThan(frames.length);
    expect(client.socket.writableLength).toBeGreaterThan(0);
    gate.resolve();
    expect(await within(writing, 20_000, 'writing the rest')).toBe(frames.length);
    await waitFor(() => done !== null, 20_000, 'the message');
    expect(done).toEqual({ bytes: COUNT * MiB, hash: expectedHash(MiB, COUNT), error: undefined });
  });
});

// ---- permessage-deflate ----------------------------------------------------------------------------------

/** A message's compressed payload (RFC 7692 §7.2.1: sync-flushed, the final 00 00 ff ff removed). */
function compress(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  expect(out.subarray(out.length - 4).toString('hex')).toBe('0000ffff');
  return out.subarray(0, out.length - 4);
}

/** Sends a compressed payload as fragments of `size` (RSV1 on the first only, RFC 7692 §6.1). */
function sendCompressed(client: RawClient, opcode: number, compressed: Buffer, size: number, upTo = compressed.length): void {
  for (let off = 0; off < upTo; off += size) {
    const piece = compressed.subarray(off, Math.min(off + size, upTo));
    client.send(off === 0 ? opcode : 0, piece, { fin: off + size >= compressed.length, rsv: off === 0 ? 4 : 0 });
  }
}

describe('permessage-deflate: a compressed message is inflated fragment by fragment', () => {
  const DEFLATE = { 'Sec-WebSocket-Extensions': 'permessage-deflate' };

  test('the first inflated chunk reaches onStream before the rest of the compressed message is sent; the whole text arrives intact', async () => {
    const results: Consumed[] = [];
    class Deflated extends Behavior {
      static override perMessageDeflate = true;
      override async onStream(message: StreamedMessage): Promise<void> {
        results.push(
          await consume(message, (_c, n) => {
            if (n === 1) this.sendBinary(Buffer.from([1]));
          }),
        );
      }
    }
    const s = await serve({ '/d': Deflated });
    const client = await connect(s.port, '/d', DEFLATE);
    expect(client.headers['sec-websocket-extensions'] ?? '').toMatch(/^permessage-deflate/);
    const text = Buffer.from(Array.from(patternBytes(4 * MiB, 11), (b) => 0x61 + (b % 8)));
    const compressed = compress(text);
    expect(compressed.length).toBeLessThan(text.length / 2);
    const SIZE = 64 * 1024;
    sendCompressed(client, 0x1, compressed, SIZE, SIZE);
    // The server answers after its first chunk: it inflated the first fragment alone.
    let signal: RawFrame;
    do signal = await client.nextFrame(3000);
    while (signal.opcode !== 0x2);
    expect([...signal.payload]).toEqual([1]);
    for (let off = SIZE; off < compressed.length; off += SIZE) {
      client.send(0, compressed.subarray(off, off + SIZE), { fin: off + SIZE >= compressed.length });
    }
    await waitFor(() => results.length === 1, 10_000, 'the message');
    const r = results[0] as Consumed;
    expect(r.error).toBeUndefined();
    expect(r.isText).toBe(true);
    expect(r.bytes).toBe(text.length);
    expect(Buffer.concat(r.chunks).equals(text)).toBe(true);
  });

  test('a compressed bomb (64 MiB of zeros in ~64 KiB) closes with 1009 past maxStreamBytes (4 MiB) and the consumer gets at most 4 MiB', async () => {
    const { Collect, results } = collector({ perMessageDeflate: true, maxStreamBytes: 4 * MiB });
    const s = await serve({ '/d': Collect });
    const client = await connect(s.port, '/d', DEFLATE);
    const compressed = compress(Buffer.alloc(64 * MiB));
    expect(compressed.length).toBeLessThan(128 * 1024);
    sendCompressed(client, 0x2, compressed, 4096);
    const closed = await client.expectClose(5000);
    expect(closed.code).toBe(1009);
    await waitFor(() => results.length === 1, 3000, 'the consumer');
    const r = results[0] as Consumed;
    expect(r.error).toBeInstanceOf(ProtocolError);
    expect((r.error as ProtocolError).closeCode).toBe(1009);
    expect(r.bytes).toBeLessThanOrEqual(4 * MiB);
    expect(r.chunks.every((c) => c.every((b) => b === 0))).toBe(true);
  });

  test('maxPayload (1 KiB) does not bound a compressed streamed message: 8 MiB inflated arrives whole', async () => {
    const { Collect, results } = collector({ perMessageDeflate: true, maxPayload: 1024 });
    const s = await serve({ '/d': Collect });
    const client = await connect(s.port, '/d', DEFLATE);
    const data = Buffer.from(Array.from(patternBytes(8 * MiB, 12), (b) => b % 16));
    sendCompressed(client, 0x2, compress(data), 100_000);
    await waitFor(() => results.length === 1, 10_000, 'the message');
    const r = results[0] as Consumed;
    expect(r.error).toBeUndefined();
    expect(Buffer.concat(r.chunks).equals(data)).toBe(true);
  });
});
