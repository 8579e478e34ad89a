/**
 * permessage-deflate (RFC 7692) with the `ws` package's client (the devDependency) against
 * wsmount, in several client and server configurations: each connection round-trips text and
 * binary, empty, small and large (100 KiB, 2 MiB), one at a time and then 150 back to back, and
 * every payload is compared by SHA-256 as ws sent it, as the server's echo route got it, and as ws
 * got the echo back.
 *
 * The client talks to the server through a small TCP relay that reads the frame headers going
 * each way (it never changes a byte), so the test knows which messages went with RSV1 and how
 * many payload bytes they took, independently of both ends, and checks the server's
 * `stats().compression` counters against that exactly. The server's debug log must name the
 * extension each connection agreed.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket, { type PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import type { CompressionStats, NegotiatedPerMessageDeflate, PerMessageDeflateOptions } from '../../src/index.js';
import { waitFor } from '../helpers/server.js';
import { type DeflateServer, MIXED, MiB, type Seen, type Spec, burst, delta, payload, sha256, startDeflateServer, sum } from './deflate-routes.js';

const WAIT = 30_000;

// ---- a relay that reads frame headers -----------------------------------------------------------

interface OnWire {
  /** RSV1 on the message's first frame. */
  compressed: boolean;
  /** Payload bytes over all its frames. */
  wire: number;
}

/**
 * Follows one direction of a WebSocket connection: skips the HTTP head, then reads each frame's
 * header (RFC 6455 §5.2) and skips its payload without copying it. Records one entry per data
 * message; control frames are left out.
 */
class FrameTap {
  readonly messages: OnWire[] = [];
  private head: Buffer | null = Buffer.alloc(0);
  private header: number[] = [];
  private remaining = 0;

  feed(chunk: Buffer): void {
    let data = chunk;
    if (this.head !== null) {
      this.head = Buffer.concat([this.head, data]);
      const end = this.head.indexOf('\r\n\r\n');
      if (end === -1) return;
      data = this.head.subarray(end + 4);
      this.head = null;
    }
    let i = 0;
    while (i < data.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      this.header.push(data[i++]!);
      const h = this.header;
      if (h.length < 2) continue;
      const len7 = h[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (h[1]! & 0x80 ? 4 : 0);
      if (h.length < need) continue;
      let length = len7;
      if (len7 === 126) length = (h[2]! << 8) | h[3]!;
      else if (len7 === 127) length = Number(Buffer.from(h.slice(2, 10)).readBigUInt64BE());
      const opcode = h[0]! & 0x0f;
      if (opcode === 1 || opcode === 2) this.messages.push({ compressed: (h[0]! & 0x40) !== 0, wire: length });
      else if (opcode === 0) this.messages[this.messages.length - 1]!.wire += length;
      this.remaining = length;
      this.header = [];
    }
  }
}

interface Relay {
  url(path?: string): string;
  /** One pair of taps per connection, in the order they came. */
  readonly taps: { toServer: FrameTap; toClient: FrameTap }[];
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1:0 to `port` that taps both directions of each connection. */
async function startRelay(port: number): Promise<Relay> {
  const taps: Relay['taps'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const tap = { toServer: new FrameTap(), toClient: new FrameTap() };
    taps.push(tap);
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => tap.toServer.feed(d));
    upstream.on('data', (d: Buffer) => tap.toClient.feed(d));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const relayPort = (server.address() as net.AddressInfo).port;
  return {
    url: (path = '/echo') => `ws://127.0.0.1:${relayPort}${path}`,
    taps,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- the ws client ------------------------------------------------------------------------------

interface Session {
  /** `ws.extensions`: the names of the negotiated extensions. */
  extensions: string;
  /** The 101's Sec-WebSocket-Extensions, as ws received it. */
  response: string | undefined;
  sent: Seen[];
  received: Seen[];
  close: { code: number; reason: string };
}

function seenBytes(data: Buffer, isBinary: boolean): Seen {
  return { type: isBinary ? 'binary' : 'text', bytes: data.length, sha256: sha256(data) };
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT} ms waiting for ${what}`)), WAIT);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Opens ws's client with `perMessageDeflate`, sends `plan` one message at a time (waiting for each
 * echo), then `burst` all at once before reading their echoes, and closes with 1000.
 */
async function wsSession(url: string, perMessageDeflate: boolean | WsDeflateOptions, plan: readonly Spec[], burstPlan: readonly Spec[]): Promise<Session> {
  const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 64 * MiB });
  let response: string | undefined;
  ws.on('upgrade', (res) => {
    const h = res.headers['sec-websocket-extensions'];
    response = Array.isArray(h) ? h.join(', ') : h;
  });
  const received: Seen[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => received.push(seenBytes(data, isBinary)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  const errors: Error[] = [];
  ws.on('error', (e) => errors.push(e));
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      'open',
    );
    const sent: Seen[] = [];
    const send = (spec: Spec): void => {
      const p = payload(spec);
      sent.push(seenBytes(Buffer.from(p), typeof p !== 'string'));
      ws.send(p);
    };
    for (const spec of plan) {
      send(spec);
      await waitFor(() => received.length === sent.length || errors.length > 0, WAIT, `echo ${sent.length}`);
    }
    for (const spec of burstPlan) send(spec);
    await waitFor(() => received.length === sent.length || errors.length > 0, WAIT, 'the burst echoes');
    expect(errors).toEqual([]);
    ws.close(1000, 'deflate done');
    const close = await within(closed, 'close');
    return { extensions: ws.extensions, response, sent, received, close };
  } finally {
    ws.terminate();
  }
}

// ---- checks -------------------------------------------------------------------------------------

/**
 * After one compressed session: payloads identical at every stage, each side compressed exactly
 * the messages at or over its threshold, and the server's counters equal what the relay saw.
 */
async function expectCompressedSession(
  s: Session,
  srv: DeflateServer,
  relay: Relay,
  before: CompressionStats,
  thresholds: { client: number; server: number },
): Promise<void> {
  expect(s.close).toEqual({ code: 1000, reason: 'deflate done' });
  expect(srv.seen.messages).toEqual(s.sent);
  expect(s.received).toEqual(s.sent);

  expect(relay.taps).toHaveLength(1);
  const { toServer, toClient } = relay.taps[0]!;
  expect(toServer.messages.map((m) => m.compressed)).toEqual(s.sent.map((m) => m.bytes >= thresholds.client));
  expect(toClient.messages.map((m) => m.compressed)).toEqual(s.sent.map((m) => m.bytes >= thresholds.server));

  await waitFor(() => srv.seen.closes.length === 1 && srv.compression().connections === before.connections, WAIT, 'the server to see the close');
  const inC = toServer.messages.filter((m) => m.compressed);
  const outC = toClient.messages.filter((m) => m.compressed);
  const d = delta(srv.compression(), before);
  expect(d).toEqual({
    connections: 0,
    messagesIn: inC.length,
    compressedBytesIn: sum(inC.map((m) => m.wire)),
    inflatedBytesIn: sum(s.sent.filter((m) => m.bytes >= thresholds.client).map((m) => m.bytes)),
    messagesOut: outC.length,
    uncompressedBytesOut: sum(s.sent.filter((m) => m.bytes >= thresholds.server).map((m) => m.bytes)),
    compressedBytesOut: sum(outC.map((m) => m.wire)),
  });
  expect(d.messagesIn).toBeGreaterThan(0);
  expect(d.messagesOut).toBeGreaterThan(0);
  expect(d.compressedBytesIn).toBeLessThan(d.inflatedBytesIn);
  expect(d.compressedBytesOut).toBeLessThan(d.uncompressedBytesOut);

  expect(srv.seen.connectionsAtOpen).toEqual([1]);
  expect(srv.seen.closes).toEqual([{ code: 1000, reason: 'deflate done' }]);
  expect(srv.logs.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
}

// ---- tests --------------------------------------------------------------------------------------

interface Case {
  name: string;
  server: true | PerMessageDeflateOptions;
  client: true | WsDeflateOptions;
  /** The 101's Sec-WebSocket-Extensions. */
  response: string;
  /** `this.extensions.perMessageDeflate` on the server. */
  agreed: NegotiatedPerMessageDeflate;
  /**
   * From what size each side compresses. ws's client applies its `threshold` (default 1024) only
   * when client_no_context_takeover was agreed, and compresses every message otherwise.
   */
  thresholds: { client: number; server: number };
}

const PRESET: NegotiatedPerMessageDeflate = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 1024,
};
const KEEP_CONTEXT = { serverNoContextTakeover: false, threshold: 0 } as const;

const CASES: Case[] = [
  {
    name: 'server true, client true (ws offers client_max_window_bits)',
    server: true,
    client: true,
    response: 'permessage-deflate; server_no_context_takeover',
    agreed: PRESET,
    thresholds: { client: 0, server: 1024 },
  },
  {
    name: 'server true, client { clientNoContextTakeover: true }',
    server: true,
    client: { clientNoContextTakeover: true },
    response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    agreed: { ...PRESET, clientNoContextTakeover: true },
    thresholds: { client: 1024, server: 1024 },
  },
  {
    name: 'server true, client { serverMaxWindowBits: 10 }',
    server: true,
    client: { serverMaxWindowBits: 10 },
    response: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=10',
    agreed: { ...PRESET, serverMaxWindowBits: 10 },
    thresholds: { client: 0, server: 1024 },
  },
  {
    name: 'server keeps its context with threshold 0, client { threshold: 0 }',
    server: KEEP_CONTEXT,
    client: { threshold: 0 },
    response: 'permessage-deflate',
    agreed: { ...PRESET, serverNoContextTakeover: false, threshold: 0 },
    thresholds: { client: 0, server: 0 },
  },
  {
    name: 'server keeps its context, client { threshold: 0, serverMaxWindowBits: 8, clientMaxWindowBits: 8 } (the smallest windows)',
    server: KEEP_CONTEXT,
    client: { threshold: 0, serverMaxWindowBits: 8, clientMaxWindowBits: 8 },
    response: 'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8',
    agreed: { ...PRESET, serverNoContextTakeover: false, serverMaxWindowBits: 8, clientMaxWindowBits: 8, threshold: 0 },
    thresholds: { client: 0, server: 0 },
  },
  {
    name: 'server { clientNoContextTakeover: true } asks ws to reset its context, client true',
    server: { clientNoContextTakeover: true },
    client: true,
    response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    agreed: { ...PRESET, clientNoContextTakeover: true },
    thresholds: { client: 1024, server: 1024 },
  },
];

describe("ws's client with permessage-deflate", () => {
  for (const c of CASES) {
    describe(c.name, () => {
      let srv: DeflateServer;
      let relay: Relay;
      beforeAll(async () => {
        srv = await startDeflateServer({ perMessageDeflate: c.server, maxPayload: 4 * MiB });
        relay = await startRelay(Number(new URL(srv.url()).port));
      });
      afterAll(async () => {
        await relay?.close();
        await srv?.close();
      });
      beforeEach(async () => {
        await srv.reset();
        relay.taps.length = 0;
      });

      it('negotiates, and round-trips text and binary (empty, small, 100 KiB, 2 MiB, then 150 back to back) identical by SHA-256', async () => {
        const before = srv.compression();
        const s = await wsSession(relay.url(), c.client, MIXED, burst(0xc0ffee));
        expect(s.extensions).toBe('permessage-deflate');
        expect(s.response).toBe(c.response);
        expect(srv.seen.opens).toEqual([c.agreed]);
        expect(s.sent).toHaveLength(MIXED.length + 150);
        await expectCompressedSession(s, srv, relay, before, c.thresholds);
        // The server's debug log says what the connection agreed.
        const lines = srv.logs.filter((l) => l.level === 'debug' && l.message.includes('permessage-deflate'));
        expect(lines.map((l) => l.message.includes(c.response)), JSON.stringify(srv.logs)).toContain(true);
      }, 120_000);
    });
  }

  describe('ws with perMessageDeflate: false against a compressing server', () => {
    let srv: DeflateServer;
    beforeAll(async () => {
      srv = await startDeflateServer({ perMessageDeflate: true, maxPayload: 4 * MiB });
    });
    afterAll(async () => {
      await srv?.close();
    });

    it('gets no extension: plain frames, this.extensions.perMessageDeflate null, counters unchanged', async () => {
      await srv.reset();
      const before = srv.compression();
      const s = await wsSession(srv.url(), false, MIXED.slice(4, 10), []);
      expect(s.extensions).toBe('');
      expect(s.response).toBeUndefined();
      expect(s.received).toEqual(s.sent);
      expect(srv.seen.messages).toEqual(s.sent);
      expect(srv.seen.opens).toEqual([null]);
      expect(srv.logs.filter((l) => l.message.includes('permessage-deflate'))).toEqual([]);
      await waitFor(() => srv.seen.closes.length === 1, WAIT, 'the server to see the close');
      expect(delta(srv.compression(), before)).toEqual({
        connections: 0,
        messagesIn: 0,
        compressedBytesIn: 0,
        inflatedBytesIn: 0,
        messagesOut: 0,
        uncompressedBytesOut: 0,
        compressedBytesOut: 0,
      });
    });
  });
});
