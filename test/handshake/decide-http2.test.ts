/**
 * The HTTP/2 extended CONNECT decision (RFC 8441 §4–5), as data: which pseudo-headers it needs,
 * that no key is required (and a valid one still gets its accept), and that the checks shared
 * with HTTP/1.1 (version, origin, subprotocol, extensions) apply unchanged. The response
 * builders: `:status 200` with no connection-specific header, and rejections with a body.
 */
import { describe, expect, it } from 'vitest';
import { type Acceptance, type HandshakePolicy, type HandshakeRequest, type Refusal, decideHandshake } from '../../src/handshake/decide.js';
import { acceptHeaders2, rejection2 } from '../../src/handshake/response.js';
import { rejection } from '../../src/handshake/rejection.js';
import type { HeaderValue } from '../../src/handshake/tokens.js';
import { DEFAULT_DEFLATE_NEGOTIATION } from '../../src/extensions/permessage-deflate/negotiate.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** What Chromium sends (wave2.md §2.2): no key, no Upgrade/Connection, no host. */
const CHROMIUM: Readonly<Record<string, string>> = {
  ':method': 'CONNECT',
  ':protocol': 'websocket',
  ':scheme': 'https',
  ':path': '/chat?x=1',
  ':authority': 'localhost:8443',
  'sec-websocket-version': '13',
  origin: 'https://localhost:8443',
};

function request(headers: Record<string, HeaderValue> = {}): HandshakeRequest {
  const merged: Record<string, HeaderValue> = { ...CHROMIUM };
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return { method: 'CONNECT', httpVersion: '2.0', headers: merged };
}

const POLICY: HandshakePolicy = { protocols: [], requireProtocol: false, origins: undefined, accepting: true };

function decide(req: HandshakeRequest, policy: Partial<HandshakePolicy> = {}): Acceptance | Refusal {
  return decideHandshake(req, { ...POLICY, ...policy });
}
function accepted(req: HandshakeRequest, policy: Partial<HandshakePolicy> = {}): Acceptance {
  const d = decide(req, policy);
  if (!d.ok) expect.fail(`expected acceptance, got ${d.rejection.status} ${d.rejection.code}: ${d.rejection.message}`);
  return d;
}
function refused(req: HandshakeRequest, policy: Partial<HandshakePolicy> = {}): Refusal['rejection'] {
  const d = decide(req, policy);
  if (d.ok) expect.fail('expected a refusal, got an acceptance');
  return d.rejection;
}

describe('decideHandshake over HTTP/2 (RFC 8441)', () => {
  it('RFC 8441 §5: a browser CONNECT with no Sec-WebSocket-Key is accepted, with no accept to send', () => {
    expect(accepted(request())).toEqual({ ok: true, accept: undefined, protocol: undefined, deflate: null });
  });

  it('RFC 8441 §5: a valid key (undici sends one) still gets its Sec-WebSocket-Accept; an invalid one is ignored', () => {
    expect(accepted(request({ 'sec-websocket-key': KEY })).accept).toBe(ACCEPT);
    expect(accepted(request({ 'sec-websocket-key': 'short' })).accept).toBeUndefined();
  });

  it('RFC 8441 §5: Upgrade and Connection are not required (they are forbidden on HTTP/2)', () => {
    accepted(request({ upgrade: undefined, connection: undefined }));
  });

  it('RFC 8441 §4: only :method CONNECT with :protocol websocket', () => {
    const r = refused(request({ ':method': 'GET' }));
    expect([r.status, r.code, r.headers]).toEqual([405, 'METHOD_NOT_ALLOWED', { Allow: 'CONNECT' }]);
    expect(refused(request({ ':protocol': 'connect-udp' })).status).toBe(400);
    expect(refused(request({ ':protocol': undefined })).status).toBe(400);
  });

  it('RFC 8441 §4: :authority, :scheme and :path must be present', () => {
    expect(refused(request({ ':authority': undefined })).code).toBe('MISSING_HOST');
    expect(refused(request({ ':scheme': undefined })).status).toBe(400);
    expect(refused(request({ ':path': undefined })).status).toBe(400);
  });

  it('RFC 6455 §4.2.2: the version check is the same (426 with Sec-WebSocket-Version: 13)', () => {
    const r = refused(request({ 'sec-websocket-version': '8' }));
    expect([r.status, r.headers]).toEqual([426, { 'Sec-WebSocket-Version': '13' }]);
  });

  it('origin, subprotocol, shutting down and permessage-deflate are decided as on HTTP/1.1', () => {
    expect(refused(request(), { origins: ['https://app.example'] }).status).toBe(403);
    expect(refused(request(), { accepting: false }).status).toBe(503);
    expect(accepted(request({ 'sec-websocket-protocol': 'a, b' }), { protocols: ['b'] }).protocol).toBe('b');
    expect(refused(request({ 'sec-websocket-protocol': 'a' }), { protocols: ['b'], requireProtocol: true }).status).toBe(400);
    const d = accepted(request({ 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' }), { deflate: DEFAULT_DEFLATE_NEGOTIATION });
    expect(d.deflate?.responseHeader).toContain('permessage-deflate');
  });
});

describe('HTTP/2 responses', () => {
  it('RFC 8441 §5: 200, never 101; accept only with a key; extra headers lower-case, connection-specific ones dropped', () => {
    expect(acceptHeaders2(undefined, undefined)).toEqual({ ':status': 200 });
    const h = acceptHeaders2(ACCEPT, 'chat', [['X-Build', '7'], ['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'], ['Connection', 'keep-alive'], ['Upgrade', 'h2c'], ['Sec-WebSocket-Accept', 'forged']], 'permessage-deflate');
    expect(h).toEqual({
      ':status': 200,
      'sec-websocket-accept': ACCEPT,
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
      'x-build': '7',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  it('a rejection is a real response: status, content-type, content-length, its headers, the reason as body', () => {
    const { headers, body } = rejection2(rejection(426, 'BAD_VERSION', 'speak 13', { 'Sec-WebSocket-Version': '13', Connection: 'close' }));
    expect(headers).toEqual({ ':status': 426, 'content-type': 'text/plain; charset=utf-8', 'content-length': 9, 'sec-websocket-version': '13' });
    expect(body.toString()).toBe('speak 13\n');
  });
});
