import { Buffer } from 'node:buffer';
import type { ClientHandshakeFailure } from '../handshake/client.js';

/**
 * Why {@link connect} failed to open a WebSocket: the handshake failures of the client's checks
 * (RFC 6455 §4.1), plus `NO_RESPONSE` (the connection closed before a complete response),
 * `MALFORMED_RESPONSE` (not HTTP) and `TIMEOUT`. Over `wss://`, before any HTTP:
 * `TLS_CERTIFICATE` (the server's certificate is not trusted: self-signed, unknown CA, expired…;
 * pass `ca`, or `rejectUnauthorized: false` for a throwaway test certificate), `TLS_HOSTNAME`
 * (the certificate is valid but not for this host; pass `servername` or connect by the name it
 * was issued for) and `TLS_FAILED` (the TLS handshake itself failed, e.g. the server does not
 * speak TLS on that port). The TLS error is the `cause`.
 *
 * Over HTTP/2 (`connect(…, { http2 })`, RFC 8441): `NO_HTTP2` (the server does not speak HTTP/2:
 * no ALPN `h2` over TLS, or a cleartext server that is not an h2c one), `NO_EXTENDED_CONNECT`
 * (it speaks HTTP/2 but its SETTINGS do not enable the extended CONNECT, RFC 8441 §3: nothing
 * serves WebSockets on it, e.g. no wsmount attached) and `STREAM_RESET` (the server reset the
 * stream, RST_STREAM, before any response; the message names the HTTP/2 error code).
 */
export type HandshakeErrorCode =
  | ClientHandshakeFailure
  | 'NO_RESPONSE'
  | 'MALFORMED_RESPONSE'
  | 'TIMEOUT'
  | 'TLS_CERTIFICATE'
  | 'TLS_HOSTNAME'
  | 'TLS_FAILED'
  | 'NO_HTTP2'
  | 'NO_EXTENDED_CONNECT'
  | 'STREAM_RESET';

/**
 * `connect()` rejects with this when the server does not open a WebSocket. A refused handshake
 * (`code === 'REJECTED'`) carries the response: assert the status your `verify()` chose.
 *
 * ```ts
 * const error = await connect(sockets, '/admin').catch((e: unknown) => e);
 * expect(error).toBeInstanceOf(HandshakeError);
 * expect((error as HandshakeError).status).toBe(401);
 * ```
 */
export class HandshakeError extends Error {
  /** Which check failed. `'REJECTED'`: the server answered with a status other than 101 (200 over HTTP/2). */
  readonly code: HandshakeErrorCode;
  /** The HTTP status of the response, or 0 when no complete response arrived. */
  readonly status: number;
  /** Response headers by lower-case name (a repeated header is an array); empty without a response. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  /**
   * The response body as UTF-8, without the one line break (`\n` or `\r\n`) that ends it, or
   * `''` if there is none. From a wsmount server it is exactly the reason given to the rejection:
   * `'log in first'` for `new HandshakeRejection(401, 'log in first')`. At most 64 KiB are kept.
   */
  readonly body: string;

  /** Created by `connect()`, not by your code. */
  constructor(
    code: HandshakeErrorCode,
    message: string,
    status = 0,
    headers: Readonly<Record<string, string | string[]>> = {},
    body = '',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HandshakeError';
    this.code = code;
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
}

/** @internal Largest rejection body kept for `HandshakeError.body`. */
export const MAX_BODY: number = 64 * 1024;

/**
 * A refusal's body without the one line break that ends it: wsmount writes its reason as one
 * line (`'log in first\n'`), and a test compares it with the message it threw.
 */
function withoutFinalLineBreak(body: string): string {
  if (body.endsWith('\r\n')) return body.slice(0, -2);
  if (body.endsWith('\n')) return body.slice(0, -1);
  return body;
}

/**
 * @internal The `'REJECTED'` error for a refusal (a status other than 101, or 200 over HTTP/2)
 * with its body, of which at most {@link MAX_BODY} bytes are kept.
 */
export function refusalError(status: number, statusText: string, headers: Readonly<Record<string, string | string[]>>, bodyBytes: Uint8Array): HandshakeError {
  const body = withoutFinalLineBreak(Buffer.from(bodyBytes.buffer, bodyBytes.byteOffset, Math.min(bodyBytes.length, MAX_BODY)).toString('utf8'));
  const summary = body.trim() === '' ? '' : `: ${body.trim().slice(0, 200)}`;
  return new HandshakeError('REJECTED', `the server refused the WebSocket with ${status} ${statusText}`.trimEnd() + summary, status, headers, body);
}

/** Why a `nextMessage()`, `ping()` or iteration ended without its answer. */
export type TestClientErrorCode = 'TIMEOUT' | 'CLOSED';

/**
 * `nextMessage()` and `ping()` reject with this: on their timeout (`'TIMEOUT'`), or when the
 * connection closed first (`'CLOSED'`, with the close code and reason).
 */
export class TestClientError extends Error {
  /** `'TIMEOUT'` or `'CLOSED'`. */
  readonly code: TestClientErrorCode;
  /** For `'CLOSED'`: the close code (1006 when the connection dropped). */
  readonly closeCode: number | undefined;
  /** For `'CLOSED'`: the close reason. */
  readonly closeReason: string | undefined;

  /** Created by the test client, not by your code. */
  constructor(code: TestClientErrorCode, message: string, closeCode?: number, closeReason?: string) {
    super(message);
    this.name = 'TestClientError';
    this.code = code;
    this.closeCode = closeCode;
    this.closeReason = closeReason;
  }
}
