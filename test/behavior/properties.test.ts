/**
 * What a Behavior instance knows about its connection: id, request (until onOpen has run), url, headers, origin, peer
 * address, route params (decoded), query (never part of routing), subprotocol, data,
 * readyState through the lifecycle, bufferedAmount, handler.
 */
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, type BehaviorClass, type UpgradeRequest } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { closePayload, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, waitFor } from '../helpers/server.js';

const { serve, connect, gate } = useFixture();

/** Records every instance it creates, in order. */
function recorder(): { cls: BehaviorClass; made: Behavior[] } {
  const made: Behavior[] = [];
  class Rec extends Behavior {
    override onOpen(): void {
      made.push(this);
    }
  }
  return { cls: Rec, made };
}

/** Serves each of `patterns` with one recording behavior, connects to each of `paths` in order, and waits until all have opened. */
async function opened(patterns: string[], ...paths: string[]): Promise<{ made: Behavior[]; s: TestServer }> {
  const { cls, made } = recorder();
  const s = await serve(Object.fromEntries(patterns.map((pattern) => [pattern, cls])));
  for (const path of paths) await connect(s.port, path);
  await waitFor(() => made.length === paths.length, 2000, `${paths.length} open(s)`);
  return { made, s };
}

describe('Behavior properties', () => {
  test('id: unique integers, increasing per connection', async () => {
    const { made } = await opened(['/a', '/b'], '/a', '/b', '/a');
    const ids = made.map((b) => b.id);
    for (const id of ids) expect(Number.isInteger(id) && id > 0).toBe(true);
    expect(new Set(ids).size).toBe(3);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
  });

  test('request, headers, origin, remoteAddress/remotePort, handler, route', async () => {
    const { cls, made } = recorder();
    const s = await serve({ '/rooms/:id': cls });
    const client = await connect(s.port, '/rooms/7?x=1', { Origin: 'https://app.example', 'X-Trace': 'abc' });
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    expect(b.url).toBe('/rooms/7?x=1');
    expect(b.query.get('x')).toBe('1');
    expect(b.headers['x-trace']).toBe('abc');
    expect(b.origin).toBe('https://app.example');
    expect(b.remoteAddress).toBe('127.0.0.1');
    expect(b.remotePort).toBe(client.socket.localPort);
    expect(b.handler).toBe(s.srv.handler);
    expect(b.route).toBe('/rooms/:id');
  });

  test('the request is there in verify() and onOpen(), let go after onOpen (headers, url, origin, query and the address stay); a route with keepRequest keeps it', async () => {
    const seen: { hook: string; url: string | undefined; method: string | undefined }[] = [];
    const made: Behavior[] = [];
    class Light extends Behavior {
      override verify(request: UpgradeRequest): void {
        seen.push({ hook: 'verify', url: request.url, method: this.request.method });
      }
      override onOpen(): void {
        seen.push({ hook: 'onOpen', url: this.request.url, method: this.request.method });
        made.push(this);
      }
    }
    class Kept extends Light {
      static override keepRequest = true;
    }
    const s = await serve({ '/light': Light, '/kept': Kept });
    await connect(s.port, '/light?a=1', { Origin: 'https://app.example', 'X-Trace': 'abc' });
    await connect(s.port, '/kept?b=2');
    await waitFor(() => made.length === 2, 2000, 'two opens');
    expect(seen).toEqual([
      { hook: 'verify', url: '/light?a=1', method: 'GET' },
      { hook: 'onOpen', url: '/light?a=1', method: 'GET' },
      { hook: 'verify', url: '/kept?b=2', method: 'GET' },
      { hook: 'onOpen', url: '/kept?b=2', method: 'GET' },
    ]);
    const [light, kept] = made as [Behavior, Behavior];
    expect(() => light.request).toThrow(/keepRequest/);
    expect(light.url).toBe('/light?a=1');
    expect(light.headers['x-trace']).toBe('abc');
    expect(light.origin).toBe('https://app.example');
    expect(light.query.get('a')).toBe('1');
    expect(light.remoteAddress).toBe('127.0.0.1');
    expect(kept.request.url).toBe('/kept?b=2');
    expect(kept.headers).toBe(kept.request.headers);
  });

  test("letting the request go also lets go Node's cached peer address on the socket; remoteAddress/remotePort stay, the socket can still be asked, keepRequest keeps it", async () => {
    type Peer = { _peername?: unknown; remoteAddress?: string; remotePort?: number };
    const sockets = new Map<string, Peer>();
    const made: Behavior[] = [];
    class Light extends Behavior {
      override onOpen(): void {
        sockets.set(this.route, this.request.socket as unknown as Peer);
        made.push(this);
      }
    }
    class Kept extends Light {
      static override keepRequest = true;
    }
    const s = await serve({ '/light': Light, '/kept': Kept });
    const lightClient = await connect(s.port, '/light');
    await connect(s.port, '/kept');
    await waitFor(() => made.length === 2, 2000, 'two opens');
    const light = sockets.get('/light') as Peer;
    const kept = sockets.get('/kept') as Peer;
    // Read at the upgrade (so cached), then let go with the request on the light route only.
    expect(light._peername).toBeNull();
    expect(kept._peername).toMatchObject({ address: '127.0.0.1' });
    const [lb, kb] = made as [Behavior, Behavior];
    expect([lb.remoteAddress, kb.remoteAddress]).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(lb.remotePort).toBe(lightClient.socket.localPort);
    // While the socket is open, Node asks the kernel again.
    expect(light.remoteAddress).toBe('127.0.0.1');
    expect(light.remotePort).toBe(lightClient.socket.localPort);
  });

  test('remoteAddress is right for each of 300 peers on 300 loopback addresses (more than the addresses wsmount keeps as shared strings), and for a peer whose address was seen before', async () => {
    // Keyed by port and by address: the kernel gives two source addresses the same port at times.
    const seen: string[] = [];
    class Who extends Behavior {
      override onOpen(): void {
        seen.push(`${String(this.remoteAddress)} ${String(this.remotePort)}`);
      }
    }
    const s = await serve({ '/who': Who });
    const expected: string[] = [];
    // 127.0.0.2 … 127.0.1.45, then 127.0.0.2 again: the kept addresses are emptied on the way.
    const hosts = [...Array.from({ length: 300 }, (_, i) => `127.0.${(i + 2) >> 8}.${(i + 2) & 255}`), '127.0.0.2', '127.0.0.1'];
    for (let i = 0; i < hosts.length; i += 30) {
      await Promise.all(
        hosts.slice(i, i + 30).map(
          (host) =>
            new Promise<void>((resolve, reject) => {
              const socket = net.connect({ port: s.port, host: '127.0.0.1', localAddress: host });
              const timer = setTimeout(() => {
                socket.destroy();
                reject(new Error(`no answer to the upgrade from ${host} in 5 s`));
              }, 5000);
              socket.once('error', reject);
              socket.once('close', () => reject(new Error(`closed before the answer (${host})`)));
              socket.once('connect', () => {
                expected.push(`${host} ${String(socket.localPort)}`);
                socket.write(upgradeRequest('/who'));
              });
              socket.once('data', (chunk: Buffer) => {
                clearTimeout(timer);
                const status = chunk.toString('latin1').split('\r\n')[0];
                socket.destroy();
                if (status?.startsWith('HTTP/1.1 101 ')) resolve();
                else reject(new Error(`${host}: ${String(status)}`));
              });
            }),
        ),
      );
    }
    await waitFor(() => seen.length === hosts.length, 5000, 'every open');
    expect(seen.sort()).toEqual(expected.sort());
    expect(new Set(seen.map((entry) => entry.split(' ')[0])).size).toBe(301);
  });

  test('an async onOpen() reads the request after an await; it is let go once its promise settles', async () => {
    const g = gate();
    const urls: string[] = [];
    let self: Behavior | undefined;
    class Slow extends Behavior {
      override async onOpen(): Promise<void> {
        self = this;
        await g.wait;
        urls.push(this.request.url ?? '');
      }
    }
    const s = await serve({ '/slow': Slow });
    await connect(s.port, '/slow?z=1');
    await waitFor(() => self !== undefined, 2000, 'open');
    expect(self?.request.url).toBe('/slow?z=1');
    g.open();
    await waitFor(() => urls.length === 1, 2000, 'onOpen to finish');
    expect(urls).toEqual(['/slow?z=1']);
    const released = (): boolean => {
      try {
        void self?.request;
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(released, 2000, 'the request to be let go');
  });

  test('remoteAddress and remotePort are still known in onClose (to log who left), whatever way the peer left', async () => {
    const seen: [number, string | undefined, number | undefined][] = [];
    class Leaver extends Behavior {
      override onClose(code: number): void {
        seen.push([code, this.remoteAddress, this.remotePort]);
      }
    }
    const s = await serve({ '/leave': Leaver });
    const polite = await connect(s.port, '/leave');
    const politePort = polite.socket.localPort;
    await polite.close(1000);
    await waitFor(() => seen.length === 1, 2000, 'first onClose');
    const rude = await connect(s.port, '/leave');
    const rudePort = rude.socket.localPort;
    rude.destroy();
    await waitFor(() => seen.length === 2, 2000, 'second onClose');
    expect(seen).toEqual([
      [1000, '127.0.0.1', politePort],
      [1006, '127.0.0.1', rudePort],
    ]);
  });

  test('origin is undefined when the client sends none', async () => {
    const { made } = await opened(['/x'], '/x');
    expect(made[0]?.origin).toBeUndefined();
  });

  test('params are decoded; a wildcard keeps the rest of the path under "*"', async () => {
    const { made } = await opened(
      ['/rooms/:room/users/:user', '/files/*'],
      '/rooms/caf%C3%A9%20au%20lait/users/a%2Fb',
      '/files/docs/read%20me.txt',
    );
    expect({ ...made[0]?.params }).toEqual({ room: 'café au lait', user: 'a/b' });
    expect({ ...made[1]?.params }).toEqual({ '*': 'docs/read me.txt' });
  });

  test('query is a URLSearchParams of the query string, which never affects routing', async () => {
    const { made, s } = await opened(['/echo', '/rooms/:id'], '/echo?to=/rooms/1&a=1&a=2&b=x%20y', '/rooms/9?id=nope');
    const [echo, room] = made as [Behavior, Behavior];
    expect(echo.route).toBe('/echo');
    expect(echo.query).toBeInstanceOf(URLSearchParams);
    expect(echo.query.getAll('a')).toEqual(['1', '2']);
    expect(echo.query.get('b')).toBe('x y');
    expect(echo.query.get('to')).toBe('/rooms/1');
    expect(room.params['id']).toBe('9');
    expect(room.query.get('id')).toBe('nope');
    // A query cannot make an unknown path match.
    const miss = await rawRequest(s.port, upgradeRequest('/nope?route=/echo'));
    expect(miss.status).toBe(404);
  });

  test('an empty query gives an empty URLSearchParams', async () => {
    const { made } = await opened(['/x'], '/x');
    expect([...(made[0] as Behavior).query.keys()]).toEqual([]);
  });

  test('data starts as an empty object per connection, free to use from JavaScript (TypeScript sees unknown until the subclass declares it)', async () => {
    const made: Behavior[] = [];
    class D extends Behavior {
      override onOpen(): void {
        made.push(this);
        (this.data as { n?: number }).n = made.length; // what JavaScript code does: the base data, no declaration
      }
    }
    const s = await serve({ '/d': D });
    await connect(s.port, '/d');
    await connect(s.port, '/d');
    await waitFor(() => made.length === 2, 2000, 'opens');
    expect(made[0]?.data).toEqual({ n: 1 });
    expect(made[1]?.data).toEqual({ n: 2 });
    expect(made[0]?.data).not.toBe(made[1]?.data);
  });

  test('a route without params gives each connection an empty params object of its own, writable like any other', async () => {
    const { made } = await opened(['/plain'], '/plain', '/plain');
    const [a, b] = made as [Behavior, Behavior];
    expect({ ...a.params }).toEqual({});
    expect(a.params).not.toBe(b.params);
    expect(Object.isFrozen(a.params)).toBe(false);
    a.params['x'] = '1';
    expect(a.params['x']).toBe('1');
    expect(b.params['x']).toBeUndefined();
    // Read once, the same object after.
    expect(a.params).toBe(a.params);
  });

  test('data: an assignment replaces it, a subclass starting value is kept, and each connection reads its own', async () => {
    const made: Behavior[] = [];
    class Assign extends Behavior {
      override onOpen(): void {
        this.data = { set: made.length };
        made.push(this);
      }
    }
    class Declared extends Behavior {
      override data = { user: 'nobody' };
      override onOpen(): void {
        made.push(this);
      }
    }
    class Untouched extends Behavior {
      override onOpen(): void {
        made.push(this);
      }
    }
    const s = await serve({ '/assign': Assign, '/declared': Declared, '/untouched': Untouched });
    await connect(s.port, '/assign');
    await waitFor(() => made.length === 1, 2000, 'open 1');
    await connect(s.port, '/declared');
    await waitFor(() => made.length === 2, 2000, 'open 2');
    await connect(s.port, '/untouched');
    await connect(s.port, '/untouched');
    await waitFor(() => made.length === 4, 2000, 'opens');
    expect(made[0]?.data).toEqual({ set: 0 });
    expect(made[1]?.data).toEqual({ user: 'nobody' });
    expect(made[2]?.data).toEqual({});
    expect(made[2]?.data).toBe(made[2]?.data);
    expect(made[2]?.data).not.toBe(made[3]?.data);
    made[3]!.data = null;
    expect(made[3]?.data).toBeNull();
  });

  test('readyState: 1 in onOpen and onText, 2 after close(), 3 in onClose; bufferedAmount is a number', async () => {
    const states: string[] = [];
    let buffered: unknown;
    class Life extends Behavior {
      override onOpen(): void {
        states.push(`open:${this.readyState}`);
        buffered = this.bufferedAmount;
      }
      override onText(): void {
        states.push(`text:${this.readyState}`);
        this.close(1000, 'done');
        states.push(`after close:${this.readyState}`);
      }
      override onClose(): void {
        states.push(`close:${this.readyState}`);
      }
    }
    const s = await serve({ '/life': Life });
    const client = await connect(s.port, '/life');
    client.send(0x1, 'go');
    const frame = await client.nextFrame(2000);
    expect(frame.opcode).toBe(0x8);
    client.send(0x8, closePayload(1000));
    await waitFor(() => states.length === 4, 2000, 'onClose');
    expect(states).toEqual(['open:1', 'text:1', 'after close:2', 'close:3']);
    expect(typeof buffered).toBe('number');
    expect(buffered).toBeGreaterThanOrEqual(0);
    expect(Behavior.CONNECTING).toBe(0);
    expect(Behavior.OPEN).toBe(1);
    expect(Behavior.CLOSING).toBe(2);
    expect(Behavior.CLOSED).toBe(3);
  });
});

describe('subprotocols (RFC 6455 §4.2.2 /subprotocol/)', () => {
  class Chat extends Behavior {
    static override protocols = ['chat.v2', 'chat.v1'];
    override onOpen(): void {
      this.sendText(String(this.protocol));
    }
  }
  class Optional extends Chat {
    static override requireProtocol = false;
  }
  class Plain extends Behavior {
    override onOpen(): void {
      this.sendText(String(this.protocol));
    }
  }

  test.each([
    ['chat.v1, chat.v2', 'chat.v2'],
    ['chat.v2, chat.v1', 'chat.v2'],
    ['chat.v1', 'chat.v1'],
    ['x, chat.v1', 'chat.v1'],
  ])('the server preference order wins: offered "%s" → %s', async (offered, chosen) => {
    const s = await serve({ '/chat': Chat });
    const client = await connect(s.port, '/chat', { 'Sec-WebSocket-Protocol': offered });
    expect(client.headers['sec-websocket-protocol']).toBe(chosen);
    expect((await client.nextFrame(2000)).payload.toString()).toBe(chosen);
  });

  test('protocols offered in several header lines are all considered', async () => {
    const s = await serve({ '/chat': Chat });
    const answer = await rawRequest(
      s.port,
      upgradeRequest('/chat').replace('\r\n\r\n', '\r\nSec-WebSocket-Protocol: x\r\nSec-WebSocket-Protocol: chat.v1\r\n\r\n'),
      500,
    );
    expect(answer.status).toBe(101);
    expect(answer.headers['sec-websocket-protocol']).toBe('chat.v1');
  });

  test('requireProtocol false: no (or no acceptable) protocol still opens, with protocol undefined and no header', async () => {
    const s = await serve({ '/opt': Optional });
    const none = await connect(s.port, '/opt');
    expect(none.headers['sec-websocket-protocol']).toBeUndefined();
    expect((await none.nextFrame(2000)).payload.toString()).toBe('undefined');
    const other = await connect(s.port, '/opt', { 'Sec-WebSocket-Protocol': 'other' });
    expect(other.headers['sec-websocket-protocol']).toBeUndefined();
    expect((await other.nextFrame(2000)).payload.toString()).toBe('undefined');
    const good = await connect(s.port, '/opt', { 'Sec-WebSocket-Protocol': 'chat.v1' });
    expect(good.headers['sec-websocket-protocol']).toBe('chat.v1');
  });

  test('requireProtocol true (the default) refuses a client offering none of them with 400', async () => {
    const s = await serve({ '/chat': Chat });
    expect((await rawRequest(s.port, upgradeRequest('/chat'))).status).toBe(400);
    expect((await rawRequest(s.port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'chat.v3' }))).status).toBe(400);
  });

  test('a route without protocols never selects one the client offered', async () => {
    const s = await serve({ '/plain': Plain });
    const client = await connect(s.port, '/plain', { 'Sec-WebSocket-Protocol': 'chat.v1' });
    expect(client.headers['sec-websocket-protocol']).toBeUndefined();
    expect((await client.nextFrame(2000)).payload.toString()).toBe('undefined');
  });
});
