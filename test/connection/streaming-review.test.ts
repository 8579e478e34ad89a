/**
 * Review of issue 15 (messages as streams both ways): one regression test per finding, each
 * failing on the code it was written against (4245452, d03a106, 7254559 and the parser's
 * resume() change). Real sockets on 127.0.0.1, a raw client written apart from src/.
 */
import { Buffer } from 'node:buffer';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { Behavior, ProtocolError, type StreamedMessage } from '../../src/index.js';
import { fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload, encodeClientFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';

const { serve, connect, gate } = useFixture();

const MiB = 1 << 20;

interface Read {
  chunks: Buffer[];
  bytes: number;
  error: unknown;
  done: boolean;
}

/** Reads a streamed message to its end or its error, keeping copies of the chunks. */
async function readAll(message: StreamedMessage, out: Read): Promise<void> {
  try {
    for await (const chunk of message) {
      out.chunks.push(Buffer.from(chunk));
      out.bytes += chunk.length;
    }
  } catch (error) {
    out.error = error;
  }
  out.done = true;
}

function newRead(): Read {
  return { chunks: [], bytes: 0, error: undefined, done: false };
}

/** Opens `Cls` (through a subclass that records its instance) on a fresh server and waits for that instance. */
async function open<T extends Behavior>(Cls: new () => T, headers: Record<string, string> = {}, options = {}): Promise<{ client: RawClient; b: T }> {
  const instances: T[] = [];
  class Tracked extends (Cls as unknown as typeof Behavior) {
    override onOpen(): void | Promise<void> {
      instances.push(this as unknown as T);
      return super.onOpen();
    }
  }
  const s = await serve({ '/r': Tracked }, options);
  const client = await connect(s.port, '/r', headers);
  await waitFor(() => instances.length > 0, 2000, 'open');
  return { client, b: instances[instances.length - 1] as T };
}

/** A source that yields one byte, then never another. */
async function* stalled(): AsyncGenerator<Buffer> {
  yield Buffer.from('a');
  await new Promise(() => {});
}

function heapAndBuffers(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// ---- receiving ------------------------------------------------------------------------------------

describe('receiving as a stream', () => {
  // FINDING 1: stream-in.ts:79 / streamed-message.ts:202 — the high-water mark counts payload
  // bytes only. Each piece the parser hands out is a Buffer view (~100 B of heap) that also keeps
  // its whole TCP chunk alive, and maxFragments does not apply to a stream, so a peer sending
  // 1-byte fragments to a consumer that is not reading makes the server hold ~100 B per payload
  // byte (about 100 MiB per connection) before reading pauses at "1 MiB".
  test('memory held for an unread message is bounded even when the peer sends 1-byte fragments', async () => {
    const gateOpen = gate();
    const seen: StreamedMessage[] = [];
    class Slow extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        seen.push(message);
        await gateOpen.wait;
        for await (const _ of message);
      }
    }
    const { client } = await open(Slow);
    const before = heapAndBuffers();
    const N = 600_000; // 600 KB of payload: under the 1 MiB high-water mark
    {
      const one = encodeClientFrame(0x0, Buffer.from([0x61]), { fin: false });
      const frames = Buffer.alloc(one.length * N);
      encodeClientFrame(0x2, Buffer.from([0x61]), { fin: false }).copy(frames, 0);
      for (let i = 1; i < N; i++) one.copy(frames, i * one.length);
      client.sendRaw(frames); // 4.2 MB on the wire, released by the client once written
    }
    await waitFor(() => seen.length === 1, 5000, 'onStream');
    // Whatever the server still reads of it, let it: then measure what it holds.
    let last = -1;
    for (let i = 0; i < 100 && seen[0]!.bytesReceived !== last; i++) {
      last = seen[0]!.bytesReceived;
      await sleep(100);
    }
    const held = heapAndBuffers() - before;
    const received = seen[0]!.bytesReceived;
    // The server may stop reading early (then less arrived), or read on: either way, what an
    // unread message costs stays within a few times the advertised 1 MiB.
    expect(received).toBeLessThanOrEqual(N);
    // Measured on the reviewed code: ~66 MiB for 600 KB of payload (one 600 KB frame: ~0.7 MiB).
    expect(held).toBeLessThan(16 * MiB);
    gateOpen.open();
  });

  // FINDING 2: connection.ts:409 peerEnded() — the peer's FIN is handled at once even while
  // reading is held for a slow consumer (stream-in.ts hold()): a paused socket with an empty buffer
  // still emits 'end', and parser.stop() drops what the parser kept (the rest of a message that had
  // fully arrived, the peer's close frame). The consumer gets WS_STREAM_INTERRUPTED (1006) for a
  // complete message and onClose reports 1006 instead of the peer's 1000. (The thread-pool inflate
  // path defers the FIN with endPending; the held path does not.)
  test('a complete message followed by a close frame and FIN, while reading is held, is read whole and the close code is the peer\'s', async () => {
    const gateOpen = gate();
    const reads: Read[] = [];
    const closes: number[] = [];
    const first = Buffer.alloc(MiB - 10, 1);
    class Slow extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const r = newRead();
        reads.push(r);
        await gateOpen.wait;
        await readAll(message, r);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { client } = await open(Slow);
    client.send(0x2, first, { fin: false });
    await waitFor(() => reads.length === 1, 3000, 'onStream');
    // 1 MiB - 10 bytes wait unread: the next 100 bytes pass the high-water mark mid-chunk, so the
    // parser keeps the rest of this chunk (the final frame and the close frame).
    await sleep(50);
    client.sendRaw(
      Buffer.concat([
        encodeClientFrame(0x0, Buffer.alloc(100, 2), { fin: false }),
        encodeClientFrame(0x0, Buffer.alloc(0), { fin: true }),
        encodeClientFrame(0x8, closePayload(1000, 'done')),
      ]),
    );
    client.socket.end();
    await sleep(200); // the FIN reaches the server while it holds
    gateOpen.open();
    await waitFor(() => reads[0]!.done && closes.length === 1, 3000, 'the read and onClose');
    const error = reads[0]!.error as ProtocolError | undefined;
    expect({ bytes: reads[0]!.bytes, error: error && `${error.code} ${error.closeCode}`, closes }).toEqual({ bytes: MiB - 10 + 100, error: undefined, closes: [1000] });
  });

  // FINDING 3: connection.ts:237-246 sweep() / stream-in.ts:71 onStreamData() — only the start of a
  // streamed message marks the connection active; its data does not. With idleTimeout set, an
  // upload still in progress (fragments arriving all along) is closed with 1001 'idle timeout'.
  test('idleTimeout does not close a connection whose streamed message is still arriving', async () => {
    const reads: Read[] = [];
    const closes: [number, string][] = [];
    class Upload extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        const r = newRead();
        reads.push(r);
        await readAll(message, r);
      }
      override onClose(code: number, reason: string): void {
        closes.push([code, reason]);
      }
    }
    const { client } = await open(Upload, {}, { idleTimeout: 300 });
    client.send(0x2, Buffer.alloc(100, 1), { fin: false });
    // A slow upload: a fragment every 50 ms for well over idleTimeout.
    for (let i = 0; i < 30 && !client.tcpClosed; i++) {
      await sleep(50);
      client.send(0x0, Buffer.alloc(100, 1), { fin: false });
    }
    client.send(0x0, Buffer.alloc(0), { fin: true });
    await waitFor(() => reads[0]?.done === true, 3000, 'the read');
    const error = reads[0]!.error as ProtocolError | undefined;
    expect({ error: error && `${error.code} ${error.closeCode} ${error.message}`, bytes: reads[0]!.bytes, closes }).toEqual({ error: undefined, bytes: 3100, closes: [] });
  });

  // FINDING 4: stream-in.ts:116 inflatePiece() — once the consumer leaves a compressed message
  // early, the rest of it is not inflated, but with context takeover (the default for client
  // messages) the inflater's state then no longer matches the peer's compressor. The next message
  // is handed to onStream before the 1008 close (which waits for setImmediate) and is inflated
  // from that broken state: its consumer gets garbage or the connection fails with 1007, not the
  // 1008 'message not read to the end' the contract promises.
  test('leaving a compressed message early closes with 1008; the next message is never inflated from a broken window', async () => {
    const reads: Read[] = [];
    const closes: number[] = [];
    class Deflated extends Behavior {
      static override perMessageDeflate = true;
      override async onStream(message: StreamedMessage): Promise<void> {
        const r = newRead();
        reads.push(r);
        if (reads.length === 1) {
          // Take one chunk, then leave.
          for await (const chunk of message) {
            r.chunks.push(Buffer.from(chunk));
            break;
          }
          r.done = true;
          return;
        }
        await readAll(message, r);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { client } = await open(Deflated, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    expect(client.headers['sec-websocket-extensions'] ?? '').toMatch(/^permessage-deflate/);
    // One compressor with context takeover for both messages, as a browser's.
    const deflate = zlib.createDeflateRaw({ windowBits: 15 });
    const compressOne = (data: Buffer): Promise<Buffer> =>
      new Promise((resolve) => {
        const out: Buffer[] = [];
        const onData = (d: Buffer): void => void out.push(d);
        deflate.on('data', onData);
        deflate.write(data);
        deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          deflate.off('data', onData);
          const all = Buffer.concat(out);
          resolve(all.subarray(0, all.length - 4));
        });
      });
    const textA = Buffer.from(Array.from({ length: 4 * MiB }, (_, i) => 0x61 + ((i * 7 + (i >> 10)) % 26)));
    const textB = Buffer.from(textA.subarray(textA.length - 200_000));
    const a = await compressOne(textA);
    const b = await compressOne(textB);
    deflate.close();
    client.sendRaw(Buffer.concat([encodeClientFrame(0x2, a, { rsv: 4 }), encodeClientFrame(0x2, b, { rsv: 4 })]));
    const closed = await client.expectClose(5000);
    await sleep(100);
    const second = reads[1];
    const wrong = second !== undefined && !textB.subarray(0, second.bytes).equals(Buffer.concat(second.chunks));
    expect({ code: closed.code, reason: closed.reason, secondGotWrongBytes: wrong }).toEqual({ code: 1008, reason: 'message not read to the end', secondGotWrongBytes: false });
  });

  // FINDING 5 (a): dispatch.ts:193 hookFailed() — a peer that drops TCP in the middle of an upload
  // makes every onStream that does not catch reject with WS_STREAM_INTERRUPTED; this is logged at
  // error level as "onStream threw (connection N; closing it with 1011)", though nothing threw in
  // the app and the connection closed with 1006. With streaming this is the common way an upload
  // ends badly: the log should say what happened (the peer left, 1006), not blame the hook.
  test('the peer leaving mid-upload is not logged as a hook failure closing with 1011', async () => {
    const { logger, calls } = fakeLogger();
    const closes: number[] = [];
    class Upload extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        for await (const _ of message);
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { client } = await open(Upload, {}, { logger, logLevel: 'debug' });
    client.send(0x2, Buffer.alloc(1000, 1), { fin: false });
    await sleep(50);
    client.destroy();
    await waitFor(() => closes.length === 1, 3000, 'onClose');
    await sleep(50);
    expect(closes).toEqual([1006]);
    const blamed = calls.filter((c) => c.level === 'error' && /closing it with 1011/.test(c.message)).map((c) => c.message);
    expect(blamed).toEqual([]);
  });

  // FINDING 5 (b): connection.ts:163 close() — every close the server makes itself (idle
  // timeout, slow consumer, 1008 for a message left early, hook failure, handler.close())
  // interrupts a message being received with "the message stream was interrupted: close() was
  // called", dropping the reason close() was given: the app never called close(), and the error
  // does not say what to fix (here: the app's own sends passed maxBackpressure, 'slow consumer').
  test('a message interrupted by a close the library made says why (the close reason), not "close() was called"', async () => {
    const reads: Read[] = [];
    class Chatty extends Behavior {
      static override maxBackpressure = 64 * 1024;
      override async onStream(message: StreamedMessage): Promise<void> {
        const r = newRead();
        reads.push(r);
        await readAll(message, r);
      }
    }
    const { client, b } = await open(Chatty);
    client.send(0x2, Buffer.alloc(10, 1), { fin: false });
    await waitFor(() => (reads[0]?.bytes ?? 0) === 10, 2000, 'the first fragment');
    client.socket.pause(); // a peer that stops reading: the server's sends back up
    const big = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 400 && b.readyState === Behavior.OPEN; i++) b.sendText(big);
    expect(b.readyState).not.toBe(Behavior.OPEN);
    await waitFor(() => reads[0]!.done, 2000, 'the read');
    const error = reads[0]!.error as ProtocolError;
    expect({ code: error.code, closeCode: error.closeCode }).toEqual({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1008 });
    expect(error.message).toMatch(/slow consumer/);
  });

  // FINDING 6: stream-in.ts:153-160 handOut() / 183 streamFinished() — an onStream that settles
  // without ever taking its message (`if (!message.isText) return;`, a plausible filter) leaves
  // it `current` for good: no later message is ever handed out, reading is held from the next
  // message's start (socket paused), the heartbeat is suspended while held (connection.ts:248) and
  // idleTimeout is off by default, so the connection stays open and silent for ever, with nothing
  // logged. Leaving a message early closes with 1008; never starting to read it should too (or
  // skip it), and say so.
  test('an onStream that returns without reading its message does not stall the connection for ever', async () => {
    const seen: string[] = [];
    const closes: number[] = [];
    class TextOnly extends Behavior {
      override async onStream(message: StreamedMessage): Promise<void> {
        if (!message.isText) return; // binary is not for us
        seen.push(await message.text());
      }
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const { client } = await open(TextOnly, {}, { pingInterval: 200, pongTimeout: 200 });
    client.send(0x2, Buffer.from([1, 2, 3]));
    client.send(0x1, 'hello');
    // Either the text message is delivered (the ignored one skipped), or the connection is closed
    // (1008, as for a message left early): not neither.
    const outcome = await within(
      (async () => {
        for (;;) {
          if (seen.length > 0) return `delivered ${seen.join()}`;
          if (client.tcpClosed || closes.length > 0) return 'closed';
          await sleep(20);
        }
      })(),
      3000,
      'an outcome',
    ).catch((e: Error) => e.message);
    expect(outcome).toMatch(/^(delivered hello|closed)$/);
  });
});

// ---- sending --------------------------------------------------------------------------------------

describe('sending from a source', () => {
  // FINDING 7: stream-out.ts:188-206 run() — in a text message only byte chunks are fed to the
  // UTF-8 validator; string chunks are encoded and sent without it. A byte chunk that ends inside
  // a code point, then a string, then the rest of the code point passes the check (the validator
  // sees E2 82 AC) while the peer receives E2 82 'x' AC: invalid UTF-8 in a text message, which
  // the peer must fail with 1007 (RFC 6455 §8.1).
  test('a text stream mixing bytes and strings never puts invalid UTF-8 on the wire', async () => {
    const { client, b } = await open(Behavior);
    const result = await b.sendStream([Buffer.from([0xe2, 0x82]), 'x', Buffer.from([0xac])], { text: true }).then(
      (n) => `sent ${n}`,
      (e: Error) => e.constructor.name,
    );
    const frames = [];
    for (;;) {
      const f = await client.nextFrame(2000);
      frames.push(f);
      if (f.opcode === 0x8 || (f.opcode < 8 && f.fin)) break;
    }
    const data = Buffer.concat(frames.filter((f) => f.opcode < 8).map((f) => f.payload));
    const complete = frames.some((f) => f.opcode < 8 && f.fin);
    // Either it refused (TypeError, connection closed 1011) or what it completed is valid UTF-8.
    expect({ result, completedInvalidText: complete && !Buffer.from(data.toString('utf8'), 'utf8').equals(data) }).toEqual({ result: 'TypeError', completedInvalidText: false });
  });

  // FINDING 8 (a): stream-out.ts:147-155 release() — a source that was never pulled is "released" only
  // if it has destroy(): a web ReadableStream queued behind another stream when the connection
  // closes is never cancelled (its underlying source — a fetch() body, a file handle — stays open),
  // although sendStream() rejects and the contract says the source is released.
  test('a web ReadableStream waiting its turn is cancelled when the connection closes', async () => {
    const { client, b } = await open(Behavior);
    let cancelled = false;
    const first = b.sendStream(stalled()).catch((e: ProtocolError) => e.code);
    const web = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array([1]));
      },
      cancel() {
        cancelled = true;
      },
    });
    const second = b.sendStream(web).catch((e: ProtocolError) => e.code);
    await client.nextFrame(2000);
    b.close(1000, 'bye');
    expect(await within(Promise.all([first, second]), 2000, 'sendStream')).toEqual(['WS_STREAM_INTERRUPTED', 'WS_STREAM_INTERRUPTED']);
    await sleep(50);
    expect(cancelled).toBe(true);
  });

  // FINDING 8 (b): stream-out.ts:252-262 iterate() — a web ReadableStream has Symbol.asyncIterator
  // in Node, so it is read through its async iterator, and released with that iterator's return(),
  // which (WHATWG streams) waits for the pending read: a stalled ReadableStream is never
  // cancelled when the connection goes — the web twin of the stalled Readable fixed in d03a106
  // (reader.cancel() would settle the pending read at once).
  test('a stalled web ReadableStream being sent is cancelled when the peer leaves', async () => {
    const { client, b } = await open(Behavior);
    let cancelled = false;
    let pulls = 0;
    const web = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          if (pulls === 1) controller.enqueue(new Uint8Array([1]));
          else return new Promise(() => {}); // stalls: data that never comes
          return undefined;
        },
        cancel() {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const sent = b.sendStream(web).catch((e: ProtocolError) => e.code);
    await client.nextFrame(2000);
    client.destroy();
    expect(await within(sent, 2000, 'sendStream')).toBe('WS_STREAM_INTERRUPTED');
    await sleep(50);
    expect(cancelled).toBe(true);
  });

  // FINDING 10: stream-out.ts:107-115 start() / 163 run() — run() is queued as a microtask and does not
  // check whether the stream was cancelled meanwhile: sendStream() then close() in the same tick
  // (or the peer's close frame in the same chunk) cancels the stream (release() finds no iterator
  // yet), then run() still creates the iterator, pulls the first chunk, sees `finished` and returns
  // without releasing it. An async generator is left suspended at its first yield: its finally
  // (closing a file handle) never runs.
  test('a source given to sendStream() just before close() is never started, or is released', async () => {
    const { client, b } = await open(Behavior);
    let started = false;
    let released = false;
    async function* file(): AsyncGenerator<Buffer> {
      started = true;
      try {
        for (;;) yield Buffer.alloc(10);
      } finally {
        released = true;
      }
    }
    const sent = b.sendStream(file()).catch((e: ProtocolError) => e.code);
    b.close(1000, 'bye');
    expect(await within(sent, 2000, 'sendStream')).toBe('WS_STREAM_INTERRUPTED');
    const closeFrame = await client.nextFrame(2000);
    expect(closeFrame.opcode).toBe(0x8); // nothing of the message went out
    client.send(0x8, closeFrame.payload);
    await sleep(50);
    expect({ started, released: started ? released : 'not started' }).toEqual(started ? { started: true, released: true } : { started: false, released: 'not started' });
  });

  // FINDING 9: connection.ts:215 fail() → sender.ts:387 dropOrdered() — a stream cut because the
  // connection failed is rejected with closeCode 1006 ('the connection failed or closed'), not
  // with the code the connection is closing with (here 1002); the peer sees 1002. errors.ts says a
  // WS_STREAM_INTERRUPTED's closeCode is the connection's close code.
  test('a stream cut by a protocol error rejects with the connection\'s close code', async () => {
    const { client, b } = await open(Behavior);
    const sent = b.sendStream(stalled()).catch((e: ProtocolError) => ({ code: e.code, closeCode: e.closeCode }));
    await client.nextFrame(2000);
    client.send(0x2, 'unmasked', { mask: false }); // RFC 6455 §5.1: fail with 1002
    const closed = await client.expectClose(3000);
    expect(closed.code).toBe(1002);
    expect(await within(sent, 2000, 'sendStream')).toEqual({ code: 'WS_STREAM_INTERRUPTED', closeCode: 1002 });
  });
});
