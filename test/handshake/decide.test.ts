import { describe, expect, it } from 'vitest';
import {
  acceptKey,
  chooseProtocol,
  decideHandshake,
  originAllowed,
  type Acceptance,
  type HandshakePolicy,
  type HandshakeRequest,
  type Refusal,
} from '../../src/handshake/decide.js';
import type { HeaderValue } from '../../src/handshake/tokens.js';
import { DEFAULT_DEFLATE_NEGOTIATION } from '../../src/extensions/permessage-deflate/negotiate.js';

/** The RFC 6455 §1.3 sample nonce. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

const BASE_HEADERS: Readonly<Record<string, string>> = {
  host: 'server.example.com',
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': KEY,
  'sec-websocket-version': '13',
};

/** A request from plain objects; `undefined` in `headers` removes a base header. */
function request(headers: Record<string, HeaderValue> = {}, method = 'GET', httpVersion = '1.1'): HandshakeRequest {
  const merged: Record<string, HeaderValue> = { ...BASE_HEADERS };
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return { method, httpVersion, headers: merged };
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

describe('decideHandshake: the accepted case', () => {
  it('RFC 6455 §1.3: key "dGhlIHNhbXBsZSBub25jZQ==" gives accept "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="', () => {
    expect(acceptKey(KEY)).toBe(ACCEPT);
    expect(accepted(request())).toEqual({ ok: true, accept: ACCEPT, protocol: undefined, deflate: null });
  });

  it('RFC 6455 §4.2.2: the accept value is computed from the key without surrounding whitespace', () => {
    expect(accepted(request({ 'sec-websocket-key': `  ${KEY}\t` })).accept).toBe(ACCEPT);
  });

  it('RFC 6455 §4.2.2: another key gives its own SHA-1/base64 accept value', () => {
    // Computed independently: base64(sha1("x3JJHMbDL1EzLkh9GBhXDw==" + GUID)).
    expect(acceptKey('x3JJHMbDL1EzLkh9GBhXDw==')).toBe('HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
  });

  it('RFC 6455 §4.2.1: a request with repeated Connection/Upgrade header lines (arrays) passes', () => {
    accepted(request({ connection: ['keep-alive', 'Upgrade'], upgrade: ['websocket'] }));
  });
});

describe('decideHandshake: method and HTTP version (RFC 6455 §4.2.1 item 1)', () => {
  for (const method of ['POST', 'PUT', 'HEAD', 'OPTIONS', 'CONNECT', 'get']) {
    it(`RFC 6455 §4.2.1: method ${method} is refused with 405 and Allow: GET`, () => {
      const r = refused(request({}, method));
      expect(r.status).toBe(405);
      expect(r.code).toBe('METHOD_NOT_ALLOWED');
      expect(r.headers).toEqual({ Allow: 'GET' });
    });
  }

  it('RFC 6455 §4.2.1: an HTTP/1.0 request is refused with 400', () => {
    const r = refused(request({}, 'GET', '1.0'));
    expect(r.status).toBe(400);
    expect(r.code).toBe('BAD_HTTP_VERSION');
  });

  it('RFC 6455 §4.2.1: HTTP/1.1 and later 1.x are fine (2.0 is RFC 8441, in decide-http2.test.ts)', () => {
    accepted(request({}, 'GET', '1.1'));
    accepted(request({}, 'GET', '1.2'));
  });
});

describe('decideHandshake: Host (RFC 6455 §4.2.1 item 2)', () => {
  it('RFC 6455 §4.2.1: a missing Host is refused with 400', () => {
    const r = refused(request({ host: undefined }));
    expect(r.status).toBe(400);
    expect(r.code).toBe('MISSING_HOST');
  });

  it('RFC 9110 §7.2: a repeated Host is refused with 400', () => {
    expect(refused(request({ host: ['a.example', 'b.example'] })).status).toBe(400);
  });
});

describe('decideHandshake: Upgrade (RFC 6455 §4.2.1 item 3)', () => {
  it('RFC 6455 §4.2.1: a missing Upgrade header is refused with 400', () => {
    const r = refused(request({ upgrade: undefined }));
    expect(r.status).toBe(400);
    expect(r.code).toBe('BAD_UPGRADE');
  });

  for (const value of ['h2c', 'websocket2', 'web socket', '', 'websockets', 'websocket/13x']) {
    it(`RFC 6455 §4.2.1: Upgrade: ${JSON.stringify(value)} is refused with 400`, () => {
      const r = refused(request({ upgrade: value }));
      expect(r.status).toBe(400);
      expect(r.code).toBe('BAD_UPGRADE');
    });
  }

  for (const value of ['websocket', 'WebSocket', 'WEBSOCKET', ' websocket ', 'h2c, websocket']) {
    it(`RFC 6455 §4.2.1: Upgrade: ${JSON.stringify(value)} is accepted (case-insensitive token)`, () => {
      accepted(request({ upgrade: value }));
    });
  }
});

describe('decideHandshake: Connection (RFC 6455 §4.2.1 item 4)', () => {
  it('RFC 6455 §4.2.1: a missing Connection header is refused with 400', () => {
    const r = refused(request({ connection: undefined }));
    expect(r.status).toBe(400);
    expect(r.code).toBe('BAD_CONNECTION');
  });

  for (const value of ['keep-alive', 'close', 'upgraded', 'keep-alive upgrade', 'up-grade', '']) {
    it(`RFC 6455 §4.2.1: Connection: ${JSON.stringify(value)} (no upgrade token) is refused with 400`, () => {
      const r = refused(request({ connection: value }));
      expect(r.status).toBe(400);
      expect(r.code).toBe('BAD_CONNECTION');
    });
  }

  for (const value of ['Upgrade', 'upgrade', 'keep-alive, Upgrade', 'keep-alive,Upgrade', 'keep-alive ,  UPGRADE  ', 'keep-alive,\tupgrade\t', ',, upgrade,']) {
    it(`RFC 6455 §4.2.1: Connection: ${JSON.stringify(value)} includes the upgrade token and passes`, () => {
      accepted(request({ connection: value }));
    });
  }
});

describe('decideHandshake: Sec-WebSocket-Version (RFC 6455 §4.2.1 item 6, §4.4)', () => {
  const cases: readonly [string, HeaderValue][] = [
    ['missing', undefined],
    ['8', '8'],
    ['12', '12'],
    ['14', '14'],
    ['empty', ''],
    ['"13, 8"', '13, 8'],
    ['repeated as an array', ['13', '13']],
    ['an array of two versions', ['8', '13']],
  ];
  for (const [name, value] of cases) {
    it(`RFC 6455 §4.4: version ${name} is refused with 426 and Sec-WebSocket-Version: 13`, () => {
      const r = refused(request({ 'sec-websocket-version': value }));
      expect(r.status).toBe(426);
      expect(r.code).toBe('BAD_VERSION');
      expect(r.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
    });
  }

  it('RFC 6455 §4.2.1: version 13 as a one-element array is accepted', () => {
    accepted(request({ 'sec-websocket-version': ['13'] }));
  });
});

describe('decideHandshake: Sec-WebSocket-Key (RFC 6455 §4.2.1 item 5)', () => {
  const bad: readonly [string, HeaderValue][] = [
    ['missing', undefined],
    ['empty', ''],
    ['23 characters', 'dGhlIHNhbXBsZSBub25jZQ='],
    ['missing padding (22 characters)', 'dGhlIHNhbXBsZSBub25jZQ'],
    ['25 characters', 'dGhlIHNhbXBsZSBub25jZQ==A'],
    ['base64 of 15 bytes', 'AAAAAAAAAAAAAAAAAAAA'],
    ['base64 of 17 bytes', 'AAAAAAAAAAAAAAAAAAAAAAA='],
    ['base64 of 32 bytes', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
    ['a bad character (!)', 'dGhlIHNhbXBsZSBub25jZ!=='],
    ['a base64url character (-)', 'dGhlIHNhbXBsZSBub25jZ-=='],
    ['a base64url character (_)', 'dGhl_HNhbXBsZSBub25jZQ=='],
    ['padding in the middle', 'dGhl=HNhbXBsZSBub25jZQ=='],
    ['three padding characters', 'dGhlIHNhbXBsZSBub25jZ==='],
    ['a space inside', 'dGhlIHNhbXBs ZSBub25jZQ=='],
    ['a non-ASCII character', 'dGhlIHNhbXBsZSBub25jZé=='],
    ['repeated as an array', [KEY, KEY]],
  ];
  for (const [name, value] of bad) {
    it(`RFC 6455 §4.2.1: a key that is ${name} is refused with 400`, () => {
      const r = refused(request({ 'sec-websocket-key': value }));
      expect(r.status).toBe(400);
      expect(r.code).toBe('BAD_KEY');
    });
  }

  it('RFC 6455 §4.2.1: any base64 of 16 bytes is accepted, and a one-element array too', () => {
    accepted(request({ 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAAAA==' }));
    accepted(request({ 'sec-websocket-key': '+/+/+/+/+/+/+/+/+/+/+w==' }));
    accepted(request({ 'sec-websocket-key': [KEY] }));
  });
});

describe('decideHandshake: Origin (RFC 6455 §4.2.1 item 7, §10.2)', () => {
  const withOrigin = (origin: HeaderValue): HandshakeRequest => request({ origin });

  it('RFC 6455 §10.2: a string policy lets that exact origin in (case-insensitive) and refuses others with 403', () => {
    const origins = 'https://app.example';
    accepted(withOrigin('https://app.example'), { origins });
    accepted(withOrigin('HTTPS://APP.EXAMPLE'), { origins });
    for (const o of ['https://evil.example', 'https://app.example.evil', 'http://app.example', 'https://app.example:8443', 'null']) {
      const r = refused(withOrigin(o), { origins });
      expect(r.status).toBe(403);
      expect(r.code).toBe('ORIGIN_FORBIDDEN');
    }
  });

  it("RFC 6455 §10.2: the '*' policy lets every origin in", () => {
    accepted(withOrigin('https://anything.example'), { origins: '*' });
    accepted(withOrigin('null'), { origins: '*' });
    accepted(request(), { origins: '*' });
  });

  it('RFC 6455 §10.2: a RegExp policy tests the origin', () => {
    const origins = /^https:\/\/([a-z]+\.)?app\.example$/;
    accepted(withOrigin('https://app.example'), { origins });
    accepted(withOrigin('https://staging.app.example'), { origins });
    expect(refused(withOrigin('https://app.example.evil'), { origins }).status).toBe(403);
  });

  it('RFC 6455 §10.2: a global RegExp gives the same answer every time (lastIndex does not leak)', () => {
    const origins = /app\.example/g;
    for (let i = 0; i < 4; i++) accepted(withOrigin('https://app.example'), { origins });
  });

  it('RFC 6455 §10.2: a list policy lets in any listed string or matching RegExp', () => {
    const origins = ['https://a.example', /^https:\/\/b\.example$/];
    accepted(withOrigin('https://a.example'), { origins });
    accepted(withOrigin('https://b.example'), { origins });
    expect(refused(withOrigin('https://c.example'), { origins }).status).toBe(403);
    expect(refused(withOrigin('https://a.example'), { origins: [] }).status).toBe(403);
  });

  it('RFC 6455 §4.2.1: a request without Origin (a non-browser client) passes string, RegExp and list policies', () => {
    accepted(request(), { origins: 'https://app.example' });
    accepted(request(), { origins: /^https:\/\/app\.example$/ });
    accepted(request(), { origins: ['https://app.example'] });
  });

  it('RFC 6455 §10.2: a function policy sees the origin and the request, and decides', () => {
    const seen: [string | undefined, HandshakeRequest][] = [];
    const origins = (origin: string | undefined, r: HandshakeRequest): boolean => {
      seen.push([origin, r]);
      return origin === 'https://fn.example';
    };
    const good = withOrigin('https://fn.example');
    const bad = withOrigin('https://other.example');
    accepted(good, { origins });
    expect(refused(bad, { origins }).status).toBe(403);
    expect(seen).toHaveLength(2);
    expect(seen[0]?.[0]).toBe('https://fn.example');
    expect(seen[0]?.[1]).toBe(good);
    expect(seen[1]?.[0]).toBe('https://other.example');
    expect(seen[1]?.[1]).toBe(bad);
  });

  it('RFC 6455 §4.2.1: a function policy sees undefined when Origin is missing (and may refuse)', () => {
    const seen: (string | undefined)[] = [];
    const origins = (origin: string | undefined): boolean => {
      seen.push(origin);
      return origin !== undefined;
    };
    const r = refused(request(), { origins });
    expect(r.status).toBe(403);
    expect(seen).toEqual([undefined]);
  });

  it('originAllowed: undefined policy lets everything in', () => {
    expect(originAllowed(undefined, 'https://x.example', request())).toBe(true);
    expect(originAllowed(undefined, undefined, request())).toBe(true);
  });
});

describe('decideHandshake: subprotocols (RFC 6455 §4.2.2 item 5.4)', () => {
  it("RFC 6455 §4.2.2: the subprotocol is chosen in the route's preference order, not the client's", () => {
    const d = accepted(request({ 'sec-websocket-protocol': 'v1, v2, v3' }), { protocols: ['v3', 'v2'] });
    expect(d.protocol).toBe('v3');
    const d2 = accepted(request({ 'sec-websocket-protocol': 'v3, v2' }), { protocols: ['v2', 'v3'] });
    expect(d2.protocol).toBe('v2');
  });

  it('RFC 6455 §4.2.1: offers spread over repeated header lines (an array) are all considered', () => {
    const d = accepted(request({ 'sec-websocket-protocol': ['chat.v1', 'mqtt , chat.v2'] }), { protocols: ['chat.v2', 'mqtt'] });
    expect(d.protocol).toBe('chat.v2');
  });

  it('RFC 6455 §4.2.2: a subprotocol is only chosen when the client offered it', () => {
    const d = accepted(request({ 'sec-websocket-protocol': 'b' }), { protocols: ['a', 'b'] });
    expect(d.protocol).toBe('b');
  });

  it('RFC 6455 §4.2.2: with requireProtocol, no match is refused with 400', () => {
    const r = refused(request({ 'sec-websocket-protocol': 'x, y' }), { protocols: ['a', 'b'], requireProtocol: true });
    expect(r.status).toBe(400);
    expect(r.code).toBe('NO_PROTOCOL');
  });

  it('RFC 6455 §4.2.2: with requireProtocol, a client offering nothing is refused with 400', () => {
    expect(refused(request(), { protocols: ['a'], requireProtocol: true }).code).toBe('NO_PROTOCOL');
  });

  it('RFC 6455 §4.2.2: without requireProtocol, no match is accepted with no protocol', () => {
    expect(accepted(request({ 'sec-websocket-protocol': 'x' }), { protocols: ['a'] }).protocol).toBeUndefined();
    expect(accepted(request(), { protocols: ['a'] }).protocol).toBeUndefined();
  });

  it('RFC 6455 §4.2.2: a route with no protocols answers with none even when the client offers some', () => {
    expect(accepted(request({ 'sec-websocket-protocol': 'chat' })).protocol).toBeUndefined();
  });

  it('RFC 6455 §4.2.2: a protocol name must match a whole offered element, not a substring', () => {
    expect(accepted(request({ 'sec-websocket-protocol': 'chat.v10, xchat' }), { protocols: ['chat', 'chat.v1'] }).protocol).toBeUndefined();
  });
});

describe('decideHandshake: shutting down', () => {
  it('503 when the handler is not accepting, whatever the request', () => {
    const r = refused(request(), { accepting: false });
    expect(r.status).toBe(503);
    expect(r.code).toBe('SHUTTING_DOWN');
    expect(refused(request({ upgrade: undefined }, 'POST'), { accepting: false }).status).toBe(503);
  });
});

describe('decideHandshake: rejections are data', () => {
  it('every rejection has a status, a code, a message and a headers object', () => {
    const reqs: HandshakeRequest[] = [
      request({}, 'POST'),
      request({ host: undefined }),
      request({ upgrade: 'h2c' }),
      request({ connection: 'close' }),
      request({ 'sec-websocket-version': '8' }),
      request({ 'sec-websocket-key': 'x' }),
      request({ origin: 'https://evil.example' }),
    ];
    for (const req of reqs) {
      const r = refused(req, { origins: 'https://app.example' });
      expect(typeof r.status).toBe('number');
      expect(typeof r.code).toBe('string');
      expect(r.message.length).toBeGreaterThan(0);
      expect(typeof r.headers).toBe('object');
    }
  });

  it('headers are read from the request without touching its prototype', () => {
    const headers = Object.create(null) as Record<string, HeaderValue>;
    Object.assign(headers, BASE_HEADERS);
    accepted({ method: 'GET', httpVersion: '1.1', headers });
  });
});

describe('decideHandshake: headers that must appear once', () => {
  it('RFC 6455 §4.2.1 item 2: an empty Host is refused with 400 like a missing one', () => {
    const r = decide(request({ host: '  ' }));
    expect(r.ok).toBe(false);
    expect((r as Refusal).rejection).toMatchObject({ status: 400, code: 'MISSING_HOST' });
  });

  it('RFC 6454 §7.3: a repeated Origin is refused (403) under an origin policy, not mistaken for a missing one', () => {
    const twice = request({ origin: ['https://evil.example', 'https://app.example'] });
    const r = decide(twice, { origins: ['https://app.example'] });
    expect(r.ok).toBe(false);
    expect((r as Refusal).rejection).toMatchObject({ status: 403, code: 'ORIGIN_FORBIDDEN' });
    // The same request with one Origin passes, and with no policy a repeat is not our business.
    expect(decide(request({ origin: 'https://app.example' }), { origins: ['https://app.example'] }).ok).toBe(true);
    expect(decide(twice).ok).toBe(true);
  });
});

describe('subprotocol choice (RFC 6455 §4.2.2 step 5.4)', () => {
  it('chooseProtocol: server preference among the offered; false when required and none; undefined otherwise', () => {
    expect(chooseProtocol(['b', 'a'], true, ['a', 'b'])).toBe('b');
    expect(chooseProtocol(['b', 'a'], true, ['c'])).toBe(false);
    expect(chooseProtocol(['b', 'a'], false, ['c'])).toBeUndefined();
    expect(chooseProtocol([], true, ['c'])).toBeUndefined();
  });

  it('selectProtocol replaces the static choice and sees the offer in the client order', () => {
    let seen: readonly string[] = [];
    const d = accepted(request({ 'sec-websocket-protocol': 'x, y' }), {
      protocols: ['y'],
      selectProtocol: (offered) => {
        seen = offered;
        return 'x';
      },
    });
    expect(seen).toEqual(['x', 'y']);
    expect(d.protocol).toBe('x');
  });

  it('selectProtocol returning false refuses with 400 NO_PROTOCOL; undefined accepts without one', () => {
    expect(refused(request({ 'sec-websocket-protocol': 'x' }), { selectProtocol: () => false })).toMatchObject({ status: 400, code: 'NO_PROTOCOL' });
    expect(accepted(request({ 'sec-websocket-protocol': 'x' }), { selectProtocol: () => undefined }).protocol).toBeUndefined();
  });

  it('selectProtocol returning a name the client did not offer throws (the server must pick from the offer)', () => {
    expect(() => decide(request({ 'sec-websocket-protocol': 'x' }), { selectProtocol: () => 'z' })).toThrow(TypeError);
  });
});

describe('decideHandshake: permessage-deflate (RFC 7692 §5) is negotiated, never refused', () => {
  const deflate = { ...DEFAULT_DEFLATE_NEGOTIATION, serverNoContextTakeover: true };
  const ext = (value: HeaderValue) => request({ 'sec-websocket-extensions': value });

  it("Chrome's offer is accepted, with the server's unasked server_no_context_takeover", () => {
    const d = accepted(ext('permessage-deflate; client_max_window_bits'), { deflate });
    expect(d.deflate?.responseHeader).toBe('permessage-deflate; server_no_context_takeover');
    expect(d.deflate?.clientMaxWindowBits).toBe(15);
  });

  it("Firefox's and Safari's bare offer is accepted, and no window parameter is echoed (§7.1.2)", () => {
    const d = accepted(ext('permessage-deflate'), { deflate });
    expect(d.deflate?.responseHeader).toBe('permessage-deflate; server_no_context_takeover');
  });

  it('a route without compression declines every offer: no extension, still a 101', () => {
    expect(accepted(ext('permessage-deflate; client_max_window_bits')).deflate).toBeNull();
    expect(accepted(ext('permessage-deflate'), { deflate: null }).deflate).toBeNull();
  });

  it('no offer, or only unknown extensions: no extension', () => {
    expect(accepted(request(), { deflate }).deflate).toBeNull();
    expect(accepted(ext('x-webkit-deflate-frame'), { deflate }).deflate).toBeNull();
  });

  it('a malformed header or an invalid offer declines (never 400); a later valid offer is taken', () => {
    expect(accepted(ext('permessage-deflate; ;;; ='), { deflate }).deflate).toBeNull();
    expect(accepted(ext('permessage-deflate; server_max_window_bits=7'), { deflate }).deflate).toBeNull();
    const d = accepted(ext('permessage-deflate; client_no_context_takeover; client_no_context_takeover, permessage-deflate'), { deflate });
    expect(d.deflate?.offerIndex).toBe(1);
  });

  it('Safari 15.0-15.3 get no compression where the server would impose client_no_context_takeover (uWS #1347); 15.4 and Chrome do', () => {
    const forced = { ...deflate, clientNoContextTakeover: true };
    const safari = (v: string) =>
      request({ 'sec-websocket-extensions': 'permessage-deflate', 'user-agent': `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${v} Safari/605.1.15` });
    expect(accepted(safari('15.3'), { deflate: forced }).deflate).toBeNull();
    expect(accepted(safari('15.0'), { deflate: forced }).deflate).toBeNull();
    expect(accepted(safari('15.4'), { deflate: forced }).deflate?.clientNoContextTakeover).toBe(true);
    expect(accepted(safari('15.10'), { deflate: forced }).deflate).not.toBeNull();
    expect(accepted(safari('15.3'), { deflate }).deflate).not.toBeNull(); // nothing imposed: fine
    // Safari asking for it itself is not the broken case.
    const asking = request({ 'sec-websocket-extensions': 'permessage-deflate; client_no_context_takeover', 'user-agent': 'Version/15.2 Safari/605.1.15' });
    expect(accepted(asking, { deflate: forced }).deflate?.clientNoContextTakeover).toBe(true);
  });

  it('repeated header lines are read as one list, in order', () => {
    const d = accepted(ext(['permessage-deflate; server_max_window_bits=10', 'permessage-deflate']), { deflate });
    expect(d.deflate?.responseHeader).toBe('permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
  });
});
