/**
 * Interop with Python `websockets` 10.4 (Debian's python3-websockets, run with /usr/bin/python3):
 * data round trips, size limits, fragmented messages, pings both ways, every close path,
 * subprotocols, verify() and origin refusals with their HTTP status, query and params.
 *
 * Each test runs test/interop/ws_client.py with a URL and a scenario name; the script prints JSON
 * lines and the test asserts on them and on what the server's behaviors recorded.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AsyncAuth, Auth, Control, Echo, Info, Protocols, Refuse, log, resetLog } from './routes.js';
import { PYTHON, PythonScript, type Json, hasPython } from '../helpers/python.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

const SCRIPT = fileURLToPath(new URL('./ws_client.py', import.meta.url));
const MISSING = `Python interop tests need Debian's python3-websockets for ${PYTHON} (apt-get install -y python3-websockets)`;

// ---- the Python client --------------------------------------------------------------------

interface PyMessage {
  type: 'text' | 'binary';
  text?: string;
  b64?: string;
}

class PyRun extends PythonScript {
  private waiters: (() => void)[] = [];

  constructor(url: string, scenario: string, opts: Json) {
    super(SCRIPT, url, scenario, opts, 25_000);
  }

  protected override changed(): void {
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for a line with `key: true` (e.g. `ready`). */
  async line(key: string, timeout = 10_000): Promise<Json> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = this.lines.find((l) => l[key] === true);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) throw new Error(`python exited (${this.child.exitCode}) without "${key}": ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`python printed no "${key}" line within ${timeout} ms: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for exit 0 and returns the final (`done`) line. */
  async result(): Promise<Json> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`python exited with ${String(code)}:\n${this.stderr}`);
    const done = this.lines.find((l) => l.done === true);
    if (done === undefined) throw new Error(`python printed no result: ${JSON.stringify(this.lines)}`);
    return done;
  }
}

function python(url: string, scenario: string, opts: Json = {}): Promise<Json> {
  return new PyRun(url, scenario, opts).result();
}

const text = (s: string): PyMessage => ({ type: 'text', text: s });
const binary = (b: Buffer): PyMessage => ({ type: 'binary', b64: b.toString('base64') });

// The server side (Echo, Control, …) lives in ./routes.ts, shared with the other interop suite.

const MiB = 1 << 20;

// ---- tests --------------------------------------------------------------------------------

it('python3-websockets is available to /usr/bin/python3 (required in CI)', () => {
  if (hasPython) {
    const v = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], { encoding: 'utf8' });
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+/);
    return;
  }
  if (process.env.CI !== undefined && process.env.CI !== '') {
    expect.fail(`${MISSING}. CI must install it (see .ci/run).`);
  }
  console.warn(`[interop] Python tests not run: ${MISSING}.`);
});

describe.runIf(hasPython)('python websockets 10.4', () => {
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
    });
  });

  afterAll(async () => {
    await srv?.close();
  });

  beforeEach(async () => {
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients from the previous test to leave');
    resetLog();
  });

  describe('data round trips on an echo route', () => {
    it('echoes text, binary, empty text, empty binary and non-ASCII text with their types', async () => {
      const bin = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
      const nonAscii = ['🎉👍🏽👨‍👩‍👧', '你好，世界', '日本語テキスト', '한국어', '𝄞 music', 'e\u0301 é', 'Привет'];
      const sent = [text('hello'), binary(bin), text(''), binary(Buffer.alloc(0)), ...nonAscii.map(text)];
      const r = await python(srv.url('/echo'), 'echo', { messages: sent.map(({ type: _t, ...m }) => m) });
      expect(r.received).toEqual(sent);
      expect(r.close).toEqual({ code: 1000, reason: 'echo done' });
      expect(log.texts).toEqual(['hello', '', ...nonAscii]);
      expect(log.binaries.map((b) => b.toString('hex'))).toEqual([bin.toString('hex'), '']);
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]).toEqual({ tag: 'echo', code: 1000, reason: 'echo done' });
    });

    it('passes 1 MiB - 1 byte text and binary messages with the default maxPayload', async () => {
      expect(srv.srv.handler.options.maxPayload).toBe(MiB);
      const r = await python(srv.url('/echo'), 'large', { size: MiB - 1 });
      expect(r).toMatchObject({ text_len: MiB - 1, text_equal: true, binary_len: MiB - 1, binary_equal: true });
      expect(log.texts[0]?.length).toBe(MiB - 1);
      expect(log.binaries[0]?.length).toBe(MiB - 1);
    });

    it('joins a fragmented message (websockets sends an iterable as fragments)', async () => {
      const parts = ['Hel', 'lo, ', 'wörld 🎉', '', '!'];
      const binParts = [Buffer.from([1, 2]), Buffer.from([3]), Buffer.from([4, 5, 6])];
      const r = await python(srv.url('/echo'), 'fragmented', {
        text_parts: parts,
        binary_parts: binParts.map((b) => b.toString('base64')),
      });
      expect(r.text).toEqual(text(parts.join('')));
      expect(r.binary).toEqual(binary(Buffer.concat(binParts)));
      // One message each on the server, already joined.
      expect(log.texts).toEqual([parts.join('')]);
      expect(log.binaries.map((b) => [...b])).toEqual([[1, 2, 3, 4, 5, 6]]);
    });
  });

  describe('messages over maxPayload close with 1009', () => {
    for (const [label, size, asText] of [
      ['2 MiB binary', 2 * MiB, false],
      ['2 MiB text', 2 * MiB, true],
      ['16 MiB binary', 16 * MiB, false],
    ] as const) {
      it(`${label} → close 1009 at the client, onClose 1009 on the server`, async () => {
        const r = await python(srv.url('/echo'), 'too_big', { size, text: asText });
        expect(r.error).toBe('ConnectionClosedError');
        expect((r.close as Json).code).toBe(1009);
        expect(r.received).toEqual([]);
        await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
        expect(log.closes[0]?.code).toBe(1009);
        expect(log.texts).toEqual([]);
        expect(log.binaries).toEqual([]);
      });
    }
  });

  describe('pings', () => {
    it("client ping(b'data') → the server pongs the same payload and onPing sees it", async () => {
      const r = await python(srv.url('/echo'), 'ping', { payload: 'data' });
      expect(r.ponged).toBe(true);
      expect(r.after).toEqual(text('after-ping'));
      expect(log.pings).toEqual(['data']);
    });

    it("server ping('x') → python answers, onPong sees 'x'", async () => {
      const r = await python(srv.url('/control'), 'converse', { send: ['ping'], count: 1 });
      expect(r.received).toEqual([text('pong:x')]);
      expect(log.pongs).toEqual(['x']);
    });
  });

  describe('every close path', () => {
    it('client closes 1000 with a reason → server onClose(1000, reason), client sees the echo', async () => {
      const r = await python(srv.url('/echo'), 'client_close', { code: 1000, reason: 'done here 👋' });
      expect(r.first).toEqual(text('before-close'));
      expect(r.sent).toEqual({ code: 1000, reason: 'done here 👋' });
      expect(r.close).toEqual({ code: 1000, reason: 'done here 👋' });
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]).toEqual({ tag: 'echo', code: 1000, reason: 'done here 👋' });
    });

    it('server closes with 4001 "bye" → python sees 4001/bye', async () => {
      const r = await python(srv.url('/control'), 'converse', { send: ['close'] });
      expect(r.error).toBe('ConnectionClosedError'); // 4001 is not 1000/1001
      expect(r.close).toEqual({ code: 4001, reason: 'bye' });
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      // python echoes the code and the reason.
      expect(log.closes[0]).toEqual({ tag: 'control', code: 4001, reason: 'bye' });
    });

    it('server terminate() → python sees 1006, onClose 1006', async () => {
      const r = await python(srv.url('/control'), 'converse', { send: ['terminate'] });
      expect(r.error).toBe('ConnectionClosedError');
      expect((r.close as Json).code).toBe(1006);
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]?.code).toBe(1006);
    });

    it('python aborts TCP (no close frame) → server onClose 1006', async () => {
      const run = new PyRun(srv.url('/echo'), 'drop', {});
      const ready = await run.line('ready');
      expect(ready.echo).toEqual(text('hi'));
      await run.result();
      await waitFor(() => log.closes.length === 1, 5000, 'server onClose');
      expect(log.closes[0]).toEqual({ tag: 'echo', code: 1006, reason: '' });
      expect(srv.srv.handler.clients.size).toBe(0);
    });
  });

  describe('subprotocol negotiation (route protocols = [v2, v1])', () => {
    it("python offers ['v1', 'v2'] → 'v2' is chosen", async () => {
      const r = await python(srv.url('/proto'), 'handshake', { subprotocols: ['v1', 'v2'], recv: true });
      expect(r.error).toBeNull();
      expect(r.subprotocol).toBe('v2');
      expect(r.first).toEqual(text('protocol:v2'));
    });

    it('python offers none of them → InvalidStatusCode 400', async () => {
      const r = await python(srv.url('/proto'), 'handshake', { subprotocols: ['v3'] });
      expect(r).toMatchObject({ error: 'InvalidStatusCode', status: 400 });
      const none = await python(srv.url('/proto'), 'handshake', {});
      expect(none).toMatchObject({ error: 'InvalidStatusCode', status: 400 });
      expect(log.opens).toEqual([]);
    });
  });

  describe('handshake refusals carry their HTTP status', () => {
    for (const route of ['/auth', '/async-auth']) {
      it(`verify() throwing HandshakeRejection(401) on ${route} → InvalidStatusCode 401 with its headers`, async () => {
        const r = await python(srv.url(route), 'handshake', {});
        expect(r).toMatchObject({ error: 'InvalidStatusCode', status: 401 });
        const headers = Object.fromEntries(Object.entries(r.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
        expect(headers['www-authenticate']).toBe('Bearer realm="ws"');
        expect(log.opens).toEqual([]);
        // The same route opens with the credentials verify() wants.
        const ok = await python(srv.url(route), 'handshake', { headers: { Authorization: 'Bearer good' }, recv: true });
        expect(ok).toMatchObject({ error: null, first: text('welcome') });
      });
    }

    it('verify() returning false → 403', async () => {
      const r = await python(srv.url('/refuse'), 'handshake', {});
      expect(r).toMatchObject({ error: 'InvalidStatusCode', status: 403 });
    });

    it('no route → 404', async () => {
      const r = await python(srv.url('/nowhere'), 'handshake', {});
      expect(r).toMatchObject({ error: 'InvalidStatusCode', status: 404 });
    });

    it('origin allowlist: a foreign origin → 403; the listed one and no Origin → open', async () => {
      const own = await startServer({ '/rooms/:room': Info }, { origins: ['https://app.example'] });
      try {
        const bad = await python(own.url('/rooms/a'), 'handshake', { origin: 'https://evil.example' });
        expect(bad).toMatchObject({ error: 'InvalidStatusCode', status: 403 });
        const good = await python(own.url('/rooms/a'), 'handshake', { origin: 'https://app.example', recv: true });
        expect(good.error).toBeNull();
        expect(JSON.parse((good.first as PyMessage).text ?? 'null')).toMatchObject({ origin: 'https://app.example' });
        const none = await python(own.url('/rooms/a'), 'handshake', { recv: true });
        expect(none.error).toBeNull();
        expect(JSON.parse((none.first as PyMessage).text ?? 'null')).toMatchObject({ origin: null });
      } finally {
        await own.close();
      }
    });
  });

  describe('query string and route params', () => {
    it('are visible on the server, decoded', async () => {
      const r = await python(srv.url('/rooms/caf%C3%A9?x=1&emoji=%F0%9F%8E%89&sp=a+b'), 'handshake', { recv: true });
      expect(r.error).toBeNull();
      const info = JSON.parse((r.first as PyMessage).text ?? 'null') as Json;
      expect(info).toEqual({
        params: { room: 'café' },
        query: { x: '1', emoji: '🎉', sp: 'a b' },
        url: '/rooms/caf%C3%A9?x=1&emoji=%F0%9F%8E%89&sp=a+b',
        origin: null,
        route: '/rooms/:room',
      });
    });
  });

  describe('handler-level API with a Python and an undici client together', () => {
    it('clients counts both; broadcast reaches both', async () => {
      const run = new PyRun(srv.url('/echo'), 'wait_message', { count: 2 });
      await run.line('ready');
      const u = new WebSocket(srv.url('/echo'));
      u.binaryType = 'arraybuffer';
      const got: unknown[] = [];
      u.addEventListener('message', (e) => got.push(e.data));
      await new Promise<void>((resolve, reject) => {
        u.addEventListener('open', () => resolve());
        u.addEventListener('error', () => reject(new Error('undici did not open')));
      });
      await waitFor(() => srv.srv.handler.clients.size === 2, 5000, 'two clients');
      expect(srv.srv.handler.broadcast('to everyone 🌍')).toBe(2);
      expect(srv.srv.handler.broadcast(Buffer.from([1, 2, 3]), { route: '/echo' })).toBe(2);
      const r = await run.result();
      expect(r.received).toEqual([text('to everyone 🌍'), binary(Buffer.from([1, 2, 3]))]);
      await waitFor(() => got.length === 2, 5000, 'undici to get both');
      expect(got[0]).toBe('to everyone 🌍');
      expect(Buffer.from(got[1] as ArrayBuffer)).toEqual(Buffer.from([1, 2, 3]));
      u.close();
      await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients to leave');
    });
  });
});
