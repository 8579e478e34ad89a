/** The TestClient API in detail, in memory (no port), plus the I/O-free client handshake. */
import { Buffer } from 'node:buffer';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { acceptKey } from '../../src/handshake/decide.js';
import { checkHandshakeResponse, createClientHandshake, readResponseHead } from '../../src/handshake/client.js';
import { TestClientError, connect } from '../../src/testing/index.js';

class Echo extends Behavior {
  onText(text: string) {
    if (text === 'bye') this.close(1000, 'as asked');
    else this.sendText(text);
  }
  onBinary(bytes: Buffer) {
    this.sendBinary(bytes);
  }
}

const handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent', closeTimeout: 500 });
const open: Array<{ terminate(): void }> = [];
afterEach(() => {
  for (const c of open.splice(0)) c.terminate();
});
async function client(path = '/echo', options = {}) {
  const c = await connect(handler, path, options);
  open.push(c);
  return c;
}

describe('TestClient', () => {
  test('nextMessage keeps messages in order until taken', { timeout: 3000 }, async () => {
    const c = await client();
    c.sendText('1');
    c.sendText('2');
    c.sendBinary(Buffer.from('3'));
    await expect.poll(() => c.buffered).toBe(3);
    expect(await c.nextMessage()).toBe('1');
    expect(await c.nextMessage()).toBe('2');
    expect(await c.nextMessage()).toEqual(Buffer.from('3'));
  });

  test('nextMessage rejects with TIMEOUT after its timeout', { timeout: 3000 }, async () => {
    const c = await client();
    const error = await c.nextMessage({ timeout: 50 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TestClientError);
    expect(error).toMatchObject({ code: 'TIMEOUT', message: 'no message within 50 ms' });
    // the waiter is gone: the next message goes to the next caller
    c.sendText('later');
    expect(await c.nextMessage()).toBe('later');
  });

  test('nextMessage rejects with CLOSED (code and reason) when the connection closes', { timeout: 3000 }, async () => {
    const c = await client();
    const waiting = c.nextMessage({ timeout: 2000 }).catch((e: unknown) => e);
    c.sendText('bye');
    expect(await waiting).toMatchObject({ code: 'CLOSED', closeCode: 1000, closeReason: 'as asked' });
    await expect(c.nextMessage()).rejects.toThrow('the connection closed (1000 "as asked") before a message arrived');
  });

  test('for await yields messages and ends on close', { timeout: 3000 }, async () => {
    const c = await client();
    c.sendText('a');
    c.sendText('b');
    c.sendText('bye');
    const seen: unknown[] = [];
    for await (const m of c) seen.push(m);
    expect(seen).toEqual(['a', 'b']);
  });

  test('break out of for await leaves the connection open', { timeout: 3000 }, async () => {
    const c = await client();
    c.sendText('a');
    for await (const m of c) {
      expect(m).toBe('a');
      break;
    }
    expect(c.state).toBe('open');
    c.sendText('b');
    expect(await c.nextMessage()).toBe('b');
  });

  test('sending after close() returns false; close() twice returns the same result', { timeout: 3000 }, async () => {
    const c = await client();
    const closing = c.close(4000, 'done');
    expect(c.state).toBe('closing');
    expect(c.sendText('late')).toBe(false);
    expect(c.send(Buffer.from('late'))).toBe(false);
    expect(await closing).toEqual({ code: 4000, reason: 'done' });
    expect(await c.close()).toEqual({ code: 4000, reason: 'done' });
    await expect(c.ping()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('close() with a code that may not be sent throws RangeError', { timeout: 3000 }, async () => {
    const c = await client();
    expect(() => c.close(1006)).toThrow(RangeError);
    expect(() => c.close(1000, 'x'.repeat(124))).toThrow(RangeError);
    expect(() => c.ping('x'.repeat(126))).toThrow(RangeError);
    expect(c.state).toBe('open');
  });

  test('ping matches its pong by payload; an unsolicited pong is ignored', { timeout: 3000 }, async () => {
    const c = await client();
    // The server answers pings itself; a pong for another payload does not count.
    expect((await c.ping(new Uint8Array([1, 2]))).equals(Buffer.from([1, 2]))).toBe(true);
    c.sendFrame({ opcode: 10, payload: 'unsolicited' }); // allowed by RFC 6455 §5.5.3
    c.sendText('still fine');
    expect(await c.nextMessage()).toBe('still fine');
  });

  test('sendRaw garbage → the server fails the connection with 1002', { timeout: 3000 }, async () => {
    const c = await client();
    c.sendRaw(Buffer.from([0x83, 0x80, 0, 0, 0, 0])); // opcode 3 (reserved), masked, empty
    expect(await c.closed).toEqual({ code: 1002, reason: expect.stringContaining('opcode') });
  });

  test('a raw close frame counts as ours: no second close is sent', { timeout: 3000 }, async () => {
    const c = await client();
    const payload = Buffer.from([0x03, 0xe8, 0x68, 0x69]); // 1000 "hi"
    c.sendFrame({ opcode: 8, payload });
    expect(await c.closed).toEqual({ code: 1000, reason: 'hi' });
  });

  test('await using closes at the end of the scope', { timeout: 3000 }, async () => {
    let closed: Promise<unknown> | undefined;
    {
      await using c = await client();
      closed = c.closed;
    }
    expect(await closed).toEqual({ code: 1000, reason: '' });
  });
});

describe('in-memory transport', () => {
  test('one private server per handler, attached once, re-attached after detach()', { timeout: 3000 }, async () => {
    const h = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
    const a = await connect(h, '/echo');
    const b = await connect(h, '/echo');
    expect(h.clients.size).toBe(2);
    h.detach();
    const c = await connect(h, '/echo');
    c.sendText('ok');
    expect(await c.nextMessage()).toBe('ok');
    for (const x of [a, b, c]) await x.close();
    expect(h.clients.size).toBe(0);
  });

  test('the behavior sees the request as Node parsed it', { timeout: 3000 }, async () => {
    let seen: Behavior | undefined;
    class Look extends Behavior {
      static override keepRequest = true;
      onOpen() {
        seen = this;
      }
    }
    const h = createWebSocketHandler({ '/look': Look }, { logLevel: 'silent' });
    const c = await connect(h, '/look?x=1', { headers: { 'X-Test': 'yes' }, origin: 'https://o.example' });
    expect(seen?.headers['x-test']).toBe('yes');
    expect(seen?.origin).toBe('https://o.example');
    expect(seen?.query.get('x')).toBe('1');
    expect(seen?.request.headers.host).toBe('localhost');
    await c.close();
  });

  test('a handler that is shutting down answers 503', { timeout: 3000 }, async () => {
    const h = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
    await h.close();
    await expect(connect(h, '/echo')).rejects.toMatchObject({ name: 'HandshakeError', status: 503 });
  });
});

describe('client handshake, I/O-free (RFC 6455 §4.1)', () => {
  test('the request carries every required header and a fresh 16-byte key', () => {
    const a = createClientHandshake({ host: 'h:1', path: '/p?q', protocols: ['x', 'y'], origin: 'https://o' });
    const b = createClientHandshake({ host: 'h:1', path: '/p?q' });
    expect(a.request).toBe(
      `GET /p?q HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${a.key}\r\nSec-WebSocket-Version: 13\r\nOrigin: https://o\r\nSec-WebSocket-Protocol: x, y\r\n\r\n`,
    );
    expect(Buffer.from(a.key as string, 'base64')).toHaveLength(16);
    expect(a.key).not.toBe(b.key);
  });

  test('headers replace defaults case-insensitively; null removes one; bad input throws', () => {
    const h = createClientHandshake({ host: 'h', path: '/', headers: { 'sec-websocket-version': '8', Upgrade: null, 'X-Many': ['1', '2'] } });
    expect(h.request).toContain('sec-websocket-version: 8\r\n');
    expect(h.request).not.toContain('Upgrade:');
    expect(h.request).toContain('X-Many: 1\r\nX-Many: 2\r\n');
    expect(() => createClientHandshake({ host: 'h', path: '/', headers: { 'X-Evil': 'a\r\nInjected: 1' } })).toThrow(TypeError);
    expect(() => createClientHandshake({ host: 'h', path: '/', headers: { 'Bad Name': 'x' } })).toThrow(TypeError);
    expect(() => createClientHandshake({ host: 'h', path: 'no-slash' })).toThrow(TypeError);
    expect(() => createClientHandshake({ host: 'h', path: '/', protocols: ['a b'] })).toThrow(TypeError);
  });

  test('readResponseHead: incomplete, malformed, repeated headers, and the head length', () => {
    const bytes = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nA: 1\r\na: 2\r\nB:x \r\n\r\nFRAMES');
    expect(readResponseHead(bytes.subarray(0, 20))).toEqual({ kind: 'incomplete' });
    const head = readResponseHead(bytes);
    expect(head).toMatchObject({ kind: 'head', status: 101, statusText: 'Switching Protocols', headers: { a: ['1', '2'], b: 'x' } });
    expect(bytes.subarray(head.kind === 'head' ? head.length : 0).toString()).toBe('FRAMES');
    expect(readResponseHead(Buffer.from('HTTP/1.1 20 OK\r\n\r\n')).kind).toBe('malformed');
    expect(readResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nno colon\r\n\r\n')).kind).toBe('malformed');
    expect(readResponseHead(Buffer.alloc(20_000, 0x61)).kind).toBe('malformed');
  });

  test('checkHandshakeResponse: accept key, protocol offered, no extensions', () => {
    const hs = createClientHandshake({ host: 'h', path: '/', protocols: ['chat'] });
    const ok = { status: 101, statusText: '', length: 0, headers: { upgrade: 'WebSocket', connection: 'upgrade', 'sec-websocket-accept': acceptKey(hs.key as string) } };
    expect(checkHandshakeResponse(ok, hs)).toEqual({ ok: true, protocol: undefined, extensions: undefined, perMessageDeflate: null });
    expect(checkHandshakeResponse({ ...ok, headers: { ...ok.headers, 'sec-websocket-protocol': 'chat' } }, hs)).toMatchObject({ ok: true, protocol: 'chat' });
    expect(checkHandshakeResponse({ ...ok, headers: { ...ok.headers, 'sec-websocket-protocol': 'other' } }, hs)).toMatchObject({ ok: false, failure: 'BAD_PROTOCOL' });
    expect(checkHandshakeResponse({ ...ok, headers: { ...ok.headers, 'sec-websocket-accept': 'x' } }, hs)).toMatchObject({ ok: false, failure: 'BAD_ACCEPT' });
    expect(checkHandshakeResponse({ ...ok, headers: { ...ok.headers, connection: 'close' } }, hs)).toMatchObject({ ok: false, failure: 'BAD_CONNECTION' });
    expect(checkHandshakeResponse({ ...ok, status: 200 }, hs)).toMatchObject({ ok: false, failure: 'REJECTED' });
  });
});
