/**
 * Extra response headers over HTTP/2 (RFC 8441 §5, RFC 9113 §8.2): what `setResponseHeader()`
 * in verify() adds to the `:status 200`, and what a `HandshakeRejection` carries on a refusal,
 * reach the `node:http2` client as on HTTP/1.1, with names in lower case, a repeated header
 * (`Set-Cookie`) as several values, and the connection-specific headers HTTP/2 forbids left out.
 *
 * Node's http2 also refuses a second value for the headers it treats as single-valued (Date,
 * Location, Retry-After, Content-Language… `ERR_HTTP2_HEADER_SINGLE_VALUE`), which HTTP/1.1
 * writes as two lines: a handshake that names one twice is still answered, the values combined
 * into one (RFC 9110 §5.3; Set-Cookie stays separate), and gives its place back; nothing is
 * thrown out of the server.
 */
import http2 from 'node:http2';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { HandshakeRejection } from '../../src/index.js';
import { useFixture, within } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';
import { Echo2, type H2Mounted, connectHeaders, echoes, h2Fixture, request } from './http2-helpers.js';

const fx = useFixture();
const { mountH2, session, ws } = h2Fixture(fx);

const TRANSPORTS = [
  { name: 'h2c', secure: false },
  { name: 'h2', secure: true },
] as const;

class Cookies extends Echo2 {
  override verify(): void {
    this.setResponseHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
    this.setResponseHeader('X-Name', 'café');
    this.setResponseHeader('X-Tab', 'a\tb');
    this.setResponseHeader('Keep-Alive', 'timeout=5');
  }
}

class Redirect extends Echo2 {
  override verify(): void {
    throw new HandshakeRejection(302, 'moved to /elsewhere', { Location: '/elsewhere', 'Keep-Alive': 'timeout=5', 'X-Realm': 'café' });
  }
}

/** Repeats a header HTTP/2 allows once (Node: ERR_HTTP2_HEADER_SINGLE_VALUE); fine on HTTP/1.1. */
class TwoDates extends Echo2 {
  override verify(): void {
    this.setResponseHeader('Content-Language', ['en', 'fr']);
  }
}

class TwoDatesLater extends Echo2 {
  override async verify(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.setResponseHeader('Content-Language', ['en', 'fr']);
  }
}

class TwoRetryAfters extends Echo2 {
  override verify(): void {
    throw new HandshakeRejection(503, 'busy', { 'Retry-After': '1', 'retry-after': '2' });
  }
}

const routes = { '/cookies': Cookies, '/redirect': Redirect, '/two': TwoDates, '/two-later': TwoDatesLater, '/two-retry': TwoRetryAfters, '/echo': Echo2 };

/** Errors thrown out of the server's event handlers while a test runs. */
const escaped: unknown[] = [];
const record = (error: unknown): void => {
  escaped.push(error);
};
beforeEach(() => {
  escaped.length = 0;
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
});
afterEach(() => {
  process.removeListener('uncaughtException', record);
  process.removeListener('unhandledRejection', record);
});

describe.each(TRANSPORTS)('over $name', ({ secure }) => {
  const mount = (options = {}): Promise<H2Mounted> => mountH2(routes, options, { secure, onRequest: (_req, res) => res.end('app') });

  test("setResponseHeader() headers reach the client on the 200: a repeated Set-Cookie as two values, latin1 and tab kept, names in lower case, a connection-specific header (Keep-Alive) left out", async () => {
    const m = await mount();
    const s = await session(m);
    const c = await ws(m, s, '/cookies');
    expect(c.status).toBe(200);
    expect(c.headers['set-cookie']).toBe('a=1; Path=/,b=2; Path=/'); // RawClient joins the values Node gives as an array
    expect(c.headers['x-name']).toBe('café');
    expect(c.headers['x-tab']).toBe('a\tb');
    expect(c.headers['keep-alive']).toBeUndefined();
    await echoes(c, 'with cookies');
  });

  test("a HandshakeRejection's headers reach the client on the refusal: 302 with Location, latin1 kept, Keep-Alive left out", async () => {
    const m = await mount();
    const s = await session(m);
    const r = await request(s, connectHeaders(m, '/redirect'));
    expect(r.status).toBe(302);
    expect(r.headers['location']).toBe('/elsewhere');
    expect(r.headers['x-realm']).toBe('café');
    expect(r.headers['keep-alive']).toBeUndefined();
    expect(r.body).toBe('moved to /elsewhere\n');
  });

  describe('a header HTTP/2 allows once (Node: ERR_HTTP2_HEADER_SINGLE_VALUE), given twice', () => {
    /**
     * Opens `path` with maxConnections 1: the handshake is answered within the wait, nothing
     * escapes the server, and once that stream is gone its place is free again.
     */
    async function answeredAndReleased(m: H2Mounted, path: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders }> {
      const s = await session(m);
      const stream = s.request(connectHeaders(m, path), { endStream: false });
      stream.on('error', () => {});
      const answer = await within(
        new Promise<{ status: number; headers: http2.IncomingHttpHeaders }>((resolve) => stream.once('response', (h) => resolve({ status: Number(h[':status']), headers: h }))),
        1500,
        'the answer',
      ).catch(() => ({ status: 0, headers: {} }));
      expect.soft(escaped.map(String), 'errors thrown out of the server').toEqual([]);
      expect.soft(answer.status, 'an answer within 1.5 s').not.toBe(0);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor(() => m.handler.stats().connections === 0 && m.handler.stats().pendingHandshakes === 0, 2000, 'that stream gone');
      const next = await ws(m, s, '/echo').then(
        () => 'opened',
        (error: unknown) => String(error),
      );
      expect.soft(next, 'its place (maxConnections 1) is given back').toBe('opened');
      return answer;
    }

    test('setResponseHeader() in a sync verify(): combined into one value (RFC 9110 §5.3), the WebSocket opens, nothing is thrown out of the server', async () => {
      const m = await mount({ maxConnections: 1 });
      const r = await answeredAndReleased(m, '/two');
      expect(r.status).toBe(200);
      expect(r.headers['content-language']).toBe('en, fr');
    });

    test('setResponseHeader() in an async verify(): the same', async () => {
      const m = await mount({ maxConnections: 1 });
      const r = await answeredAndReleased(m, '/two-later');
      expect(r.status).toBe(200);
      expect(r.headers['content-language']).toBe('en, fr');
    });

    test('a HandshakeRejection naming Retry-After twice (two spellings): still refused with its status, nothing thrown', async () => {
      const m = await mount({ maxConnections: 1 });
      const r = await answeredAndReleased(m, '/two-retry');
      expect(r.status).toBe(503);
    });
  });
});

