import { type HeaderValue, isToken, isValidKey, listHasToken, singleValue, splitList } from './tokens.js';
import { type Rejection, rejection } from './rejection.js';
import { parseExtensionOffers } from '../extensions/extensions-header.js';
import {
  type DeflateNegotiationConfig,
  type PerMessageDeflateAgreement,
  negotiatePerMessageDeflate,
} from '../extensions/permessage-deflate/negotiate.js';
// Not an ES module import (src/builtins.ts says why).
const crypto = process.getBuiltinModule('node:crypto');

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * The parts of an upgrade request the decision reads. `http.IncomingMessage` fits, and so does
 * `http2.Http2ServerRequest`: an `httpVersion` of `'2.0'` makes it an HTTP/2 extended CONNECT
 * (RFC 8441), whose pseudo-headers (`:method`, `:protocol`…) are in `headers`.
 */
export interface HandshakeRequest {
  readonly method?: string | undefined;
  readonly httpVersion?: string | undefined;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

/** Which origins may open a WebSocket (checked before the 101; refused with 403). */
export type OriginPolicy =
  | string
  | RegExp
  | readonly (string | RegExp)[]
  | ((origin: string | undefined, request: HandshakeRequest) => boolean);

/** What a route and the handler allow. */
export interface HandshakePolicy {
  /** Subprotocols the route accepts, in server preference order. */
  protocols: readonly string[];
  /** With `protocols` set, refuse (400) a client that offers none of them. */
  requireProtocol: boolean;
  /** `undefined` lets every origin in. */
  origins: OriginPolicy | undefined;
  /** `false` while the handler shuts down: refuse with 503. */
  accepting: boolean;
  /**
   * The request is an HTTP/2 extended CONNECT (RFC 8441), as the transport knows it; by default
   * one whose `httpVersion` is `'2.0'`.
   */
  http2?: boolean | undefined;
  /**
   * Chooses the subprotocol from the client's offer (in its order) instead of `protocols`:
   * one of the offered names, `undefined` for none, `false` to refuse with 400. Throws (a
   * TypeError) if it returns a name the client did not offer.
   */
  selectProtocol?: ((offered: readonly string[]) => string | undefined | false) | undefined;
  /**
   * permessage-deflate settings when the route allows compression; `null`/absent declines every
   * offer (no `Sec-WebSocket-Extensions` in the 101).
   */
  deflate?: DeflateNegotiationConfig | null | undefined;
}

/**
 * The default subprotocol choice (RFC 6455 §4.2.2 step 5.4): the first of `protocols` (server
 * preference) that the client offers; `false` (refuse) when none is and `requireProtocol` is set;
 * `undefined` (no subprotocol) otherwise, and always when `protocols` is empty.
 */
export function chooseProtocol(protocols: readonly string[], requireProtocol: boolean, offered: readonly string[]): string | undefined | false {
  if (protocols.length === 0) return undefined;
  const chosen = protocols.find((p) => offered.includes(p));
  if (chosen === undefined && requireProtocol) return false;
  return chosen;
}

/** An accepted handshake: what to put in the 101 response. */
export interface Acceptance {
  ok: true;
  /**
   * `Sec-WebSocket-Accept`. Over HTTP/2 the key is optional (RFC 8441 §5): `undefined` when the
   * request carried none, and the header is then left out.
   */
  accept: string | undefined;
  /** The chosen subprotocol, or `undefined`. */
  protocol: string | undefined;
  /**
   * The permessage-deflate parameters agreed (its `responseHeader` is the
   * `Sec-WebSocket-Extensions` value to send), or null: no extension, no header.
   */
  deflate: PerMessageDeflateAgreement | null;
}

/** A refused one. */
export interface Refusal {
  ok: false;
  rejection: Rejection;
}

/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  // Node's one-shot hash (Node 20.12 and later; the package needs 20.19) makes no Hash object:
  // 0.9-1.1 µs a key against 1.7-2.2 µs for createHash().update().digest(), Node 20 and 24 here.
  return crypto.hash('sha1', key.trim() + GUID, 'base64');
}

/**
 * Whether the origin passes the policy. A request without an `Origin` header (a non-browser
 * client) passes a list or RegExp: origin checks protect browsers, which always send one. A
 * function sees `undefined` and decides for itself.
 */
export function originAllowed(policy: OriginPolicy | undefined, origin: string | undefined, request: HandshakeRequest): boolean {
  if (policy === undefined) return true;
  if (typeof policy === 'function') return policy(origin, request);
  if (origin === undefined) return true;
  const rules = typeof policy === 'string' || policy instanceof RegExp ? [policy] : policy;
  const lower = origin.toLowerCase();
  for (const rule of rules) {
    if (typeof rule === 'string') {
      if (rule === '*' || rule.toLowerCase() === lower) return true;
    } else {
      rule.lastIndex = 0;
      if (rule.test(origin)) return true;
    }
  }
  return false;
}

/**
 * Decides an opening handshake: HTTP/1.1 (RFC 6455 §4.2.1–4.2.2) or an HTTP/2 extended CONNECT
 * (RFC 8441 §4–5). Every failure maps to its HTTP status here and nowhere else: 503 shutting
 * down, 405 wrong method, 400 malformed, 426 wrong version, 403 origin, 400 no acceptable
 * subprotocol.
 */
export function decideHandshake(request: HandshakeRequest, policy: HandshakePolicy): Acceptance | Refusal {
  if (!policy.accepting) {
    return refuse(rejection(503, 'SHUTTING_DOWN', 'the server is shutting down', { 'Retry-After': '5' }));
  }
  const framing = (policy.http2 ?? request.httpVersion === '2.0') ? checkHttp2(request) : checkHttp1(request);
  if (typeof framing !== 'string' && framing !== undefined) return framing;
  return decideCommon(request, policy, framing);
}

function refuse(r: Rejection): Refusal {
  return { ok: false, rejection: r };
}

const BAD_WS_VERSION = (): Refusal =>
  refuse(rejection(426, 'BAD_VERSION', 'unsupported Sec-WebSocket-Version; this server speaks 13', { 'Sec-WebSocket-Version': '13' }));

/** RFC 6455 §4.2.1: the HTTP/1.1 request's own checks. Returns the `Sec-WebSocket-Accept`, or the refusal. */
function checkHttp1(request: HandshakeRequest): string | Refusal {
  const h = request.headers;
  if (request.method !== undefined && request.method !== 'GET') {
    return refuse(rejection(405, 'METHOD_NOT_ALLOWED', 'a WebSocket handshake must be a GET request', { Allow: 'GET' }));
  }
  const version = request.httpVersion;
  if (version !== undefined && (version === '0.9' || version === '1.0' || version.startsWith('0.'))) {
    return refuse(rejection(400, 'BAD_HTTP_VERSION', 'a WebSocket handshake needs HTTP/1.1 or later'));
  }
  const host = singleValue(h['host']);
  if (host === undefined || host.trim() === '') {
    return refuse(rejection(400, 'MISSING_HOST', 'missing Host header'));
  }
  if (!listHasToken(h['upgrade'], 'websocket')) {
    return refuse(rejection(400, 'BAD_UPGRADE', 'the Upgrade header must name websocket'));
  }
  if (!listHasToken(h['connection'], 'upgrade')) {
    return refuse(rejection(400, 'BAD_CONNECTION', 'the Connection header must include upgrade'));
  }
  const wsVersion = singleValue(h['sec-websocket-version']);
  if (wsVersion === undefined || wsVersion.trim() !== '13') return BAD_WS_VERSION();
  const key = singleValue(h['sec-websocket-key']);
  if (key === undefined || !isValidKey(key)) {
    return refuse(rejection(400, 'BAD_KEY', 'Sec-WebSocket-Key must be base64 of 16 bytes'));
  }
  return acceptKey(key);
}

/**
 * RFC 8441 §4–5: an extended CONNECT's own checks. `:method` CONNECT with `:protocol`
 * websocket, and `:scheme`, `:path`, `:authority` present. No `Upgrade`/`Connection`, and no
 * key required; a valid key still gets its `Sec-WebSocket-Accept` (undici 7 checks it). Returns
 * that accept or `undefined`, or the refusal.
 */
function checkHttp2(request: HandshakeRequest): string | undefined | Refusal {
  const h = request.headers;
  if (singleValue(h[':method']) !== 'CONNECT') {
    return refuse(rejection(405, 'METHOD_NOT_ALLOWED', 'a WebSocket over HTTP/2 is an extended CONNECT (RFC 8441)', { Allow: 'CONNECT' }));
  }
  if (singleValue(h[':protocol'])?.toLowerCase() !== 'websocket') {
    return refuse(rejection(400, 'BAD_UPGRADE', 'the :protocol pseudo-header must be websocket'));
  }
  const authority = singleValue(h[':authority']);
  if (authority === undefined || authority.trim() === '') {
    return refuse(rejection(400, 'MISSING_HOST', 'an extended CONNECT needs :authority'));
  }
  if (singleValue(h[':scheme']) === undefined || singleValue(h[':path']) === undefined) {
    return refuse(rejection(400, 'BAD_UPGRADE', 'an extended CONNECT needs :scheme and :path (RFC 8441 §4)'));
  }
  const wsVersion = singleValue(h['sec-websocket-version']);
  if (wsVersion === undefined || wsVersion.trim() !== '13') return BAD_WS_VERSION();
  const key = singleValue(h['sec-websocket-key']);
  return key !== undefined && isValidKey(key) ? acceptKey(key) : undefined;
}

/** The checks both transports share: origin, subprotocol, extensions. */
function decideCommon(request: HandshakeRequest, policy: HandshakePolicy, accept: string | undefined): Acceptance | Refusal {
  const h = request.headers;
  const origin = singleValue(h['origin']);
  // RFC 6454 §7.3: one Origin. A repeated one is refused, never mistaken for a missing one.
  if (policy.origins !== undefined && origin === undefined && h['origin'] !== undefined) {
    return refuse(rejection(403, 'ORIGIN_FORBIDDEN', 'repeated Origin header'));
  }
  if (!originAllowed(policy.origins, origin, request)) {
    return refuse(rejection(403, 'ORIGIN_FORBIDDEN', `origin not allowed: ${origin ?? '(none)'}`));
  }
  const offered = splitList(h['sec-websocket-protocol']);
  // RFC 6455 §4.1 (client requirement 10): the offered names are tokens, each once.
  for (let i = 0; i < offered.length; i++) {
    const name = offered[i] as string;
    if (!isToken(name) || offered.indexOf(name) !== i) {
      return refuse(rejection(400, 'BAD_PROTOCOL', 'Sec-WebSocket-Protocol must list distinct tokens'));
    }
  }
  const protocol =
    policy.selectProtocol === undefined ? chooseProtocol(policy.protocols, policy.requireProtocol, offered) : policy.selectProtocol(offered);
  if (protocol === false) {
    const speaks = policy.protocols.length > 0 ? `; this route speaks ${policy.protocols.join(', ')}` : '';
    return refuse(rejection(400, 'NO_PROTOCOL', `no acceptable subprotocol${speaks}`));
  }
  if (protocol !== undefined && !offered.includes(protocol)) {
    throw new TypeError(`selectProtocol() chose '${String(protocol)}', which the client did not offer (offered: ${offered.join(', ') || 'none'})`);
  }
  // RFC 7692 §5: an offer the server cannot or will not accept is declined (the next one is
  // tried); a malformed header declines too. Never a refusal: the connection goes on uncompressed.
  let deflate: PerMessageDeflateAgreement | null = null;
  const config = policy.deflate;
  if (config !== undefined && config !== null && h['sec-websocket-extensions'] !== undefined) {
    deflate = negotiatePerMessageDeflate(parseExtensionOffers(h['sec-websocket-extensions']).offers, config);
    // Safari 15.0–15.3 mishandle a client_no_context_takeover they did not ask for (uWS #1347):
    // they get no compression rather than a broken one.
    if (deflate !== null && config.clientNoContextTakeover && isSafari15Early(singleValue(h['user-agent']))) {
      const asked = negotiatePerMessageDeflate(parseExtensionOffers(h['sec-websocket-extensions']).offers, { ...config, clientNoContextTakeover: false });
      if (asked === null || !asked.clientNoContextTakeover) deflate = null;
    }
  }
  return { ok: true, accept, protocol, deflate };
}

/**
 * Whether a User-Agent is Safari 15.0–15.3 (`… Version/15.N[.x] … Safari/…`, not Chrome), whose
 * permessage-deflate breaks when the server imposes client_no_context_takeover (uWS #1347 lists
 * 15.0, 15.2 and 15.3 as broken, 15.4 as fixed). No regex over the header: two index lookups.
 */
export function isSafari15Early(ua: string | undefined): boolean {
  if (ua === undefined) return false;
  const at = ua.indexOf('Version/15.');
  if (at < 0 || ua.indexOf('Safari/') < 0 || ua.indexOf('Chrome/') >= 0) return false;
  const minor = ua.charCodeAt(at + 11);
  const after = ua.charCodeAt(at + 12);
  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
  return minor >= 0x30 && minor <= 0x33 && !isDigit(after);
}
