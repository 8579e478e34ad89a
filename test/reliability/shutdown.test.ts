/**
 * Graceful shutdown under load: `handler.close({ code, reason, timeout })` and the standalone
 * `createWebSocketServer(…).close()`.
 *
 * - Every message a `send*()` accepted ('sent' or 'queued') before the close reaches its client,
 *   in order, before the close frame (RFC 6455 §7.1.2: the close frame is the last data frame
 *   sent); sends after it return 'dropped'.
 * - Clients get 1001 (or the given code and reason); new upgrades get 503 during and after the
 *   shutdown; an upgrade still in an async verify() is answered 503 when verify() ends, and
 *   close() waits for it.
 * - close() resolves within its timeout (+ slack) however clients behave: one that never answers
 *   the close frame, or never reads at all, is destroyed after the timeout (onClose sees 1006).
 * - The standalone server's close() also closes the HTTP server, idle keep-alive connections
 *   included: nothing listens on the port afterwards.
 */
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { Behavior, type SendStatus, createWebSocketServer } from '../../src/index.js';
import { bounded, expectCompleteRejection, useFixture, within } from '../helpers/fixture.js';
import { RawClient, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { answerClose, gate } from './helpers.js';

const { mount, connect, defer } = useFixture();

const closes: { id: number; code: number; reason: string }[] = [];
const opened: Behavior[] = [];

/** Records opens and closes; echoes text. */
class Watched extends Behavior {
  override onOpen(): void {
    opened.push(this);
  }
  override onText(text: string): void {
    this.sendText(text);
  }
  override onClose(code: number, reason: string): void {
    closes.push({ id: this.id, code, reason });
  }
}

function reset(): void {
  closes.length = 0;
  opened.length = 0;
  Busy.all.length = 0;
  Busy.shuttingDown = false;
}

/**
 * Echoes every message as `e:<text>` and sends its own numbered messages `n<i>` from a 1 ms
 * timer, logging what every send returned — before the shutdown, and after it.
 */
class Busy extends Behavior {
  static all: Busy[] = [];
  static shuttingDown = false;
  readonly log: { label: string; status: SendStatus }[] = [];
  readonly afterClose: SendStatus[] = [];
  private n = 0;
  private timer: NodeJS.Timeout | null = null;

  override onOpen(): void {
    Busy.all.push(this);
    this.timer = setInterval(() => {
      this.numbered();
      this.numbered();
    }, 1);
  }
  override onText(text: string): void {
    this.out(`e:${text}`, '');
  }
  override onClose(code: number, reason: string): void {
    if (this.timer !== null) clearInterval(this.timer);
    closes.push({ id: this.id, code, reason });
  }
  /** Sends the next numbered message, padded with `pad` bytes. */
  numbered(pad = 0): void {
    this.out(`n${this.n++}`, 'x'.repeat(pad));
  }
  private out(label: string, pad: string): void {
    const status = this.sendText(pad === '' ? label : `${label}|${pad}`);
    if (Busy.shuttingDown) this.afterClose.push(status);
    else this.log.push({ label, status });
  }
  /** The labels of the messages send accepted before the shutdown, in order. */
  accepted(): string[] {
    return this.log.filter((e) => e.status !== 'dropped').map((e) => e.label);
  }
}

interface Driven {
  /** Labels of the data messages received before the close frame, in order. */
  received: string[];
  code: number | undefined;
  reason: string;
  tcpClosed: boolean;
  /** What this client sent. */
  sent: string[];
}

/**
 * A client under load: sends a text message every millisecond and reads everything; at the
 * server's close frame it stops sending, answers the close, and waits for TCP to close.
 */
async function drive(client: RawClient, name: string): Promise<Driven> {
  const sent: string[] = [];
  let stop = false;
  const sender = (async () => {
    for (let j = 0; !stop && !client.tcpClosed; j++) {
      const m = `${name}.${j}`;
      client.send(0x1, m);
      sent.push(m);
      await sleep(1);
    }
  })();
  const received: string[] = [];
  for (;;) {
    const f = await client.nextFrame(10_000);
    if (f.opcode === 0x9) continue;
    if (f.opcode !== 0x8) {
      const text = f.payload.toString();
      const bar = text.indexOf('|');
      received.push(bar === -1 ? text : text.slice(0, bar));
      continue;
    }
    stop = true;
    client.send(0x8, f.payload.subarray(0, 2));
    const tcpClosed = await client.waitClosed(5000);
    await sender;
    return { received, code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString(), tcpClosed, sent };
  }
}

describe('handler.close() under load', () => {
  test('every message send accepted before the close frame arrives before it, in order; clients get 1001; later sends are dropped; upgrades get 503; close() resolves in time and clients is empty', async () => {
    reset();
    const { handler, port } = await mount({ '/busy': Busy }, { maxBackpressure: 64 << 20, pingInterval: 0, closeTimeout: 10_000 });
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(port, '/busy')));
    const ports = clients.map((c) => c.socket.localPort);
    const runs = clients.map((c, i) => drive(c, `c${i}`));
    await waitFor(() => Busy.all.length === 4 && Busy.all.every((b) => b.log.length > 100), 5000, 'traffic both ways');
    // A burst right before the close, so that the close frame has to queue behind a real backlog:
    // 12 MiB per connection, more than loopback's socket buffers take at once (4 MiB sometimes
    // all fit, and no backlog was left).
    for (const b of Busy.all) for (let i = 0; i < 192; i++) b.numbered(64 << 10);
    const backlog = Busy.all.map((b) => b.bufferedAmount);

    Busy.shuttingDown = true;
    const t0 = performance.now();
    const closing = handler.close({ timeout: 5000 });
    const late = Busy.all.map((b) => b.sendText('late'));
    expect(handler.broadcast('late')).toBe(0);
    const during = rawRequest(port, upgradeRequest('/busy'));
    expectCompleteRejection(await during, 503);
    expect((await during).headers['retry-after']).toBe('5');

    await within(closing, 5000 + 1500, 'handler.close()');
    const elapsed = performance.now() - t0;
    const results = await Promise.all(runs);

    expect(backlog.some((n) => n > 0), 'a backlog was waiting at the close').toBe(true);
    expect(late).toEqual(['dropped', 'dropped', 'dropped', 'dropped']);
    for (const [i, r] of results.entries()) {
      const b = Busy.all.find((x) => x.remotePort === ports[i]) as Busy;
      // Exactly what send accepted, in order, then the close frame.
      expect(r.received).toEqual(b.accepted());
      expect(r.received.length).toBeGreaterThan(164);
      expect(b.log.some((e) => e.status === 'dropped')).toBe(false);
      // Their own numbered messages: n0, n1, … with no gap; the echoes follow the client's order.
      const numbers = r.received.filter((l) => l.startsWith('n'));
      expect(numbers).toEqual(numbers.map((_, k) => `n${k}`));
      const echoed = r.received.filter((l) => l.startsWith('e:')).map((l) => l.slice(2));
      expect(echoed.length).toBeGreaterThan(0);
      expect(echoed).toEqual(r.sent.slice(0, echoed.length));
      expect(r.code).toBe(1001);
      expect(r.tcpClosed).toBe(true);
      // Whatever it still tried to send after the close (timer ticks, echoes) was dropped.
      expect(b.afterClose.every((s) => s === 'dropped')).toBe(true);
    }
    expect(elapsed).toBeLessThan(5000 + 1500);
    expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1001, 1001]);
    expect(handler.clients.size).toBe(0);
    const st = handler.stats();
    expect(st.connections).toBe(0);
    expect(st.closesByCode).toEqual({ '1001': 4 });
    expect(st.handshakesRejectedByStatus['503']).toBe(1);
    // Still attached after the shutdown: upgrades keep getting 503.
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/busy')), 503);
    expect(handler.close()).toBe(closing);
  });

  test('close({ code, reason }) sends that code and reason', async () => {
    reset();
    const { handler, port } = await mount({ '/w': Watched });
    const client = await connect(port, '/w');
    await waitFor(() => opened.length === 1, 2000, 'onOpen');
    const closing = handler.close({ code: 4000, reason: 'maintenance' });
    const closed = await answerClose(client, 3000);
    expect([closed.code, closed.reason]).toEqual([4000, 'maintenance']);
    await within(closing, 3000, 'handler.close()');
    // onClose reports the client's answer: our client echoes the code only.
    expect(closes).toEqual([{ id: opened[0]?.id, code: 4000, reason: '' }]);
  });

  test('a client that never answers the close frame, and one that never reads, are destroyed after the timeout; close() still resolves; their onClose sees 1006', async () => {
    reset();
    const { handler, port } = await mount({ '/w': Watched }, { closeTimeout: 10_000 });
    const good = await connect(port, '/w');
    const silent = await connect(port, '/w'); // reads, never answers the close
    const paused = await connect(port, '/w'); // never reads
    paused.socket.pause();
    await waitFor(() => opened.length === 3, 2000, 'three open');
    const idOf = (c: RawClient): number => opened.find((b) => b.remotePort === c.socket.localPort)?.id ?? -1;
    const ids = { good: idOf(good), silent: idOf(silent), paused: idOf(paused) };

    const TIMEOUT = 500;
    const t0 = performance.now();
    let resolvedAt = -1;
    const closing = handler.close({ timeout: TIMEOUT }).then(() => {
      resolvedAt = performance.now() - t0;
    });
    const goodClosed = await answerClose(good, 3000);
    expect(goodClosed.code).toBe(1001);
    const silentClosed = await silent.expectClose(TIMEOUT + 3000);
    expect(silentClosed.code).toBe(1001);
    expect(silentClosed.tcpClosed).toBe(true);
    await within(closing, TIMEOUT + 3000, 'handler.close()');
    expect(resolvedAt).toBeGreaterThanOrEqual(TIMEOUT - 20);
    expect(resolvedAt).toBeLessThan(TIMEOUT + 1500);
    const codeOf = (id: number): number | undefined => closes.find((c) => c.id === id)?.code;
    expect([codeOf(ids.good), codeOf(ids.silent), codeOf(ids.paused)]).toEqual([1001, 1006, 1006]);
    expect(handler.clients.size).toBe(0);
    expect(handler.stats().connections).toBe(0);
    paused.socket.resume();
    expect(await paused.waitClosed(3000)).toBe(true);
  });

  test('an upgrade still in an async verify() when close() is called gets 503 once verify() ends, never opens, and close() waits for it', async () => {
    reset();
    const held = gate();
    class Slow extends Watched {
      override async verify(): Promise<void> {
        await held.promise;
      }
    }
    const { handler, port } = await mount({ '/slow': Slow });
    const answer = rawRequest(port, upgradeRequest('/slow'), 5000);
    await waitFor(() => handler.stats().pendingHandshakes === 1, 2000, 'the upgrade in verify()');
    let resolved = false;
    const closing = handler.close({ timeout: 3000 }).then(() => {
      resolved = true;
    });
    await sleep(150);
    expect(resolved).toBe(false);
    held.open();
    const a = await answer;
    expectCompleteRejection(a, 503);
    await within(closing, 3000, 'handler.close()');
    expect(opened).toEqual([]);
    expect(handler.stats().pendingHandshakes).toBe(0);
    expect(handler.stats().handshakesAccepted).toBe(0);
  });

  test('an upgrade whose verify() never ends is dropped at the close timeout, and close() resolves', async () => {
    reset();
    class Never extends Watched {
      override verify(): Promise<void> {
        return new Promise(() => {});
      }
    }
    const { handler, port } = await mount({ '/never': Never }, { verifyTimeout: 60_000 });
    const answer = rawRequest(port, upgradeRequest('/never'), 5000);
    await waitFor(() => handler.stats().pendingHandshakes === 1, 2000, 'the upgrade in verify()');
    const t0 = performance.now();
    await within(handler.close({ timeout: 300 }), 300 + 1500, 'handler.close()');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    const a = await answer;
    expect(a.closed).toBe(true);
    expect(a.status).toBe(0);
    expect(opened).toEqual([]);
    expect(handler.stats().pendingHandshakes).toBe(0);
  });
});

describe('standalone server close()', () => {
  test('closes every WebSocket (1001) and idle keep-alive HTTP connections, destroys a client that never answers after the timeout, and stops listening', async () => {
    reset();
    // A plain HTTP request the app never answers must not hold close() either.
    const server = createWebSocketServer({ '/w': Watched }, { logLevel: 'silent', closeTimeout: 10_000,
      onRequest: (req, res) => {
        if (req.url !== '/slow') res.end('ok');
      },
    });
    defer(() => bounded(server.close()));
    let httpClosed = false;
    server.server.on('close', () => {
      httpClosed = true;
    });
    const port = await server.listen();
    const good = await RawClient.connect(port, '/w');
    const silent = await RawClient.connect(port, '/w');
    defer(() => good.destroy());
    defer(() => silent.destroy());
    // An idle keep-alive HTTP connection.
    const agent = new http.Agent({ keepAlive: true });
    defer(() => agent.destroy());
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    expect(status).toBe(200);
    const hanging = rawRequest(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n', 5000);
    await waitFor(() => opened.length === 2, 2000, 'two open');
    await sleep(50);

    const t0 = performance.now();
    const closing = server.close({ timeout: 400 });
    const goodClosed = await answerClose(good, 3000);
    expect(goodClosed.code).toBe(1001);
    expect((await silent.expectClose(3000)).code).toBe(1001);
    await within(closing, 400 + 3000, 'server.close()');
    expect(performance.now() - t0).toBeLessThan(400 + 1500);
    expect(server.server.listening).toBe(false);
    expect(httpClosed, "the HTTP server's 'close' came before close() resolved").toBe(true);
    expect((await hanging).closed).toBe(true);
    expect(server.handler.clients.size).toBe(0);
    expect(closes.map((c) => c.code).sort()).toEqual([1001, 1006]);
    // Nothing listens on the port any more.
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(server.close()).toBe(closing);
  });
});
