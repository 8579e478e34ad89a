/**
 * The test client's permessage-deflate (RFC 7692) against independent servers: the `ws` package
 * in several configurations (round trips that only work if both sides' windows and resets
 * agree), and a hand-written TCP server that answers the handshake with crafted
 * `Sec-WebSocket-Extensions` headers (RFC 7692 §5, §7.1: the client must fail on a bad response)
 * and sends crafted compressed frames.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { afterEach, describe, expect, test } from 'vitest';
import { type PerMessageDeflateOptions as WsDeflateOptions, type WebSocket as WsSocket, WebSocketServer } from 'ws';
import { HandshakeError, type TestClient, connect } from '../../src/testing/index.js';
import { Rng } from '../reliability/fixtures/prng.js';
import { clientFrames } from './fixtures/client-frames.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

// ---- corpora (seeded) ------------------------------------------------------------------------

const WORDS = ['user', 'room', 'message', 'typing', 'presence', 'über', '日本語', 'true', 'null', 'Faust'];

/** JSON-like text of about `size` bytes: compresses well, with matches near and far. */
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

/** A random block repeated: its matches lie `block` bytes back, beyond a small window. */
function farRepeats(seed: number, block: number, times: number): Buffer {
  const b = new Rng(seed).bytes(block);
  return Buffer.concat(Array.from({ length: times }, () => b));
}

/** `toEqual` walks a Buffer byte by byte (seconds for a MiB); compare whole Buffers instead. */
function expectSame(actual: unknown, expected: string | Buffer): void {
  if (typeof expected === 'string') {
    expect(actual).toBe(expected);
    return;
  }
  expect(Buffer.isBuffer(actual)).toBe(true);
  expect((actual as Buffer).length).toBe(expected.length);
  expect((actual as Buffer).equals(expected)).toBe(true);
}

// ---- servers ---------------------------------------------------------------------------------

interface WsFixture {
  url: string;
  wss: WebSocketServer;
  /** Resolves with the server side of the next connection and its upgrade request. */
  next: Promise<{ ws: WsSocket; req: IncomingMessage }>;
}

/** A ws server that echoes every message as it came (text as text), compressing as ws decides. */
async function wsEcho(perMessageDeflate: boolean | WsDeflateOptions, options: { maxPayload?: number } = {}): Promise<WsFixture> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, maxPayload: options.maxPayload ?? 256 * MiB });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const next = new Promise<{ ws: WsSocket; req: IncomingMessage }>((resolve) => {
    wss.on('connection', (ws, req) => {
      ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
      resolve({ ws, req });
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, wss, next };
}

function accept101(key: string, extra = ''): string {
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;
}

interface RawFixture {
  url: string;
  /** The upgrade request head the client sent. */
  request: Promise<string>;
  /** Everything the client sent after its request, once the connection closed. */
  received: Promise<Buffer>;
}

/** A hand-written server: answers the handshake as `answer` says, then records what the client sends. */
async function rawServer(answer: (key: string, socket: net.Socket, head: string) => void): Promise<RawFixture> {
  let gotRequest!: (head: string) => void;
  let gotAll!: (b: Buffer) => void;
  const request = new Promise<string>((r) => {
    gotRequest = r;
  });
  const received = new Promise<Buffer>((r) => {
    gotAll = r;
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let head = '';
    const after: Buffer[] = [];
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      if (answered) {
        after.push(chunk);
        return;
      }
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      answered = true;
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length > 0) after.push(rest);
      head = head.slice(0, end + 4);
      gotRequest(head);
      answer(/sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '', socket, head);
    });
    socket.on('close', () => gotAll(Buffer.concat(after)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, request, received };
}

/** The `Sec-WebSocket-Extensions` line of a request head, or undefined. */
function offerIn(head: string): string | undefined {
  return /\r\nsec-websocket-extensions: *([^\r]*)/i.exec(head)?.[1];
}

/** A server frame (unmasked). `rsv1` marks it compressed. */
function serverFrame(opcode: number, payload: Buffer, options: { fin?: boolean; rsv1?: boolean } = {}): Buffer {
  const head = [((options.fin ?? true) ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode];
  const n = payload.length;
  if (n < 126) head.push(n);
  else if (n < 65536) head.push(126, n >> 8, n & 0xff);
  else {
    head.push(127, 0, 0, 0, 0);
    head.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  return Buffer.concat([Buffer.from(head), payload]);
}

/** RFC 7692 §7.2.1, independently of src/: raw deflate with a sync flush, trailer stripped. */
function compress(data: Buffer | string): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** RFC 7692 §7.2.2: append the trailer and inflate. */
function inflate(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

// ---- the option ------------------------------------------------------------------------------

describe('the perMessageDeflate option is checked like the other connect options', () => {
  const cases: Array<{ name: string; value: unknown; error: typeof TypeError | typeof RangeError; match: RegExp; headers?: Record<string, string> }> = [
    { name: 'not a boolean or an object', value: 'yes', error: TypeError, match: /perMessageDeflate must be true, false or an object/ },
    { name: 'an unknown key', value: { serverNoContext: true }, error: TypeError, match: /perMessageDeflate has no option 'serverNoContext'/ },
    { name: 'a flag that is not a boolean', value: { serverNoContextTakeover: 1 }, error: TypeError, match: /perMessageDeflate\.serverNoContextTakeover must be true or false/ },
    { name: 'serverMaxWindowBits 16', value: { serverMaxWindowBits: 16 }, error: RangeError, match: /perMessageDeflate\.serverMaxWindowBits must be an integer from 8 to 15, got 16/ },
    { name: 'clientMaxWindowBits 7', value: { clientMaxWindowBits: 7 }, error: RangeError, match: /perMessageDeflate\.clientMaxWindowBits must be an integer from 8 to 15, got 7/ },
    { name: 'clientMaxWindowBits 9.5', value: { clientMaxWindowBits: 9.5 }, error: RangeError, match: /clientMaxWindowBits/ },
    { name: 'a negative threshold', value: { threshold: -1 }, error: RangeError, match: /perMessageDeflate\.threshold must be a non-negative number/ },
    { name: 'level 10', value: { level: 10 }, error: RangeError, match: /perMessageDeflate\.level must be an integer from 0 to 9/ },
    { name: 'an offer with a line break', value: { offer: 'permessage-deflate\r\nX-Evil: 1' }, error: TypeError, match: /perMessageDeflate\.offer must be a non-empty header value/ },
    { name: 'an empty offer', value: { offer: ' ' }, error: TypeError, match: /perMessageDeflate\.offer/ },
    { name: 'an offer with offer fields', value: { offer: 'permessage-deflate', serverNoContextTakeover: true }, error: TypeError, match: /offer is the whole offer: leave out serverNoContextTakeover/ },
    { name: 'an offer in headers too', value: true, headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' }, error: TypeError, match: /perMessageDeflate\.offer, not as headers/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      // Checked before any connection is made: the port does not matter.
      const error = await connect('ws://127.0.0.1:1/', undefined, { perMessageDeflate: c.value as boolean, ...(c.headers === undefined ? {} : { headers: c.headers }) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(c.error);
      expect((error as Error).message).toMatch(c.match);
    });
  }
});

describe('the offer on the wire (RFC 7692 §7.1)', () => {
  const cases: Array<{ name: string; option: unknown; offer: string | undefined }> = [
    { name: 'absent: no offer (as before)', option: undefined, offer: undefined },
    { name: 'false: no offer', option: false, offer: undefined },
    { name: 'true: Chrome\'s offer', option: true, offer: 'permessage-deflate; client_max_window_bits' },
    { name: '{}: the same as true', option: {}, offer: 'permessage-deflate; client_max_window_bits' },
    { name: 'clientMaxWindowBits: false: Firefox\'s offer', option: { clientMaxWindowBits: false }, offer: 'permessage-deflate' },
    {
      name: 'every parameter, in the RFC\'s order',
      option: { clientMaxWindowBits: 10, serverMaxWindowBits: 9, clientNoContextTakeover: true, serverNoContextTakeover: true },
      offer: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10',
    },
    { name: 'an exact offer string, several offers', option: { offer: 'permessage-deflate; server_max_window_bits=10, permessage-deflate' }, offer: 'permessage-deflate; server_max_window_bits=10, permessage-deflate' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const server = await rawServer((key, socket) => socket.write(accept101(key)));
      const client = await connect(server.url, undefined, c.option === undefined ? {} : { perMessageDeflate: c.option as boolean });
      expect(offerIn(await server.request)).toBe(c.offer);
      // Declined (no header in the 101): nothing negotiated, nothing compressed.
      expect(client.perMessageDeflate).toBeNull();
      expect(client.extensions).toBeUndefined();
      client.sendText('x'.repeat(100));
      client.terminate();
      const frames = clientFrames(await server.received);
      expect(frames[0]).toMatchObject({ rsv: 0, opcode: 1 });
      expect(client.compressedOut).toBe(0);
    });
  }
});

// ---- against ws ------------------------------------------------------------------------------

/** Round trips that only come back intact if both sides' windows and resets agree. */
async function roundTrips(client: TestClient, server: WsFixture): Promise<void> {
  const { req } = await server.next;
  // Small and empty, text and binary.
  for (const m of ['', 'a', 'hello über 日本語', Buffer.from([0, 1, 2, 255]), Buffer.alloc(0)]) {
    client.send(m);
    expectSame(await client.nextMessage(), m);
  }
  // Many in a row, similar content: context takeover (or its absence) must stay in sync.
  const many = Array.from({ length: 60 }, (_, i) => jsonText(i % 7, 200 + i * 37));
  for (const m of many) client.sendText(m);
  for (const m of many) expect(await client.nextMessage()).toBe(m);
  // Matches 4 KiB back: beyond a 9- or 10-bit window, so a window mismatch shows.
  const far = farRepeats(3, 4096, 6);
  client.sendBinary(far);
  expectSame(await client.nextMessage(), far);
  // Large (async deflate and inflate on the thread pool): compressible text, random bytes.
  const bytesBefore = req.socket.bytesRead;
  const bigText = jsonText(11, 1.5 * MiB);
  client.sendText(bigText);
  expect(await client.nextMessage()).toBe(bigText);
  // The client compressed it: the server read far less than 1.5 MiB.
  expect(req.socket.bytesRead - bytesBefore).toBeLessThan(0.5 * MiB);
  const bigRandom = new Rng(5).bytes(MiB + 7);
  client.sendBinary(bigRandom);
  expectSame(await client.nextMessage(), bigRandom);
  // Big and small mixed, sent back to back: echoes come back in order.
  const mixed: Array<string | Buffer> = [];
  for (let i = 0; i < 6; i++) {
    mixed.push(i % 2 === 0 ? jsonText(20 + i, MiB) : new Rng(20 + i).bytes(300 * 1024));
    mixed.push(`small ${i}`);
    mixed.push(Buffer.from([i]));
  }
  for (const m of mixed) client.send(m);
  for (const m of mixed) expectSame(await client.nextMessage(), m);
  const sent = 5 + many.length + 1 + 2 + mixed.length;
  expect(client.compressedOut).toBe(sent); // threshold 0: everything
  expect(await client.close(1000, 'done')).toEqual({ code: 1000, reason: 'done' });
}

describe('round trips with ws (RFC 7692 §7.2)', () => {
  test('context takeover both ways (ws defaults, Chrome\'s offer)', { timeout: 30_000 }, async () => {
    const server = await wsEcho(true);
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    expect(client.extensions).toBe('permessage-deflate');
    expect(client.perMessageDeflate).toEqual({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    await roundTrips(client, server);
    // ws compresses every message under context takeover: each echo came compressed.
    expect(client.compressedIn).toBe(client.compressedOut);
  });

  test('ws adds server_no_context_takeover and client_no_context_takeover unasked (threshold 0)', { timeout: 30_000 }, async () => {
    const server = await wsEcho({ serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    expect(client.extensions).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    expect(client.perMessageDeflate).toMatchObject({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    // ws resets its inflater after each message here: had the client kept its window, the
    // repeated content would reference bytes ws no longer has and ws would fail the connection.
    await roundTrips(client, server);
    expect(client.compressedIn).toBe(client.compressedOut);
  });

  test('the client offers server_no_context_takeover and client_no_context_takeover; ws echoes both', { timeout: 30_000 }, async () => {
    const server = await wsEcho({ threshold: 0 });
    const client = await connect(server.url, undefined, { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true } });
    expect(client.perMessageDeflate).toMatchObject({ serverNoContextTakeover: true, clientNoContextTakeover: true });
    await roundTrips(client, server);
  });

  test('small windows set by ws: server_max_window_bits=9, client_max_window_bits=10', { timeout: 30_000 }, async () => {
    const server = await wsEcho({ serverMaxWindowBits: 9, clientMaxWindowBits: 10 });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    // RFC 7692 §7.1.2.1 lets the server send server_max_window_bits unasked, as ws does.
    expect(client.extensions).toBe('permessage-deflate; client_max_window_bits=10; server_max_window_bits=9');
    expect(client.perMessageDeflate).toEqual({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 9, clientMaxWindowBits: 10 });
    await roundTrips(client, server);
  });

  test('small windows asked by the client: server_max_window_bits=10, client_max_window_bits=9', { timeout: 30_000 }, async () => {
    const server = await wsEcho(true);
    const client = await connect(server.url, undefined, { perMessageDeflate: { serverMaxWindowBits: 10, clientMaxWindowBits: 9 } });
    expect(client.extensions).toBe('permessage-deflate; server_max_window_bits=10; client_max_window_bits=9');
    expect(client.perMessageDeflate).toMatchObject({ serverMaxWindowBits: 10, clientMaxWindowBits: 9 });
    await roundTrips(client, server);
  });

  test('threshold: shorter messages go uncompressed, between compressed ones under context takeover', { timeout: 10_000 }, async () => {
    const server = await wsEcho(true);
    const raw = await rawCapture(server);
    const client = await connect(raw.url, undefined, { perMessageDeflate: { threshold: 100 } });
    const messages = Array.from({ length: 40 }, (_, i) => jsonText(i % 3, i % 2 === 0 ? 50 : 400));
    for (const m of messages) client.sendText(m);
    for (const m of messages) expect(await client.nextMessage()).toBe(m);
    expect(client.compressedOut).toBe(20);
    await client.close();
    const frames = clientFrames(await raw.fromClient).filter((f) => f.opcode === 1);
    expect(frames.map((f) => f.rsv)).toEqual(messages.map((m) => (m.length >= 100 ? 4 : 0)));
  });

  test('big compressed and small uncompressed messages mixed, both ways: the order is kept', { timeout: 10_000 }, async () => {
    // Both sides compress only from 1 KiB: a small message is framed at once while the big one
    // before it is still on the thread pool, and must neither overtake it on the way out nor be
    // delivered before it on the way in.
    const server = await wsEcho({ serverNoContextTakeover: true, threshold: 1024 });
    const client = await connect(server.url, undefined, { perMessageDeflate: { threshold: 1024 } });
    const mixed: Array<string | Buffer> = [];
    for (let i = 0; i < 5; i++) mixed.push(jsonText(30 + i, MiB), `small ${i}`, new Rng(40 + i).bytes(200 * 1024), Buffer.from([i]));
    for (const m of mixed) client.send(m);
    const infos = [];
    for (const m of mixed) {
      const info = await client.nextMessageInfo();
      expectSame(info.data, m);
      infos.push(info.compressed);
    }
    expect(infos).toEqual(mixed.map((m) => m.length >= 1024));
    expect(client.compressedOut).toBe(10);
    await client.close();
  });

  test('nextMessageInfo says which messages came compressed', { timeout: 10_000 }, async () => {
    const server = await wsEcho({ threshold: 1000, serverNoContextTakeover: true });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    client.sendText('short');
    client.sendText('long '.repeat(400));
    expect(await client.nextMessageInfo()).toEqual({ data: 'short', compressed: false });
    expect(await client.nextMessageInfo()).toEqual({ data: 'long '.repeat(400), compressed: true });
    expect(client.compressedIn).toBe(1);
    await client.close();
  });

  test('the client\'s maxPayload applies to the inflated size: 1009 (a 10 MiB zip bomb of zeros)', { timeout: 10_000 }, async () => {
    const server = await wsEcho(true);
    const client = await connect(server.url, undefined, { perMessageDeflate: { threshold: Infinity }, maxPayload: MiB });
    const { ws } = await server.next;
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.send(Buffer.alloc(10 * MiB));
    expect((await client.closed).code).toBe(1009);
    expect(client.protocolError?.code).toBe('WS_MESSAGE_TOO_BIG');
    expect(await closed).toBe(1009);
    expect(client.compressedOut).toBe(0);
  });

  test('a compressed message of exactly maxPayload bytes is accepted, one byte more is not', { timeout: 10_000 }, async () => {
    const server = await wsEcho(true);
    const client = await connect(server.url, undefined, { perMessageDeflate: true, maxPayload: 100_000 });
    const { ws } = await server.next;
    // Random bytes: the compressed payload is a little larger than the message itself.
    const exact = new Rng(9).bytes(100_000);
    ws.send(exact);
    expectSame(await client.nextMessage(), exact);
    ws.send(new Rng(10).bytes(100_001));
    expect((await client.closed).code).toBe(1009);
  });
});

/**
 * A TCP proxy in front of a ws server that records what the client sent, to look at the frames
 * (RSV1) while ws still answers for real.
 */
async function rawCapture(target: WsFixture): Promise<{ url: string; fromClient: Promise<Buffer> }> {
  const port = Number(new URL(target.url).port);
  let done!: (b: Buffer) => void;
  const fromClient = new Promise<Buffer>((r) => {
    done = r;
  });
  const server = net.createServer((socket) => {
    const upstream = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let head = true;
    socket.on('data', (c: Buffer) => {
      if (head) {
        const end = c.indexOf('\r\n\r\n');
        if (end !== -1) {
          head = false;
          chunks.push(c.subarray(end + 4));
        }
      } else {
        chunks.push(c);
      }
    });
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => {
      upstream.destroy();
      done(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, fromClient };
}

// ---- crafted frames --------------------------------------------------------------------------

describe('frames with a crafted server (RFC 7692 §6, §7.2)', () => {
  async function acceptingServer(frames: Buffer[] | ((socket: net.Socket) => void)): Promise<RawFixture> {
    return rawServer((key, socket) => {
      socket.write(accept101(key, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
      if (typeof frames === 'function') frames(socket);
      else for (const f of frames) socket.write(f);
    });
  }

  test('a compressed message in fragments (RSV1 on the first frame only), then an uncompressed one', async () => {
    const c = compress('fragmented and compressed');
    const server = await acceptingServer([
      serverFrame(1, c.subarray(0, 5), { fin: false, rsv1: true }),
      serverFrame(0, c.subarray(5, 9), { fin: false }),
      serverFrame(0, c.subarray(9)),
      serverFrame(1, Buffer.from('plain')),
    ]);
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    expect(await client.nextMessageInfo()).toEqual({ data: 'fragmented and compressed', compressed: true });
    expect(await client.nextMessageInfo()).toEqual({ data: 'plain', compressed: false });
    client.terminate();
  });

  test('the empty message compressed as a single 00 byte (RFC 7692 §7.2.3.6)', async () => {
    const server = await acceptingServer([serverFrame(1, Buffer.from([0x00]), { rsv1: true }), serverFrame(2, Buffer.alloc(0), { rsv1: true })]);
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    expect(await client.nextMessage()).toBe('');
    expect(await client.nextMessage()).toEqual(Buffer.alloc(0));
    client.terminate();
  });

  const failures: Array<{ name: string; frames: Buffer[]; code: number; error: string }> = [
    {
      name: 'compressed text that is not UTF-8 once inflated: 1007',
      frames: [serverFrame(1, compress(Buffer.from([0x68, 0xc3, 0x28])), { rsv1: true })],
      code: 1007,
      error: 'WS_INVALID_UTF8',
    },
    { name: 'a payload that is not DEFLATE data: 1007', frames: [serverFrame(2, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv1: true })], code: 1007, error: 'WS_INVALID_COMPRESSED_DATA' },
    {
      name: 'RSV1 on a continuation frame: 1002',
      frames: [serverFrame(1, compress('ab').subarray(0, 1), { fin: false, rsv1: true }), serverFrame(0, compress('ab').subarray(1), { rsv1: true })],
      code: 1002,
      error: 'WS_RESERVED_BITS',
    },
    { name: 'RSV1 on a ping: 1002', frames: [serverFrame(9, Buffer.from('x'), { rsv1: true })], code: 1002, error: 'WS_RESERVED_BITS' },
  ];
  for (const f of failures) {
    test(f.name, async () => {
      const server = await acceptingServer(f.frames);
      const client = await connect(server.url, undefined, { perMessageDeflate: true });
      expect((await client.closed).code).toBe(f.code);
      expect(client.protocolError?.code).toBe(f.error);
      const sent = clientFrames(await server.received);
      expect(sent.at(-1)?.opcode).toBe(8);
      expect(sent.at(-1)?.payload.readUInt16BE(0)).toBe(f.code);
    });
  }

  test('RSV1 without permessage-deflate agreed is still 1002', async () => {
    const server = await rawServer((key, socket) => {
      socket.write(accept101(key));
      socket.write(serverFrame(1, compress('hi'), { rsv1: true }));
    });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    expect(client.perMessageDeflate).toBeNull();
    expect((await client.closed).code).toBe(1002);
  });

  test('what the client sends: data frames with RSV1 that inflate back; ping, pong and close never compressed', async () => {
    const server = await acceptingServer((socket) => socket.write(serverFrame(9, Buffer.from('beat'))));
    const client = await connect(server.url, undefined, { perMessageDeflate: true, closeTimeout: 300 });
    await expect.poll(() => client.pings.length).toBe(1);
    client.sendText('one');
    client.sendBinary(Buffer.from('two'));
    void client.ping('p').catch(() => {});
    client.sendText('three');
    void client.close(1000, 'bye');
    const frames = clientFrames(await server.received);
    expect(frames.map((f) => [f.opcode, f.rsv])).toEqual([
      [10, 0],
      [1, 4],
      [2, 4],
      [9, 0],
      [1, 4],
      [8, 0],
    ]);
    // Context takeover: each message inflates with the window the previous ones left.
    const stream = zlib.createInflateRaw();
    const out: string[] = [];
    for (const f of frames.filter((x) => x.rsv === 4)) {
      out.push(
        await new Promise<string>((resolve) => {
          const got: Buffer[] = [];
          const onData = (d: Buffer): number => got.push(d);
          stream.on('data', onData);
          stream.write(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]));
          stream.flush(() => {
            stream.off('data', onData);
            resolve(Buffer.concat(got).toString());
          });
        }),
      );
    }
    stream.close();
    expect(out).toEqual(['one', 'two', 'three']);
  });

  test('a large send that deflates on the thread pool stays ahead of the ping and close sent after it', async () => {
    const server = await acceptingServer(() => {});
    const client = await connect(server.url, undefined, { perMessageDeflate: true, closeTimeout: 1000 });
    const big = jsonText(4, 2 * MiB);
    client.sendText(big);
    client.sendText('after');
    void client.ping('p').catch(() => {});
    void client.close();
    const frames = clientFrames(await server.received);
    expect(frames.map((f) => f.opcode)).toEqual([1, 1, 9, 8]);
    expect(inflate(frames[0]?.payload as Buffer).toString()).toBe(big);
  });

  test('a message compressed by the server with server_no_context_takeover inflates without the previous window', async () => {
    const server = await rawServer((key, socket) => {
      socket.write(accept101(key, 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n'));
      for (const m of ['same words again', 'same words again', 'same words again']) socket.write(serverFrame(1, compress(m), { rsv1: true }));
    });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    for (let i = 0; i < 3; i++) expect(await client.nextMessage()).toBe('same words again');
    expect(client.compressedIn).toBe(3);
    client.terminate();
  });

  test('a big compressed message inflated on the thread pool, then a close right behind it: the message first, then 1000', async () => {
    const big = jsonText(8, 3 * MiB);
    const server = await acceptingServer((socket) => {
      socket.write(Buffer.concat([serverFrame(1, compress(big), { rsv1: true }), serverFrame(1, Buffer.from('tail')), serverFrame(8, Buffer.from([0x03, 0xe8]))]));
      socket.end();
    });
    const client = await connect(server.url, undefined, { perMessageDeflate: true });
    const got: unknown[] = [];
    for await (const m of client) got.push(m);
    expect(got).toEqual([big, 'tail']);
    expect((await client.closed).code).toBe(1000);
  });
});

// ---- the response, strictly (RFC 7692 §5, §7.1) ----------------------------------------------

describe('the server\'s response is checked strictly (RFC 7692 §5, §7.1): BAD_EXTENSION', () => {
  const cases: Array<{ name: string; option?: unknown; response: string; match: RegExp }> = [
    { name: 'nothing offered, permessage-deflate answered', response: 'Sec-WebSocket-Extensions: permessage-deflate\r\n', match: /not offered/ },
    { name: 'an extension that was not offered', option: true, response: 'Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n', match: /x-webkit-deflate-frame", which was not offered/ },
    { name: 'two elements', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n', match: /names permessage-deflate 2 times/ },
    { name: 'two header lines', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate\r\n', match: /2 times/ },
    { name: 'an unknown parameter', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; max_window_bits=10\r\n', match: /"max_window_bits", which permessage-deflate does not define/ },
    { name: 'a duplicate parameter', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n', match: /server_no_context_takeover twice/ },
    { name: 'server_max_window_bits=16', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n', match: /server_max_window_bits=16 is not an integer from 8 to 15/ },
    { name: 'server_max_window_bits=7', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n', match: /from 8 to 15/ },
    { name: 'a leading zero', option: { clientMaxWindowBits: 10 }, response: 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=09\r\n', match: /=09 is not an integer from 8 to 15 without leading zeros/ },
    { name: 'a flag with a value', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover=1\r\n', match: /client_no_context_takeover has a value/ },
    { name: 'client_max_window_bits without a value', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n', match: /client_max_window_bits has no value/ },
    { name: 'server_no_context_takeover offered, left out', option: { serverNoContextTakeover: true }, response: 'Sec-WebSocket-Extensions: permessage-deflate\r\n', match: /server_no_context_takeover was offered but the response leaves it out/ },
    { name: 'server_max_window_bits offered, left out', option: { serverMaxWindowBits: 10 }, response: 'Sec-WebSocket-Extensions: permessage-deflate\r\n', match: /server_max_window_bits=10 was offered but the response leaves it out/ },
    { name: 'server_max_window_bits larger than offered', option: { serverMaxWindowBits: 10 }, response: 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=11\r\n', match: /server_max_window_bits=11 is larger than the 10 offered/ },
    { name: 'client_max_window_bits not offered', option: { clientMaxWindowBits: false }, response: 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n', match: /client_max_window_bits=15, which was not offered/ },
    { name: 'client_max_window_bits larger than offered', option: { clientMaxWindowBits: 10 }, response: 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n', match: /client_max_window_bits=12 is larger than the 10 offered/ },
    { name: 'not valid header syntax', option: true, response: 'Sec-WebSocket-Extensions: permessage-deflate; =3\r\n', match: /not valid header syntax/ },
    { name: 'only an invalid offer was sent', option: { offer: 'permessage-deflate; server_max_window_bits=99' }, response: 'Sec-WebSocket-Extensions: permessage-deflate\r\n', match: /no valid permessage-deflate offer was sent/ },
    {
      name: 'fits none of several offers',
      option: { offer: 'permessage-deflate; server_no_context_takeover, permessage-deflate; server_max_window_bits=9' },
      response: 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n',
      match: /fits none of the 2 permessage-deflate offers: offer 1: server_no_context_takeover was offered.*; offer 2: .*larger than the 9 offered/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const server = await rawServer((key, socket) => socket.write(accept101(key, c.response)));
      const error = (await connect(server.url, undefined, c.option === undefined ? {} : { perMessageDeflate: c.option as boolean }).catch((e: unknown) => e)) as HandshakeError;
      expect(error).toBeInstanceOf(HandshakeError);
      expect(error.code).toBe('BAD_EXTENSION');
      expect(error.status).toBe(101);
      expect(error.message).toMatch(c.match);
    });
  }

  const accepted: Array<{ name: string; option: unknown; response: string; expected: object }> = [
    { name: 'server_max_window_bits unasked (RFC 7692 §7.1.2.1 allows it)', option: true, response: 'permessage-deflate; server_max_window_bits=12', expected: { serverMaxWindowBits: 12 } },
    { name: 'server_no_context_takeover unasked (§7.1.1.1)', option: true, response: 'permessage-deflate; server_no_context_takeover', expected: { serverNoContextTakeover: true } },
    { name: 'client_no_context_takeover unasked (§7.1.1.2)', option: true, response: 'permessage-deflate; client_no_context_takeover', expected: { clientNoContextTakeover: true } },
    { name: 'a quoted window value', option: true, response: 'permessage-deflate; client_max_window_bits="10"', expected: { clientMaxWindowBits: 10 } },
    { name: 'a smaller window than offered, 8', option: { serverMaxWindowBits: 10, clientMaxWindowBits: 9 }, response: 'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8', expected: { serverMaxWindowBits: 8, clientMaxWindowBits: 8 } },
    { name: 'the second of two offers', option: { offer: 'permessage-deflate; server_max_window_bits=10, permessage-deflate' }, response: 'permessage-deflate', expected: { serverMaxWindowBits: 15 } },
    { name: 'a malformed offer among valid ones is skipped', option: { offer: 'permessage-deflate; server_max_window_bits=99, permessage-deflate; client_max_window_bits' }, response: 'permessage-deflate; client_max_window_bits=11', expected: { clientMaxWindowBits: 11 } },
  ];
  for (const c of accepted) {
    test(`accepted: ${c.name}`, async () => {
      const server = await rawServer((key, socket) => socket.write(accept101(key, `Sec-WebSocket-Extensions: ${c.response}\r\n`)));
      const client = await connect(server.url, undefined, { perMessageDeflate: c.option as boolean });
      expect(client.extensions).toBe(c.response);
      expect(client.perMessageDeflate).toMatchObject(c.expected);
      client.terminate();
    });
  }

  test('windows of 8 agreed: the client compresses within 256 bytes and inflates with an 8-bit window', async () => {
    const server = await rawServer((key, socket) => {
      socket.write(accept101(key, 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_max_window_bits=8\r\n'));
      const m = Buffer.from('abcdefgh'.repeat(100));
      const c = zlib.deflateRawSync(m, { windowBits: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      socket.write(serverFrame(2, c.subarray(0, c.length - 4), { rsv1: true }));
    });
    const client = await connect(server.url, undefined, { perMessageDeflate: { serverMaxWindowBits: 8, clientMaxWindowBits: 8 }, closeTimeout: 200 });
    expect(await client.nextMessage()).toEqual(Buffer.from('abcdefgh'.repeat(100)));
    const far = farRepeats(1, 300, 4);
    client.sendBinary(far);
    await client.close(); // the server never answers: the socket goes after closeTimeout, the frames before it
    const frames = clientFrames(await server.received);
    // An inflater with a 256-byte window decodes it: no match reaches further back. (64-byte
    // output chunks make zlib take every match from its window, not from the output buffer.)
    const inflated = zlib.inflateRawSync(Buffer.concat([frames[0]?.payload as Buffer, Buffer.from([0, 0, 0xff, 0xff])]), {
      windowBits: 8,
      chunkSize: 64,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expectSame(inflated, far);
  });
});
