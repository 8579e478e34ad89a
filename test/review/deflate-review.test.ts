/**
 * Review of the permessage-deflate server (issue 12): failing tests that pin down bugs found
 * in review. Real sockets; the `ws` client or a raw client with node:zlib on the client side.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { afterEach, describe, expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { Backpressure, Behavior } from '../../src/index.js';
import { RawClient } from '../helpers/raw.js';
import { type TestServer, sleep, startServer, waitFor } from '../helpers/server.js';

let server: TestServer | undefined;
const sockets: { close(): void; terminate?(): void; destroy?(): void }[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) (s.terminate ?? s.destroy ?? s.close).call(s);
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
});

function openWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: true, ...options });
  sockets.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** JSON-like text of about `n` bytes that compresses well. */
function jsonish(n: number, seed = 0): string {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `{"id":${i + seed},"name":"user-${(i * 7919) % 1000}","ok":true},`;
  return s.slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// 1. A compressed message dropped by the backpressure policy still went through the
//    connection's context-takeover deflater: the peer's LZ77 window no longer matches ours and
//    every later compressed message to that connection decodes wrong (RFC 7692 §7.2.3).
// ---------------------------------------------------------------------------------------------

const dropLog: { filled: number; secret: string; status: string } = { filled: 0, secret: '', status: '' };

class DropTakeover extends Behavior {
  static override perMessageDeflate = { serverNoContextTakeover: false };
  static override backpressure = Backpressure.Drop;
  static override maxBackpressure = 64 * 1024;
  override onText(text: string): void {
    if (text === 'fill') {
      // Uncompressed filler (under the 1024-byte threshold) until the backlog is over the limit.
      let n = 0;
      while (this.sendText(randomBytes(450).toString('hex')) !== 'dropped') n++;
      dropLog.filled = n;
      // Over the threshold: compressed by the connection's own deflater, then dropped.
      dropLog.status = this.sendText(dropLog.secret);
    } else if (text === 'again') {
      this.sendText(dropLog.secret);
    }
  }
}

describe('context takeover vs the drop backpressure policy', () => {
  test('a compressed message dropped for backpressure does not corrupt the later ones', async () => {
    server = await startServer({ '/drop': DropTakeover });
    dropLog.secret = `secret:${randomBytes(1500).toString('hex')}`;
    const ws = await openWs(server.url('/drop'));
    const got: string[] = [];
    let error: unknown = null;
    let closeCode = 0;
    ws.on('message', (d) => got.push(String(d)));
    ws.on('error', (e) => (error = e));
    ws.on('close', (code) => (closeCode = code));
    // Stop reading so the server's socket backs up.
    (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    ws.send('fill');
    await waitFor(() => dropLog.status !== '', 10_000, 'the fill');
    expect(dropLog.status).toBe('dropped');
    (ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await waitFor(() => got.length >= dropLog.filled || error !== null, 20_000, 'the filler');
    ws.send('again');
    await waitFor(() => got.length > dropLog.filled || error !== null || closeCode !== 0, 5000, 'the secret');
    expect(error).toBeNull();
    expect(got[got.length - 1]).toBe(dropLog.secret);
  });

  test('stats().compression does not count a compressed message that was dropped', async () => {
    server = await startServer({ '/drop': DropTakeover });
    dropLog.secret = `secret:${randomBytes(1500).toString('hex')}`;
    dropLog.status = '';
    const ws = await openWs(server.url('/drop'));
    (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    ws.send('fill');
    await waitFor(() => dropLog.status !== '', 10_000, 'the fill');
    expect(dropLog.status).toBe('dropped');
    // Nothing compressed went out: the filler is under the threshold and the secret was dropped.
    expect(server.srv.handler.stats().compression.messagesOut).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. The documented send loop (`if (send(x) === 'queued') await drained()`) is killed as a
//    "slow consumer" once messages go to the thread pool: a send queued behind a compression
//    job returns 'sent' (the socket is idle), so the loop never waits, and the ordered queue
//    passes maxBackpressure within one synchronous loop.
// ---------------------------------------------------------------------------------------------

const loopLog: { statuses: string[]; done: boolean } = { statuses: [], done: false };

class SendLoop extends Behavior {
  static override perMessageDeflate = true;
  override async onOpen(): Promise<void> {
    const chunk = jsonish(128 * 1024);
    for (let i = 0; i < 64; i++) {
      const status = this.sendText(chunk);
      loopLog.statuses.push(status);
      if (status === 'dropped') return;
      if (status === 'queued' && !(await this.drained())) return;
    }
    loopLog.done = true;
  }
}
class SendLoopPlain extends SendLoop {
  static override perMessageDeflate = false;
}

describe('the documented send loop with compression', () => {
  test('control: without compression, 64 x 128 KiB reach a fast reader', async () => {
    loopLog.statuses = [];
    loopLog.done = false;
    server = await startServer({ '/loop': SendLoopPlain });
    const ws = await openWs(server.url('/loop'));
    let n = 0;
    ws.on('message', () => n++);
    await waitFor(() => n === 64, 20_000, '64 messages');
    expect(loopLog.done).toBe(true);
  });

  test('with the preset, 64 x 128 KiB compressible text reach a fast reader (no 1008)', async () => {
    loopLog.statuses = [];
    loopLog.done = false;
    server = await startServer({ '/loop': SendLoop });
    const ws = await openWs(server.url('/loop'));
    let n = 0;
    let closeCode = 0;
    ws.on('message', () => n++);
    ws.on('close', (code) => (closeCode = code));
    await waitFor(() => n === 64 || closeCode !== 0, 20_000, '64 messages or a close');
    expect({ closeCode, dropped: loopLog.statuses.indexOf('dropped') }).toEqual({ closeCode: 0, dropped: -1 });
    expect(n).toBe(64);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. A message over the synchronous cut-off on a no-context-takeover connection (the preset) is
//    compressed by `deflateOnce` with a fresh zlib stream that is never closed: its native zlib
//    state (~256 KiB at window 15 / memLevel 8) lives until the garbage collector finds it.
// ---------------------------------------------------------------------------------------------

class Echo extends Behavior {
  static override perMessageDeflate = true;
  override onText(text: string): void {
    this.sendText(text);
  }
}

describe('zlib handles', () => {
  test('the one-shot deflate stream for a large message is closed once the message is out', async () => {
    server = await startServer({ '/echo': Echo });
    const ws = await openWs(server.url('/echo'));
    const created: zlib.DeflateRaw[] = [];
    const original = zlib.createDeflateRaw;
    vi.spyOn(zlib, 'createDeflateRaw').mockImplementation((options) => {
      const s = original(options);
      // Only the server's streams (the ws client in this process has its own).
      if ((new Error().stack ?? '').includes('permessage-deflate/deflate')) created.push(s);
      return s;
    });
    const big = jsonish(200 * 1024);
    let echoed = '';
    ws.on('message', (d) => (echoed = String(d)));
    ws.send(big);
    await waitFor(() => echoed.length > 0, 10_000, 'the echo');
    expect(echoed).toBe(big);
    await sleep(100);
    expect(created.length).toBeGreaterThan(0);
    expect(created.map((s) => s.destroyed)).toEqual(created.map(() => true));
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Inbound: what follows a message inflated on the thread pool (parser and socket paused).
// ---------------------------------------------------------------------------------------------

const inLog: { events: string[] } = { events: [] };

class Recorder extends Behavior {
  static override perMessageDeflate = true;
  override onText(text: string): void {
    inLog.events.push(`text:${text.length}`);
  }
  override onClose(code: number): void {
    inLog.events.push(`close:${code}`);
  }
  override onError(error: Error): void {
    inLog.events.push(`error:${(error as Error & { code?: string }).code ?? error.message}`);
  }
}

/** A compressed text frame (RSV1) for `text`, as a no-context-takeover client makes it. */
function compressedFrame(text: string): Buffer {
  const c = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return c.subarray(0, c.length - 4);
}

function frameBytes(opcode: number, payload: Buffer, rsv = 0): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | (rsv << 4) | opcode, 0x80 | n]) : n < 65536 ? Buffer.from([0x80 | (rsv << 4) | opcode, 0x80 | 126, n >> 8, n & 0xff]) : (() => {
    const h = Buffer.alloc(10);
    h[0] = 0x80 | (rsv << 4) | opcode;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(n), 2);
    return h;
  })();
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < n; i++) body[i] = (body[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([head, key, body]);
}

/** Random-ish text whose compressed form is over the 64 KiB synchronous cut-off. */
function poorlyCompressible(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}

describe('inbound: frames behind a message inflated on the thread pool', () => {
  test('a TCP FIN right after the message does not lose it', async () => {
    inLog.events = [];
    server = await startServer({ '/rec': Recorder });
    const c = await RawClient.connect(server.port, '/rec', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_no_context_takeover' });
    sockets.push(c);
    const text = poorlyCompressible(200 * 1024);
    c.socket.end(frameBytes(1, compressedFrame(text), 4));
    await waitFor(() => inLog.events.some((e) => e.startsWith('close')), 5000, 'onClose');
    expect(inLog.events[0]).toBe(`text:${text.length}`);
  });
});


describe('inbound: a FIN behind a message inflated on the thread pool', () => {
  test('message, close frame and FIN in one go: the message and the 1000 both arrive', async () => {
    inLog.events = [];
    server = await startServer({ '/rec': Recorder });
    const c = await RawClient.connect(server.port, '/rec', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_no_context_takeover' });
    sockets.push(c);
    const text = poorlyCompressible(200 * 1024);
    c.socket.end(Buffer.concat([frameBytes(1, compressedFrame(text), 4), frameBytes(8, Buffer.from([0x03, 0xe8]))]));
    await waitFor(() => inLog.events.some((e) => e.startsWith('close')), 5000, 'onClose');
    expect(inLog.events).toEqual([`text:${text.length}`, 'close:1000']);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. The peer's close frame drops replies that were accepted ('sent') before it was seen, when
//    they are still being compressed; uncompressed, the same replies reach the peer.
// ---------------------------------------------------------------------------------------------

class BigReply extends Behavior {
  static override perMessageDeflate = true;
  override onText(): void {
    this.sendText(jsonish(200 * 1024));
  }
}
class BigReplyPlain extends BigReply {
  static override perMessageDeflate = false;
}

describe("the peer's close behind a request", () => {
  for (const [name, cls] of [['uncompressed (control)', BigReplyPlain], ['compressed', BigReply]] as const) {
    test(`${name}: the reply to a request sent just before the close frame arrives`, async () => {
      server = await startServer({ '/r': cls });
      const c = await RawClient.connect(server.port, '/r', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      sockets.push(c);
      c.sendRaw(Buffer.concat([frameBytes(1, Buffer.from('get')), frameBytes(8, Buffer.from([0x03, 0xe8]))]));
      const closed = await c.expectClose(5000);
      expect(closed.code).toBe(1000);
      expect(closed.before.length).toBe(1);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// 8. A failure decided on the thread pool (1009 zip bomb, 1007 bad data) leaves the socket
//    paused: the peer's close reply is never read, and the close waits for closeTimeout.
// ---------------------------------------------------------------------------------------------

describe('failing after an inflate on the thread pool', () => {
  for (const [name, payload, code] of [
    ['control, invalid UTF-8 inflated synchronously (1007)', zlib.deflateRawSync(Buffer.alloc(100, 0xff), { finishFlush: zlib.constants.Z_SYNC_FLUSH }), 1007],
    ['zip bomb (1009)', zlib.deflateRawSync(Buffer.alloc(4 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH }), 1009],
    ['invalid UTF-8 (1007)', zlib.deflateRawSync(Buffer.alloc(300 * 1024, 0xff), { finishFlush: zlib.constants.Z_SYNC_FLUSH }), 1007],
  ] as const) {
    test(`${name}: the peer's close reply is read and the connection ends promptly`, async () => {
      inLog.events = [];
      server = await startServer({ '/rec': Recorder }, { closeTimeout: 3000 });
      const c = await RawClient.connect(server.port, '/rec', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_no_context_takeover' });
      sockets.push(c);
      c.sendRaw(frameBytes(1, payload.subarray(0, payload.length - 4), 4));
      const f = await c.nextFrame(5000);
      expect(f.opcode).toBe(8);
      expect(f.payload.readUInt16BE(0)).toBe(code);
      const t0 = Date.now();
      // A well-behaved peer answers the close frame (and keeps its side of TCP open).
      c.send(8, f.payload.subarray(0, 2));
      await waitFor(() => inLog.events.some((e) => e.startsWith('close')), 5000, 'onClose');
      expect(Date.now() - t0).toBeLessThan(1000);
    });
  }
});
