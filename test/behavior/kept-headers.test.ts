/**
 * What a connection keeps of its upgrade request's headers once the request is let go (after
 * onOpen): one string (src/handshake/kept-headers.ts), from which `this.headers` is rebuilt the
 * first time a later hook reads it. The rebuilt object must be the one Node's parser gave, key for
 * key, in the same order, with the same joins and arrays; Node's own `request.headers` (seen in
 * verify()) is the reference.
 */
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, type UpgradeRequest } from '../../src/index.js';
import { compactHeaders, expandHeaders, keptHeader } from '../../src/handshake/kept-headers.js';
import { useFixture } from '../helpers/fixture.js';
import { acceptFor, encodeClientFrame, readResponseHead } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { serve } = useFixture();

/** Opens a WebSocket with `lines` as the request's header lines (repeats allowed), sends "go". */
async function openWith(port: number, path: string, lines: string[]): Promise<net.Socket> {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    readResponseHead(socket, (head) => {
      if (head.status !== 101 || head.headers['sec-websocket-accept'] !== acceptFor(key)) reject(new Error(`handshake answered ${head.status}`));
      else resolve();
    });
    socket.once('error', reject);
    const head = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...lines];
    socket.write(Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
  });
  socket.write(encodeClientFrame(0x1, 'go'));
  return socket;
}

describe('headers kept after onOpen', () => {
  test("this.headers read after the request is let go equals Node's request.headers: order, duplicates joined or dropped, set-cookie as an array, latin1 bytes", async () => {
    const inVerify: [string, unknown][][] = [];
    const later: { entries: [string, unknown][]; proto: unknown; origin: string | undefined; requestGone: boolean }[] = [];
    class Watch extends Behavior {
      override verify(request: UpgradeRequest): void {
        inVerify.push(Object.entries(request.headers));
      }
      override onText(): void {
        let requestGone = false;
        try {
          void this.request;
        } catch {
          requestGone = true;
        }
        later.push({ entries: Object.entries(this.headers), proto: Object.getPrototypeOf(this.headers), origin: this.origin, requestGone });
      }
    }
    const s = await serve({ '/w': Watch });
    const lines = [
      'Origin: https://app.example',
      'X-Trace: a',
      'x-trace: b', // joined with ", "
      'Cookie: a=1',
      'Cookie: b=2', // joined with "; "
      'Set-Cookie: s=1',
      'Set-Cookie: t=2', // always an array
      'User-Agent: first',
      'User-Agent: second', // a duplicate Node drops
      'X-Empty:',
      'X-Latin: caf\u00e9 cr\u00e8me', // sent as latin1 bytes
      'X-Spaces:   padded value  ',
      'Accept-Language: en-US,en;q=0.9',
    ];
    const socket = await openWith(s.port, '/w', lines);
    try {
      await waitFor(() => later.length === 1, 3000, 'onText');
      const [got] = later;
      expect(got?.requestGone).toBe(true);
      expect(got?.proto).toBe(Object.prototype);
      expect(got?.entries).toEqual(inVerify[0]);
      expect(got?.origin).toBe('https://app.example');
      // The reference itself has what the comments above say (a check that the request was the one meant).
      const ref = Object.fromEntries(inVerify[0] ?? []);
      expect(ref['x-trace']).toBe('a, b');
      expect(ref['cookie']).toBe('a=1; b=2');
      expect(ref['set-cookie']).toEqual(['s=1', 't=2']);
      expect(ref['user-agent']).toBe('first');
      expect(ref['x-empty']).toBe('');
      expect(ref['x-latin']).toBe('caf\u00e9 cr\u00e8me');
    } finally {
      socket.destroy();
    }
  });

  test('changes verify() made to request.headers are kept; a value that is not a string keeps the object as it is', async () => {
    const later: Record<string, unknown>[] = [];
    const sameObject: boolean[] = [];
    class Edit extends Behavior {
      #seen: unknown = null;
      override verify(request: UpgradeRequest): void {
        const h = request.headers as Record<string, unknown>;
        h['x-user'] = 'ana';
        delete h['x-drop'];
        if (request.url === '/e?odd') h['x-count'] = 3;
        this.#seen = h;
      }
      override onText(): void {
        sameObject.push(this.headers === this.#seen);
        later.push({ ...this.headers });
      }
    }
    const s = await serve({ '/e': Edit });
    const a = await openWith(s.port, '/e', ['X-Drop: 1']);
    const b = await openWith(s.port, '/e?odd', []);
    try {
      await waitFor(() => later.length === 2, 3000, 'two onText');
      const plain = later.find((h) => h['x-count'] === undefined);
      const odd = later.find((h) => h['x-count'] !== undefined);
      expect(plain?.['x-user']).toBe('ana');
      expect(plain).not.toHaveProperty('x-drop');
      expect(odd?.['x-count']).toBe(3);
      // The plain one was kept as text and rebuilt; the odd one could not be, and is the same object.
      expect(sameObject.sort()).toEqual([false, true]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test('keptHeader reads one header from the text: names only where names stand, arrays whole, absent as undefined', () => {
    const text = compactHeaders({ 'x-a': 'origin', origin: 'https://app.example', 'set-cookie': ['a=1', 'b=2'], empty: '' }) as string;
    expect(keptHeader(text, 'origin')).toBe('https://app.example');
    expect(keptHeader(text, 'set-cookie')).toEqual(['a=1', 'b=2']);
    expect(keptHeader(text, 'empty')).toBe('');
    expect(keptHeader(text, 'x-b')).toBeUndefined();
    // 'https://app.example' is a value, not a name.
    expect(keptHeader(text, 'https://app.example')).toBeUndefined();
    expect(keptHeader(compactHeaders({ 'x-a': 'origin' }) as string, 'origin')).toBeUndefined();
    expect(keptHeader('', 'origin')).toBeUndefined();
  });

  test('compactHeaders/expandHeaders: a round trip keeps order, arrays and empty values; what a string cannot hold stays an object', () => {
    const h = { host: 'x', 'set-cookie': ['a=1'], empty: '', 'x-list': 'a, b', z: 'last' };
    const text = compactHeaders(h);
    expect(text).not.toBeNull();
    const back = expandHeaders(text as string);
    expect(Object.entries(back)).toEqual(Object.entries(h));
    expect(Array.isArray(back['set-cookie'])).toBe(true);
    expect(expandHeaders(compactHeaders({}) as string)).toEqual({});
    expect(compactHeaders({ a: 'line\nbreak' })).toBeNull();
    expect(compactHeaders({ 'a\u0001': 'x' })).toBeNull();
    expect(compactHeaders({ a: ['ok', 'bad\n'] })).toBeNull();
    expect(compactHeaders({ a: [] })).toBeNull();
    expect(compactHeaders({ a: 1 } as unknown as Record<string, string>)).toBeNull();
    expect(compactHeaders({ a: undefined })).toBeNull();
    expect(compactHeaders(Object.assign(Object.create(null) as Record<string, string>, { a: 'x' }))).toBeNull();
  });

  test('common names and whole common headers are one character each: shorter text, the same headers back, any value still exact', () => {
    // What Chrome sends with an upgrade (Node lower-cases names, not values).
    const chrome = {
      host: '127.0.0.1:8080',
      connection: 'Upgrade',
      pragma: 'no-cache',
      'cache-control': 'no-cache',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
      upgrade: 'websocket',
      origin: 'http://127.0.0.1:8080',
      'sec-websocket-version': '13',
      'accept-encoding': 'gzip, deflate, br, zstd',
      'accept-language': 'en-US,en;q=0.9',
      cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
    };
    const plainLength = Object.entries(chrome).reduce((n, [k, v]) => n + k.length + v.length + 2, -1);
    const text = compactHeaders(chrome) as string;
    expect(text.length).toBeLessThan(plainLength - 200);
    expect(Object.entries(expandHeaders(text))).toEqual(Object.entries(chrome));
    for (const [name, value] of Object.entries(chrome)) expect(keptHeader(text, name), name).toBe(value);
    // A known name with another value than the dictionary's keeps that value exactly (case too),
    // and a value equal to a dictionary entry under another name is not taken for it.
    const other = { connection: 'keep-alive, Upgrade', upgrade: 'WebSocket', 'sec-websocket-version': '8', 'x-custom': 'no-cache', 'accept-encoding': '' };
    const t2 = compactHeaders(other) as string;
    expect(Object.entries(expandHeaders(t2))).toEqual(Object.entries(other));
    expect(keptHeader(t2, 'upgrade')).toBe('WebSocket');
    expect(keptHeader(t2, 'x-custom')).toBe('no-cache');
    expect(keptHeader(t2, 'pragma')).toBeUndefined();
    // Arrays under a known name (an in-memory connect can pass any headers object).
    const arrays = { 'sec-websocket-protocol': ['chat', 'superchat'], 'set-cookie': ['a=1'], cookie: 'c=1' };
    const t3 = compactHeaders(arrays as unknown as Record<string, string>) as string;
    expect(Object.entries(expandHeaders(t3))).toEqual(Object.entries(arrays));
    expect(keptHeader(t3, 'sec-websocket-protocol')).toEqual(['chat', 'superchat']);
    // A control character in a name or value would read as a token: the object is kept; a tab is fine.
    for (const c of ['\u0000', '\u0002', '\u0008', '\u000b', '\u001f']) {
      expect(compactHeaders({ host: `a${c}` }), JSON.stringify(c)).toBeNull();
      expect(compactHeaders({ [`x${c}`]: 'v' }), JSON.stringify(c)).toBeNull();
    }
    const tab = { 'x-tab': 'a\tb', '\u007f': '\u00ff' };
    expect(expandHeaders(compactHeaders(tab) as string)).toEqual(tab);
  });

  test('over a real socket, a request with the usual headers is kept short and read back whole', async () => {
    let seen: { before: Record<string, unknown>; after: Record<string, unknown>; origin: string | undefined } | null = null;
    class Keep extends Behavior {
      #before: Record<string, unknown> = {};
      override onOpen(): void {
        this.#before = { ...this.headers };
      }
      override onText(): void {
        seen = { before: this.#before, after: { ...this.headers }, origin: this.origin };
      }
    }
    const { port } = await serve({ '/keep': Keep });
    const socket = await openWith(port, '/keep', ['Origin: http://127.0.0.1', 'Pragma: no-cache', 'Cache-Control: no-cache', 'Accept-Encoding: gzip, deflate, br, zstd']);
    try {
      await waitFor(() => seen !== null);
      const s = seen as unknown as { before: Record<string, unknown>; after: Record<string, unknown>; origin: string | undefined };
      expect(Object.entries(s.after)).toEqual(Object.entries(s.before));
      expect(s.before.connection).toBe('Upgrade');
      expect(s.before['sec-websocket-version']).toBe('13');
      expect(s.origin).toBe('http://127.0.0.1');
    } finally {
      socket.destroy();
    }
  });
});
