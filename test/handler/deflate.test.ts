/**
 * permessage-deflate at the handler level, over real sockets with raw handshakes: what the 101
 * says for the browsers' real offers under the preset and under restrictive settings (RFC 7692
 * §5–7: decline, never refuse), the per-route static, `this.extensions`, option checks and the
 * `stats().compression` counters. Frames are built with node:zlib here, not with src/.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, type NegotiatedExtensions, createWebSocketHandler } from '../../src/index.js';
import { RawClient, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

const CHROME = 'permessage-deflate; client_max_window_bits';
const FIREFOX = 'permessage-deflate';
const SAFARI_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15';

/** Echoes, and tells what was negotiated on request. */
class Echo extends Behavior {
  override onText(text: string): void {
    if (text === 'extensions?') this.sendText(JSON.stringify(this.extensions));
    else this.sendText(text);
  }
}
class Plain extends Echo {
  static override perMessageDeflate = false;
}
class Small extends Echo {
  static override perMessageDeflate = { clientMaxWindowBits: 10, threshold: 0 };
}

let server: TestServer | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  server = undefined;
});

async function start(options: HandlerOptions = { perMessageDeflate: true }): Promise<TestServer> {
  server = await startServer({ '/echo': Echo, '/plain': Plain, '/small': Small }, options);
  return server;
}

async function answer(path: string, extensions: string | undefined, extra: Record<string, string> = {}) {
  const s = server as TestServer;
  // A 101 leaves the socket open: the answer is read after a short wait.
  return rawRequest(s.port, upgradeRequest(path, extensions === undefined ? extra : { 'Sec-WebSocket-Extensions': extensions, ...extra }), 300);
}

describe('the 101 for real browser offers (RFC 7692 §5-7)', () => {
  test("preset: Chrome's offer gets server_no_context_takeover, and no client window echoed (offered bare)", async () => {
    await start();
    const r = await answer('/echo', CHROME);
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBe('permessage-deflate; server_no_context_takeover');
  });

  test("preset: Firefox's and Safari's bare offer gets the same; no window parameter they did not offer", async () => {
    await start();
    const r = await answer('/echo', FIREFOX, { 'User-Agent': SAFARI_UA });
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBe('permessage-deflate; server_no_context_takeover');
  });

  test('compression off (the default): every offer declined, 101 without the header', async () => {
    await start({});
    const r = await answer('/echo', CHROME);
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBeUndefined();
  });

  test('a route static turns it off on a compressing handler, and on (with its settings) on a plain one', async () => {
    await start();
    expect((await answer('/plain', CHROME)).headers['sec-websocket-extensions']).toBeUndefined();
    await server?.close();
    await start({});
    expect((await answer('/small', CHROME)).headers['sec-websocket-extensions']).toBe('permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
  });

  test('the ws #1446 trap: a client window limit the bare offer cannot be told → 101 uncompressed, never 400', async () => {
    await start({});
    const r = await answer('/small', FIREFOX);
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBeUndefined();
  });

  test('invalid offers are declined one by one; a later valid one is taken; garbage is no error', async () => {
    await start();
    const r = await answer('/echo', 'permessage-deflate; server_max_window_bits=16, permessage-deflate; x=1, permessage-deflate; server_max_window_bits=10');
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBe('permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
    const g = await answer('/echo', ';;;,,= "x\\" ; permessage-deflate;;');
    expect(g.status).toBe(101);
    expect(g.headers['sec-websocket-extensions']).toBeUndefined();
  });
});

describe('over a connection', () => {
  function deflate(text: string): Buffer {
    const out = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    return out.subarray(0, out.length - 4);
  }

  test('this.extensions tells the behavior what was agreed; null when uncompressed', async () => {
    await start();
    const c = await RawClient.connect((server as TestServer).port, '/echo', { 'Sec-WebSocket-Extensions': CHROME });
    clients.push(c);
    c.send(0x1, 'extensions?');
    const seen = JSON.parse((await c.nextFrame()).payload.toString()) as NegotiatedExtensions;
    expect(seen.perMessageDeflate).toEqual({
      serverNoContextTakeover: true,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
      threshold: 1024,
    });
    const p = await RawClient.connect((server as TestServer).port, '/plain', { 'Sec-WebSocket-Extensions': CHROME });
    clients.push(p);
    p.send(0x1, 'extensions?');
    expect(JSON.parse((await p.nextFrame()).payload.toString())).toEqual({ perMessageDeflate: null });
  });

  test('stats().compression counts connections and payload bytes both ways', async () => {
    await start();
    const handler = (server as TestServer).srv.handler;
    const c = await RawClient.connect((server as TestServer).port, '/echo', { 'Sec-WebSocket-Extensions': CHROME });
    clients.push(c);
    const text = JSON.stringify({ list: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `user ${i}` })) });
    const wire = deflate(text);
    c.send(0x1, wire, { rsv: 4 });
    const echo = await c.nextFrame();
    expect(echo.rsv & 4).toBe(4); // over the 1 KiB threshold: compressed back
    const back = zlib.inflateRawSync(Buffer.concat([echo.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(back.toString()).toBe(text);
    const s = handler.stats().compression;
    expect(s).toEqual({
      connections: 1,
      messagesIn: 1,
      compressedBytesIn: wire.length,
      inflatedBytesIn: Buffer.byteLength(text),
      messagesOut: 1,
      uncompressedBytesOut: Buffer.byteLength(text),
      compressedBytesOut: echo.payload.length,
    });
    c.send(0x1, 'short'); // under the threshold: plain both ways, counted nowhere here
    const plain = await c.nextFrame();
    expect(plain.rsv).toBe(0);
    expect(handler.stats().compression.messagesOut).toBe(1);
    await c.close();
    await waitFor(() => handler.stats().compression.connections === 0);
  });
});

describe('option checks say what to write', () => {
  test.each([
    [{ perMessageDeflate: { treshold: 1 } }, /perMessageDeflate has no option 'treshold'/],
    [{ perMessageDeflate: { level: 11 } }, /perMessageDeflate\.level must be an integer from 0 to 9/],
    [{ perMessageDeflate: { serverMaxWindowBits: 16 } }, /serverMaxWindowBits must be an integer from 8 to 15/],
    [{ perMessageDeflate: { threshold: -1 } }, /threshold must be a non-negative number/],
    [{ perMessageDeflate: 'yes' }, /perMessageDeflate is true, false or an object/],
  ])('%j', (options, message) => {
    expect(() => createWebSocketHandler({ '/echo': Echo }, options as HandlerOptions)).toThrow(message);
  });

  test('a route static is checked too, naming the route', () => {
    class Bad extends Behavior {
      static override perMessageDeflate = { memLevel: 0 };
    }
    expect(() => createWebSocketHandler({ '/bad': Bad })).toThrow(/\/bad: static perMessageDeflate\.memLevel must be an integer from 1 to 9/);
  });
});
