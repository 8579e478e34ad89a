/**
 * The same scenarios over both transports of `wsmount/testing`: in memory (`connect(handler)`)
 * and real TCP (`connect(listen(handler))`). Every route feature must behave identically.
 */
import { Buffer } from 'node:buffer';
import { afterEach, describe, expect, test } from 'vitest';
import { Behavior, HandshakeRejection, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { type ConnectOptions, HandshakeError, type TestClient, connect, listen } from '../../src/testing/index.js';

interface Ctx {
  handler: WebSocketHandler;
  /** Resolves with each server-side onClose, in order. */
  serverCloses: Array<{ code: number; reason: string }>;
  onServerClose: Promise<{ code: number; reason: string }>;
}

function makeHandler(): Ctx {
  let resolveClose!: (v: { code: number; reason: string }) => void;
  const ctx = {
    serverCloses: [] as Array<{ code: number; reason: string }>,
    onServerClose: new Promise<{ code: number; reason: string }>((r) => {
      resolveClose = r;
    }),
  } as Ctx;
  const record = (code: number, reason: string): void => {
    ctx.serverCloses.push({ code, reason });
    resolveClose({ code, reason });
  };
  class Echo extends Behavior {
    onText(text: string) {
      this.sendText(text);
    }
    onBinary(bytes: Buffer) {
      this.sendBinary(bytes);
    }
    onClose(code: number, reason: string) {
      record(code, reason);
    }
  }
  class Secure extends Echo {
    verify(req: { headers: Record<string, string | string[] | undefined> }) {
      if (req.headers.authorization !== 'Bearer ok') throw new HandshakeRejection(401, 'log in first', { 'WWW-Authenticate': 'Bearer' });
    }
  }
  class AsyncDeny extends Echo {
    async verify() {
      await new Promise((r) => setTimeout(r, 5));
      return false;
    }
  }
  class Room extends Behavior<{ room: string }> {
    onOpen() {
      this.sendText(JSON.stringify({ room: this.params.room, user: this.query.get('user'), route: this.route }));
    }
  }
  class Proto extends Echo {
    static protocols = ['v2', 'v1'];
    onOpen() {
      this.sendText(String(this.protocol));
    }
  }
  class Closer extends Echo {
    onText(text: string) {
      if (text === 'close') this.close(4001, 'go away');
      else if (text === 'terminate') this.terminate();
      else if (text === 'ping') this.ping('hb');
    }
  }
  class Limited extends Echo {
    static maxPayload = 16;
  }
  ctx.handler = createWebSocketHandler(
    { '/echo': Echo, '/secure': Secure, '/deny': AsyncDeny, '/rooms/:room': Room, '/proto': Proto, '/closer': Closer, '/limited': Limited },
    { logLevel: 'silent', origins: ['https://app.example'], closeTimeout: 1000 },
  );
  return ctx;
}

type Open = (path: string, options?: ConnectOptions) => Promise<TestClient>;
interface Transport {
  name: string;
  open(ctx: Ctx): Promise<{ open: Open; close(): Promise<void> }>;
}

const transports: Transport[] = [
  {
    name: 'in memory',
    async open(ctx) {
      return {
        open: (path, options) => connect(ctx.handler, path, options),
        close: () => ctx.handler.close({ timeout: 300 }),
      };
    },
  },
  {
    name: 'tcp',
    async open(ctx) {
      const server = await listen(ctx.handler, { closeTimeout: 300 });
      return {
        open: (path, options) => connect(server, path, options),
        close: async () => {
          await server.close();
          await ctx.handler.close({ timeout: 300 });
        },
      };
    },
  },
];

async function rejection(p: Promise<unknown>): Promise<HandshakeError> {
  const error = await p.then(
    () => {
      throw new Error('expected the handshake to be refused');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HandshakeError);
  return error as HandshakeError;
}

interface Scenario {
  name: string;
  run(ctx: Ctx, open: Open): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'echoes text and binary',
    async run(_ctx, open) {
      const client = await open('/echo');
      expect(client.response.status).toBe(101);
      client.sendText('héllo ✓');
      expect(await client.nextMessage()).toBe('héllo ✓');
      client.sendBinary(new Uint8Array([1, 2, 3]));
      expect(await client.nextMessage()).toEqual(Buffer.from([1, 2, 3]));
      const big = 'x'.repeat(70_000); // 64-bit length field both ways
      client.send(big);
      expect(await client.nextMessage()).toBe(big);
      await client.close();
    },
  },
  {
    name: 'verify() accepts a request with the right header',
    async run(_ctx, open) {
      const client = await open('/secure', { headers: { authorization: 'Bearer ok' } });
      client.sendText('in');
      expect(await client.nextMessage()).toBe('in');
      await client.close();
    },
  },
  {
    name: 'verify() throwing HandshakeRejection(401) → HandshakeError.status 401',
    async run(_ctx, open) {
      const error = await rejection(open('/secure'));
      expect(error.code).toBe('REJECTED');
      expect(error.status).toBe(401);
      expect(error.headers['www-authenticate']).toBe('Bearer');
      // The server writes 'log in first\n'; body is the reason as thrown.
      expect(error.body).toBe('log in first');
    },
  },
  {
    name: 'async verify() returning false → 403',
    async run(_ctx, open) {
      expect((await rejection(open('/deny'))).status).toBe(403);
    },
  },
  {
    name: 'route params and query reach the behavior',
    async run(_ctx, open) {
      const client = await open('/rooms/blue%20room?user=ann');
      expect(JSON.parse((await client.nextMessage()) as string)).toEqual({ room: 'blue room', user: 'ann', route: '/rooms/:room' });
      await client.close();
    },
  },
  {
    name: 'subprotocols: the server picks its preferred one among those offered',
    async run(_ctx, open) {
      const client = await open('/proto', { protocols: ['v1', 'v2'] });
      expect(client.protocol).toBe('v2');
      expect(client.response.headers['sec-websocket-protocol']).toBe('v2');
      expect(await client.nextMessage()).toBe('v2');
      await client.close();
    },
  },
  {
    name: 'subprotocols: offering none of a route\'s protocols → 400',
    async run(_ctx, open) {
      expect((await rejection(open('/proto', { protocols: 'v3' }))).status).toBe(400);
    },
  },
  {
    name: 'an origin not allowed → 403; an allowed one opens',
    async run(_ctx, open) {
      expect((await rejection(open('/echo', { origin: 'https://evil.example' }))).status).toBe(403);
      const client = await open('/echo', { origin: 'https://app.example' });
      await client.close();
    },
  },
  {
    name: 'an unknown path → 404',
    async run(_ctx, open) {
      expect((await rejection(open('/nowhere'))).status).toBe(404);
    },
  },
  {
    name: 'a broken handshake (wrong version) → 426 with Sec-WebSocket-Version: 13',
    async run(_ctx, open) {
      const error = await rejection(open('/echo', { headers: { 'Sec-WebSocket-Version': '8' } }));
      expect(error.status).toBe(426);
      expect(error.headers['sec-websocket-version']).toBe('13');
    },
  },
  {
    name: 'client close 1000 + reason reaches onClose and is echoed',
    async run(ctx, open) {
      const client = await open('/echo');
      expect(await client.close(1000, 'bye')).toEqual({ code: 1000, reason: 'bye' });
      expect(await ctx.onServerClose).toEqual({ code: 1000, reason: 'bye' });
      expect(client.state).toBe('closed');
    },
  },
  {
    name: 'server close 4001 → client closed with 4001 and the reason',
    async run(ctx, open) {
      const client = await open('/closer');
      client.sendText('close');
      expect(await client.closed).toEqual({ code: 4001, reason: 'go away' });
      expect(await ctx.onServerClose).toEqual({ code: 4001, reason: 'go away' });
    },
  },
  {
    name: 'server terminate() → client sees 1006',
    async run(ctx, open) {
      const client = await open('/closer');
      client.sendText('terminate');
      expect(await client.closed).toEqual({ code: 1006, reason: '' });
      expect((await ctx.onServerClose).code).toBe(1006);
    },
  },
  {
    name: 'client terminate() → server sees 1006',
    async run(ctx, open) {
      const client = await open('/echo');
      client.terminate();
      expect((await ctx.onServerClose).code).toBe(1006);
      expect((await client.closed).code).toBe(1006);
    },
  },
  {
    name: 'a message over the route\'s maxPayload → the client is closed with 1009',
    async run(ctx, open) {
      const client = await open('/limited');
      client.sendText('x'.repeat(16));
      expect(await client.nextMessage()).toBe('x'.repeat(16));
      client.sendText('x'.repeat(17));
      expect((await client.closed).code).toBe(1009);
      expect((await ctx.onServerClose).code).toBe(1009);
    },
  },
  {
    name: 'an unmasked client frame → the server fails the connection with 1002',
    async run(_ctx, open) {
      const client = await open('/echo');
      client.sendFrame({ opcode: 1, payload: 'plain', mask: false });
      expect((await client.closed).code).toBe(1002);
    },
  },
  {
    name: 'fragmented message with a ping in between',
    async run(_ctx, open) {
      const client = await open('/echo');
      client.sendFrame({ opcode: 1, fin: false, payload: 'ab' });
      client.sendFrame({ opcode: 9, payload: 'mid' });
      client.sendFrame({ opcode: 0, fin: true, payload: 'cd' });
      expect(await client.nextMessage()).toBe('abcd');
      await client.close();
    },
  },
  {
    name: 'ping resolves on the matching pong; server pings are answered',
    async run(_ctx, open) {
      const client = await open('/closer');
      expect((await client.ping('p1')).toString()).toBe('p1');
      client.sendText('ping');
      await expect.poll(() => client.pings.length).toBe(1);
      expect(client.pings[0]?.toString()).toBe('hb');
      await client.close();
    },
  },
];

for (const transport of transports) {
  describe(`wsmount/testing over ${transport.name}`, () => {
    let teardown: (() => Promise<void>) | null = null;
    afterEach(async () => {
      await teardown?.();
      teardown = null;
    });
    for (const scenario of scenarios) {
      test(scenario.name, { timeout: 5000 }, async () => {
        const ctx = makeHandler();
        const t = await transport.open(ctx);
        teardown = t.close;
        await scenario.run(ctx, t.open);
      });
    }
  });
}
