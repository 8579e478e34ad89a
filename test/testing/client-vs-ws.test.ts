/**
 * The test client against independent servers: the `ws` package, and a raw TCP server that
 * answers the handshake by hand and then breaks the protocol on purpose (RFC 6455 §5.1, §8.1…).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { HandshakeError, connect } from '../../src/testing/index.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function wsServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const { port } = wss.address() as net.AddressInfo;
  return { wss, url: `ws://127.0.0.1:${port}` };
}

describe('RFC 6455 client role against ws', () => {
  test('echo of text and binary; ws accepts our masked frames', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    const client = await connect(`${url}/any`);
    client.sendText('hello');
    expect(await client.nextMessage()).toBe('hello');
    client.sendBinary(Buffer.alloc(100_000, 7));
    expect(await client.nextMessage()).toEqual(Buffer.alloc(100_000, 7));
    expect(await client.close(1000, 'done')).toEqual({ code: 1000, reason: 'done' });
  });

  test('ping is answered by ws with the same payload', { timeout: 5000 }, async () => {
    const { url } = await wsServer();
    const client = await connect(url);
    expect((await client.ping('abc')).toString()).toBe('abc');
    await client.close();
  });

  test('the server\'s ping is answered with a pong', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    const pong = new Promise<string>((resolve) => wss.on('connection', (ws) => {
      ws.on('pong', (d) => resolve(d.toString()));
      ws.ping('beat');
    }));
    const client = await connect(url);
    expect(await pong).toBe('beat');
    await client.close();
  });

  test('autoPong: false leaves the server\'s ping unanswered but recorded', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    let pongs = 0;
    wss.on('connection', (ws) => {
      ws.on('pong', () => pongs++);
      ws.ping('beat');
    });
    const client = await connect(url, undefined, { autoPong: false });
    await expect.poll(() => client.pings.length).toBe(1);
    expect(await client.ping('x')).toBeDefined(); // a round trip: any pong would have arrived
    expect(pongs).toBe(0);
    await client.close();
  });

  test('ping rejects with TIMEOUT when the server does not answer', { timeout: 5000 }, async () => {
    const { url } = await wsServer({ autoPong: false });
    const client = await connect(url);
    await expect(client.ping('x', { timeout: 100 })).rejects.toMatchObject({ name: 'TestClientError', code: 'TIMEOUT' });
    await client.close();
  });

  test('subprotocol negotiation: client.protocol is the one ws chose', { timeout: 5000 }, async () => {
    const { url } = await wsServer({ handleProtocols: (offered) => (offered.has('b') ? 'b' : false) });
    const client = await connect(url, '/', { protocols: ['a', 'b'] });
    expect(client.protocol).toBe('b');
    await client.close();
  });

  test('ws closing with 4001 and a reason', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (ws) => ws.close(4001, 'bye now'));
    const client = await connect(url);
    expect(await client.closed).toEqual({ code: 4001, reason: 'bye now' });
  });

  test('ws terminating → 1006; nextMessage rejects with CLOSED', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (ws) => setTimeout(() => ws.terminate(), 20));
    const client = await connect(url);
    await expect(client.nextMessage()).rejects.toMatchObject({ name: 'TestClientError', code: 'CLOSED', closeCode: 1006 });
    expect(await client.closed).toEqual({ code: 1006, reason: '' });
  });

  test('ws refusing in verifyClient with 401 → HandshakeError', { timeout: 5000 }, async () => {
    const { url } = await wsServer({ verifyClient: (_info, cb) => cb(false, 401, 'Unauthorized', { 'X-Why': 'token' }) });
    const error = (await connect(url).catch((e: unknown) => e)) as HandshakeError;
    expect(error).toBeInstanceOf(HandshakeError);
    expect(error.status).toBe(401);
    expect(error.headers['x-why']).toBe('token');
    expect(error.body).toBe('Unauthorized');
  });

  test('headers and origin are sent as given', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    const seen = new Promise<Record<string, unknown>>((resolve) => wss.on('connection', (_ws, req) => resolve(req.headers)));
    const client = await connect(url, '/p?q=1', { headers: { Authorization: 'Bearer t', Cookie: 'a=1' }, origin: 'https://app.example' });
    expect(await seen).toMatchObject({ authorization: 'Bearer t', cookie: 'a=1', origin: 'https://app.example' });
    await client.close();
  });

  test('for await ends when ws closes, after the messages sent before the close', { timeout: 5000 }, async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (ws) => {
      ws.send('one');
      ws.send(Buffer.from('two'));
      ws.send('three');
      ws.close(1000);
    });
    const client = await connect(url);
    const got: Array<string | Buffer> = [];
    for await (const m of client) got.push(m);
    expect(got).toEqual(['one', Buffer.from('two'), 'three']);
    expect((await client.closed).code).toBe(1000);
  });
});

/** A hand-written server: answers the handshake (or not) and then writes whatever the test says. */
async function rawServer(
  answer: (key: string, socket: net.Socket) => void,
): Promise<{ url: string; received: Promise<Buffer> }> {
  let gotAll!: (b: Buffer) => void;
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
      if (!head.includes('\r\n\r\n')) return;
      answered = true;
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
      answer(key, socket);
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
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, received };
}

function accept101(key: string, extra = ''): string {
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;
}

/** The close code in the first (masked, client) frame of `bytes`. */
function firstCloseCode(bytes: Buffer): number {
  expect(bytes[0]).toBe(0x88);
  expect((bytes[1] as number) & 0x80).toBe(0x80);
  const key = bytes.subarray(2, 6);
  return (((bytes[6] as number) ^ (key[0] as number)) << 8) | ((bytes[7] as number) ^ (key[1] as number));
}

describe('a server that breaks the protocol: the client fails the connection (RFC 6455 §7.1.7)', () => {
  const cases: Array<{ name: string; bytes: Buffer; code: number; error: string; maxPayload?: number }> = [
    { name: 'masked frame from the server (§5.1)', bytes: Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x69 ^ 1, 0x69 ^ 2]), code: 1002, error: 'WS_MASKED_FRAME' },
    { name: 'reserved bits without an extension (§5.2)', bytes: Buffer.from([0xc1, 0x01, 0x61]), code: 1002, error: 'WS_RESERVED_BITS' },
    { name: 'unknown opcode (§5.2)', bytes: Buffer.from([0x83, 0x00]), code: 1002, error: 'WS_UNKNOWN_OPCODE' },
    { name: 'invalid UTF-8 in a text message (§8.1)', bytes: Buffer.from([0x81, 0x02, 0xc3, 0x28]), code: 1007, error: 'WS_INVALID_UTF8' },
    { name: 'a message over the client\'s maxPayload', bytes: Buffer.from([0x82, 0x05, 1, 2, 3, 4, 5]), code: 1009, error: 'WS_MESSAGE_TOO_BIG', maxPayload: 4 },
  ];
  for (const c of cases) {
    test(c.name, { timeout: 5000 }, async () => {
      const { url, received } = await rawServer((key, socket) => {
        socket.write(accept101(key));
        socket.write(c.bytes);
      });
      const client = await connect(url, undefined, c.maxPayload === undefined ? {} : { maxPayload: c.maxPayload });
      const closed = await client.closed;
      expect(closed.code).toBe(c.code);
      expect(client.protocolError?.code).toBe(c.error);
      expect(firstCloseCode(await received)).toBe(c.code);
    });
  }

  test('close() gives up on a server that never answers the close: 1006 after closeTimeout', { timeout: 5000 }, async () => {
    const { url } = await rawServer((key, socket) => socket.write(accept101(key)));
    const client = await connect(url, undefined, { closeTimeout: 100 });
    const t0 = performance.now();
    expect(await client.close(1000)).toEqual({ code: 1006, reason: '' });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  test('frames sent right behind the 101 in the same write are delivered', { timeout: 5000 }, async () => {
    const { url } = await rawServer((key, socket) => socket.write(Buffer.concat([Buffer.from(accept101(key)), Buffer.from([0x81, 0x02, 0x68, 0x69])])));
    const client = await connect(url);
    expect(await client.nextMessage()).toBe('hi');
    client.terminate();
  });
});

describe('handshake checks (RFC 6455 §4.1)', () => {
  const cases: Array<{ name: string; answer: (key: string, socket: net.Socket) => void; code: string; status?: number; body?: string; options?: object }> = [
    { name: 'wrong Sec-WebSocket-Accept', answer: (_k, s) => s.write(accept101('not-the-key')), code: 'BAD_ACCEPT', status: 101 },
    { name: 'a subprotocol that was not offered', answer: (k, s) => s.write(accept101(k, 'Sec-WebSocket-Protocol: evil\r\n')), code: 'BAD_PROTOCOL', options: { protocols: ['good'] } },
    { name: 'a subprotocol when none was offered', answer: (k, s) => s.write(accept101(k, 'Sec-WebSocket-Protocol: evil\r\n')), code: 'BAD_PROTOCOL' },
    { name: 'an extension that was not offered', answer: (k, s) => s.write(accept101(k, 'Sec-WebSocket-Extensions: permessage-deflate\r\n')), code: 'BAD_EXTENSION' },
    { name: '101 without Upgrade: websocket', answer: (k, s) => s.write(accept101(k).replace('Upgrade: websocket\r\n', '')), code: 'BAD_UPGRADE' },
    { name: 'not HTTP at all', answer: (_k, s) => s.write('SSH-2.0-OpenSSH\r\n\r\n'), code: 'MALFORMED_RESPONSE', status: 0 },
    { name: 'the server closes without answering', answer: (_k, s) => s.end(), code: 'NO_RESPONSE', status: 0 },
    { name: 'the server never answers', answer: () => {}, code: 'TIMEOUT', status: 0, options: { timeout: 200 } },
    { name: 'a refusal without Content-Length: body read until close', answer: (_k, s) => s.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\r\nslow down'), code: 'REJECTED', status: 429, body: 'slow down' },
    // HandshakeError.body leaves out the one line break that ends the body, and nothing more.
    { name: 'a refusal body ending in \\n: body without it', answer: (_k, s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno!\n'), code: 'REJECTED', status: 403, body: 'no!' },
    { name: 'a refusal body ending in \\r\\n: body without it', answer: (_k, s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nno!\r\n'), code: 'REJECTED', status: 403, body: 'no!' },
    { name: 'a refusal body of two lines and a blank one: only the last line break goes', answer: (_k, s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 8\r\n\r\na\n b\n\n\n'), code: 'REJECTED', status: 400, body: 'a\n b\n\n' },
    { name: 'an empty refusal body: body is empty', answer: (_k, s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'), code: 'REJECTED', status: 403, body: '' },
  ];
  for (const c of cases) {
    test(c.name, { timeout: 5000 }, async () => {
      const { url } = await rawServer(c.answer);
      const error = (await connect(url, undefined, c.options ?? {}).catch((e: unknown) => e)) as HandshakeError;
      expect(error).toBeInstanceOf(HandshakeError);
      expect(error.code).toBe(c.code);
      if (c.status !== undefined) expect(error.status).toBe(c.status);
      if (c.body !== undefined) expect(error.body).toBe(c.body);
    });
  }

  test('connection refused rejects with the socket error', { timeout: 5000 }, async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    await expect(connect(`ws://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('a scheme other than ws:// or wss:// is refused clearly; wss:// to a closed port is a network error (test/testing/wss.test.ts covers TLS)', async () => {
    await expect(connect('ftp://127.0.0.1:1/')).rejects.toThrow(/not a ws:\/\/ or wss:\/\/ URL/);
    await expect(connect('wss://127.0.0.1:1/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
