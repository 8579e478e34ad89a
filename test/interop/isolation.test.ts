/**
 * "A bad client never disturbs another": a healthy undici client keeps a steady request/response
 * loop while, at the same time, raw clients send garbage, reset mid-frame, stall mid-frame,
 * announce oversized messages and half-send handshakes. The healthy client gets every reply, in
 * order; the server stays up; the client set returns to what it should be.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Behavior } from '../../src/index.js';
import { RawClient, encodeClientFrame, upgradeRequest } from '../helpers/raw.js';
import { type TestServer, sleep, startServer, waitFor } from '../helpers/server.js';

const ROUND_TRIPS = 200;

const closes: number[] = [];

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
  override onClose(code: number): void {
    closes.push(code);
  }
}

let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({ '/echo': Echo });
});

afterAll(async () => {
  await srv?.close();
});

/** A healthy undici client that reads replies in order. */
async function openHealthy(url: string): Promise<{ ws: WebSocket; next: (timeout?: number) => Promise<string> }> {
  const ws = new WebSocket(url);
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  ws.addEventListener('message', (e) => {
    queue.push(String(e.data));
    wake?.();
  });
  ws.addEventListener('close', () => wake?.());
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('healthy client did not open')), 5000);
    ws.addEventListener('open', () => {
      clearTimeout(t);
      resolve();
    });
    ws.addEventListener('error', () => reject(new Error('healthy client errored')));
  });
  const next = async (timeout = 5000): Promise<string> => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const m = queue.shift();
      if (m !== undefined) return m;
      if (ws.readyState !== WebSocket.OPEN) throw new Error(`healthy client closed (readyState ${ws.readyState})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`healthy client got no reply within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          wake = null;
          resolve();
        };
      });
    }
  };
  return { ws, next };
}

function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('isolation: a bad client never disturbs another', () => {
  it(`a healthy client completes ${ROUND_TRIPS} ordered round trips while bad clients misbehave`, async () => {
    const healthy = await openHealthy(srv.url('/echo'));
    expect(srv.srv.handler.clients.size).toBe(1);

    const stalledFrames: RawClient[] = [];
    const stalledHandshakes: net.Socket[] = [];
    const stats = { waves: 0, garbage1002: 0, tooBig1009: 0, resetMidFrame: 0, resetMidHandshake: 0, wavesDuringLoop: 0 };
    let loopDone = false;

    const garbage = async (): Promise<void> => {
      const c = await RawClient.connect(srv.port, '/echo');
      c.sendRaw(Buffer.from('\xff\xfe garbage \x00\x01', 'latin1'));
      const closed = await c.expectClose();
      expect(closed.code).toBe(1002);
      expect(closed.tcpClosed).toBe(true);
      stats.garbage1002++;
    };
    const tooBig = async (): Promise<void> => {
      const c = await RawClient.connect(srv.port, '/echo');
      // Only the header of a 16 MiB frame: the limit is enforced before any payload arrives.
      const header = Buffer.alloc(14);
      header[0] = 0x82; // FIN + binary
      header[1] = 0x80 | 127; // masked, 64-bit length
      header.writeBigUInt64BE(BigInt(16 << 20), 2);
      c.sendRaw(header);
      const closed = await c.expectClose();
      expect(closed.code).toBe(1009);
      stats.tooBig1009++;
    };
    const resetMidFrame = async (): Promise<void> => {
      const c = await RawClient.connect(srv.port, '/echo');
      c.sendRaw(encodeClientFrame(0x1, 'never finished '.repeat(50)).subarray(0, 100));
      await sleep(5);
      c.destroy();
      stats.resetMidFrame++;
    };
    const stallMidFrame = async (): Promise<void> => {
      const c = await RawClient.connect(srv.port, '/echo');
      c.sendRaw(encodeClientFrame(0x2, Buffer.alloc(5000, 1)).subarray(0, 1234));
      stalledFrames.push(c);
    };
    const resetMidHandshake = async (): Promise<void> => {
      const s = await connectTcp(srv.port);
      const req = upgradeRequest('/echo');
      s.write(req.slice(0, Math.floor(req.length / 2)));
      await sleep(5);
      s.destroy();
      stats.resetMidHandshake++;
    };
    const stallMidHandshake = async (): Promise<void> => {
      const s = await connectTcp(srv.port);
      const req = upgradeRequest('/echo');
      s.write(req.slice(0, req.length - 3));
      stalledHandshakes.push(s);
    };

    const chaos = async (): Promise<void> => {
      while (!loopDone && stats.waves < 40) {
        await Promise.all([garbage(), garbage(), tooBig(), resetMidFrame(), resetMidFrame(), stallMidFrame(), resetMidHandshake(), stallMidHandshake()]);
        stats.waves++;
        if (!loopDone) stats.wavesDuringLoop++;
      }
    };

    const loop = async (): Promise<string[]> => {
      const replies: string[] = [];
      try {
        for (let i = 0; i < ROUND_TRIPS; i++) {
          // Sizes vary so some replies span several TCP segments.
          const msg = `#${i}:${'h'.repeat((i * 37) % 3000)}`;
          healthy.ws.send(msg);
          const reply = await healthy.next();
          if (reply !== msg) throw new Error(`round trip ${i}: wrong reply (${reply.slice(0, 20)}…)`);
          replies.push(reply.slice(0, reply.indexOf(':')));
          if (i % 4 === 0) await sleep(1); // keep the loop running alongside the chaos
        }
      } finally {
        loopDone = true;
      }
      return replies;
    };

    const [replies] = await Promise.all([loop(), chaos()]);
    expect(replies).toEqual(Array.from({ length: ROUND_TRIPS }, (_, i) => `#${i}`));
    // The bad clients really ran alongside the loop.
    expect(stats.wavesDuringLoop).toBeGreaterThanOrEqual(2);
    expect(stats.garbage1002).toBe(2 * stats.waves);
    expect(stats.tooBig1009).toBe(stats.waves);
    expect(stats.resetMidFrame).toBe(2 * stats.waves);
    expect(stats.resetMidHandshake).toBe(stats.waves);

    // The healthy client plus every stalled mid-frame client; nobody else.
    const expected = 1 + stalledFrames.length;
    await waitFor(() => srv.srv.handler.clients.size === expected, 5000, `clients.size === ${expected}`);
    for (const c of stalledFrames) expect(c.tcpClosed).toBe(false);
    // Failed and reset connections all reported a close.
    expect(closes.filter((c) => c === 1002)).toHaveLength(stats.garbage1002);
    expect(closes.filter((c) => c === 1009)).toHaveLength(stats.tooBig1009);
    expect(closes.filter((c) => c === 1006)).toHaveLength(stats.resetMidFrame);

    // Still healthy after the storm.
    healthy.ws.send('after');
    expect(await healthy.next()).toBe('after');

    for (const c of stalledFrames) c.destroy();
    for (const s of stalledHandshakes) s.destroy();
    await waitFor(() => srv.srv.handler.clients.size === 1, 5000, 'only the healthy client to remain');

    healthy.ws.close(1000, 'done');
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'the client set to empty');
    expect(srv.srv.server.listening).toBe(true);

    // The server still accepts and serves new clients.
    const fresh = await RawClient.connect(srv.port, '/echo');
    fresh.send(0x1, 'fresh');
    expect((await fresh.nextFrame()).payload.toString()).toBe('fresh');
    expect((await fresh.close(1000)).code).toBe(1000);
  });

  it('a slow reader does not slow a fast one: broadcast keeps flowing to the healthy client', async () => {
    const healthy = await openHealthy(srv.url('/echo'));
    // A client that never reads: its socket buffers fill up.
    const sleeper = await RawClient.connect(srv.port, '/echo');
    sleeper.socket.pause();
    const big = 'b'.repeat(64 * 1024);
    for (let i = 0; i < 100; i++) {
      expect(srv.srv.handler.broadcast(`${i}:${big}`)).toBe(2);
      const got = await healthy.next();
      expect(got.slice(0, got.indexOf(':'))).toBe(String(i));
    }
    sleeper.destroy();
    healthy.ws.close();
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'the client set to empty');
  });
});
