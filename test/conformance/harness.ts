/**
 * Shared fixture for the conformance suite (our own cases, modeled on the Autobahn TestSuite's
 * sections 1–7, 9 and 10): an echo server on 127.0.0.1, and the judges that decide each case the
 * way Autobahn does — the echo arrives intact, or the server fails the connection with the right
 * close code and then closes TCP, or a clean close is echoed and TCP closed.
 *
 * Frames are built and parsed by the independent raw client in test/helpers/raw.ts, never by
 * src/, so a codec bug cannot hide behind a matching bug in the test.
 *
 * Two transports (vitest.config.ts runs the whole directory once per transport, as two projects):
 * - `http1` (the default): HTTP/1.1 upgrade over a TCP connection of its own per client;
 * - `h2c` (`CONFORMANCE_TRANSPORT=h2`): RFC 8441 extended CONNECT on an `http2.createServer()`
 *   with the handler attached, each client on a fresh HTTP/2 session of its own (the closest thing
 *   to a TCP connection of its own). The RFC 6455 frames are the same bytes; what RFC 8441 §5 maps
 *   is the transport's end: the server's orderly "close TCP" is its END_STREAM (the raw client
 *   answers with its own, so the stream closes: `tcpClosed`/`waitClosed()` then mean "the stream
 *   closed"), and a TCP reset is an RST_STREAM. On top of the TCP judges, the h2 run checks after
 *   every case that each stream the server closed was closed the orderly way, not reset (see
 *   {@link checkStreamEnds}), since that is what "closes TCP" means there.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { Behavior, type HandlerOptions, type Routes, createWebSocketHandler } from '../../src/index.js';
import { RawClient, type RawFrame, type SendOptions, closePayload, encodeClientFrame as encodeRaw } from '../helpers/raw.js';
import { startServer, sleep } from '../helpers/server.js';

export { RawClient, closePayload, sleep };

/** One masked client frame (the raw client's encoder), with an empty payload by default. */
export function encodeClientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), options: SendOptions = {}): Buffer {
  return encodeRaw(opcode, payload, options);
}
export type { RawFrame };

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Echoes every message back as it came: text as text, binary as binary. */
export class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

/** The section 9 route: limits raised per route with the class's static overrides. */
export class BigEcho extends Echo {
  static override maxPayload: number | undefined = 16 * 1024 * 1024;
  static override maxFragments: number | undefined = 70_000;
}

/** Default options, so the `/echo` route shows the safe defaults (1 MiB, 1024 fragments). */
export const ROUTES = { '/echo': Echo, '/big': BigEcho };

/** How long a case waits for any single expected event before it fails. */
export const WAIT = 3000;
/** How long a case waits to be sure that something did NOT happen. */
export const QUIET = 150;

// ---- transports ---------------------------------------------------------------------------------

/** Which transport the suite runs over: see the file comment. */
export type Transport = 'h1' | 'h2';

function transportFromEnv(): Transport {
  const v = process.env.CONFORMANCE_TRANSPORT;
  if (v === undefined || v === '' || v === 'h1') return 'h1';
  if (v === 'h2') return 'h2';
  throw new Error(`CONFORMANCE_TRANSPORT must be h1 or h2, not ${JSON.stringify(v)}`);
}

/** The transport of this run (`CONFORMANCE_TRANSPORT`; set per project in vitest.config.ts). */
export const TRANSPORT: Transport = transportFromEnv();

/** A conformance server: its port, and a close that always finishes. */
export interface ConformanceServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Over h2: the server's end of each WebSocket stream still open, by the port of the client's
 * connection (one session, so one TCP connection, per client), for {@link checkStreamEnds}.
 */
const serverStreams = new Map<number, http2.ServerHttp2Stream>();
/** The server's end of each client's stream, found when the client connects. */
const serverEnds = new WeakMap<RawClient, http2.ServerHttp2Stream>();

/**
 * Serves `routes` on 127.0.0.1 over this run's transport: wsmount/testing's `listen()` (an HTTP/1.1
 * server) for h1, an `http2.createServer()` with a handler attached for h2. Same handler options
 * either way (quiet logs and the test servers' short timeouts, unless overridden).
 */
export async function startConformanceServer(routes: Routes, options: HandlerOptions = {}): Promise<ConformanceServer> {
  if (TRANSPORT === 'h1') return startServer(routes, options);
  const handler = createWebSocketHandler(routes, { logLevel: 'silent', closeTimeout: 2000, ...options });
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  handler.attach(server);
  // After the handler's own 'stream' listener (attach() puts it first): only watches.
  server.on('stream', (stream) => {
    const port = stream.session?.socket?.remotePort;
    if (port !== undefined) serverStreams.set(port, stream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // As listen()'s close: 1001 to every client, a bounded wait, then whatever is left is destroyed.
        await handler.close({ timeout: 1000 });
        for (const session of sessions) {
          const remote = session.socket?.remotePort;
          if (remote !== undefined) serverStreams.delete(remote);
          session.destroy();
        }
        await Promise.race([closed, sleep(1500)]);
      })();
      return closing;
    },
  };
}

/**
 * Opens a raw client over this run's transport: an HTTP/1.1 upgrade on a TCP connection of its
 * own, or an extended CONNECT on a fresh HTTP/2 session of its own (closed with the stream).
 * Over h2, header names go lower-case (RFC 9113 §8.2.1).
 */
export async function connectRaw(port: number, path: string, headers: Record<string, string> = {}): Promise<RawClient> {
  if (TRANSPORT === 'h1') return RawClient.connect(port, path, headers);
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const c = await RawClient.connectH2(port, path, lower);
  const stream = c.stream as http2.ClientHttp2Stream;
  const localPort = stream.session?.socket?.localPort;
  if (localPort === undefined) throw new Error('harness: the HTTP/2 session has no local port');
  const serverEnd = serverStreams.get(localPort);
  // The server's end was seen before its 200 could arrive (the 'stream' event answers it).
  if (serverEnd === undefined) throw new Error(`harness: no server stream for the client on port ${localPort}`);
  serverStreams.delete(localPort);
  serverEnds.set(c, serverEnd);
  return c;
}

/**
 * Over h2, for the clients of one case, before the harness resets what is left: every stream
 * that closed was closed by the server the orderly way, never reset with an error code. RFC 8441
 * §5: an orderly TCP closure is END_STREAM, a TCP reset is RST_STREAM (CANCEL); an RST_STREAM
 * NO_ERROR after END_STREAM only says the server needs nothing more (RFC 9113 §8.1). The judges'
 * "server closed TCP" cannot see the difference on the client (Node's stream.close(CANCEL) sends
 * END_STREAM first, and the raw client ends its side as soon as it sees it), so it is read on the
 * server's end of the stream. No client resets a stream before this runs, so an error code there
 * is the server's. Nothing to check over h1.
 */
export function checkStreamEnds(clients: readonly RawClient[]): void {
  for (const c of clients) {
    const stream = serverEnds.get(c);
    if (stream === undefined || !c.tcpClosed) continue;
    expect(stream.rstCode, 'over h2 the server ends its stream (END_STREAM); it does not reset it (RST_STREAM) (RFC 8441 §5)').toBe(
      http2.constants.NGHTTP2_NO_ERROR,
    );
  }
}

/**
 * Starts one echo server for the file and tracks every client a case opens, so that a failing
 * case never leaves a socket behind. Call once at the top level of a test file.
 */
export function useEchoServer(): { connect(path?: string, headers?: Record<string, string>): Promise<RawClient>; port(): number } {
  let server: ConformanceServer | undefined;
  const open: RawClient[] = [];
  beforeAll(async () => {
    // A long closeTimeout, so that the server's fallback timer can never pass for the prompt TCP
    // close RFC 6455 §7.1.1 asks of a server after the closing handshake (Autobahn: within ~1 s).
    server = await startConformanceServer(ROUTES, { closeTimeout: 30_000 });
  });
  afterEach(() => {
    const clients = open.splice(0);
    try {
      checkStreamEnds(clients);
    } finally {
      for (const c of clients) c.destroy();
    }
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    port() {
      if (server === undefined) throw new Error('server not started');
      return server.port;
    },
    async connect(path = '/echo', headers: Record<string, string> = {}) {
      if (server === undefined) throw new Error('server not started');
      const c = await connectRaw(server.port, path, headers);
      open.push(c);
      return c;
    },
  };
}

// ---- payloads ---------------------------------------------------------------------------------

/** `length` bytes of text: a repeated ASCII pattern (Autobahn's "BAsd7&jh23"). */
export function textPayload(length: number, pattern = 'BAsd7&jh23'): Buffer {
  const out = Buffer.alloc(length);
  if (length > 0) out.fill(pattern);
  return out;
}

/** `length` random bytes (every byte value, so masking and copying errors show). */
export function binaryPayload(length: number): Buffer {
  return randomBytes(length);
}

/**
 * A masked client frame, built fast for large payloads (32-bit XOR). Same wire format as
 * `encodeClientFrame`, which does it byte by byte.
 */
export function bigFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  if (n < 4096) return encodeClientFrame(opcode, payload, { fin });
  const headLen = n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headLen + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  const key = randomBytes(4);
  key.copy(out, headLen);
  const start = headLen + 4;
  payload.copy(out, start);
  // XOR whole words from an aligned offset, then the tail byte by byte.
  const body = out.subarray(start);
  const lead = (4 - (body.byteOffset & 3)) & 3;
  let i = 0;
  for (; i < lead && i < n; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  const words = (n - i) >>> 2;
  if (words > 0) {
    // The key rotated to start at byte i, read as one word in the platform's byte order.
    const rotated = new Uint8Array([key[i & 3] as number, key[(i + 1) & 3] as number, key[(i + 2) & 3] as number, key[(i + 3) & 3] as number]);
    const w = new Uint32Array(rotated.buffer)[0] as number;
    const view = new Uint32Array(body.buffer, body.byteOffset + i, words);
    for (let j = 0; j < words; j++) view[j] = (view[j] as number) ^ w;
    i += words << 2;
  }
  for (; i < n; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  return out;
}

/** Splits `payload` into frames of `size` bytes: first `opcode`, then continuations, last FIN. */
export function fragmentFrames(opcode: number, payload: Buffer, size: number): Buffer {
  const frames: Buffer[] = [];
  if (payload.length === 0) return encodeClientFrame(opcode, payload);
  for (let off = 0; off < payload.length; off += size) {
    const end = Math.min(off + size, payload.length);
    frames.push(bigFrame(off === 0 ? opcode : OP.CONT, payload.subarray(off, end), end === payload.length));
  }
  return Buffer.concat(frames);
}

/** Splits `payload` into the given fragments (pieces) of one message. */
export function framesOf(opcode: number, pieces: Buffer[]): Buffer {
  return Buffer.concat(
    pieces.map((p, i) => encodeClientFrame(i === 0 ? opcode : OP.CONT, p, { fin: i === pieces.length - 1 })),
  );
}

// ---- judges -------------------------------------------------------------------------------------

function describeFrame(f: RawFrame): string {
  return `opcode=0x${f.opcode.toString(16)} fin=${f.fin} rsv=${f.rsv} length=${f.payload.length}`;
}

/** Asserts a well-formed unfragmented server frame: FIN, no RSV, unmasked (RFC 6455 §5.1). */
export function expectServerFrame(f: RawFrame, opcode: number, payload: Buffer): void {
  expect(describeFrame(f)).toBe(describeFrame({ fin: true, rsv: 0, opcode, masked: false, payload }));
  expect(f.masked).toBe(false);
  // Compare bytes without a huge diff on failure.
  if (!f.payload.equals(payload)) {
    let i = 0;
    while (i < payload.length && f.payload[i] === payload[i]) i++;
    expect.fail(`payload differs from what was sent, first at byte ${i} of ${payload.length}`);
  }
}

/** The next frame is the echo of `payload` as `opcode` (text or binary). */
export async function expectEcho(c: RawClient, opcode: number, payload: Buffer | string, timeout = WAIT): Promise<void> {
  const f = await c.nextFrame(timeout);
  expectServerFrame(f, opcode, typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload);
}

/** The next frame is a pong carrying exactly `payload` (RFC 6455 §5.5.3). */
export async function expectPong(c: RawClient, payload: Buffer | string, timeout = WAIT): Promise<void> {
  const f = await c.nextFrame(timeout);
  expectServerFrame(f, OP.PONG, typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload);
}

/**
 * The server fails the connection: a close frame with exactly `code` (nothing else first unless
 * `before` lists it), then it closes TCP. Nothing may follow the close frame.
 */
export async function expectFail(c: RawClient, code: number, timeout = WAIT): Promise<void> {
  const r = await c.expectClose(timeout);
  expect(r.before.map(describeFrame), 'frames before the close frame').toEqual([]);
  expect(r.code, 'close code').toBe(code);
  expect(r.tcpClosed, 'server closed TCP').toBe(true);
  expect(c.pending().map(describeFrame), 'frames after the close frame').toEqual([]);
}

/**
 * After our close frame: the server's only answer is one close frame with `code`, then TCP close
 * (whatever else we sent after the close is ignored).
 */
export const expectOnlyCloseAnswer: (c: RawClient, code: number, timeout?: number) => Promise<void> = expectFail;

/**
 * Client-initiated clean close (RFC 6455 §5.5.1, §7.1.1): the server echoes the code and closes
 * TCP, and sends nothing but the close after our close frame.
 */
export async function expectCleanClose(c: RawClient, code = 1000, reason = '', timeout = WAIT): Promise<void> {
  const r = await c.close(code, reason, timeout);
  expect(r.code, 'echoed close code').toBe(code);
  expect(r.tcpClosed, 'server closed TCP').toBe(true);
  expect(c.pending().map(describeFrame), 'frames after the close frame').toEqual([]);
}

/** Waits `ms` and asserts that the server sent nothing and kept the connection open. */
export async function expectQuiet(c: RawClient, ms = QUIET): Promise<void> {
  await sleep(ms);
  expect(c.pending().map(describeFrame), 'frames while waiting').toEqual([]);
  expect(c.tcpClosed, 'TCP still open').toBe(false);
}

/** Writes `bytes` one TCP write per frame/piece with a pause between, like Autobahn's sync mode. */
export async function sendEach(c: RawClient, pieces: Buffer[], delay = 10): Promise<void> {
  for (const p of pieces) {
    c.sendRaw(p);
    await sleep(delay);
  }
}

/** Writes `bytes` in `size`-byte TCP writes (Autobahn's "chopsize"). */
export function sendChopped(c: RawClient, bytes: Buffer, size = 1, delay = 0): Promise<void> {
  return c.sendChunked(bytes, size, delay);
}

/** Hex of bytes, for case names. */
export function hex(bytes: Buffer): string {
  return bytes.length > 12 ? `${bytes.subarray(0, 12).toString('hex')}…(${bytes.length} bytes)` : bytes.toString('hex');
}
