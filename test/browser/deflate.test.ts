/**
 * permessage-deflate (RFC 7692) with headless Chromium's own WebSocket: a page served by the
 * wsmount test server opens a socket to its echo route and round-trips text and binary, empty,
 * small and large (100 KiB, 1 MiB), one at a time and then 100 back to back. The page makes its
 * payloads from seeds and hashes what it sent and what came back with SHA-256; the test compares
 * those with what the server's echo route recorded. Chromium offers the extension on every socket
 * and compresses every message once it is agreed, so the server's counters must show every
 * incoming message compressed, and outgoing ones from the server's threshold up.
 *
 * Chromium's offer and the server's Sec-WebSocket-Extensions are read through the DevTools protocol
 * (the page cannot see handshake headers); the answer must equal `ws.extensions` in the page, and
 * the server's debug log must name it.
 */
import type { Browser, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NegotiatedPerMessageDeflate, PerMessageDeflateOptions } from '../../src/index.js';
import { waitFor } from '../helpers/server.js';
import { type DeflateServer, KiB, MiB, type Seen, type Spec, burst, delta, startDeflateServer, sum } from '../interop/deflate-routes.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium } from './chromium.js';

const WAIT = 30_000;

/**
 * Runs in the page (a string: the tests compile without the DOM's types, and a transformed
 * function could carry helpers the page lacks). Opens `url`, sends `plan` one message at a time
 * and then `burst` all at once, and reports what it sent and received (type, bytes, SHA-256),
 * `ws.extensions`, and the close. Every wait is bounded.
 */
const PAGE_SESSION = `async ({ url, plan, burst, wait }) => {
  const WORDS = ['user', 'room', 'message', 'typing', 'presence', 'über', '日本語', 'true', 'null', 'Faust', '🎉', 'Привет', '{"id":', '},', 'café', 'e\\u0301', '𝄞'];
  const utf8 = new TextEncoder();
  const rng = (seed) => {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };
  const make = (spec) => {
    const r = rng(spec.seed);
    if (spec.type === 'text') {
      const parts = [];
      let n = 0;
      for (;;) {
        const w = WORDS[Math.floor(r() * WORDS.length)] + ' ';
        const len = utf8.encode(w).length;
        if (n + len > spec.size) break;
        parts.push(w);
        n += len;
      }
      return parts.join('') + 'x'.repeat(spec.size - n);
    }
    const random = (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
      return b;
    };
    const out = new Uint8Array(spec.size);
    const block = random(Math.min(4096, Math.max(spec.size, 1)));
    for (let at = 0; at < spec.size; at += block.length) {
      const b = r() < 0.6 ? block : random(block.length);
      out.set(b.subarray(0, Math.min(b.length, spec.size - at)), at);
    }
    return out;
  };
  const seen = async (data) => {
    const bytes = typeof data === 'string' ? utf8.encode(data) : new Uint8Array(data);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return {
      type: typeof data === 'string' ? 'text' : 'binary',
      bytes: bytes.length,
      sha256: Array.from(digest, (x) => x.toString(16).padStart(2, '0')).join(''),
    };
  };
  const bounded = (promise, what) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('page: timed out waiting for ' + what)), wait))]);

  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const got = [];
  let wake = null;
  ws.onmessage = (e) => {
    got.push(e.data);
    if (wake) wake();
  };
  const closed = new Promise((resolve) => {
    ws.onclose = (e) => {
      resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
      if (wake) wake();
    };
  });
  const until = (n, what) =>
    bounded(
      (async () => {
        while (got.length < n) {
          if (ws.readyState === WebSocket.CLOSED) throw new Error('page: closed while waiting for ' + what);
          await new Promise((resolve) => (wake = resolve));
        }
      })(),
      what,
    );
  await bounded(
    new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('page: the socket failed to open'));
    }),
    'open',
  );
  const sentData = [];
  for (const spec of plan) {
    const p = make(spec);
    sentData.push(p);
    ws.send(p);
    await until(sentData.length, 'echo ' + sentData.length);
  }
  for (const spec of burst) {
    const p = make(spec);
    sentData.push(p);
    ws.send(p);
  }
  await until(sentData.length, 'the burst echoes');
  const extensions = ws.extensions;
  ws.close(1000, 'deflate done');
  const close = await bounded(closed, 'close');
  const sent = [];
  for (const d of sentData) sent.push(await seen(d));
  const received = [];
  for (const d of got) received.push(await seen(d));
  return { extensions, sent, received, close };
}`;

interface PageSession {
  extensions: string;
  sent: Seen[];
  received: Seen[];
  close: { code: number; reason: string; wasClean: boolean };
}

/** Small (under 1024) and large (100 KiB, 1 MiB), text and binary, and empty ones. */
const PLAN: readonly Spec[] = [
  { type: 'text', size: 16, seed: 1 },
  { type: 'binary', size: 16, seed: 2 },
  { type: 'text', size: 0, seed: 3 },
  { type: 'binary', size: 0, seed: 4 },
  { type: 'text', size: 900, seed: 5 },
  { type: 'text', size: 5000, seed: 7 },
  { type: 'binary', size: 5000, seed: 8 },
  { type: 'text', size: 100 * KiB, seed: 9 },
  { type: 'binary', size: 100 * KiB, seed: 10 },
  { type: 'text', size: MiB, seed: 11 },
  { type: 'binary', size: MiB, seed: 12 },
  { type: 'text', size: 20, seed: 13 },
];

interface Config {
  name: string;
  option: boolean | PerMessageDeflateOptions;
  /** Sec-WebSocket-Extensions in the 101 ('' when none), which is also `ws.extensions`. */
  response: string;
  agreed: NegotiatedPerMessageDeflate | null;
}

const CONFIGS: Config[] = [
  {
    name: 'perMessageDeflate: true',
    option: true,
    response: 'permessage-deflate; server_no_context_takeover',
    agreed: { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 1024 },
  },
  {
    name: 'perMessageDeflate: { serverNoContextTakeover: false, threshold: 0 }',
    option: { serverNoContextTakeover: false, threshold: 0 },
    response: 'permessage-deflate',
    agreed: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 },
  },
  {
    // The server keeps its context and sends messages under 1 KiB plain between compressed ones:
    // Chromium's inflater must leave its window alone for those (RFC 7692 §7.2.3; crbug 687378).
    name: 'perMessageDeflate: { serverNoContextTakeover: false } (threshold 1024: plain between compressed)',
    option: { serverNoContextTakeover: false },
    response: 'permessage-deflate',
    agreed: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 1024 },
  },
  {
    name: 'perMessageDeflate: false',
    option: false,
    response: '',
    agreed: null,
  },
];

it('Chromium is available for the browser tests (required in CI)', () => {
  if (hasChromium) return;
  if (process.env.CI !== undefined && process.env.CI !== '') {
    expect.fail(`${MISSING_CHROMIUM}. CI must install it (see .ci/run).`);
  }
  console.warn(`[deflate] Chromium tests not run: ${MISSING_CHROMIUM}.`);
});

describe.runIf(hasChromium)('Chromium with permessage-deflate', () => {
  let browser: Browser;
  let closeBrowser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ browser, close: closeBrowser } = await launchChromium());
  });
  afterAll(async () => {
    await closeBrowser?.();
  });

  /** A fresh page on the server's origin, and the Sec-WebSocket-Extensions of each 101 it gets. */
  async function openPage(srv: DeflateServer): Promise<{ page: Page; offers: string[]; responses: string[]; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const cdp: CDPSession = await page.context().newCDPSession(page);
    const offers: string[] = [];
    const responses: string[] = [];
    cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => {
      const headers = Object.fromEntries(Object.entries(e.request.headers).map(([k, v]) => [k.toLowerCase(), v]));
      offers.push(headers['sec-websocket-extensions'] ?? '');
    });
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
      const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
      responses.push(headers['sec-websocket-extensions'] ?? '');
    });
    await cdp.send('Network.enable');
    await page.goto(srv.httpUrl, { timeout: WAIT });
    return { page, offers, responses, errors };
  }

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

      it(
        'round-trips text and binary (empty, small, 100 KiB, 1 MiB, then 100 back to back) identical by SHA-256; ws.extensions is what the server answered',
        async () => {
          const { page, offers, responses, errors } = await openPage(srv);
          try {
            const before = srv.compression();
            const s = (await page.evaluate(`(${PAGE_SESSION})(${JSON.stringify({ url: srv.url(), plan: PLAN, burst: burst(0xb0, 100), wait: WAIT })})`)) as PageSession;

            expect(s.close).toEqual({ code: 1000, reason: 'deflate done', wasClean: true });
            expect(s.sent).toHaveLength(PLAN.length + 100);
            expect(s.sent.filter((m) => m.bytes === MiB)).toHaveLength(2);
            expect(srv.seen.messages).toEqual(s.sent);
            expect(s.received).toEqual(s.sent);

            expect(s.extensions).toBe(config.response);
            await waitFor(() => responses.length === 1, WAIT, 'the handshake response through the DevTools protocol');
            expect(responses).toEqual([config.response]);
            expect(offers).toEqual(['permessage-deflate; client_max_window_bits']);
            expect(srv.seen.opens).toEqual([config.agreed]);
            expect(srv.seen.connectionsAtOpen).toEqual([config.agreed === null ? 0 : 1]);

            await waitFor(() => srv.seen.closes.length === 1 && srv.compression().connections === before.connections, WAIT, 'the server to see the close');
            expect(srv.seen.closes).toEqual([{ code: 1000, reason: 'deflate done' }]);
            const d = delta(srv.compression(), before);
            if (config.agreed === null) {
              expect(d).toEqual({
                connections: 0,
                messagesIn: 0,
                compressedBytesIn: 0,
                inflatedBytesIn: 0,
                messagesOut: 0,
                uncompressedBytesOut: 0,
                compressedBytesOut: 0,
              });
            } else {
              const threshold = config.agreed.threshold;
              const out = s.sent.filter((m) => m.bytes >= threshold);
              expect(d).toMatchObject({
                connections: 0,
                // Chromium compresses every message, the empty ones too.
                messagesIn: s.sent.length,
                inflatedBytesIn: sum(s.sent.map((m) => m.bytes)),
                messagesOut: out.length,
                uncompressedBytesOut: sum(out.map((m) => m.bytes)),
              });
              expect(d.compressedBytesIn).toBeGreaterThan(0);
              expect(d.compressedBytesIn).toBeLessThan(d.inflatedBytesIn);
              expect(d.compressedBytesOut).toBeGreaterThan(0);
              expect(d.compressedBytesOut).toBeLessThan(d.uncompressedBytesOut);
            }
            // The server's debug log says what the connection agreed (and nothing of it when nothing was).
            const said = srv.logs.filter((l) => l.message.includes('permessage-deflate'));
            if (config.agreed === null) expect(said).toEqual([]);
            else expect(said.some((l) => l.level === 'debug' && l.message.includes(config.response)), JSON.stringify(srv.logs)).toBe(true);
            expect(srv.logs.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
            expect(errors).toEqual([]);
          } finally {
            await page.close();
          }
        },
        120_000,
      );
    });
  }
});
