/**
 * Review of the permessage-deflate server (issue 12): failing tests that pin down bugs found
 * in review. Real sockets; the `ws` client or a raw client with node:zlib on the client side.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Backpressure, Behavior } from '../../src/index.js';
import { closePayload, encodeClientFrame } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { compress, compressedFrame } from '../reliability/deflate-helpers.js';
import { ReviewEnv, inLog, jsonish, poorlyCompressible, recorderClosed } from './deflate-shared.js';

const env = new ReviewEnv();
afterEach(async () => {
  await env.cleanup();
  vi.restoreAllMocks();
});

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
    const server = await env.start({ '/drop': DropTakeover });
    dropLog.secret = `secret:${randomBytes(1500).toString('hex')}`;
    const ws = await env.openWs(server.url('/drop'));
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
    const server = await env.start({ '/drop': DropTakeover });
    dropLog.secret = `secret:${randomBytes(1500).toString('hex')}`;
    dropLog.status = '';
    const ws = await env.openWs(server.url('/drop'));
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
    const server = await env.start({ '/loop': SendLoopPlain });
    const ws = await env.openWs(server.url('/loop'));
    let n = 0;
    ws.on('message', () => n++);
    await waitFor(() => n === 64, 20_000, '64 messages');
    expect(loopLog.done).toBe(true);
  });

  test('with the preset, 64 x 128 KiB compressible text reach a fast reader (no 1008)', async () => {
    loopLog.statuses = [];
    loopLog.done = false;
    const server = await env.start({ '/loop': SendLoop });
    const ws = await env.openWs(server.url('/loop'));
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
    const server = await env.start({ '/echo': Echo });
    const ws = await env.openWs(server.url('/echo'));
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

describe('inbound: frames behind a message inflated on the thread pool', () => {
  test('a TCP FIN right after the message does not lose it', async () => {
    const c = await env.recorder();
    const text = poorlyCompressible(200 * 1024);
    c.socket.end(compressedFrame(1, compress(text)));
    await recorderClosed(5000);
    expect(inLog.events[0]).toBe(`text:${text.length}`);
  });
});


describe('inbound: a FIN behind a message inflated on the thread pool', () => {
  test('message, close frame and FIN in one go: the message and the 1000 both arrive', async () => {
    const c = await env.recorder();
    const text = poorlyCompressible(200 * 1024);
    c.socket.end(Buffer.concat([compressedFrame(1, compress(text)), encodeClientFrame(8, closePayload(1000))]));
    await recorderClosed(5000);
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
      const server = await env.start({ '/r': cls });
      const c = await env.connectRaw(server.port, '/r', 'permessage-deflate');
      c.sendRaw(Buffer.concat([encodeClientFrame(1, Buffer.from('get')), encodeClientFrame(8, closePayload(1000))]));
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
    ['control, invalid UTF-8 inflated synchronously (1007)', compress(Buffer.alloc(100, 0xff)), 1007],
    ['zip bomb (1009)', compress(Buffer.alloc(4 << 20)), 1009],
    ['invalid UTF-8 (1007)', compress(Buffer.alloc(300 * 1024, 0xff)), 1007],
  ] as const) {
    test(`${name}: the peer's close reply is read and the connection ends promptly`, async () => {
      const c = await env.recorder({ closeTimeout: 3000 });
      c.sendRaw(compressedFrame(1, payload));
      const f = await c.nextFrame(5000);
      expect(f.opcode).toBe(8);
      expect(f.payload.readUInt16BE(0)).toBe(code);
      const t0 = Date.now();
      // A well-behaved peer answers the close frame (and keeps its side of TCP open).
      c.send(8, f.payload.subarray(0, 2));
      await recorderClosed(5000);
      expect(Date.now() - t0).toBeLessThan(1000);
    });
  }
});
