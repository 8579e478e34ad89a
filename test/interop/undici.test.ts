/**
 * Interop with Node's built-in WebSocket client (undici, behind --experimental-websocket on
 * Node 20): data round trips, size limits, server pings, every close path, subprotocols,
 * verify() rejections, origins, query and params. Real sockets on 127.0.0.1.
 *
 * Node 20 quirk: after a non-101 answer undici fires `error` and never `close` (readyState stays
 * CONNECTING), so rejected handshakes are asserted on the error event.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AsyncAuth, Auth, Control, Echo, Files, Info, Protocols, Refuse, log, resetLog } from './routes.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

// The server side (Echo, Control, …) lives in ./routes.ts, shared with the other interop suite.

// ---- client side --------------------------------------------------------------------------

interface Closed {
  code: number;
  reason: string;
  wasClean: boolean;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A thin promise wrapper over the global (undici) WebSocket. */
class UClient {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  /** Resolves when `error` fires (undici's only signal for a refused handshake on Node 20). */
  readonly errored: Promise<true>;
  private readonly queue: (string | Buffer)[] = [];
  private waiters: (() => void)[] = [];

  constructor(url: string, protocols?: string | string[]) {
    this.ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    this.ws.binaryType = 'arraybuffer';
    this.ws.addEventListener('message', (event) => {
      const data: unknown = event.data;
      this.queue.push(typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer));
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener('close', (event) => {
        resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
        this.wake();
      });
    });
    this.errored = new Promise((resolve) => {
      this.ws.addEventListener('error', () => resolve(true));
    });
  }

  static async open(url: string, protocols?: string | string[]): Promise<UClient> {
    const c = new UClient(url, protocols);
    await within(
      new Promise<void>((resolve, reject) => {
        c.ws.addEventListener('open', () => resolve());
        c.ws.addEventListener('error', () => reject(new Error(`undici could not open ${url}`)));
      }),
      5000,
      `open ${url}`,
    );
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async next(timeout = 5000): Promise<string | Buffer> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) return m;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed before a message arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async roundTrip(data: string | Uint8Array): Promise<string | Buffer> {
    this.ws.send(data);
    return this.next();
  }

  waitClosed(timeout = 5000): Promise<Closed> {
    return within(this.closed, timeout, 'the close event');
  }
}

/** A rejected handshake: undici fires `error`; the promise rejects if it opens instead. */
async function expectRefused(url: string, protocols?: string | string[]): Promise<UClient> {
  const c = new UClient(url, protocols);
  const opened = new Promise<'open'>((resolve) => c.ws.addEventListener('open', () => resolve('open')));
  const outcome = await within(Promise.race([c.errored.then(() => 'error' as const), opened]), 5000, 'the refusal');
  expect(outcome).toBe('error');
  expect(c.ws.readyState).not.toBe(WebSocket.OPEN);
  return c;
}

const MiB = 1 << 20;

// ---- tests --------------------------------------------------------------------------------

let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({
    '/echo': Echo,
    '/control': Control,
    '/proto': Protocols,
    '/auth': Auth,
    '/async-auth': AsyncAuth,
    '/refuse': Refuse,
    '/rooms/:room': Info,
    '/files/*': Files,
  });
});

afterAll(async () => {
  await srv?.close();
});

beforeEach(async () => {
  // Each test starts from an idle server: earlier connections are gone and their onClose ran.
  await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients from the previous test to leave');
  resetLog();
});

describe('undici: data round trips on an echo route', () => {
  it('echoes text, binary, empty text and empty binary, each with its type', async () => {
    const c = await UClient.open(srv.url('/echo'));
    expect(await c.roundTrip('hello')).toBe('hello');
    const bin = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    const gotBin = await c.roundTrip(new Uint8Array(bin));
    expect(Buffer.isBuffer(gotBin)).toBe(true);
    expect(gotBin).toEqual(bin);
    expect(await c.roundTrip('')).toBe('');
    const emptyBin = await c.roundTrip(new Uint8Array(0));
    expect(Buffer.isBuffer(emptyBin)).toBe(true);
    expect((emptyBin as Buffer).length).toBe(0);
    // The server saw the same values (a symmetric encode/decode bug would not cancel out).
    expect(log.texts).toEqual(['hello', '']);
    expect(log.binaries.map((b) => b.toString('hex'))).toEqual([bin.toString('hex'), '']);
    c.ws.close();
    await c.waitClosed();
  });

  it('keeps non-ASCII text intact (emoji, CJK, astral plane, combining marks)', async () => {
    const samples = ['🎉👍🏽👨‍👩‍👧', '你好，世界', '日本語テキスト', '한국어', '𝄞 music', 'e\u0301 é', 'Привет', '\u0000nul'];
    const c = await UClient.open(srv.url('/echo'));
    for (const s of samples) expect(await c.roundTrip(s)).toBe(s);
    expect(log.texts).toEqual(samples);
    c.ws.close(1000);
    await c.waitClosed();
  });

  it('passes a 1 MiB - 1 byte message in both directions with the default maxPayload', async () => {
    expect(srv.srv.handler.options.maxPayload).toBe(MiB);
    const c = await UClient.open(srv.url('/echo'));
    const text = 'a'.repeat(MiB - 1);
    expect(await c.roundTrip(text)).toBe(text);
    const bin = Buffer.alloc(MiB - 1);
    for (let i = 0; i < bin.length; i++) bin[i] = i % 251;
    const got = await c.roundTrip(new Uint8Array(bin));
    expect(Buffer.isBuffer(got)).toBe(true);
    expect((got as Buffer).equals(bin)).toBe(true);
    c.ws.close();
    await c.waitClosed();
  });

  it('passes exactly maxPayload (1 MiB)', async () => {
    const c = await UClient.open(srv.url('/echo'));
    const got = await c.roundTrip(new Uint8Array(MiB));
    expect((got as Buffer).length).toBe(MiB);
    c.ws.close();
    await c.waitClosed();
  });
});

describe('undici: messages over maxPayload close with 1009', () => {
  for (const [label, size] of [
    ['1 MiB + 1 byte', MiB + 1],
    ['2 MiB', 2 * MiB],
    ['16 MiB', 16 * MiB],
  ] as const) {
    it(`${label} binary message → close 1009 at the client, onClose 1009 on the server`, async () => {
      const c = await UClient.open(srv.url('/echo'));
      c.ws.send(new Uint8Array(size));
      const closed = await c.waitClosed(10_000);
      expect(closed.code).toBe(1009);
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]?.code).toBe(1009);
      expect(log.binaries).toEqual([]);
    });
  }

  it('a 2 MiB text message → 1009 too', async () => {
    const c = await UClient.open(srv.url('/echo'));
    c.ws.send('t'.repeat(2 * MiB));
    expect((await c.waitClosed(10_000)).code).toBe(1009);
    expect(log.texts).toEqual([]);
  });
});

describe('undici: pings', () => {
  it('answers a server-initiated ping: onPong sees its payload', async () => {
    const c = await UClient.open(srv.url('/control'));
    c.ws.send('ping');
    expect(await c.next()).toBe('pong:x');
    expect(log.pongs).toEqual(['x']);
    c.ws.close();
    await c.waitClosed();
  });
});

describe('undici: every close path', () => {
  it('client closes 1000 with a reason → server onClose(1000, reason), client sees the echo', async () => {
    const c = await UClient.open(srv.url('/echo'));
    expect(await c.roundTrip('before')).toBe('before');
    c.ws.close(1000, 'done here');
    const closed = await c.waitClosed();
    expect(closed).toEqual({ code: 1000, reason: 'done here', wasClean: true });
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]).toEqual({ tag: 'echo', code: 1000, reason: 'done here' });
  });

  it('client closes 4000 with a non-ASCII reason → both sides see it', async () => {
    const c = await UClient.open(srv.url('/echo'));
    c.ws.close(4000, 'au revoir 👋');
    expect(await c.waitClosed()).toEqual({ code: 4000, reason: 'au revoir 👋', wasClean: true });
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]).toMatchObject({ code: 4000, reason: 'au revoir 👋' });
  });

  it('server closes with 4001 "bye" → client sees 4001/bye cleanly', async () => {
    const c = await UClient.open(srv.url('/control'));
    c.ws.send('close');
    const closed = await c.waitClosed();
    expect(closed).toEqual({ code: 4001, reason: 'bye', wasClean: true });
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    // onClose reports the peer's close frame: undici echoes the code (its reason is its own).
    expect(log.closes[0]).toMatchObject({ tag: 'control', code: 4001 });
  });

  it('server terminate() → client sees 1006, server onClose 1006', async () => {
    const c = await UClient.open(srv.url('/control'));
    c.ws.send('terminate');
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1006);
    expect(closed.wasClean).toBe(false);
    await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
    expect(log.closes[0]?.code).toBe(1006);
  });

  it('client process killed (TCP dropped, no close frame) → server onClose 1006', async () => {
    // undici has no way to drop TCP, so the client runs in its own process and is SIGKILLed.
    const script = `
      const ws = new WebSocket(process.argv[1]);
      ws.onopen = () => ws.send('hi');
      ws.onmessage = (e) => { process.stdout.write('echo:' + e.data + '\\n'); };
      setTimeout(() => process.exit(3), 15000);
    `;
    const child = spawn(process.execPath, ['--experimental-websocket', '-e', script, srv.url('/echo')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      await within(
        new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('echo:hi\n')) resolve();
          });
          child.once('exit', (code) => reject(new Error(`client exited early with ${String(code)}`)));
        }),
        10_000,
        'the child client to get its echo',
      );
      expect(srv.srv.handler.clients.size).toBe(1);
      child.kill('SIGKILL');
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]).toEqual({ tag: 'echo', code: 1006, reason: '' });
      expect(srv.srv.handler.clients.size).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('handler.close() → client sees 1001 going away (a separate server)', async () => {
    const own = await startServer({ '/echo': Echo });
    try {
      const c = await UClient.open(own.url('/echo'));
      const done = own.srv.handler.close({ reason: 'restart' });
      expect(await c.waitClosed()).toEqual({ code: 1001, reason: 'restart', wasClean: true });
      await within(done, 5000, 'handler.close()');
      // New upgrades are refused while (and after) shutting down.
      await expectRefused(own.url('/echo'));
    } finally {
      await own.close();
    }
  });
});

describe('undici: subprotocol negotiation (route protocols = [v2, v1])', () => {
  it("client offers ['v1', 'v2'] → the server's preference 'v2' is chosen", async () => {
    const c = await UClient.open(srv.url('/proto'), ['v1', 'v2']);
    expect(c.ws.protocol).toBe('v2');
    expect(await c.next()).toBe('protocol:v2');
    c.ws.close();
    await c.waitClosed();
  });

  it("client offers only 'v1' → 'v1'", async () => {
    const c = await UClient.open(srv.url('/proto'), 'v1');
    expect(c.ws.protocol).toBe('v1');
    expect(await c.next()).toBe('protocol:v1');
    c.ws.close();
    await c.waitClosed();
  });

  it('client offers none of them → refused (undici error event), no connection opened', async () => {
    await expectRefused(srv.url('/proto'), ['v3', 'chat']);
    await expectRefused(srv.url('/proto'));
    expect(log.opens).toEqual([]);
  });
});

describe('undici: handshake refusals', () => {
  it('verify() throwing HandshakeRejection(401) → error event, onOpen never runs', async () => {
    await expectRefused(srv.url('/auth'));
    await expectRefused(srv.url('/async-auth'));
    expect(log.opens).toEqual([]);
    expect(srv.srv.handler.clients.size).toBe(0);
  });

  it('verify() returning false → refused', async () => {
    await expectRefused(srv.url('/refuse'));
    expect(log.opens).toEqual([]);
  });

  it('an unknown path → refused', async () => {
    await expectRefused(srv.url('/nowhere'));
  });

  it('origin allowlist: undici sends no Origin header, and a list lets such clients in', async () => {
    const own = await startServer({ '/rooms/:room': Info }, { origins: ['https://app.example'] });
    try {
      const c = await UClient.open(own.url('/rooms/r1'));
      const info = JSON.parse(String(await c.next())) as { origin: string | null };
      expect(info.origin).toBeNull();
      c.ws.close();
      await c.waitClosed();
    } finally {
      await own.close();
    }
  });

  it('origin policy as a function that demands an Origin → undici is refused', async () => {
    const own = await startServer({ '/echo': Echo }, { origins: (origin) => origin === 'https://app.example' });
    try {
      await expectRefused(own.url('/echo'));
    } finally {
      await own.close();
    }
  });
});

describe('undici: query string and route params reach the behavior', () => {
  it('decodes :params and parses the query', async () => {
    const c = await UClient.open(srv.url('/rooms/caf%C3%A9?x=1&emoji=%F0%9F%8E%89&x2=a+b'));
    const info = JSON.parse(String(await c.next())) as { params: Record<string, string>; query: Record<string, string>; url: string };
    expect(info.params).toEqual({ room: 'café' });
    expect(info.query).toEqual({ x: '1', emoji: '🎉', x2: 'a b' });
    expect(info.url).toBe('/rooms/caf%C3%A9?x=1&emoji=%F0%9F%8E%89&x2=a+b');
    c.ws.close();
    await c.waitClosed();
  });

  it("a wildcard route puts the rest under '*'", async () => {
    const c = await UClient.open(srv.url('/files/a/b/c.txt?v=2'));
    const info = JSON.parse(String(await c.next())) as { params: Record<string, string>; query: Record<string, string> };
    expect(info.params['*']).toBe('a/b/c.txt');
    expect(info.query).toEqual({ v: '2' });
    c.ws.close();
    await c.waitClosed();
  });
});

describe('undici: handler-level API', () => {
  it('clients tracks open connections; broadcast reaches each one once', async () => {
    const a = await UClient.open(srv.url('/echo'));
    const b = await UClient.open(srv.url('/echo'));
    const p = await UClient.open(srv.url('/proto'), 'v1');
    expect(await p.next()).toBe('protocol:v1');
    expect(srv.srv.handler.clients.size).toBe(3);
    expect(srv.srv.handler.broadcast('to all')).toBe(3);
    expect(await a.next()).toBe('to all');
    expect(await b.next()).toBe('to all');
    expect(await p.next()).toBe('to all');
    expect(srv.srv.handler.broadcast(new Uint8Array([9, 8, 7]), { route: '/echo' })).toBe(2);
    expect(await a.next()).toEqual(Buffer.from([9, 8, 7]));
    expect(await b.next()).toEqual(Buffer.from([9, 8, 7]));
    // p is on another route: nothing more for it (an echo proves the queue is in order).
    expect(await p.roundTrip('mine')).toBe('mine');
    for (const c of [a, b, p]) c.ws.close();
    await Promise.all([a, b, p].map((c) => c.waitClosed()));
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients to leave');
  });
});
