import { Buffer } from 'node:buffer';
import { acceptKey } from './decide.js';
import {
  checkPerMessageDeflateResponse,
  type PerMessageDeflateAcceptance,
} from '../extensions/permessage-deflate/client-negotiate.js';
import { type HeaderValue, isSafeHeaderValue, isToken, listHasToken, singleValue, splitList } from './tokens.js';
// Not an ES module import (src/builtins.ts says why).
const crypto = process.getBuiltinModule('node:crypto');

/**
 * The client half of the opening handshake (RFC 6455 §4.1), I/O-free like the server's
 * {@link decideHandshake}: build the request bytes, read the response head from bytes, and check
 * it. Whoever owns the socket writes and reads; nothing here does.
 */

/** A header value for the client request: `null` leaves out a header that is sent by default. */
export type ClientHeaderValue = string | readonly string[] | null;

/** What goes into a client's upgrade request. */
export interface ClientHandshakeOptions {
  /** The `Host` header (`host:port`). */
  host: string;
  /** The request target: path and query, starting with `/`. */
  path: string;
  /** Subprotocols to offer, in preference order (`Sec-WebSocket-Protocol`). */
  protocols?: readonly string[] | undefined;
  /** The `Origin` header. */
  origin?: string | undefined;
  /**
   * Extra headers. A name that matches a default header (case-insensitively) replaces it, and
   * `null` removes it, so a test can send a deliberately broken handshake. A replaced
   * `Sec-WebSocket-Key` is the key the response is checked against.
   */
  headers?: Readonly<Record<string, ClientHeaderValue>> | undefined;
  /** The `Sec-WebSocket-Key`; default 16 random bytes, base64. */
  key?: string | undefined;
  /**
   * The `Sec-WebSocket-Extensions` offer (RFC 6455 §9.1): one or more permessage-deflate offers,
   * the only extension whose response {@link checkHandshakeResponse} can accept. Without it (or
   * when `headers` replaces or removes the header) any extension in the response fails.
   */
  extensions?: string | undefined;
}

/** A client request, ready to write, and what checking its response needs. */
export interface ClientHandshake {
  /** The complete request head (request line, headers, blank line). */
  request: string;
  /** The `Sec-WebSocket-Key` sent (`undefined` if a test removed it). */
  key: string | undefined;
  /** The subprotocols offered. */
  protocols: readonly string[];
  /** The extension offer sent, as given in {@link ClientHandshakeOptions.extensions}; `undefined` when none. */
  extensions: string | undefined;
}

/** Largest response head the reader accepts. */
export const MAX_RESPONSE_HEAD: number = 16 * 1024;

/** A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1). */
export function generateKey(): string {
  return crypto.randomBytes(16).toString('base64');
}

/**
 * Builds the upgrade request (RFC 6455 §4.1): `GET`, HTTP/1.1, `Host`, `Upgrade: websocket`,
 * `Connection: Upgrade`, a fresh key, version 13, and the optional origin and subprotocols.
 * Throws `TypeError` on a header name that is not a token or a value with CR, LF or NUL.
 */
export function createClientHandshake(options: ClientHandshakeOptions): ClientHandshake {
  const protocols = options.protocols ?? [];
  for (const p of protocols) {
    if (!isToken(p)) throw new TypeError(`invalid subprotocol ${JSON.stringify(p)}`);
  }
  if (!options.path.startsWith('/') || !isSafeHeaderValue(options.path) || options.path.includes(' ')) {
    throw new TypeError(`invalid request path ${JSON.stringify(options.path)}`);
  }
  // Lower-case name → [name as written, value]; insertion order is the order on the wire.
  const headers = new Map<string, [string, ClientHeaderValue]>();
  const set = (name: string, value: ClientHeaderValue): void => {
    headers.set(name.toLowerCase(), [name, value]);
  };
  set('Host', options.host);
  set('Upgrade', 'websocket');
  set('Connection', 'Upgrade');
  set('Sec-WebSocket-Key', options.key ?? generateKey());
  set('Sec-WebSocket-Version', '13');
  if (options.origin !== undefined) set('Origin', options.origin);
  if (protocols.length > 0) set('Sec-WebSocket-Protocol', protocols.join(', '));
  if (options.extensions !== undefined) set('Sec-WebSocket-Extensions', options.extensions);
  const extra = options.headers ?? {};
  for (const name of Object.keys(extra)) {
    if (!isToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    set(name, extra[name] as ClientHeaderValue);
  }
  let request = `GET ${options.path} HTTP/1.1\r\n`;
  for (const [name, value] of headers.values()) {
    if (value === null) continue;
    for (const v of typeof value === 'string' ? [value] : value) {
      if (!isSafeHeaderValue(v)) throw new TypeError(`invalid value for header ${name}`);
      request += `${name}: ${v}\r\n`;
    }
  }
  request += '\r\n';
  const key = headers.get('sec-websocket-key')?.[1];
  // An offer replaced or removed through `headers` is not one this client can honor.
  const offer = headers.get('sec-websocket-extensions')?.[1];
  const extensions = options.extensions !== undefined && offer === options.extensions ? offer : undefined;
  return { request, key: typeof key === 'string' ? key : undefined, protocols, extensions };
}

/** A parsed HTTP response head. */
export interface ResponseHead {
  /** The status code. */
  status: number;
  /** The reason phrase. */
  statusText: string;
  /** Headers by lower-case name; a repeated header is an array of its values. */
  headers: Record<string, string | string[]>;
  /** Bytes the head took, blank line included: what follows is body or WebSocket frames. */
  length: number;
}

/** The result of {@link readResponseHead}. */
export type ResponseHeadResult =
  | { kind: 'incomplete' }
  | { kind: 'malformed'; message: string }
  | ({ kind: 'head' } & ResponseHead);

function findHeadEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 0x0a && bytes[i - 1] === 0x0d && bytes[i - 2] === 0x0a && bytes[i - 3] === 0x0d) return i + 1;
  }
  return -1;
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Reads an HTTP/1.1 response head from the start of `bytes` (everything received so far).
 * `incomplete` until the blank line arrives; `malformed` for a bad status line or header line,
 * or a head over {@link MAX_RESPONSE_HEAD} bytes. No regexes: linear in the input.
 */
export function readResponseHead(bytes: Uint8Array): ResponseHeadResult {
  const end = findHeadEnd(bytes);
  if (end === -1) {
    return bytes.length > MAX_RESPONSE_HEAD
      ? { kind: 'malformed', message: `response head over ${MAX_RESPONSE_HEAD} bytes` }
      : { kind: 'incomplete' };
  }
  if (end > MAX_RESPONSE_HEAD) return { kind: 'malformed', message: `response head over ${MAX_RESPONSE_HEAD} bytes` };
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, end - 4).toString('latin1');
  const lines = text.split('\r\n');
  const statusLine = lines[0] ?? '';
  // RFC 9112 §4: HTTP-version SP status-code SP [reason-phrase]
  const sp1 = statusLine.indexOf(' ');
  const version = sp1 === -1 ? '' : statusLine.slice(0, sp1);
  const rest = sp1 === -1 ? '' : statusLine.slice(sp1 + 1);
  const sp2 = rest.indexOf(' ');
  const code = sp2 === -1 ? rest : rest.slice(0, sp2);
  if (!version.startsWith('HTTP/1.') || code.length !== 3 || !isDigits(code)) {
    return { kind: 'malformed', message: `bad status line ${JSON.stringify(statusLine.slice(0, 80))}` };
  }
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!isToken(name)) return { kind: 'malformed', message: `bad header line ${JSON.stringify(line.slice(0, 80))}` };
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    const previous = headers[lower];
    if (previous === undefined) headers[lower] = value;
    else if (typeof previous === 'string') headers[lower] = [previous, value];
    else previous.push(value);
  }
  return {
    kind: 'head',
    status: Number(code),
    statusText: sp2 === -1 ? '' : rest.slice(sp2 + 1),
    headers,
    length: end,
  };
}

/** Why a response does not complete the handshake. */
export type ClientHandshakeFailure =
  | 'REJECTED'
  | 'BAD_UPGRADE'
  | 'BAD_CONNECTION'
  | 'BAD_ACCEPT'
  | 'BAD_PROTOCOL'
  | 'BAD_EXTENSION';

/** The verdict of {@link checkHandshakeResponse}. */
export type ClientHandshakeResult =
  | {
      ok: true;
      protocol: string | undefined;
      /** The response's `Sec-WebSocket-Extensions` (lines joined with `, `), or `undefined` when it has none. */
      extensions: string | undefined;
      /** The permessage-deflate parameters the server accepted, or `null`: no compression. */
      perMessageDeflate: PerMessageDeflateAcceptance | null;
    }
  | { ok: false; failure: ClientHandshakeFailure; message: string };

/**
 * Checks a response head against the request (RFC 6455 §4.1, the client's checks 1–6): status
 * 101, `Upgrade: websocket`, `Connection: upgrade`, `Sec-WebSocket-Accept` matching the key, a
 * subprotocol only if it is one we offered, and an extension only if we offered it: then it must
 * be one permessage-deflate element that fits the offer as RFC 7692 §5 and §7.1 require
 * (`BAD_EXTENSION` with the rule broken otherwise; see {@link checkPerMessageDeflateResponse}).
 */
export function checkHandshakeResponse(head: ResponseHead, handshake: ClientHandshake): ClientHandshakeResult {
  const fail = (failure: ClientHandshakeFailure, message: string): ClientHandshakeResult => ({ ok: false, failure, message });
  const h = head.headers as Record<string, HeaderValue>;
  if (head.status !== 101) return fail('REJECTED', `the server answered ${head.status} ${head.statusText}`.trimEnd());
  if (!listHasToken(h['upgrade'], 'websocket')) return fail('BAD_UPGRADE', 'the 101 response has no Upgrade: websocket');
  if (!listHasToken(h['connection'], 'upgrade')) return fail('BAD_CONNECTION', 'the 101 response has no Connection: upgrade');
  const accept = singleValue(h['sec-websocket-accept']);
  const expected = handshake.key === undefined ? undefined : acceptKey(handshake.key);
  if (accept === undefined || accept.trim() !== expected) {
    return fail('BAD_ACCEPT', `Sec-WebSocket-Accept is ${JSON.stringify(accept ?? null)}, expected ${JSON.stringify(expected ?? null)}`);
  }
  return checkNegotiation(h, handshake);
}

/**
 * The checks a response shares over HTTP/1.1 and HTTP/2 (RFC 6455 §4.1 checks 5–6, RFC 8441 §5):
 * a subprotocol only if it is one we offered, an extension only if we offered it, and then one
 * permessage-deflate element that fits the offer.
 */
function checkNegotiation(
  h: Record<string, HeaderValue>,
  handshake: { readonly protocols: readonly string[]; readonly extensions: string | undefined },
): ClientHandshakeResult {
  const fail = (failure: ClientHandshakeFailure, message: string): ClientHandshakeResult => ({ ok: false, failure, message });
  let protocol: string | undefined;
  if (h['sec-websocket-protocol'] !== undefined) {
    const chosen = splitList(h['sec-websocket-protocol']);
    protocol = chosen.length === 1 ? chosen[0] : undefined;
    if (protocol === undefined || !handshake.protocols.includes(protocol)) {
      return fail('BAD_PROTOCOL', `the server chose subprotocol ${JSON.stringify(chosen.join(', '))}, which was not offered`);
    }
  }
  const extensionsHeader = h['sec-websocket-extensions'];
  if (splitList(extensionsHeader).length === 0) return { ok: true, protocol, extensions: undefined, perMessageDeflate: null };
  const extensions = typeof extensionsHeader === 'string' ? extensionsHeader : (extensionsHeader as readonly string[]).join(', ');
  if (handshake.extensions === undefined) {
    return fail('BAD_EXTENSION', 'the server chose an extension that was not offered');
  }
  const checked = checkPerMessageDeflateResponse(extensionsHeader, handshake.extensions);
  if (!checked.ok) return fail('BAD_EXTENSION', `Sec-WebSocket-Extensions ${JSON.stringify(extensions)}: ${checked.message}`);
  return { ok: true, protocol, extensions, perMessageDeflate: checked.acceptance };
}

// ---- HTTP/2: extended CONNECT (RFC 8441) ---------------------------------------------------------

/** A header value for an HTTP/2 request as `node:http2` takes it. */
export type Http2HeaderValue = string | string[];

/** What goes into an RFC 8441 extended CONNECT request. */
export interface Http2ClientHandshakeOptions {
  /** `:scheme`: `'https'` for `wss://`, `'http'` for `ws://` (RFC 8441 §4). */
  scheme: 'http' | 'https';
  /** `:authority`: the target's `host:port`. */
  authority: string;
  /** `:path`: path and query, starting with `/`. */
  path: string;
  /** Subprotocols to offer, in preference order (`sec-websocket-protocol`). */
  protocols?: readonly string[] | undefined;
  /** The `origin` header. */
  origin?: string | undefined;
  /**
   * Extra headers, names taken case-insensitively (HTTP/2 sends them in lower case). A default
   * header (pseudo-headers such as `:protocol` included) is replaced, and `null` removes it, so a
   * test can send a broken extended CONNECT (`node:http2` itself fills in a missing `:scheme`,
   * `:path` or `:authority`). No `sec-websocket-key` is sent unless given here
   * (RFC 8441 §5: browsers send none); one given is what `sec-websocket-accept` is checked against.
   */
  headers?: Readonly<Record<string, ClientHeaderValue>> | undefined;
  /** The `sec-websocket-extensions` offer (permessage-deflate), as in {@link ClientHandshakeOptions.extensions}. */
  extensions?: string | undefined;
}

/** An extended CONNECT request, ready for `session.request()`, and what checking its response needs. */
export interface Http2ClientHandshake {
  /** The request headers, pseudo-headers first, by lower-case name. */
  headers: Record<string, Http2HeaderValue>;
  /** The `sec-websocket-key` sent, or `undefined` (the default: none). */
  key: string | undefined;
  /** The subprotocols offered. */
  protocols: readonly string[];
  /** The extension offer sent, when it is the one given as {@link Http2ClientHandshakeOptions.extensions}; else `undefined`. */
  extensions: string | undefined;
}

/** A header name for an HTTP/2 request: a token, or a pseudo-header (`:` and a token). */
function isHttp2HeaderName(name: string): boolean {
  return isToken(name.startsWith(':') ? name.slice(1) : name);
}

/**
 * Builds an RFC 8441 §4 extended CONNECT: `:method CONNECT`, `:protocol websocket`, `:scheme`,
 * `:path`, `:authority`, `sec-websocket-version: 13`, and the optional origin, subprotocols and
 * extension offer; no `sec-websocket-key`, `upgrade` or `connection` (RFC 8441 §5, RFC 9113
 * §8.2.2). Throws `TypeError` on a header name that is not a token or a value with CR, LF or NUL.
 */
export function createHttp2ClientHandshake(options: Http2ClientHandshakeOptions): Http2ClientHandshake {
  const protocols = options.protocols ?? [];
  for (const p of protocols) {
    if (!isToken(p)) throw new TypeError(`invalid subprotocol ${JSON.stringify(p)}`);
  }
  if (!options.path.startsWith('/') || !isSafeHeaderValue(options.path) || options.path.includes(' ')) {
    throw new TypeError(`invalid request path ${JSON.stringify(options.path)}`);
  }
  const headers = new Map<string, ClientHeaderValue>([
    [':method', 'CONNECT'],
    [':protocol', 'websocket'],
    [':scheme', options.scheme],
    [':path', options.path],
    [':authority', options.authority],
    ['sec-websocket-version', '13'],
  ]);
  if (options.origin !== undefined) headers.set('origin', options.origin);
  if (protocols.length > 0) headers.set('sec-websocket-protocol', protocols.join(', '));
  if (options.extensions !== undefined) headers.set('sec-websocket-extensions', options.extensions);
  const extra = options.headers ?? {};
  for (const name of Object.keys(extra)) {
    if (!isHttp2HeaderName(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    headers.set(name.toLowerCase(), extra[name] as ClientHeaderValue);
  }
  const out: Record<string, Http2HeaderValue> = Object.create(null) as Record<string, Http2HeaderValue>;
  for (const [name, value] of headers) {
    if (value === null) continue;
    const values = typeof value === 'string' ? [value] : [...value];
    for (const v of values) {
      if (!isSafeHeaderValue(v)) throw new TypeError(`invalid value for header ${name}`);
    }
    out[name] = values.length === 1 ? (values[0] as string) : values;
  }
  const key = out['sec-websocket-key'];
  const offer = out['sec-websocket-extensions'];
  const extensions = options.extensions !== undefined && offer === options.extensions ? offer : undefined;
  return { headers: out, key: typeof key === 'string' ? key : undefined, protocols, extensions };
}

/**
 * Checks the response to an extended CONNECT (RFC 8441 §5): `:status` 200 (`REJECTED`
 * otherwise), a `sec-websocket-accept` matching the key when the request carried a
 * `sec-websocket-key` (`BAD_ACCEPT`: RFC 8441 has none, but undici 7.17+ sends a key and fails
 * without it), then the subprotocol and extension checks of HTTP/1.1. `headers` are the
 * response's regular headers by lower-case name.
 */
export function checkHttp2HandshakeResponse(
  status: number,
  headers: Readonly<Record<string, string | string[]>>,
  handshake: Http2ClientHandshake,
): ClientHandshakeResult {
  if (status !== 200) return { ok: false, failure: 'REJECTED', message: `the server answered ${status}` };
  const h = headers as Record<string, HeaderValue>;
  if (handshake.key !== undefined) {
    const accept = singleValue(h['sec-websocket-accept']);
    const expected = acceptKey(handshake.key);
    if (accept === undefined || accept.trim() !== expected) {
      return {
        ok: false,
        failure: 'BAD_ACCEPT',
        message: `the request carried a sec-websocket-key, and sec-websocket-accept is ${JSON.stringify(accept ?? null)}, expected ${JSON.stringify(expected)}`,
      };
    }
  }
  return checkNegotiation(h, handshake);
}
