/**
 * Extra response headers over HTTP/2 (RFC 8441 §5, RFC 9113 §8.2): what `setResponseHeader()`
 * in verify() adds to the `:status 200`, and what a `HandshakeRejection` carries on a refusal,
 * reach the `node:http2` client as on HTTP/1.1, with names in lower case, a repeated header
 * (`Set-Cookie`) as several values, and the connection-specific headers HTTP/2 forbids left out.
 *
 * Node's http2 also refuses a second value for the headers it treats as single-valued (Date,
 * Location, Retry-After, Content-Language… `ERR_HTTP2_HEADER_SINGLE_VALUE`), which HTTP/1.1
 * writes as two lines. A handshake that names one twice must still be answered (opened, or
 * refused with a status) and give its place back, never throw out of the server.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { HandshakeRejection } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
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

  describe('a header HTTP/2 allows once, given twice', () => {
    /** The handshake is answered (any status) within the wait, nothing escapes, and its place is given back. */
    async function answeredAndReleased(m: H2Mounted, path: string): Promise<number> {
      const s = await session(m);
      const r = await request(s, connectHeaders(m, path), undefined, 1500).catch(() => ({ status: 0 }));
      expect.soft(escaped.map(String), 'errors thrown out of the server').toEqual([]);
      expect.soft(r.status, 'an answer within 1.5 s').not.toBe(0);
      // The only place (maxConnections 1) is free again: another WebSocket opens.
      const next = await ws(m, s, '/echo').then(
        () => 'opened',
        (error: unknown) => String(error),
      );
      expect.soft(next, 'the place the failed handshake held is given back').toBe('opened');
      expect.soft(m.handler.stats().pendingHandshakes).toBe(0);
      return r.status;
    }

    test('setResponseHeader() in a sync verify(): the handshake is answered, nothing is thrown out of the server, the place is given back', async () => {
      const m = await mount({ maxConnections: 1 });
      await answeredAndReleased(m, '/two');
    });

    test('setResponseHeader() in an async verify(): the same', async () => {
      const m = await mount({ maxConnections: 1 });
      await answeredAndReleased(m, '/two-later');
    });

    test("a HandshakeRejection naming Retry-After twice (two spellings): still refused with its status, nothing thrown", async () => {
      const m = await mount({ maxConnections: 1 });
      const status = await answeredAndReleased(m, '/two-retry');
      expect(status).toBe(503);
    });
  });
});

