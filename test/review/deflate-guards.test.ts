/**
 * Review of the permessage-deflate server (issue 12): behaviour checked in review that holds
 * today (regression guards next to deflate-review.test.ts). Real sockets; the `ws` client or a raw client with node:zlib on the client side.
 */
import { Buffer } from 'node:buffer';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { closePayload, encodeClientFrame } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import { compress, compressedFrame } from '../reliability/deflate-helpers.js';
import { ReviewEnv, inLog, jsonish, poorlyCompressible, recorderClosed } from './deflate-shared.js';

const env = new ReviewEnv();
afterEach(() => env.cleanup());

// ---------------------------------------------------------------------------------------------
// 4. Inbound: what follows a message inflated on the thread pool (parser and socket paused).
// ---------------------------------------------------------------------------------------------

describe('inbound: frames behind a message inflated on the thread pool', () => {
  test('a close frame in the same write is handled after the message', async () => {
    const c = await env.recorder();
    const text = poorlyCompressible(200 * 1024);
    c.sendRaw(Buffer.concat([compressedFrame(1, compress(text)), encodeClientFrame(8, closePayload(1000))]));
    const closed = await c.expectClose(5000);
    expect(closed.code).toBe(1000);
    await recorderClosed(3000);
    expect(inLog.events).toEqual([`text:${text.length}`, 'close:1000']);
  });

  test('a protocol error in the same write is reported after the message', async () => {
    const c = await env.recorder();
    const text = poorlyCompressible(200 * 1024);
    // RSV1 on a ping: 1002 (RFC 7692 §6.1).
    c.sendRaw(Buffer.concat([compressedFrame(1, compress(text)), encodeClientFrame(9, Buffer.alloc(0), { rsv: 4 })]));
    const closed = await c.expectClose(5000);
    expect(closed.code).toBe(1002);
    await recorderClosed(3000);
    expect(inLog.events[0]).toBe(`text:${text.length}`);
  });

});

// ---------------------------------------------------------------------------------------------
// 6. Send order over every path, sync and async, under both context modes.
// ---------------------------------------------------------------------------------------------

class Mixed extends Behavior {
  static override perMessageDeflate: boolean | { serverNoContextTakeover: boolean } = true;
  override onOpen(): void {
    this.subscribe('t');
  }
  override onText(text: string): void {
    if (text !== 'go') return;
    const h = this.handler;
    this.sendText(`1:${jsonish(150 * 1024, 1)}`); // async
    h.broadcast(`2:${jsonish(4000, 2)}`); // shared, sync
    this.sendText('3:small'); // uncompressed
    this.publish('t', `4:${jsonish(100 * 1024, 4)}`, { self: true }); // shared, async
    this.sendBinary(Buffer.from(`5:${jsonish(3000, 5)}`)); // own, sync
    h.broadcast(`6:${jsonish(70 * 1024, 6)}`); // shared, async
    this.sendText(`7:${jsonish(2000, 7)}`);
    this.close(1000, 'done');
  }
}
class MixedTakeover extends Mixed {
  static override perMessageDeflate = { serverNoContextTakeover: false };
}

describe('send order across paths', () => {
  for (const [name, cls] of [['no context takeover', Mixed], ['context takeover', MixedTakeover]] as const) {
    test(`${name}: messages arrive intact, in send order, before the close`, async () => {
      const server = await env.start({ '/m': cls });
      const ws = await env.openWs(server.url('/m'));
      const got: string[] = [];
      let error: unknown = null;
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('message', (d) => got.push(String(d).split(':')[0] as string));
      ws.on('error', (e) => (error = e));
      ws.send('go');
      expect(await closed).toBe(1000);
      expect(error).toBeNull();
      expect(got).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// 7. The empty message with threshold 0 (RFC 7692 §7.2.3.6), one-to-one and broadcast.
// ---------------------------------------------------------------------------------------------

class Empty extends Behavior {
  static override perMessageDeflate = { threshold: 0 };
  override onText(): void {
    this.sendText('');
    this.handler.broadcast('');
    this.sendText('x'.repeat(10));
    this.handler.broadcast(Buffer.alloc(0));
  }
}
class EmptyTakeover extends Empty {
  static override perMessageDeflate = { threshold: 0, serverNoContextTakeover: false };
}

describe('the empty message', () => {
  for (const [name, cls] of [['no context takeover', Empty], ['context takeover', EmptyTakeover]] as const) {
    test(`${name}: empty messages compress and decode`, async () => {
      const server = await env.start({ '/e': cls });
      const ws = await env.openWs(server.url('/e'));
      const got: string[] = [];
      let error: unknown = null;
      ws.on('message', (d) => got.push(String(d)));
      ws.on('error', (e) => (error = e));
      ws.send('go');
      await waitFor(() => got.length === 4 || error !== null, 5000, 'four messages');
      expect(error).toBeNull();
      expect(got).toEqual(['', '', 'xxxxxxxxxx', '']);
    });
  }
});


// ---------------------------------------------------------------------------------------------
// Context takeover inbound across the sync/async cut-off, and the messages() high-water mark
// with messages inflated on the thread pool.
// ---------------------------------------------------------------------------------------------

class EchoAll extends Behavior {
  static override perMessageDeflate = { serverNoContextTakeover: false };
  override onText(text: string): void {
    this.sendText(text);
  }
}

class SlowIterator extends Behavior {
  static override perMessageDeflate = true;
  override async onOpen(): Promise<void> {
    const lengths: number[] = [];
    for await (const m of this.messages()) {
      lengths.push(m.length);
      await new Promise((r) => setTimeout(r, 5));
      if (lengths.length === 40) break;
    }
    this.sendText(lengths.join(','));
  }
}

describe('inbound across the thread-pool cut-off', () => {
  test('context takeover both ways: large (async) and small (sync) messages interleaved echo intact', async () => {
    const server = await env.start({ '/e': EchoAll });
    const ws = await env.openWs(server.url('/e'));
    const sent = [jsonish(300 * 1024, 1), jsonish(2000, 2), jsonish(400 * 1024, 1), jsonish(3000, 2), 'tiny', jsonish(70 * 1024, 3), jsonish(2000, 3)];
    const got: string[] = [];
    let error: unknown = null;
    ws.on('message', (d) => got.push(String(d)));
    ws.on('error', (e) => (error = e));
    for (const m of sent) ws.send(m);
    await waitFor(() => got.length === sent.length || error !== null, 10_000, 'the echoes');
    expect(error).toBeNull();
    expect(got).toEqual(sent);
  });

  test('messages() with a slow consumer: 40 messages inflated on the thread pool arrive in order', async () => {
    const server = await env.start({ '/s': SlowIterator });
    const ws = await env.openWs(server.url('/s'));
    const sent: string[] = [];
    for (let i = 0; i < 40; i++) sent.push(`${i}:${poorlyCompressible(80 * 1024 + i)}`);
    let reply = '';
    ws.on('message', (d) => (reply = String(d)));
    for (const m of sent) ws.send(m);
    await waitFor(() => reply !== '', 20_000, 'the lengths');
    expect(reply).toBe(sent.map((m) => m.length).join(','));
  });

  test('a broadcast reaches takeover and no-takeover connections intact, over several rounds', async () => {
    class NoTake extends Behavior {
      static override perMessageDeflate = true;
    }
    class Take extends Behavior {
      static override perMessageDeflate = { serverNoContextTakeover: false };
    }
    const server = await env.start({ '/a': NoTake, '/b': Take });
    const a = await env.openWs(server.url('/a'));
    const b = await env.openWs(server.url('/b'));
    const got: { a: string[]; b: string[] } = { a: [], b: [] };
    let error: unknown = null;
    a.on('message', (d) => got.a.push(String(d)));
    b.on('message', (d) => got.b.push(String(d)));
    a.on('error', (e) => (error = e));
    b.on('error', (e) => (error = e));
    const sent = [jsonish(5000, 1), jsonish(100 * 1024, 1), 'short', jsonish(5000, 1), jsonish(80 * 1024, 2), jsonish(1500, 2)];
    for (const m of sent) server.srv.handler.broadcast(m);
    await waitFor(() => (got.a.length === sent.length && got.b.length === sent.length) || error !== null, 10_000, 'the broadcasts');
    expect(error).toBeNull();
    expect(got).toEqual({ a: sent, b: sent });
  });
});
