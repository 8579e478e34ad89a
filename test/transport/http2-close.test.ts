/**
 * Closing WebSockets over HTTP/2 (RFC 8441) with Node's `node:http2` client, over h2c and h2:
 *
 * - A clean close (RFC 6455 §7 close handshake, either side first) ends the stream with
 *   END_STREAM both ways: rstCode 0 on the client stream and on the server stream, never a
 *   RST_STREAM racing the close frame (aspnetcore #42328: browsers then downgrade to HTTP/1.1),
 *   and the session goes on serving.
 * - An abnormal close (terminate(), a pong timeout, a peer that never answers our close frame)
 *   resets that stream only, with CANCEL (RFC 9113 §7, code 8): the other WebSockets on the same
 *   session keep echoing.
 * - A client resetting its stream is the peer vanishing: onClose 1006, nothing else touched.
 * - handler.close() sends 1001 to every WebSocket on the session, the streams end cleanly, its
 *   promise resolves, new CONNECTs get 503, and server.close() finishes once the client closes
 *   its session.
 */
import http2 from 'node:http2';
import { describe, expect, test } from 'vitest';
import { useFixture, within } from '../helpers/fixture.js';
import { type RawClient, closePayload } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';
import { Echo2, type H2Mounted, closedWith, connectHeaders, echoes, h2Fixture, request, resetOnly, watchEnd } from './http2-helpers.js';

const fx = useFixture();
const { mountH2, session, ws } = h2Fixture(fx);

const CANCEL = http2.constants.NGHTTP2_CANCEL;
const TRANSPORTS = [
  { name: 'h2c', secure: false },
  { name: 'h2', secure: true },
] as const;

const app = (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
  res.end('app');
};

/** One WebSocket's server side: its behavior, its h2 stream, its onClose. */
interface Side {
  behavior: Tracked;
  stream: http2.ServerHttp2Stream;
  closed: [number, string] | null;
}
const sides: Side[] = [];

class Tracked extends Echo2 {
  side!: Side;
  override onOpen(): void {
    this.side = { behavior: this, stream: (this.request as http2.Http2ServerRequest).stream, closed: null };
    sides.push(this.side);
  }
  override onText(text: string): void {
    if (text === 'close me') this.close(1000, 'as asked');
    else if (text === 'terminate me') this.terminate();
    else this.sendText(text);
  }
  override onClose(code: number, reason: string): void {
    this.side.closed = [code, reason];
  }
}

/** A heartbeat route with short timers (answer pings or be terminated). */
class Beats extends Tracked {
  static override pingInterval = 100;
  static override pongTimeout = 100;
}

const routes = { '/t': Tracked, '/beats': Beats };

/** The server side of the n-th WebSocket opened in this test. */
async function sideOf(n: number): Promise<Side> {
  await waitFor(() => sides.length > n, 2000, `WebSocket ${n} open on the server`);
  return sides[n] as Side;
}

/** The server saw the stream close; resolves its rstCode. */
function serverClosed(side: Side): Promise<number> {
  return closedWith(side.stream);
}

describe.each(TRANSPORTS)('over $name', ({ secure }) => {
  const mount = (options = {}): Promise<H2Mounted> => {
    sides.length = 0;
    return mountH2(routes, options, { secure, onRequest: app });
  };

  describe('a clean close ends the stream on both sides (rstCode 0) and leaves the session serving', () => {
    test('client first: close frame echoed with its code, END_STREAM both ways, onClose 1000', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const side = await sideOf(0);
      const r = await c.close(1000, 'done');
      expect(r).toMatchObject({ code: 1000, reason: 'done', tcpClosed: true });
      expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(0);
      expect(await serverClosed(side)).toBe(0);
      expect(side.closed).toEqual([1000, 'done']);
      expect(s.destroyed).toBe(false);
      const next = await ws(m, s, '/t');
      await echoes(next, 'the session still serves');
    });

    test('client first, ending its stream together with its close frame (a half-close): the server still answers the close, then ends', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const side = await sideOf(0);
      c.send(0x8, closePayload(1000, 'and end'));
      c.stream?.end();
      const f = await c.nextFrame();
      expect(f.opcode).toBe(0x8);
      expect(f.payload.readUInt16BE(0)).toBe(1000);
      expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(0);
      expect(await serverClosed(side)).toBe(0);
      expect(side.closed).toEqual([1000, 'and end']);
      await echoes(await ws(m, s, '/t'), 'next');
    });

    test('server first (behavior.close()): the client answers, END_STREAM both ways, onClose 1000', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const side = await sideOf(0);
      c.send(0x1, 'close me');
      const f = await c.nextFrame();
      expect(f.opcode).toBe(0x8);
      expect(f.payload.readUInt16BE(0)).toBe(1000);
      expect(f.payload.subarray(2).toString()).toBe('as asked');
      // The server waits for our close frame before ending its side (RFC 6455 §7.1.1).
      expect(c.tcpClosed).toBe(false);
      c.send(0x8, f.payload);
      expect(await c.waitClosed(3000)).toBe(true);
      expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(0);
      expect(await serverClosed(side)).toBe(0);
      expect(side.closed).toEqual([1000, 'as asked']);
      await echoes(await ws(m, s, '/t'), 'next');
    });

    test('a client that ends its stream without a close frame (END_STREAM alone, like a TCP FIN): the server ends its side too, rstCode 0 both ways, onClose 1006', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const side = await sideOf(0);
      c.stream?.end();
      expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(0);
      expect(await serverClosed(side)).toBe(0);
      await waitFor(() => side.closed !== null, 2000, 'onClose');
      expect(side.closed?.[0]).toBe(1006);
      await echoes(await ws(m, s, '/t'), 'next');
    });

    test("a client that never ends its half after the close handshake (undici 7): onClose 1000 as soon as both close frames crossed and our END_STREAM is out; the stream then ends with RST_STREAM NO_ERROR, never CANCEL, within closeTimeout", async () => {
      const m = await mount({ closeTimeout: 200 });
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const side = await sideOf(0);
      const end = watchEnd(c);
      c.send(0x8, closePayload(1000, 'bye'));
      const f = await c.nextFrame();
      expect(f.opcode).toBe(0x8);
      await waitFor(() => side.closed !== null, 2000, 'onClose');
      expect(side.closed).toEqual([1000, 'bye']);
      expect(c.stream?.closed).toBe(false); // onClose did not wait for the stream
      expect(await closedWith(c.stream as http2.ClientHttp2Stream, 3000)).toBe(0);
      expect(end.endStreamFirst()).toBe(true); // our END_STREAM came first, then the reset NO_ERROR
      expect(await serverClosed(side)).toBe(0);
      await echoes(await ws(m, s, '/t'), 'next');
    });

    test('a protocol error (an unmasked frame) fails that WebSocket with 1002 and ends its stream cleanly; the others on the session go on', async () => {
      const m = await mount();
      const s = await session(m);
      const other = await ws(m, s, '/t');
      const c = await ws(m, s, '/t');
      const side = await sideOf(1);
      c.send(0x1, 'not masked', { mask: false });
      const r = await c.expectClose(3000);
      expect(r.code).toBe(1002);
      expect(r.tcpClosed).toBe(true);
      expect(await serverClosed(side)).toBe(0);
      expect(side.closed?.[0]).toBe(1002);
      await echoes(other, 'unaffected');
    });
  });

  describe('an abnormal close resets that stream only (RST_STREAM CANCEL); the other WebSockets on the session keep echoing', () => {
    test('an abnormal close is a bare RST_STREAM(CANCEL): no END_STREAM first, which a peer that ends its side on END_STREAM would take for a clean end and never see the reset', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const end = watchEnd(c);
      c.send(0x1, 'terminate me');
      expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(CANCEL);
      expect(end.endStreamFirst(), 'END_STREAM arrived before the RST_STREAM').toBe(false);
    });

    test('behavior.terminate(): the client sees rstCode 8 and no close frame, onClose 1006, the session and its other WebSockets go on', async () => {
      const m = await mount();
      const s = await session(m);
      const a = await ws(m, s, '/t');
      const b = await ws(m, s, '/t');
      const sideB = await sideOf(1);
      watchEnd(b);
      b.send(0x1, 'terminate me');
      expect(await closedWith(b.stream as http2.ClientHttp2Stream)).toBe(CANCEL);
      expect(b.pending().filter((f) => f.opcode === 0x8)).toEqual([]);
      await waitFor(() => sideB.closed !== null, 2000, 'onClose');
      expect(sideB.closed?.[0]).toBe(1006);
      expect(sideB.stream.rstCode).toBe(CANCEL);
      expect(s.destroyed).toBe(false);
      await echoes(a, 'a still echoes');
      await echoes(await ws(m, s, '/t'), 'and new ones open');
      expect((await request(s, { ':path': '/x' })).body).toBe('app');
    });

    test('a pong timeout (the client never answers pings) resets that stream with CANCEL; a WebSocket on the same session that answers stays', async () => {
      const m = await mount();
      const s = await session(m);
      const quiet = await ws(m, s, '/beats');
      watchEnd(quiet);
      const answering = await ws(m, s, '/beats');
      // The answering client pongs every ping, in the background.
      let stop = false;
      fx.defer(() => {
        stop = true;
      });
      const answered = (async (): Promise<number> => {
        let n = 0;
        while (!stop && !answering.tcpClosed) {
          const f = await answering.nextFrame(300).catch(() => null);
          if (f === null) continue;
          if (f.opcode === 0x9) {
            answering.send(0xa, f.payload);
            n++;
          }
        }
        return n;
      })();
      expect(await closedWith(quiet.stream as http2.ClientHttp2Stream, 3000)).toBe(CANCEL);
      expect(quiet.pending().every((f) => f.opcode === 0x9)).toBe(true);
      expect(m.handler.stats().pongTimeouts).toBe(1);
      await waitFor(() => sides.some((x) => x.closed?.[0] === 1006), 2000, 'onClose 1006');
      // The answering one lives on through a few more heartbeats.
      const before = m.handler.stats().pingsSent;
      await waitFor(() => m.handler.stats().pingsSent >= before + 3, 3000, 'three more pings');
      expect(answering.tcpClosed).toBe(false);
      expect(m.handler.clients.size).toBe(1);
      expect(m.handler.stats().pongTimeouts).toBe(1);
      stop = true;
      expect(await within(answered, 2000, 'the pong loop')).toBeGreaterThan(0);
      expect(s.destroyed).toBe(false);
    });

    test('a client that never answers our close frame is reset with CANCEL after closeTimeout; the others go on', async () => {
      const m = await mount({ closeTimeout: 200 });
      const s = await session(m);
      const a = await ws(m, s, '/t');
      const b = await ws(m, s, '/t');
      const sideB = await sideOf(1);
      watchEnd(b);
      b.send(0x1, 'close me');
      expect((await b.nextFrame()).opcode).toBe(0x8);
      expect(await closedWith(b.stream as http2.ClientHttp2Stream, 3000)).toBe(CANCEL);
      await waitFor(() => sideB.closed !== null, 2000, 'onClose');
      await echoes(a, 'a still echoes');
    });

    test('a client resetting its stream (a bare RST_STREAM CANCEL): onClose 1006 on the server, the session and its other WebSockets unaffected', async () => {
      const m = await mount();
      const s = await session(m);
      const a = await ws(m, s, '/t');
      const b = await ws(m, s, '/t');
      const sideB = await sideOf(1);
      resetOnly(b.stream as http2.ClientHttp2Stream);
      expect(await serverClosed(sideB)).toBe(CANCEL);
      await waitFor(() => sideB.closed !== null, 2000, 'onClose');
      expect(sideB.closed?.[0]).toBe(1006);
      expect(m.handler.clients.size).toBe(1);
      await echoes(a, 'a still echoes');
      expect((await request(s, { ':path': '/x' })).body).toBe('app');
    });

    test("a client closing its stream with Node's stream.close(CANCEL) (END_STREAM, then RST_STREAM): onClose 1006, nothing else touched", async () => {
      const m = await mount();
      const s = await session(m);
      const a = await ws(m, s, '/t');
      const b = await ws(m, s, '/t');
      const sideB = await sideOf(1);
      b.destroy();
      await waitFor(() => sideB.closed !== null, 2000, 'onClose');
      expect(sideB.closed?.[0]).toBe(1006);
      await echoes(a, 'a still echoes');
    });
  });

  describe('the connection under the streams', () => {
    test("a client session that goes away (its TCP connection destroyed) closes its WebSockets with 1006 and only those: another session's keep echoing", async () => {
      const m = await mount();
      const gone = await session(m);
      const stays = await session(m);
      await ws(m, gone, '/t');
      await ws(m, gone, '/t');
      const kept = await ws(m, stays, '/t');
      await waitFor(() => sides.length === 3, 2000, 'all open');
      gone.destroy();
      await waitFor(() => sides[0]?.closed !== null && sides[1]?.closed !== null, 3000, 'both closed');
      expect([sides[0]?.closed?.[0], sides[1]?.closed?.[0]]).toEqual([1006, 1006]);
      expect(sides[2]?.closed).toBeNull();
      expect(m.handler.clients.size).toBe(1);
      await echoes(kept, 'the other session is fine');
    });

    test('a client session closed gracefully (GOAWAY) lets its open WebSockets finish: they echo, then close cleanly, and the session ends', async () => {
      const m = await mount();
      const s = await session(m);
      const c = await ws(m, s, '/t');
      const ended = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.close();
      await echoes(c, 'still open after GOAWAY');
      expect((await c.close(1000)).tcpClosed).toBe(true);
      expect(c.stream?.rstCode).toBe(0);
      await within(ended, 3000, 'the session ending');
    });
  });

  describe('graceful shutdown: handler.close()', () => {
    test('sends 1001 to every WebSocket on the session; streams end cleanly; the promise resolves; new CONNECTs get 503; server.close() completes once the client closes its session', async () => {
      const m = await mount();
      const s = await session(m);
      const clients: RawClient[] = [];
      for (let i = 0; i < 5; i++) clients.push(await ws(m, s, '/t'));
      await waitFor(() => sides.length === 5, 2000, 'all open');
      const closing = m.handler.close();
      const results = await Promise.all(
        clients.map(async (c) => {
          const f = await c.nextFrame();
          c.send(0x8, f.payload); // answer the close
          return { opcode: f.opcode, code: f.payload.readUInt16BE(0), closed: await c.waitClosed(3000) };
        }),
      );
      expect(results).toEqual(Array.from({ length: 5 }, () => ({ opcode: 0x8, code: 1001, closed: true })));
      await within(closing, 3000, 'handler.close()');
      for (const c of clients) expect(c.stream?.rstCode).toBe(0);
      for (const side of sides) {
        expect(await serverClosed(side)).toBe(0);
        expect(side.closed?.[0]).toBe(1001);
      }
      // Shutting down: a new WebSocket on the same session is refused with 503, plain requests still served.
      const refused = await request(s, connectHeaders(m, '/t'));
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect((await request(s, { ':path': '/x' })).body).toBe('app');
      // The server closes once its sessions do.
      const serverDone = new Promise<void>((resolve) => m.server.close(() => resolve()));
      s.close();
      await within(serverDone, 3000, 'server.close()');
      expect(s.destroyed).toBe(true);
    });

    test('a WebSocket still in an async verify() when close() starts is refused with 503 once verify() says yes; close() waits for it', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
        fx.defer(resolve);
      });
      class Slow extends Tracked {
        override async verify(): Promise<boolean> {
          await held;
          return true;
        }
      }
      sides.length = 0;
      const m = await mountH2({ '/slow': Slow }, {}, { secure, onRequest: app });
      const s = await session(m);
      const answer = request(s, connectHeaders(m, '/slow'));
      await waitFor(() => m.handler.stats().pendingHandshakes === 1, 2000, 'verify() running');
      let closed = false;
      const closing = m.handler.close().then(() => {
        closed = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closed).toBe(false);
      release();
      const r = await answer;
      expect(r.status).toBe(503);
      expect(r.rstCode).toBe(0);
      await within(closing, 2000, 'handler.close()');
      expect(sides).toEqual([]);
    });

    test('clients that do not answer the 1001 are reset after the close timeout and the promise still resolves; the session survives', async () => {
      const m = await mount();
      const s = await session(m);
      const a = await ws(m, s, '/t');
      const b = await ws(m, s, '/t');
      await waitFor(() => sides.length === 2, 2000, 'both open');
      for (const c of [a, b]) watchEnd(c);
      await within(m.handler.close({ timeout: 200 }), 3000, 'handler.close()');
      for (const c of [a, b]) {
        expect((await c.nextFrame()).payload.readUInt16BE(0)).toBe(1001);
        expect(await closedWith(c.stream as http2.ClientHttp2Stream)).toBe(CANCEL);
      }
      expect(s.destroyed).toBe(false);
      expect((await request(s, { ':path': '/x' })).body).toBe('app');
    });
  });
});
