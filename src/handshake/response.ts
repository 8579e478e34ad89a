import { Buffer } from 'node:buffer';
import { isSafeHeaderValue, isToken } from './tokens.js';
import type { Rejection } from './rejection.js';

const REASONS: Readonly<Record<number, string>> = {
  101: 'Switching Protocols',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  421: 'Misdirected Request',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The reason phrase for a status. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 400 ? 'Redirection' : status < 500 ? 'Client Error' : 'Server Error');
}

/** Extra response headers: a record, or name/value pairs (a name may repeat, as `Set-Cookie` does). */
export type ExtraHeaders = Readonly<Record<string, string>> | readonly (readonly [string, string])[];

function headerLines(headers: ExtraHeaders | undefined, skip: ReadonlySet<string>): string {
  let out = '';
  if (headers === undefined) return out;
  const pairs = Array.isArray(headers) ? (headers as readonly (readonly [string, string])[]) : Object.entries(headers);
  for (const [name, value] of pairs) {
    // Never let a user-supplied header split the response.
    if (typeof value !== 'string' || !isToken(name) || !isSafeHeaderValue(value) || skip.has(name.toLowerCase())) continue;
    out += `${name}: ${value}\r\n`;
  }
  return out;
}

/** Headers of the 101 that wsmount writes itself (RFC 6455 §4.2.2); extra headers cannot replace them. */
export const FIXED_101: ReadonlySet<string> = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'sec-websocket-version',
  'content-length',
  'transfer-encoding',
]);
const FIXED_REJECT = new Set(['connection', 'content-length', 'content-type']);

/** The `101 Switching Protocols` response head (RFC 6455 §4.2.2). */
export function acceptResponse(
  accept: string,
  protocol: string | undefined,
  extraHeaders?: ExtraHeaders,
  extensions?: string,
): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n` +
    (protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
    // Never an empty value (old Safari fails on one: uWS.js #76).
    (extensions === undefined || extensions === '' ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
    headerLines(extraHeaders, FIXED_101) +
    '\r\n'
  );
}

function rejectionHead(r: Rejection, body: string): string {
  return (
    `HTTP/1.1 ${r.status} ${reasonPhrase(r.status)}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    headerLines(r.headers, FIXED_REJECT) +
    '\r\n'
  );
}

/**
 * The complete HTTP response for a refused handshake, as text: status line, `Connection: close`,
 * `Content-Type`, `Content-Length`, extra headers, and the reason as a plain-text body.
 */
export function rejectionResponse(r: Rejection): string {
  const body = `${r.message}\n`;
  return rejectionHead(r, body) + body;
}

/**
 * The same response as the bytes to write: the head in latin1 (header values may hold obs-text
 * bytes, RFC 9110 §5.5), the body in UTF-8 (its `Content-Length`).
 */
export function rejectionBytes(r: Rejection): Buffer {
  const body = `${r.message}\n`;
  return Buffer.concat([Buffer.from(rejectionHead(r, body), 'latin1'), Buffer.from(body, 'utf8')]);
}

/**
 * HTTP/2 headers that are connection-specific (RFC 9113 §8.2.2): never sent on a stream. Node
 * refuses them, so an extra header with one of these names is left out.
 */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'host', 'http2-settings']);

/** Response headers for an HTTP/2 stream: lower-case names, a repeated name as an array. */
export type Http2ResponseHeaders = Record<string, string | number | string[]>;

function addHeaders2(out: Http2ResponseHeaders, headers: ExtraHeaders | undefined, skip: ReadonlySet<string>): Http2ResponseHeaders {
  if (headers === undefined) return out;
  const pairs = Array.isArray(headers) ? (headers as readonly (readonly [string, string])[]) : Object.entries(headers);
  for (const [name, raw] of pairs) {
    if (typeof raw !== 'string' || !isToken(name) || !isSafeHeaderValue(raw)) continue;
    // RFC 9113 §8.2.1: no leading or trailing white space in a field value.
    const value = raw.trim();
    const lower = name.toLowerCase();
    if (skip.has(lower) || CONNECTION_SPECIFIC.has(lower)) continue;
    const prior = out[lower];
    if (prior === undefined) out[lower] = value;
    // A repeated name: Set-Cookie stays separate fields (RFC 6265 §3); any other is combined
    // into one list value (RFC 9110 §5.3), as Node refuses an array for its single-value names.
    else if (lower === 'set-cookie') out[lower] = Array.isArray(prior) ? [...prior, value] : [String(prior), value];
    else out[lower] = `${String(prior)}, ${value}`;
  }
  return out;
}

/**
 * The `:status 200` that accepts an HTTP/2 extended CONNECT (RFC 8441 §5): the subprotocol and
 * extensions as on HTTP/1.1, `sec-websocket-accept` only when the request carried a key, and no
 * `Upgrade`/`Connection` (forbidden on HTTP/2).
 */
export function acceptHeaders2(
  accept: string | undefined,
  protocol: string | undefined,
  extraHeaders?: ExtraHeaders,
  extensions?: string,
): Http2ResponseHeaders {
  const out: Http2ResponseHeaders = { ':status': 200 };
  if (accept !== undefined) out['sec-websocket-accept'] = accept;
  if (protocol !== undefined) out['sec-websocket-protocol'] = protocol;
  if (extensions !== undefined && extensions !== '') out['sec-websocket-extensions'] = extensions;
  return addHeaders2(out, extraHeaders, FIXED_101);
}

/** A refused extended CONNECT as an HTTP/2 response: its headers and the plain-text body. */
export function rejection2(r: Rejection): { headers: Http2ResponseHeaders; body: Buffer } {
  const body = Buffer.from(`${r.message}\n`, 'utf8');
  const headers: Http2ResponseHeaders = { ':status': r.status, 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length };
  return { headers: addHeaders2(headers, r.headers, FIXED_REJECT), body };
}
