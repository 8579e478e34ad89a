/**
 * The benchmarks' C load generator (bench/cgen/loadgen.c), built with the machine's `cc` and run
 * against real servers on loopback: each mode (echo, paced, broadcast, handshakes) completes
 * against wsmount and reports what it counted, and fails, naming the rule, against a server that
 * breaks one of the rules it checks (a changed payload byte, an echo or a broadcast too many, a
 * wrong accept, a close answered with another code). The benchmark rows that use it are only as
 * true as these checks.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/server.js';

const source = fileURLToPath(new URL('../../bench/cgen/loadgen.c', import.meta.url));
let dir = '';
let binary = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmount-cgen-test-'));
  binary = join(dir, 'cgen');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(`these tests build bench/cgen/loadgen.c with the machine's C compiler: install one (apt-get install -y gcc). ${(error as Error).message}`);
  }
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  /** stdout's lines, split into tag and numbers ("E" keeps its text in `error`). */
  lines: Array<{ tag: string; values: number[] }>;
  error: string | null;
}

/** Runs the generator (`mode port path conns size window text raw warmupMs measureMs`) to its end. */
function generator(mode: string, port: number, path: string, o: { conns: number; size?: number; window: number; text?: boolean; warmupMs?: number; measureMs?: number }): Promise<Run> {
  const args = [mode, port, path, o.conns, o.size ?? 0, o.window, o.text === true ? 1 : 0, 0, o.warmupMs ?? 100, o.measureMs ?? 300].map(String);
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    // Beyond the generator's own bounds (20 s to drain, 10 s to close, 5 s a handshake).
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [tag = '', ...rest] = l.split(' ');
          return { tag, values: tag === 'E' ? [] : rest.map(Number), text: rest.join(' ') };
        });
      const failure = lines.find((l) => l.tag === 'E');
      resolve({ code, lines: lines.map(({ tag, values }) => ({ tag, values })), error: failure === undefined ? null : failure.text });
    });
  });
}

function line(run: Run, tag: string): number[] {
  const found = run.lines.find((l) => l.tag === tag);
  if (found === undefined) throw new Error(`no "${tag}" line in ${JSON.stringify(run.lines)} (${run.error ?? 'no error'})`);
  return found.values;
}

class Echo extends Behavior {
  override onRawText(bytes: Buffer): void {
    this.sendText(bytes);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

/** Echoes every message with its first byte changed (still valid UTF-8 for the lowercase text). */
class ChangedByte extends Behavior {
  override onBinary(bytes: Buffer): void {
    const copy = Buffer.from(bytes);
    copy[0] = (copy[0] as number) === 0x41 ? 0x42 : 0x41;
    this.sendBinary(copy);
  }
}

/** Echoes the 10th message twice. */
let echoed = 0;
class OneTooMany extends Behavior {
  override onRawText(bytes: Buffer): void {
    if (++echoed === 10) this.sendText(bytes);
    this.sendText(bytes);
  }
}

/** The addresses the handshake cycles came from. */
const sources = new Set<string>();
class Who extends Behavior {
  override onOpen(): void {
    sources.add(this.remoteAddress ?? '');
  }
}

class Broadcast extends Behavior {
  override onText(text: string): void {
    this.handler.broadcast(text, { route: '/broadcast' });
  }
}

/** Broadcasts, and delivers the 20th broadcast twice to every client. */
let broadcasts = 0;
class BroadcastTwice extends Behavior {
  override onText(text: string): void {
    this.handler.broadcast(text, { route: '/twice' });
    if (++broadcasts === 20) this.handler.broadcast(text, { route: '/twice' });
  }
}

describe('bench/cgen/loadgen.c', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ '/echo': Echo, '/changed': ChangedByte, '/extra': OneTooMany, '/broadcast': Broadcast, '/twice': BroadcastTwice, '/who': Who }, { maxPayload: 1 << 20 });
  });
  afterAll(async () => {
    await server.close();
  });

  test('echo: pipelined frames come back checked, counted in the window, and the connections close cleanly', async () => {
    const text = await generator('echo', server.port, '/echo', { conns: 4, size: 32, window: 8, text: true });
    expect(text.error).toBeNull();
    expect(text.code).toBe(0);
    const [a = 0] = line(text, 'A');
    const [b = 0] = line(text, 'B');
    const [received = 0, sent = -1] = line(text, 'D');
    expect(b).toBeGreaterThan(a);
    expect(received).toBe(sent);
    // A frame over 64 KiB (the 8-byte length) in pieces, binary.
    const large = await generator('echo', server.port, '/echo', { conns: 2, size: 70_000, window: 2 });
    expect(large.error).toBeNull();
    expect(large.code).toBe(0);
    expect(line(large, 'D')[0]).toBeGreaterThanOrEqual(8);
  }, 60_000);

  test('echo: a changed payload byte fails the run', async () => {
    const run = await generator('echo', server.port, '/changed', { conns: 2, size: 32, window: 4 });
    expect(run.code).toBe(1);
    expect(run.error).toBe('payload bytes received differ from those sent');
  }, 60_000);

  test('paced: the rate is kept, every message is timed, and the percentiles are ordered', async () => {
    const rate = 2000;
    const run = await generator('paced', server.port, '/echo', { conns: 4, size: 32, window: rate, text: true, warmupMs: 100, measureMs: 500 });
    expect(run.error).toBeNull();
    expect(run.code).toBe(0);
    const [samples = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, offered = 0, skipped = -1] = line(run, 'L');
    // 500 ms at 2,000/s: ~1,000 messages due in the window, each echoed and timed.
    expect(offered).toBeGreaterThan(900);
    expect(offered).toBeLessThan(1100);
    expect(skipped).toBe(0);
    // Every message sent inside the window is timed, and only those.
    expect(samples).toBe(offered - skipped);
    expect(p50).toBeGreaterThan(0);
    expect(p90).toBeGreaterThanOrEqual(p50);
    expect(p99).toBeGreaterThanOrEqual(p90);
    expect(p999).toBeGreaterThanOrEqual(p99);
    expect(max).toBeGreaterThanOrEqual(p999);
    const [received = 0, sent = -1] = line(run, 'D');
    expect(received).toBe(sent);
  }, 60_000);

  test('paced: an echo too many fails the run', async () => {
    echoed = 0;
    const run = await generator('paced', server.port, '/extra', { conns: 1, size: 32, window: 1000, text: true, warmupMs: 50, measureMs: 200 });
    expect(run.code).toBe(1);
    expect(run.error).toBe('more echoes than messages sent');
  }, 60_000);

  test('broadcast: every client receives every broadcast, and the count adds up', async () => {
    const clients = 8;
    const run = await generator('broadcast', server.port, '/broadcast', { conns: clients, size: 64, window: 16, text: true });
    expect(run.error).toBeNull();
    expect(run.code).toBe(0);
    const [received = 0, sent = 0] = line(run, 'D');
    expect(sent).toBeGreaterThan(32);
    expect(received).toBe(sent * clients);
  }, 60_000);

  test('broadcast: a broadcast delivered twice fails the run', async () => {
    broadcasts = 0;
    const run = await generator('broadcast', server.port, '/twice', { conns: 4, size: 64, window: 16, text: true });
    expect(run.code).toBe(1);
    expect(run.error).toBe('a connection received more broadcasts than were sent');
  }, 60_000);

  test('handshakes: cycles from many source addresses complete, each checked', async () => {
    for (const conns of [1, 8]) {
      const run = await generator('handshakes', server.port, '/who', { conns, window: 1 });
      expect(run.error).toBeNull();
      expect(run.code).toBe(0);
      const [a = 0] = line(run, 'A');
      const [b = 0] = line(run, 'B');
      const [done = 0, begun = -1] = line(run, 'D');
      expect(b).toBeGreaterThan(a);
      expect(done).toBe(begun);
    }
    // The cycles take their source address in turn from 127.0.0.1 to 127.0.0.64.
    expect(sources.size).toBe(64);
    for (const address of sources) expect(address).toMatch(/^127\.0\.0\.([1-9]|[1-5][0-9]|6[0-4])$/);
  }, 60_000);

  describe('handshakes against a server that breaks a rule', () => {
    const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
    let faulty: http.Server;
    let port = 0;
    const sockets = new Set<Duplex>();
    beforeAll(async () => {
      faulty = http.createServer();
      faulty.on('upgrade', (request: http.IncomingMessage, socket: Duplex) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        const key = String(request.headers['sec-websocket-key']);
        const wrongAccept = request.url === '/wrong-accept';
        const accept = createHash('sha1').update(key + (wrongAccept ? 'x' : GUID)).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        socket.on('error', () => {});
        socket.once('data', () => {
          // The client's close 1000, answered with 1001 (going away).
          socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe9]));
        });
      });
      await new Promise<void>((resolve) => faulty.listen(0, '127.0.0.1', resolve));
      port = (faulty.address() as AddressInfo).port;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => faulty.close(resolve));
    });

    test('a wrong Sec-WebSocket-Accept fails the run', async () => {
      const run = await generator('handshakes', port, '/wrong-accept', { conns: 2, window: 1 });
      expect(run.code).toBe(1);
      expect(run.error).toBe('missing or wrong Sec-WebSocket-Accept');
    }, 60_000);

    test('close 1000 answered with 1001 fails the run', async () => {
      const run = await generator('handshakes', port, '/close', { conns: 2, window: 1 });
      expect(run.code).toBe(1);
      expect(run.error).toBe('the server answered close 1000 with 1001');
    }, 60_000);
  });
});
