/**
 * Differential harness for the ws face (src/compat/): the same server-side code, written against
 * ws's server API, runs once on a real `ws` 8 `WebSocketServer({ noServer: true })` mounted by hand
 * on an http.Server (`handleUpgrade` in an `'upgrade'` listener), and once on wsmount's face
 * (`createWebSocketHandler({ '/t': wsRoute(wss) }).attach(server)`). The same client drives both.
 * Each side records what the server code saw and what the client saw in an observation log; the
 * test compares the two sides' logs.
 *
 * The scenario's server code is typed against @types/ws: it is ws code, and the face's objects are
 * handed to it as ws's types (the face claims to be assignable to them: test/types/compat.check.ts).
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WsClient, { type ClientOptions, type ServerOptions, WebSocketServer as RealWsServer } from 'ws';
import { WebSocketServer as FaceServer, type WebSocketServerOptions, wsRoute } from '../../src/compat/index.js';
import { type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { RawClient, type RawFrame } from '../helpers/raw.js';

/** The two servers under comparison. */
export type Impl = 'ws' | 'wsmount';

/** What scenario code is written against: ws's own server type. */
export type Wss = RealWsServer;

/** One observation: a label and the described values (plain data, so logs compare with toEqual). */
export type Entry = readonly unknown[];

/** The path both servers serve. */
export const PATH = '/t';

/** How long any single wait may take before the test fails (a hang fails fast). */
export const WAIT = 4000;

/**
 * Describes a value as plain data that says its type and content: `Buffer:"text"`,
 * `ArrayBuffer:hex:00ff`, `['Array', …]`, `string:"…"`, numbers and booleans as themselves.
 * An Error is `Error<TypeName>: message`; use {@link kind} where only its type may be compared.
 */
export function d(value: unknown): unknown {
  if (value === undefined) return 'undefined';
  if (value === null) return null;
  if (typeof value === 'string') return `string:${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (Buffer.isBuffer(value)) return `Buffer:${bytes(value)}`;
  if (value instanceof ArrayBuffer) return `ArrayBuffer:${bytes(Buffer.from(value))}`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}:${bytes(Buffer.from(value.buffer, value.byteOffset, value.byteLength))}`;
  if (Array.isArray(value)) return ['Array', ...value.map(d)];
  if (value instanceof Set) return ['Set', ...[...value].map(d)];
  if (value instanceof Error) return `Error<${value.constructor.name}>: ${value.message}`;
  if (typeof value === 'function') return 'function';
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return `object:${name ?? 'null-prototype'}`;
}

/** An error's type only (for throws whose message wording is each library's own). */
export function kind(value: unknown): string {
  if (value instanceof Error) return `Error<${value.constructor.name}>`;
  return `not an Error: ${String(d(value))}`;
}

function bytes(b: Buffer): string {
  if (b.length === 0) return '""';
  if (b.length > 64) return `len=${b.length},sha1=${createHash('sha1').update(b).digest('hex').slice(0, 12)}`;
  // Printable UTF-8 is shown as text, anything else as hex.
  if (isUtf8(b) && /^[\p{L}\p{N}\p{P}\p{Zs}]*$/u.test(b.toString('utf8'))) return JSON.stringify(b.toString('utf8'));
  return `hex:${b.toString('hex')}`;
}

/** An append-only observation log that one can wait on. */
export class Log {
  readonly entries: Entry[] = [];
  #waiters: (() => void)[] = [];

  /** Records `[label, ...values]`, each value described by {@link d}. */
  add(label: string, ...values: unknown[]): void {
    this.entries.push([label, ...values.map(d)]);
    this.#wake();
  }

  /** Records an entry whose values are already plain data (no description). */
  raw(label: string, ...values: unknown[]): void {
    this.entries.push([label, ...values]);
    this.#wake();
  }

  /** How many entries have this label. */
  count(label: string): number {
    return this.entries.filter((e) => e[0] === label).length;
  }

  /** Resolves once `n` entries have this label (bounded by {@link WAIT}). */
  until(label: string, n = 1): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.count(label) >= n) resolve();
          else this.#waiters.push(check);
        };
        check();
      }),
      WAIT,
      `log entry '${label}' x${n} (have: ${JSON.stringify(this.entries)})`,
    );
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** One mounted server under test, its logs, and how to reach it. */
export interface Side {
  impl: Impl;
  port: number;
  /** `ws://127.0.0.1:<port>/t` */
  url: string;
  wss: Wss;
  /** What the server code saw. */
  server: Log;
  /** What the client saw. */
  client: Log;
  httpServer: http.Server;
}

/** Server-side code under comparison: ws code, given the server and the log to record into. */
export type ServerCode = (wss: Wss, log: Log) => void;

/** A scenario: options for `new WebSocketServer(...)`, the server code, and the client that drives it. */
export interface Scenario {
  /** Passed to both constructors (the subset of ws's options the face takes). */
  options?: WebSocketServerOptions;
  server: ServerCode;
  /** Drives the side with real clients; must end only after the last observation it expects. */
  client: (side: Side) => Promise<void>;
}

/** Both sides' observations. */
export interface Observations {
  server: Entry[];
  client: Entry[];
}

/** Registers the teardown of this file and returns the runner: `differential(scenario)` → both sides' logs. */
export function useDifferential(): {
  differential: (scenario: Scenario) => Promise<Record<Impl, Observations>>;
  /** Destroys/terminates `thing` after the test. */
  keep: <T extends { destroy(): void } | { terminate(): void }>(thing: T) => T;
} {
  const fixture = useFixture();

  const keep = <T extends { destroy(): void } | { terminate(): void }>(thing: T): T => {
    fixture.defer(() => {
      if ('terminate' in thing) thing.terminate();
      else thing.destroy();
    });
    return thing;
  };

  const closeHttp = (server: http.Server): Promise<void> =>
    within(
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
      3000,
      'http server close',
    ).catch(() => {});

  async function mount(impl: Impl, scenario: Scenario): Promise<Side> {
    const httpServer = http.createServer((_req, res) => res.end('app'));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const port = (httpServer.address() as AddressInfo).port;
    const server = new Log();
    const client = new Log();
    let wss: Wss;
    let handler: WebSocketHandler | null = null;
    if (impl === 'ws') {
      const real = new RealWsServer({ ...(scenario.options as ServerOptions | undefined), noServer: true });
      httpServer.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
        if (new URL(req.url ?? '/', 'http://x').pathname !== PATH) {
          socket.destroy();
          return;
        }
        real.handleUpgrade(req, socket, head, (ws, request) => real.emit('connection', ws, request));
      });
      wss = real;
      fixture.defer(async () => {
        for (const c of real.clients) c.terminate();
        await closeHttp(httpServer);
      });
    } else {
      const face = new FaceServer({ ...scenario.options, noServer: true });
      handler = createWebSocketHandler({ [PATH]: wsRoute(face) }, { logLevel: 'silent', closeTimeout: 2000 }).attach(httpServer);
      // The face is handed to ws code as ws's type, as a library taking a ws server would get it.
      wss = face as unknown as Wss;
      const h = handler;
      fixture.defer(async () => {
        await within(h.close({ timeout: 300 }), 3000, 'handler close').catch(() => {});
        await closeHttp(httpServer);
      });
    }
    return { impl, port, url: `ws://127.0.0.1:${port}${PATH}`, wss, server, client, httpServer };
  }

  async function differential(scenario: Scenario): Promise<Record<Impl, Observations>> {
    const out = {} as Record<Impl, Observations>;
    // One after the other: each side's log only ever holds its own events.
    for (const impl of ['ws', 'wsmount'] as const) {
      const side = await mount(impl, scenario);
      scenario.server(side.wss, side.server);
      await scenario.client(side);
      // Let callbacks already scheduled (nextTick, microtasks, immediates) land.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      out[impl] = { server: [...side.server.entries], client: [...side.client.entries] };
    }
    return out;
  }

  return { differential, keep };
}

/**
 * A `ws` client on the side, logging what it sees into `side.client`: `open` (protocol,
 * extensions), `message` (data, isBinary), `ping`, `pong`, `close` (code, reason as a string),
 * `error` (message). Resolves once it is open or has failed.
 */
export async function wsClient(
  side: Side,
  keep: <T extends { terminate(): void }>(t: T) => T,
  protocols?: string | string[],
  options: ClientOptions = {},
): Promise<WsClient> {
  const log = side.client;
  const client = keep(new WsClient(side.url, protocols, options));
  client.on('open', () => log.add('open', client.protocol, client.extensions));
  client.on('message', (data, isBinary) => log.add('message', data, isBinary));
  client.on('ping', (data) => log.add('ping', data));
  client.on('pong', (data) => log.add('pong', data));
  client.on('close', (code, reason) => log.add('close', code, reason.toString()));
  client.on('error', (error) => log.add('error', error.message));
  await within(
    new Promise<void>((resolve) => {
      client.once('open', () => resolve());
      client.once('close', () => resolve());
    }),
    WAIT,
    `${side.impl}: client open`,
  );
  return client;
}

/** A raw TCP client on the side (exact frames), destroyed after the test. */
export async function rawClient(side: Side, keep: <T extends { destroy(): void }>(t: T) => T, headers: Record<string, string> = {}): Promise<RawClient> {
  const raw = keep(await within(RawClient.connect(side.port, PATH, headers), WAIT, `${side.impl}: raw connect`));
  side.client.add('101', raw.status, raw.headers['sec-websocket-protocol'] ?? '(none)', raw.headers['sec-websocket-extensions'] ?? '(none)');
  return raw;
}

const OPCODES: Record<number, string> = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

/** Logs one frame the raw client received: opcode, fin, rsv, payload (a close frame as code + reason). */
export function logFrame(log: Log, f: RawFrame): void {
  const op = OPCODES[f.opcode] ?? `op${f.opcode}`;
  if (f.opcode === 0x8) {
    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'none';
    log.raw('frame', op, f.fin, f.rsv, code, f.payload.subarray(2).toString('utf8'));
  } else {
    log.raw('frame', op, f.fin, f.rsv, d(f.payload));
  }
}

/** Reads `n` frames from the raw client into the side's client log. */
export async function readFrames(side: Side, raw: RawClient, n: number): Promise<RawFrame[]> {
  const out: RawFrame[] = [];
  for (let i = 0; i < n; i++) {
    const f = await raw.nextFrame(WAIT);
    logFrame(side.client, f);
    out.push(f);
  }
  return out;
}

/**
 * Reads frames into the log until a close frame, then answers it with `reply` (the same code and
 * reason by default, `null` for an empty close frame, `'none'` for no answer) and waits for TCP to close.
 */
export async function readUntilClose(
  side: Side,
  raw: RawClient,
  reply: { code: number; reason?: string } | null | 'echo' | 'none' = 'echo',
): Promise<void> {
  for (;;) {
    const f = await raw.nextFrame(WAIT);
    logFrame(side.client, f);
    if (f.opcode !== 0x8) continue;
    if (reply === 'echo') raw.send(0x8, f.payload);
    else if (reply === null) raw.send(0x8, Buffer.alloc(0));
    else if (reply !== 'none') raw.send(0x8, closePayload(reply.code, reply.reason ?? ''));
    side.client.add('tcp-closed', await raw.waitClosed(WAIT));
    return;
  }
}

/** A close frame's payload. */
export function closePayload(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason, 'utf8');
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** Resolves after the current macrotask queue drains (no wall clock). */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
