/**
 * The test client's permessage-deflate against wsmount's own server (`perMessageDeflate` on the
 * handler): what it answers to each kind of offer (RFC 7692 §7.1), that it compresses what it
 * sends from the threshold up (the client sees RSV1), and that it inflates what the client
 * compresses, with context takeover in sync, large messages through the thread pool, order kept,
 * and its limits (maxPayload on inflated bytes, 1009; bad DEFLATE data, 1007).
 */
import { Buffer } from 'node:buffer';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, createWebSocketHandler } from '../../src/index.js';
import { type TestClient, connect, listen } from '../../src/testing/index.js';
import { Rng } from '../reliability/fixtures/prng.js';

const MiB = 1024 * 1024;

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

const handlers: Array<{ close(options?: { timeout?: number }): Promise<void> }> = [];
afterEach(async () => {
  for (const h of handlers.splice(0)) await h.close({ timeout: 200 });
});

function echoHandler(options: HandlerOptions = {}): ReturnType<typeof createWebSocketHandler> {
  const h = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent', maxPayload: 16 * MiB, ...options });
  handlers.push(h);
  return h;
}

const WORDS = ['user', 'room', 'message', 'typing', 'presence', 'über', '日本語', 'true', 'null', 'Faust'];

function jsonText(seed: number, size: number): string {
  const r = new Rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const s = `{"type":"${r.pick(WORDS)}","id":${r.int(1e6)},"ok":${r.chance(0.5)}},`;
    parts.push(s);
    n += s.length;
  }
  return parts.join('');
}

function expectSame(actual: unknown, expected: string | Buffer): void {
  if (typeof expected === 'string') {
    expect(actual).toBe(expected);
    return;
  }
  expect(Buffer.isBuffer(actual) && actual.equals(expected)).toBe(true);
}

/** Echo round trips; `threshold` is the server's: from it up, echoes must come compressed. */
async function roundTrips(client: TestClient, threshold: number): Promise<void> {
  const check = async (sent: string | Buffer): Promise<void> => {
    const info = await client.nextMessageInfo();
    expectSame(info.data, sent);
    expect(info.compressed).toBe(Buffer.byteLength(sent) >= threshold);
  };
  for (const m of ['', 'a', 'hello über 日本語', Buffer.from([0, 1, 2, 255]), 'y'.repeat(5000)]) {
    client.send(m);
    await check(m);
  }
  // Many similar messages in a row: the server's inflate window must follow the client's.
  const many = Array.from({ length: 60 }, (_, i) => jsonText(i % 7, 200 + i * 37));
  for (const m of many) client.sendText(m);
  for (const m of many) await check(m);
  // Large: thread-pool deflate and inflate on both sides.
  const big = jsonText(11, 1.5 * MiB);
  client.sendText(big);
  await check(big);
  const random = new Rng(5).bytes(MiB + 7);
  client.sendBinary(random);
  await check(random);
  // Big and small mixed, back to back: echoes in order.
  const mixed: Array<string | Buffer> = [];
  for (let i = 0; i < 4; i++) mixed.push(jsonText(20 + i, MiB), `small ${i}`, new Rng(30 + i).bytes(200 * 1024), Buffer.from([i]));
  for (const m of mixed) client.send(m);
  for (const m of mixed) await check(m);
  expect(client.compressedIn).toBeGreaterThan(0);
  expect(await client.close()).toEqual({ code: 1000, reason: '' });
}

describe('wsmount\'s server with perMessageDeflate, through the test client', () => {
  test('declined when the handler does not enable it: no header, nothing compressed', async () => {
    const client = await connect(echoHandler(), '/echo', { perMessageDeflate: true });
    expect(client.extensions).toBeUndefined();
    expect(client.perMessageDeflate).toBeNull();
    client.sendText('x'.repeat(5000));
    expect(await client.nextMessageInfo()).toEqual({ data: 'x'.repeat(5000), compressed: false });
    await client.close();
  });

  test('perMessageDeflate: true and Chrome\'s offer: server_no_context_takeover (the preset), echoes compressed from 1 KiB', { timeout: 30_000 }, async () => {
    const client = await connect(echoHandler({ perMessageDeflate: true }), '/echo', { perMessageDeflate: true });
    expect(client.extensions).toBe('permessage-deflate; server_no_context_takeover');
    expect(client.perMessageDeflate).toEqual({ serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    await roundTrips(client, 1024);
  });

  test('over TCP too', { timeout: 30_000 }, async () => {
    await using server = await listen(echoHandler({ perMessageDeflate: true }));
    const client = await connect(server, '/echo', { perMessageDeflate: true });
    await roundTrips(client, 1024);
  });

  test('context takeover on the server (serverNoContextTakeover: false), threshold 0', { timeout: 30_000 }, async () => {
    const client = await connect(echoHandler({ perMessageDeflate: { serverNoContextTakeover: false, threshold: 0 } }), '/echo', { perMessageDeflate: true });
    expect(client.extensions).toBe('permessage-deflate');
    await roundTrips(client, 0);
  });

  test('Firefox\'s bare offer is accepted', async () => {
    const client = await connect(echoHandler({ perMessageDeflate: true }), '/echo', { perMessageDeflate: { clientMaxWindowBits: false } });
    expect(client.extensions).toBe('permessage-deflate; server_no_context_takeover');
    await client.close();
  });

  test('small windows offered: the server answers ≤ them and keeps to them', { timeout: 30_000 }, async () => {
    const handler = echoHandler({ perMessageDeflate: { serverNoContextTakeover: false, threshold: 0 } });
    const client = await connect(handler, '/echo', { perMessageDeflate: { serverMaxWindowBits: 9, clientMaxWindowBits: 10 } });
    expect(client.extensions).toBe('permessage-deflate; server_max_window_bits=9; client_max_window_bits=10');
    await roundTrips(client, 0);
  });

  test('client_no_context_takeover offered is echoed; server_no_context_takeover offered is granted', { timeout: 30_000 }, async () => {
    const handler = echoHandler({ perMessageDeflate: { serverNoContextTakeover: false } });
    const client = await connect(handler, '/echo', { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true } });
    expect(client.perMessageDeflate).toMatchObject({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    await roundTrips(client, 1024);
  });

  test('a server that limits the client\'s window declines Firefox\'s offer and accepts Chrome\'s (RFC 7692 §7.1.2.2)', async () => {
    const handler = echoHandler({ perMessageDeflate: { clientMaxWindowBits: 10 } });
    const firefox = await connect(handler, '/echo', { perMessageDeflate: { clientMaxWindowBits: false } });
    expect(firefox.perMessageDeflate).toBeNull();
    const chrome = await connect(handler, '/echo', { perMessageDeflate: true });
    expect(chrome.perMessageDeflate).toMatchObject({ clientMaxWindowBits: 10 });
    await Promise.all([firefox.close(), chrome.close()]);
  });

  test('several offers: the first acceptable one is taken (RFC 7692 §5)', async () => {
    const handler = echoHandler({ perMessageDeflate: true });
    const client = await connect(handler, '/echo', { perMessageDeflate: { offer: 'permessage-deflate; foo, permessage-deflate; server_max_window_bits=12' } });
    expect(client.extensions).toBe('permessage-deflate; server_no_context_takeover; server_max_window_bits=12');
    await client.close();
  });

  test('the server\'s maxPayload counts inflated bytes: a 10 MiB zip bomb closes with 1009', async () => {
    const handler = echoHandler({ perMessageDeflate: true, maxPayload: MiB });
    const client = await connect(handler, '/echo', { perMessageDeflate: true });
    client.sendBinary(Buffer.alloc(10 * MiB));
    expect((await client.closed).code).toBe(1009);
  });

  test('data that does not inflate closes with 1007', async () => {
    const client = await connect(echoHandler({ perMessageDeflate: true }), '/echo', { perMessageDeflate: true });
    client.sendFrame({ opcode: 2, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) });
    expect((await client.closed).code).toBe(1007);
  });

  test('compressed text that is not UTF-8 once inflated closes with 1007', async () => {
    const client = await connect(echoHandler({ perMessageDeflate: true }), '/echo', { perMessageDeflate: true });
    // 'h' then an invalid sequence, deflated with a sync flush and the trailer stripped (RFC 7692 §7.2.1).
    const { deflateRawSync, constants } = await import('node:zlib');
    const c = deflateRawSync(Buffer.from([0x68, 0xc3, 0x28]), { finishFlush: constants.Z_SYNC_FLUSH });
    client.sendFrame({ opcode: 1, rsv: 4, payload: c.subarray(0, c.length - 4) });
    expect((await client.closed).code).toBe(1007);
  });
});
