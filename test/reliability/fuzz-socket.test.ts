/**
 * Fuzzing over real sockets: a few hundred connections, each sending a seeded mutated frame
 * stream after a real handshake (or in the same write as the upgrade request), and some sending
 * garbage or a mutated upgrade request instead of a handshake. Each must end, within a bounded
 * wait, exactly as a correct server would answer what it sent: the echoes and pongs for the
 * events before the end, then a close frame with a valid code (the peer's, echoed, or the one the
 * error calls for) and TCP close; or, when the stream just stops, TCP close after the client's
 * FIN. The reference model of fixtures/fuzz-core.ts says what that is. Garbage gets an HTTP
 * answer (400 for garbage) and a closed socket. Meanwhile a well-behaved client stays connected and
 * keeps getting correct echoes, and at the end it is the only client left; nothing was logged
 * at error level.
 *
 * Reproducible: `FUZZ_SEED=0x…` replaces the seed below.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { echoes, fakeLogger, useFixture } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';
import { type FuzzEvent, type Limits, describeEvents, makeCase, reference, wireCloseCode } from './fixtures/fuzz-core.js';
import { Rng, caseSeed, hexSeed, seedFromEnv } from './fixtures/prng.js';
import { WireClient } from './fixtures/wire-client.js';
import { type WireFrame, upgradeRequest } from './fixtures/wire.js';

const { serve, connect } = useFixture();

const SEED = seedFromEnv(process.env['FUZZ_SEED']) ?? 0x50c4e7f2;
const STREAMS = 400;
const GARBAGE = 50;
const BAD_REQUESTS = 50;
const CONCURRENCY = 16;
/** Every connection must be over within this. */
const DEADLINE = 5000;
const LIMITS: Limits = { maxPayload: 4096, maxFragments: 4 };

/** Echoes text and binary; the limits the fuzz cases are generated against; no heartbeat pings in the way. */
class FuzzEcho extends Behavior {
  static override maxPayload = LIMITS.maxPayload;
  static override maxFragments = LIMITS.maxFragments;
  static override pingInterval = 0;
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}
class Steady extends FuzzEcho {}

interface Reply {
  opcode: number;
  /** The exact payload expected, or only the close code (for a close the server decided on). */
  payload?: Buffer;
  code?: number;
}

/** What the server must send for the parser events of a stream (RFC 6455 §5.5.2–5.5.3, §5.5.1, §7.1.7). */
function repliesFor(events: readonly FuzzEvent[]): { replies: Reply[]; terminal: boolean } {
  const replies: Reply[] = [];
  for (const e of events) {
    if (e.kind === 'text') replies.push({ opcode: 0x1, payload: e.data });
    else if (e.kind === 'binary') replies.push({ opcode: 0x2, payload: e.data });
    else if (e.kind === 'ping') replies.push({ opcode: 0xa, payload: e.data });
    else if (e.kind === 'close') {
      const reason = Buffer.from(e.reason, 'utf8');
      const payload = e.code === 1005 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([e.code >> 8, e.code & 0xff]), reason]);
      replies.push({ opcode: 0x8, payload });
    } else if (e.kind === 'error') replies.push({ opcode: 0x8, code: e.closeCode });
  }
  const last = events[events.length - 1];
  return { replies, terminal: last !== undefined && (last.kind === 'close' || last.kind === 'error') };
}

function describeFrames(frames: readonly WireFrame[]): string {
  return frames.map((f) => `${f.opcode}[${f.payload.length}:${f.payload.subarray(0, 6).toString('hex')}]`).join(' ');
}

/** Checks what the server sent against the replies; returns problems. */
function compare(received: readonly WireFrame[], replies: readonly Reply[]): string[] {
  const problems: string[] = [];
  for (const f of received) {
    if (f.opcode === 0x8 && f.payload.length > 0 && (f.payload.length < 2 || !wireCloseCode(f.payload.readUInt16BE(0)))) {
      problems.push(`a close frame with an invalid code: ${f.payload.toString('hex')}`);
    }
    if (f.masked || f.rsv !== 0 || !f.fin) problems.push('a server frame masked, with RSV bits, or fragmented');
  }
  const same =
    received.length === replies.length &&
    replies.every((r, i) => {
      const f = received[i] as WireFrame;
      if (f.opcode !== r.opcode) return false;
      if (r.payload !== undefined) return f.payload.equals(r.payload);
      return f.payload.length >= 2 && f.payload.readUInt16BE(0) === r.code;
    });
  if (!same) {
    const want = replies.map((r) => `${r.opcode}[${r.payload?.length ?? `code ${r.code}`}]`).join(' ');
    problems.push(`server sent ${describeFrames(received)}; expected ${want}`);
  }
  return problems;
}

/** One fuzzed stream after (or with) a real handshake. */
async function fuzzStream(port: number, index: number): Promise<{ outcome: string; problems: string[] }> {
  const c = makeCase(SEED, index, { role: 'server', limits: LIMITS, big: false });
  const rng = new Rng(caseSeed(SEED ^ 0xffff, index));
  const events = reference(c.stream, 'server', LIMITS);
  const { replies, terminal } = repliesFor(events);
  const withRequest = rng.chance(0.25);
  const client = await WireClient.open(port, '/fuzz', withRequest ? { early: c.stream } : {});
  try {
    if (!withRequest) {
      let at = 0;
      for (const [n, size] of (c.chunkings[1] as number[]).entries()) {
        client.write(c.stream.subarray(at, at + size));
        at += size;
        if (n % 8 === 7) await new Promise((r) => setImmediate(r));
      }
    }
    const deadline = Date.now() + DEADLINE;
    if (terminal) {
      // The close frame, then TCP close (the server closes first, RFC 6455 §7.1.1).
      await client.waitClosed(DEADLINE);
    } else {
      // Everything expected, then our FIN: the server must close too.
      while (client.received.length < replies.length && !client.closed && Date.now() < deadline) await delay(5);
      client.socket.end();
      await client.waitClosed(Math.max(1, deadline - Date.now()));
    }
    const problems = client.closed ? [] : [`still open after ${DEADLINE} ms`];
    problems.push(...compare(client.received, replies));
    if (problems.length > 0) {
      problems.unshift(`stream case ${index} (${c.steps.join(' ')}; ${withRequest ? 'sent with the request' : 'sent after the 101'}), parser events: ${describeEvents(events)}`);
    }
    const last = events[events.length - 1];
    const outcome = last?.kind === 'error' ? `error ${last.closeCode}` : last?.kind === 'close' ? 'peer close' : 'open until FIN';
    return { outcome, problems };
  } finally {
    client.destroy();
  }
}

/** Garbage or a mutated upgrade request instead of a handshake, then FIN. */
async function badHandshake(port: number, index: number, garbage: boolean): Promise<{ outcome: string; problems: string[] }> {
  const rng = new Rng(caseSeed(SEED ^ 0xabcd, index));
  let bytes: Buffer;
  if (garbage) {
    bytes = rng.bytes(rng.range(1, 300));
  } else {
    const request = Buffer.from(upgradeRequest('/fuzz', rng.bytes(16).toString('base64')), 'latin1');
    bytes = Buffer.from(request);
    for (let k = rng.range(1, 3); k > 0; k--) {
      const i = rng.int(bytes.length);
      bytes[i] = (bytes[i] as number) ^ (1 << rng.int(8));
    }
  }
  const client = WireClient.connect(port);
  try {
    client.write(bytes);
    client.socket.end();
    const closed = await client.waitClosed(DEADLINE);
    const status = client.head?.status;
    const problems: string[] = [];
    if (!closed) problems.push(`still open after ${DEADLINE} ms`);
    // Node's HTTP parser answers anything it cannot parse (even at EOF) with 400; a request that
    // still parses gets the handshake's answer: 101, or a refusal.
    const allowed = garbage ? [400] : [101, 400, 403, 404, 405, 426, 431, 505];
    if (status === undefined) problems.push('no HTTP answer');
    else if (!allowed.includes(status)) problems.push(`answered ${status}`);
    if (problems.length > 0) problems.unshift(`${garbage ? 'garbage' : 'mutated request'} ${index}: ${JSON.stringify(bytes.toString('latin1').slice(0, 120))}`);
    return { outcome: status === undefined ? 'no answer' : `HTTP ${status}`, problems };
  } finally {
    client.destroy();
  }
}

describe('fuzzed byte streams over real sockets', () => {
  test(`${STREAMS} fuzzed streams and ${GARBAGE + BAD_REQUESTS} bad handshakes each end as they should; the server survives (seed ${hexSeed(SEED)})`, async () => {
    const { logger, calls } = fakeLogger();
    const s = await serve({ '/fuzz': FuzzEcho, '/steady': Steady }, { logger, logLevel: 'debug' });
    const handler = s.srv.handler;
    const steady = await connect(s.port, '/steady');

    const jobs: (() => Promise<{ outcome: string; problems: string[] }>)[] = [];
    for (let i = 0; i < STREAMS; i++) jobs.push(() => fuzzStream(s.port, i));
    for (let i = 0; i < GARBAGE; i++) jobs.push(() => badHandshake(s.port, i, true));
    for (let i = 0; i < BAD_REQUESTS; i++) jobs.push(() => badHandshake(s.port, GARBAGE + i, false));
    // Interleave the kinds.
    const order = new Rng(SEED).bytes(jobs.length * 4);
    const shuffled = jobs.map((job, i) => ({ job, key: order.readUInt32LE(i * 4) })).sort((a, b) => a.key - b.key);

    const outcomes: Record<string, number> = {};
    const problems: string[] = [];
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < shuffled.length) {
        const { job } = shuffled[next++] as { job: () => Promise<{ outcome: string; problems: string[] }> };
        try {
          const r = await job();
          outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
          problems.push(...r.problems);
        } catch (error) {
          problems.push(`a connection failed: ${(error as Error).message}`);
        }
        if (++done % 25 === 0) await echoes(steady, `still here after ${done}`);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    console.log(`fuzz-socket: seed ${hexSeed(SEED)}, ${shuffled.length} connections in ${Date.now() - started} ms; outcomes ${JSON.stringify(outcomes)}`);
    expect(problems.slice(0, 5), `${problems.length} connections misbehaved (FUZZ_SEED=${hexSeed(SEED)})`).toEqual([]);

    // The server survived: the steady client still echoes, and it is the only one left.
    await echoes(steady, 'still here at the end ✓');
    await waitFor(() => handler.clients.size === 1, 5000, 'every fuzzed connection to be gone');
    expect([...handler.clients].map((c) => c.route)).toEqual(['/steady']);
    expect(handler.stats().connections).toBe(1);
    expect(handler.stats().pendingHandshakes).toBe(0);
    expect(calls.filter((c) => c.level === 'error').map((c) => c.message)).toEqual([]);
    expect((await steady.close(1000)).code).toBe(1000);
  }, 60_000);
});
