/**
 * permessage-deflate (RFC 7692) with Python `websockets` 10.4 (Debian's python3-websockets, run
 * with /usr/bin/python3), which offers the extension by default. wsmount runs with
 * `perMessageDeflate: true` (threshold 1024, server_no_context_takeover) and with
 * `{ serverNoContextTakeover: false, threshold: 0 }` (the server keeps its compression context).
 *
 * Each test runs test/interop/deflate_client.py, which generates its payloads from seeds and
 * reports, per message, type, length and SHA-256 of what it sent and received, and, from inside
 * websockets' extension object, whether each frame carried RSV1 and its payload size on the wire.
 * The test checks those against what the server's echo route recorded and against the server's
 * `stats().compression` counters, byte for byte, and that the server's debug log names the
 * extension it agreed.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CompressionStats, NegotiatedPerMessageDeflate, PerMessageDeflateOptions } from '../../src/index.js';
import { waitFor } from '../helpers/server.js';
import { PYTHON, PythonScript, type Json, hasPython } from '../helpers/python.js';
import { type DeflateServer, KiB, MIXED, MiB, type Seen, type Spec, burst, delta, startDeflateServer, sum } from './deflate-routes.js';

const SCRIPT = fileURLToPath(new URL('./deflate_client.py', import.meta.url));

// ---- the Python client --------------------------------------------------------------------

interface Agreed {
  name: string;
  remote_no_context_takeover: boolean;
  local_no_context_takeover: boolean;
  remote_max_window_bits: number;
  local_max_window_bits: number;
}

interface OnWire {
  compressed: boolean;
  wire: number;
}

interface SessionResult {
  offered: string | null;
  response: string | null;
  extensions: Agreed[];
  sent: Seen[];
  received: Seen[];
  wire_out: OnWire[];
  wire_in: OnWire[];
  close: { code: number; reason: string };
}

class PyRun extends PythonScript {
  constructor(url: string, opts: Json) {
    super(SCRIPT, url, 'session', opts, 110_000);
  }

  async result(): Promise<SessionResult> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`python exited with ${String(code)}:\n${this.stderr}`);
    const handshake = this.lines.find((l) => l.handshake === true);
    const done = this.lines.find((l) => l.done === true);
    if (handshake === undefined || done === undefined) throw new Error(`python printed no result: ${JSON.stringify(this.lines).slice(0, 2000)}`);
    return { ...(handshake as object), ...(done as object) } as SessionResult;
  }
}

function python(url: string, opts: { plan: readonly Spec[]; pipeline?: boolean; compression?: boolean; offer?: Json }): Promise<SessionResult> {
  return new PyRun(url, opts).result();
}

// ---- checks -------------------------------------------------------------------------------

/**
 * What must hold after one compressed session: payloads identical at every stage (python sent =
 * server received = python received), python compressed everything (websockets always does),
 * the server compressed exactly the messages of `threshold` bytes and up, and the server's
 * counters agree with what went over the wire as python saw it.
 */
async function expectCompressedSession(r: SessionResult, srv: DeflateServer, before: CompressionStats, threshold: number): Promise<void> {
  expect(r.close).toEqual({ code: 1000, reason: 'deflate done' });
  expect(srv.seen.messages).toEqual(r.sent);
  expect(r.received).toEqual(r.sent);

  expect(r.wire_out).toHaveLength(r.sent.length);
  expect(r.wire_out.every((w) => w.compressed)).toBe(true);
  expect(r.wire_in).toHaveLength(r.sent.length);
  expect(r.wire_in.map((w) => w.compressed)).toEqual(r.sent.map((m) => m.bytes >= threshold));

  await waitFor(() => srv.seen.closes.length === 1 && srv.compression().connections === before.connections, 10_000, 'the server to see the close');
  const compressedIn = r.wire_in.filter((w) => w.compressed);
  const d = delta(srv.compression(), before);
  expect(d).toEqual({
    connections: 0, // opened and closed
    messagesIn: r.sent.length,
    compressedBytesIn: sum(r.wire_out.map((w) => w.wire)),
    inflatedBytesIn: sum(r.sent.map((m) => m.bytes)),
    messagesOut: compressedIn.length,
    uncompressedBytesOut: sum(r.sent.filter((m) => m.bytes >= threshold).map((m) => m.bytes)),
    compressedBytesOut: sum(compressedIn.map((w) => w.wire)),
  });
  // It did compress: the text dominates, and it shrinks.
  expect(d.compressedBytesOut).toBeLessThan(d.uncompressedBytesOut);
  expect(d.compressedBytesIn).toBeLessThan(d.inflatedBytesIn);

  expect(srv.seen.connectionsAtOpen).toEqual([1]);
  expect(srv.seen.closes).toEqual([{ code: 1000, reason: 'deflate done' }]);
  expect(srv.logs.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
}

// ---- tests --------------------------------------------------------------------------------

const CONFIGS: {
  name: string;
  option: true | PerMessageDeflateOptions;
  threshold: number;
  response: string;
  server: NegotiatedPerMessageDeflate;
}[] = [
  {
    name: 'perMessageDeflate: true',
    option: true,
    threshold: 1024,
    response: 'permessage-deflate; server_no_context_takeover',
    server: { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 1024 },
  },
  {
    name: 'perMessageDeflate: { serverNoContextTakeover: false, threshold: 0 }',
    option: { serverNoContextTakeover: false, threshold: 0 },
    threshold: 0,
    response: 'permessage-deflate',
    server: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 },
  },
];

describe.runIf(hasPython)(`python websockets 10.4 (${PYTHON}) with permessage-deflate`, () => {
  for (const config of CONFIGS) {
    describe(config.name, () => {
      let srv: DeflateServer;

      beforeAll(async () => {
        srv = await startDeflateServer({ perMessageDeflate: config.option, maxPayload: 4 * MiB });
      });
      afterAll(async () => {
        await srv?.close();
      });
      beforeEach(async () => {
        await srv.reset();
      });

      it('negotiates from websockets\' default offer: the 101 header, the parameters python agreed, this.extensions on the server', async () => {
        const before = srv.compression();
        const r = await python(srv.url(), { plan: [MIXED[0]!, MIXED[6]!] });
        expect(r.offered).toBe('permessage-deflate; client_max_window_bits');
        expect(r.response).toBe(config.response);
        // remote = the server's side, local = python's.
        expect(r.extensions).toEqual([
          {
            name: 'permessage-deflate',
            remote_no_context_takeover: config.server.serverNoContextTakeover,
            local_no_context_takeover: false,
            remote_max_window_bits: 15,
            local_max_window_bits: 15,
          },
        ]);
        expect(srv.seen.opens).toEqual([config.server]);
        await expectCompressedSession(r, srv, before, config.threshold);
      }, 120_000);

      it('round-trips text and binary, empty, small and large (100 KiB, 2 MiB), one at a time, identical by SHA-256', async () => {
        const before = srv.compression();
        const r = await python(srv.url(), { plan: MIXED });
        // The large ones really are that large (text is cut at a character boundary).
        expect(r.sent.map((m) => m.bytes).filter((n) => n >= 100 * KiB - 3)).toHaveLength(4);
        expect(r.sent.at(-2)).toMatchObject({ type: 'binary', bytes: 2 * MiB });
        expect(r.sent.at(-3)?.bytes).toBeGreaterThan(2 * MiB - 4);
        await expectCompressedSession(r, srv, before, config.threshold);
      }, 120_000);

      it('keeps both compression contexts in sync over 150 messages sent back to back (large ones on the thread pool between small ones)', async () => {
        const before = srv.compression();
        const plan = burst(0x5eed);
        const r = await python(srv.url(), { plan, pipeline: true });
        expect(r.sent).toHaveLength(150);
        await expectCompressedSession(r, srv, before, config.threshold);
      }, 120_000);

      it("a client that offers nothing gets plain frames: no header, this.extensions.perMessageDeflate is null, counters don't move", async () => {
        const before = srv.compression();
        const r = await python(srv.url(), { plan: MIXED.slice(6, 11), compression: false });
        expect(r.offered).toBeNull();
        expect(r.response).toBeNull();
        expect(r.extensions).toEqual([]);
        expect(r.received).toEqual(r.sent);
        expect(srv.seen.messages).toEqual(r.sent);
        expect(srv.seen.opens).toEqual([null]);
        expect(srv.seen.connectionsAtOpen).toEqual([0]);
        await waitFor(() => srv.seen.closes.length === 1, 10_000, 'the server to see the close');
        expect(delta(srv.compression(), before)).toEqual({
          connections: 0,
          messagesIn: 0,
          compressedBytesIn: 0,
          inflatedBytesIn: 0,
          messagesOut: 0,
          uncompressedBytesOut: 0,
          compressedBytesOut: 0,
        });
      }, 120_000);
    });
  }

  describe('python offers client_no_context_takeover and server_max_window_bits=10 to a server that keeps its context', () => {
    let srv: DeflateServer;
    beforeAll(async () => {
      srv = await startDeflateServer({ perMessageDeflate: { serverNoContextTakeover: false, threshold: 0 }, maxPayload: 4 * MiB });
    });
    afterAll(async () => {
      await srv?.close();
    });
    beforeEach(async () => {
      await srv.reset();
    });

    it('agrees to both (RFC 7692 §7.1.1.2, §7.1.2.1) and round-trips the mixed set and a burst with a 1 KiB server window', async () => {
      const offer = { client_no_context_takeover: true, server_max_window_bits: 10, client_max_window_bits: true };
      const before = srv.compression();
      const r = await python(srv.url(), { plan: [...MIXED, ...burst(7)], offer });
      expect(r.offered).toBe('permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits');
      expect(r.response).toBe('permessage-deflate; client_no_context_takeover; server_max_window_bits=10');
      expect(r.extensions).toEqual([
        {
          name: 'permessage-deflate',
          remote_no_context_takeover: false,
          local_no_context_takeover: true,
          remote_max_window_bits: 10,
          local_max_window_bits: 15,
        },
      ]);
      expect(srv.seen.opens).toEqual([
        { serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 15, threshold: 0 },
      ]);
      await expectCompressedSession(r, srv, before, 0);
    }, 120_000);
  });

  describe("the server's log", () => {
    let srv: DeflateServer;
    beforeAll(async () => {
      srv = await startDeflateServer({ perMessageDeflate: true, maxPayload: 4 * MiB });
    });
    afterAll(async () => {
      await srv?.close();
    });

    it('at debug level, a line names permessage-deflate for a connection that negotiated it, and none for one that did not', async () => {
      await srv.reset();
      await python(srv.url(), { plan: [MIXED[6]!], compression: false });
      expect(srv.logs.filter((l) => l.message.includes('permessage-deflate'))).toEqual([]);
      await srv.reset();
      const r = await python(srv.url(), { plan: [MIXED[6]!] });
      expect(r.response).toBe('permessage-deflate; server_no_context_takeover');
      const lines = srv.logs.filter((l) => l.level === 'debug' && l.message.includes('permessage-deflate'));
      expect(lines.length, JSON.stringify(srv.logs)).toBeGreaterThanOrEqual(1);
      // The line carries what was agreed: the 101's header value.
      expect(lines.some((l) => l.message.includes(r.response!)), JSON.stringify(lines)).toBe(true);
    }, 120_000);
  });
});
