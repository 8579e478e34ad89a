/**
 * Shared fixture for Autobahn sections 12 and 13 (permessage-deflate, RFC 7692): the case table,
 * the echo servers, and the case runner, after autobahntestsuite/case/case12_x_x.py.
 *
 * A case opens one connection with an offer, and fails at once if the server declines it
 * (Autobahn reports UNIMPLEMENTED, which uWS's CI counts as a failure too: here compression is
 * configured on, so declining is wrong). It then sends COUNT messages of LEN bytes, each the next
 * LEN bytes of the corpus (wrapping around at its end, as Autobahn's `sendOne` does), compressed,
 * and split into frames of AUTOFRAGSIZE compressed bytes when that is not 0; checks every echo (type,
 * length and bytes, where Autobahn compares SHA-1s); and ends with a clean close 1000.
 *
 * One difference: Autobahn sends a message only once the previous echo arrived (lock step:
 * `sendOne` is called from `onMessage`). We keep up to `WINDOW_BYTES` (1 MiB) of messages in
 * flight, every echo still checked in order, so that the client's compression, the server's work
 * and the client's decompression overlap on this 2-core machine where client and server share a
 * process (measured: 12.3 took 48 s instead of 59 s in lock step). `AUTOBAHN_WINDOW=0` restores
 * lock step. The 342 cases (90 + 126 × 2 servers) took 11.6 minutes here with 1000 messages
 * each; `AUTOBAHN_MESSAGES=100` (82 s) is for quick runs.
 *
 * `CONFORMANCE_SERVER=ws` runs the same cases against ws's WebSocketServer (an independent,
 * widely used implementation configured the same way), to check the tests themselves (over
 * HTTP/1.1 only: ws has no HTTP/2).
 *
 * Over HTTP/2 (the h2c project, harness.ts) the cases are the same, each connection an RFC 8441
 * stream on a session of its own; vitest.config.ts gives that project 100 messages per case unless
 * AUTOBAHN_MESSAGES_H2 says otherwise (the time goes to zlib on either transport).
 */
import { Buffer } from 'node:buffer';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { WebSocketServer } from 'ws';
import type { HandlerOptions } from '../../src/index.js';
import type { Corpus } from './cases/corpora.js';
import { DeflateClient, type DeflateClientOptions, type DeflateOffer, OPCODE, matchOffer } from './deflate-client.js';
import { Echo, TRANSPORT, checkStreamEnds, connectRaw, startConformanceServer } from './harness.js';

/** case12_x_x.py MSG_SIZES: (payload length, message count, case timeout in s, auto-fragment size). */
export const MSG_SIZES: readonly { len: number; count: number; waitSecs: number; fragment: number }[] = [
  { len: 16, count: 1000, waitSecs: 60, fragment: 0 },
  { len: 64, count: 1000, waitSecs: 60, fragment: 0 },
  { len: 256, count: 1000, waitSecs: 120, fragment: 0 },
  { len: 1024, count: 1000, waitSecs: 240, fragment: 0 },
  { len: 4096, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 8192, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 16384, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 32768, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 65536, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 131072, count: 1000, waitSecs: 480, fragment: 0 },
  { len: 8192, count: 1000, waitSecs: 480, fragment: 256 },
  { len: 16384, count: 1000, waitSecs: 480, fragment: 256 },
  { len: 32768, count: 1000, waitSecs: 480, fragment: 256 },
  { len: 65536, count: 1000, waitSecs: 480, fragment: 256 },
  { len: 131072, count: 1000, waitSecs: 480, fragment: 256 },
  { len: 131072, count: 1000, waitSecs: 480, fragment: 1024 },
  { len: 131072, count: 1000, waitSecs: 480, fragment: 4096 },
  { len: 131072, count: 1000, waitSecs: 480, fragment: 32768 },
];

/** Per-case vitest timeout: generous, but far below Autobahn's 480 s. */
export const CASE_TIMEOUT = 120_000;
/** How long one echo may take before the case fails (a stalled server fails with a clear message). */
const ECHO_TIMEOUT = 30_000;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${v}`);
  return n;
}

/** Messages per case: Autobahn's 1000 unless AUTOBAHN_MESSAGES says otherwise. */
export const MESSAGES = envInt('AUTOBAHN_MESSAGES', 1000);
/** Uncompressed bytes in flight (at least one message); 0 = Autobahn's lock step. */
export const WINDOW_BYTES = envInt('AUTOBAHN_WINDOW', 1 << 20);
/** Which server the cases run against: wsmount (default) or ws (to check the tests). */
export const REFERENCE = process.env.CONFORMANCE_SERVER === 'ws' ? 'ws' : 'wsmount';

/** A case's label: "1000 × 8192 B, fragments of 256 B" (Autobahn's description, shortened). */
export function sizeLabel(s: { len: number; fragment: number }): string {
  const size = s.len >= 1024 ? `${s.len / 1024} KiB` : `${s.len} B`;
  return `${MESSAGES} × ${size}, ${s.fragment === 0 ? 'unfragmented' : `auto-fragmented to ${s.fragment} B`}`;
}

/** wsmount's `perMessageDeflate` handler option, as an object (the public type, not src/extensions'). */
export type DeflateSetting = Exclude<HandlerOptions['perMessageDeflate'], boolean | undefined>;

export interface CompressionServer {
  port(): number;
  /** Opens a client with `offers` and tracks it, so a failing case never leaves a socket behind. */
  connect(offers: readonly DeflateOffer[] | string, options?: DeflateClientOptions): Promise<DeflateClient>;
}

/**
 * Starts an echo server for the file with `perMessageDeflate` (wsmount's handler option) on
 * `/echo` — or ws's server configured the same way when CONFORMANCE_SERVER=ws.
 */
export function useCompressionServer(perMessageDeflate: true | DeflateSetting): CompressionServer {
  let port = 0;
  let close: (() => Promise<void>) | undefined;
  const open: DeflateClient[] = [];
  beforeAll(async () => {
    if (REFERENCE === 'ws' && TRANSPORT === 'h2') {
      throw new Error('CONFORMANCE_SERVER=ws runs over HTTP/1.1 only (ws has no HTTP/2): use the http1 project');
    }
    if (REFERENCE === 'ws') {
      const started = await startWs(perMessageDeflate);
      port = started.port;
      close = started.close;
    } else {
      // Default maxPayload (1 MiB) and maxFragments (1024) fit every case: 128 KiB in 256-byte
      // fragments is at most 514 frames even for incompressible data. closeTimeout as in harness.ts.
      const server = await startConformanceServer({ '/echo': Echo }, { perMessageDeflate, closeTimeout: 30_000 });
      port = server.port;
      close = () => server.close();
    }
  });
  afterEach(() => {
    const clients = open.splice(0);
    try {
      checkStreamEnds(clients.map((c) => c.raw));
    } finally {
      for (const c of clients) {
        c.destroy();
      }
    }
  });
  afterAll(async () => {
    await close?.();
  });
  return {
    port: () => port,
    async connect(offers, options = {}) {
      if (port === 0) throw new Error('server not started');
      const c = await DeflateClient.connect(port, '/echo', offers, options, {}, connectRaw);
      open.push(c);
      return c;
    },
  };
}

/** ws's server, echoing text as text and binary as binary, with wsmount's preset mapped onto ws's options. */
async function startWs(pmd: true | DeflateSetting): Promise<{ port: number; close(): Promise<void> }> {
  const o = pmd === true ? {} : pmd;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: 1 << 20,
    perMessageDeflate: {
      // ws's `false` refuses a client's server_no_context_takeover (400); wsmount's `false` only
      // means "not unasked", which is ws's unset. Same for the client's.
      ...((o.serverNoContextTakeover ?? true) ? { serverNoContextTakeover: true } : {}),
      ...(o.clientNoContextTakeover === true ? { clientNoContextTakeover: true } : {}),
      threshold: o.threshold ?? 1024,
      // ws answers client_max_window_bits only when the option is set; wsmount's preset (15)
      // leaves the client's window alone, so leave ws's unset too.
      ...(o.serverMaxWindowBits !== undefined ? { serverMaxWindowBits: o.serverMaxWindowBits } : {}),
      ...(o.clientMaxWindowBits !== undefined && o.clientMaxWindowBits !== 15 ? { clientMaxWindowBits: o.clientMaxWindowBits } : {}),
    },
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    ws.on('error', () => {});
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  return {
    port: (wss.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

export interface CaseOptions {
  offers: readonly DeflateOffer[];
  corpus: Corpus;
  len: number;
  fragment: number;
  count?: number;
  client?: DeflateClientOptions;
  /** Extra checks on what the server agreed to (besides fitting an offer). */
  checkAgreement?: (c: DeflateClient, offerIndex: number) => void;
  /**
   * Require some echoes to come compressed. Off by default: RFC 7692 lets a server send any
   * message uncompressed (uWS's Autobahn echo server does); on where the server's configuration
   * promises compression (text from its threshold up).
   */
  expectCompressedEchoes?: boolean;
}

export interface CaseResult {
  offerIndex: number;
  header: string;
  ms: number;
  stats: DeflateClient['stats'];
}

/** Runs one case of section 12 or 13 (see the file comment). */
export async function runCase(server: CompressionServer, o: CaseOptions): Promise<CaseResult> {
  const started = performance.now();
  const count = o.count ?? MESSAGES;
  const c = await server.connect(o.offers, { audit: true, ...o.client });
  expect(c.agreement, `the server declined permessage-deflate (Autobahn: UNIMPLEMENTED); answer headers: ${JSON.stringify(c.raw.headers)}`).not.toBeNull();
  const agreement = c.agreement as NonNullable<DeflateClient['agreement']>;
  const offerIndex = matchOffer(agreement, o.offers);
  o.checkAgreement?.(c, offerIndex);

  const opcode = o.corpus.binary ? OPCODE.BINARY : OPCODE.TEXT;
  const data = o.corpus.data;
  let ptr = 0;
  /** The next message: the next `len` bytes of the corpus, wrapping (case12_x_x.py sendOne). */
  const nextPayload = (): Buffer => {
    const to = (ptr + o.len) % data.length;
    const msg = to > ptr ? data.subarray(ptr, to) : Buffer.concat([data.subarray(ptr), data.subarray(0, to)]);
    ptr = to;
    return msg;
  };
  const expected: Buffer[] = [];
  let inFlight = 0;
  let received = 0;
  const receiveOne = async (): Promise<void> => {
    const m = await c.nextMessage(ECHO_TIMEOUT);
    const n = ++received;
    const want = expected.shift();
    if (want === undefined) expect.fail(`message ${n}: the server sent a message nothing was sent for (opcode 0x${m.opcode.toString(16)})`);
    if (m.opcode === OPCODE.CLOSE) {
      expect.fail(`echo ${n} of ${count}: the server closed instead (code ${m.payload.length >= 2 ? m.payload.readUInt16BE(0) : 'none'}, reason ${JSON.stringify(m.payload.subarray(2).toString())})`);
    }
    if (m.opcode !== opcode) expect.fail(`echo ${n} of ${count}: opcode 0x${m.opcode.toString(16)}, sent 0x${opcode.toString(16)}`);
    if (m.payload.length !== want.length) expect.fail(`echo ${n} of ${count}: ${m.payload.length} bytes, sent ${want.length}`);
    if (!m.payload.equals(want)) {
      let i = 0;
      while (m.payload[i] === want[i]) i++;
      expect.fail(`echo ${n} of ${count} (${m.compressed ? 'compressed' : 'uncompressed'}): differs from what was sent, first at byte ${i}`);
    }
    inFlight -= want.length;
  };
  // The receiver runs beside the sender, so that compressing the next message and inflating the
  // last echo overlap (both go to the thread pool) instead of taking turns.
  let freed: (() => void) | undefined;
  const receiver = (async () => {
    for (let n = 0; n < count; n++) {
      await receiveOne();
      freed?.();
    }
  })();
  let receiverFailed = false;
  receiver.catch(() => {
    receiverFailed = true;
    freed?.();
  });
  for (let i = 0; i < count && !receiverFailed; i++) {
    const payload = nextPayload();
    while (expected.length > 0 && inFlight + payload.length > WINDOW_BYTES && !receiverFailed) {
      await new Promise<void>((resolve) => {
        freed = resolve;
      });
    }
    if (receiverFailed) break;
    const wire = await c.encode(opcode, payload, { fragmentSize: o.fragment });
    expected.push(payload);
    inFlight += payload.length;
    c.raw.sendRaw(wire);
  }
  await receiver;
  expect(c.stats.compressedOut, 'messages the client sent compressed').toBe(count);
  if (o.expectCompressedEchoes === true) expect(c.stats.compressedIn, 'echoes that came compressed').toBeGreaterThan(0);

  const closed = await c.close(1000, '', 10_000);
  expect(closed.before.map((m) => `opcode ${m.opcode}, ${m.payload.length} bytes`), 'messages after the last echo').toEqual([]);
  expect(closed.code, 'echoed close code').toBe(1000);
  expect(closed.tcpClosed, 'server closed TCP').toBe(true);
  return { offerIndex, header: agreement.header, ms: performance.now() - started, stats: c.stats };
}
