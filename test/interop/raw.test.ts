/**
 * Raw-socket peers (test/helpers/raw.ts, written apart from src/) against a real server:
 * protocol violations close with 1002 (RFC 6455 §7.1.7: fail the connection), garbage after the
 * handshake, resets mid-frame and mid-handshake, and clients that stall mid-frame.
 */
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Behavior, ProtocolError } from '../../src/index.js';
import { RawClient, closePayload, encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, sleep, startServer, waitFor } from '../helpers/server.js';

interface Log {
  constructed: number;
  opens: number;
  closes: { code: number; reason: string }[];
  errors: { code: string; closeCode: number }[];
  messages: (string | Buffer)[];
}
const log: Log = { constructed: 0, opens: 0, closes: [], errors: [], messages: [] };

function resetLog(): void {
  log.constructed = 0;
  log.opens = 0;
  log.closes.length = 0;
  log.errors.length = 0;
  log.messages.length = 0;
}

class Echo extends Behavior {
  constructor() {
    super();
    log.constructed++;
  }
  override onOpen(): void {
    log.opens++;
  }
  override onText(text: string): void {
    log.messages.push(text);
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    log.messages.push(bytes);
    this.sendBinary(bytes);
  }
  override onError(error: Error): void {
    if (error instanceof ProtocolError) log.errors.push({ code: error.code, closeCode: error.closeCode });
  }
  override onClose(code: number, reason: string): void {
    log.closes.push({ code, reason });
  }
}

class SlowVerify extends Echo {
  override async verify(): Promise<void> {
    await sleep(150);
  }
}

const TEXT = 0x1;
const BINARY = 0x2;
const CONT = 0x0;
const PING = 0x9;

let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({ '/echo': Echo, '/slow': SlowVerify });
});

afterAll(async () => {
  await srv?.close();
});

beforeEach(async () => {
  await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients from the previous test to leave');
  resetLog();
});

/** A fresh connection still gets an echo: the server is up and unharmed. */
async function serverStillServes(): Promise<void> {
  const c = await RawClient.connect(srv.port, '/echo');
  c.send(TEXT, 'still alive?');
  const f = await c.nextFrame();
  expect(f.opcode).toBe(TEXT);
  expect(f.payload.toString()).toBe('still alive?');
  const closed = await c.close(1000, 'ok');
  expect(closed.code).toBe(1000);
  expect(closed.tcpClosed).toBe(true);
}

describe('protocol violations fail the connection with 1002 (RFC 6455 §7.1.7)', () => {
  const cases: [string, string, (c: RawClient) => void][] = [
    ['an unmasked client frame (§5.1)', 'WS_UNMASKED_FRAME', (c) => c.send(TEXT, 'hi', { mask: false })],
    ['a reserved opcode 0x3 (§5.2)', 'WS_UNKNOWN_OPCODE', (c) => c.send(0x3, 'x')],
    ['a reserved control opcode 0xB (§5.2)', 'WS_UNKNOWN_OPCODE', (c) => c.send(0xb, '')],
    ['RSV1 set with no extension negotiated (§5.2)', 'WS_RESERVED_BITS', (c) => c.send(TEXT, 'x', { rsv: 4 })],
    ['a fragmented ping (§5.5)', 'WS_CONTROL_FRAGMENTED', (c) => c.send(PING, 'p', { fin: false })],
    ['a 126-byte ping (§5.5)', 'WS_CONTROL_TOO_LONG', (c) => c.send(PING, Buffer.alloc(126))],
    ['a continuation with no message open (§5.4)', 'WS_UNEXPECTED_CONTINUATION', (c) => c.send(CONT, 'x')],
    [
      'a new data frame inside a fragmented message (§5.4)',
      'WS_EXPECTED_CONTINUATION',
      (c) => {
        c.send(TEXT, 'a', { fin: false });
        c.send(BINARY, 'b');
      },
    ],
    ['a close frame with a 1-byte payload (§5.5.1)', 'WS_INVALID_CLOSE_PAYLOAD', (c) => c.send(0x8, Buffer.from([3]))],
    ['a close frame with code 1005 on the wire (§7.4.1)', 'WS_INVALID_CLOSE_CODE', (c) => c.send(0x8, closePayload(1005))],
  ];

  for (const [name, code, act] of cases) {
    it(`${name} → close 1002 at the client, TCP closed, onClose 1002 (${code})`, async () => {
      const c = await RawClient.connect(srv.port, '/echo');
      act(c);
      const closed = await c.expectClose();
      expect(closed.code).toBe(1002);
      expect(closed.before).toEqual([]);
      expect(closed.tcpClosed).toBe(true);
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]?.code).toBe(1002);
      expect(log.errors).toEqual([{ code, closeCode: 1002 }]);
      expect(srv.srv.handler.clients.size).toBe(0);
    });
  }

  it('invalid UTF-8 in a text message → 1007, not 1002', async () => {
    const c = await RawClient.connect(srv.port, '/echo');
    c.send(TEXT, Buffer.from([0x68, 0xc3, 0x28]));
    const closed = await c.expectClose();
    expect(closed.code).toBe(1007);
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]?.code).toBe(1007);
  });
});

describe('garbage after the handshake', () => {
  const garbage: [string, Buffer][] = [
    ['an HTTP request line', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['0xff bytes', Buffer.alloc(64, 0xff)],
    ['plain text', Buffer.from('hello, is this thing on?\n')],
  ];
  for (const [name, bytes] of garbage) {
    it(`${name} → close 1002 and TCP closed`, async () => {
      const c = await RawClient.connect(srv.port, '/echo');
      // One good message first: garbage arrives on a working connection.
      c.send(TEXT, 'ok');
      expect((await c.nextFrame()).payload.toString()).toBe('ok');
      c.sendRaw(bytes);
      const closed = await c.expectClose();
      expect(closed.code).toBe(1002);
      expect(closed.tcpClosed).toBe(true);
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]?.code).toBe(1002);
      expect(log.messages).toEqual(['ok']);
    });
  }

  it('garbage glued to the handshake request (same packet) → 1002', async () => {
    const socket = net.connect(srv.port, '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/echo')), Buffer.alloc(8, 0xff)]));
    await Promise.race([closed, sleep(5000)]);
    expect(socket.destroyed).toBe(true);
    const all = Buffer.concat(chunks);
    const headEnd = all.indexOf('\r\n\r\n');
    expect(all.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
    const frame = all.subarray(headEnd + 4);
    expect(frame[0]).toBe(0x88); // FIN + close
    expect(frame.readUInt16BE(2)).toBe(1002);
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]?.code).toBe(1002);
  });

  it('garbage instead of an HTTP request → 400 from the HTTP server, which stays up', async () => {
    const answer = await rawRequest(srv.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    expect(answer.status).toBe(400);
    expect(answer.closed).toBe(true);
    expect(log.constructed).toBe(0);
    await serverStillServes();
  });
});

describe('resets', () => {
  it('client reset mid-frame → onClose 1006, client set empties, server serves others', async () => {
    const c = await RawClient.connect(srv.port, '/echo');
    const frame = encodeClientFrame(BINARY, Buffer.alloc(4096, 7));
    c.sendRaw(frame.subarray(0, 1000));
    await sleep(50);
    expect(srv.srv.handler.clients.size).toBe(1);
    c.destroy();
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]).toEqual({ code: 1006, reason: '' });
    expect(log.messages).toEqual([]);
    expect(srv.srv.handler.clients.size).toBe(0);
    await serverStillServes();
  });

  it('client reset mid-header (2 of 8 header bytes) → onClose 1006', async () => {
    const c = await RawClient.connect(srv.port, '/echo');
    c.sendRaw(encodeClientFrame(BINARY, Buffer.alloc(200)).subarray(0, 2));
    await sleep(30);
    c.destroy();
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]?.code).toBe(1006);
  });

  it('half a handshake request, then a reset → no behavior is built, server serves others', async () => {
    const request = upgradeRequest('/echo');
    for (const cut of [5, Math.floor(request.length / 2), request.length - 2]) {
      const socket = net.connect(srv.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(request.slice(0, cut));
      await sleep(20);
      socket.destroy();
    }
    await sleep(50);
    expect(log.constructed).toBe(0);
    expect(srv.srv.handler.clients.size).toBe(0);
    await serverStillServes();
  });

  it('a full request then a reset during an async verify() → onOpen never runs', async () => {
    const socket = net.connect(srv.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(upgradeRequest('/slow'));
    await waitFor(() => log.constructed === 1, 5000, 'the upgrade to reach the handler');
    socket.destroy();
    await sleep(300); // past the 150 ms verify
    expect(log.opens).toBe(0);
    expect(log.closes).toEqual([]);
    expect(srv.srv.handler.clients.size).toBe(0);
    await serverStillServes();
  });

  it('a full request then a reset before reading the 101 → any connection opened is closed 1006', async () => {
    for (let i = 0; i < 10; i++) {
      const socket = net.connect(srv.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(upgradeRequest('/echo'));
      if (i % 2 === 0) await new Promise((r) => setImmediate(r));
      socket.destroy();
    }
    await waitFor(() => log.closes.length === log.opens, 5000, 'every opened connection to close');
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'the client set to empty');
    for (const c of log.closes) expect(c.code).toBe(1006);
    await serverStillServes();
  });
});

describe('stalls', () => {
  it('a client stalled mid-frame does not block others, and its message completes when it resumes', async () => {
    const stalled = await RawClient.connect(srv.port, '/echo');
    const payload = Buffer.from('x'.repeat(300) + '…end');
    const frame = encodeClientFrame(TEXT, payload);
    stalled.sendRaw(frame.subarray(0, 7)); // header + part of the mask key
    await sleep(20);
    stalled.sendRaw(frame.subarray(7, 150)); // part of the payload
    // Meanwhile another client is served.
    const other = await RawClient.connect(srv.port, '/echo');
    for (let i = 0; i < 20; i++) {
      other.send(TEXT, `m${i}`);
      expect((await other.nextFrame()).payload.toString()).toBe(`m${i}`);
    }
    await sleep(200);
    expect(stalled.pending()).toEqual([]);
    expect(stalled.tcpClosed).toBe(false);
    expect(srv.srv.handler.clients.size).toBe(2);
    // The rest arrives: the message is whole.
    stalled.sendRaw(frame.subarray(150));
    const f = await stalled.nextFrame();
    expect(f.opcode).toBe(TEXT);
    expect(f.payload.equals(payload)).toBe(true);
    expect((await stalled.close(1000)).code).toBe(1000);
    expect((await other.close(1000)).code).toBe(1000);
  });

  it('a client stalled mid-frame gets 1001 on shutdown and is destroyed after the timeout; close() resolves', async () => {
    const own = await startServer({ '/echo': Echo });
    try {
      const stalled = await RawClient.connect(own.port, '/echo');
      stalled.sendRaw(encodeClientFrame(BINARY, Buffer.alloc(1000)).subarray(0, 500));
      const halfHandshake = net.connect(own.port, '127.0.0.1');
      halfHandshake.on('error', () => {});
      halfHandshake.write(upgradeRequest('/echo').slice(0, 30));
      await sleep(50);
      const started = Date.now();
      await own.srv.handler.close({ timeout: 500 });
      expect(Date.now() - started).toBeLessThan(3000);
      const f = await stalled.nextFrame(2000);
      expect(f.opcode).toBe(0x8);
      expect(f.payload.readUInt16BE(0)).toBe(1001);
      expect(await stalled.waitClosed(3000)).toBe(true);
      expect(own.srv.handler.clients.size).toBe(0);
      halfHandshake.destroy();
    } finally {
      await own.close();
    }
  });
});
