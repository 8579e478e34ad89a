/**
 * Stable codes for every reason a handshake is refused, beside its HTTP status.
 */
export type RejectionCode =
  | 'METHOD_NOT_ALLOWED'
  | 'BAD_HTTP_VERSION'
  | 'MISSING_HOST'
  | 'BAD_UPGRADE'
  | 'BAD_CONNECTION'
  | 'BAD_VERSION'
  | 'BAD_KEY'
  | 'ORIGIN_FORBIDDEN'
  | 'NO_PROTOCOL'
  | 'BAD_PROTOCOL'
  | 'NOT_FOUND'
  | 'SHUTTING_DOWN'
  | 'TOO_MANY_CONNECTIONS'
  | 'VERIFY_TIMEOUT'
  | 'VERIFY_REJECTED'
  | 'VERIFY_FAILED';

/**
 * Throw this from a behavior's `verify()` to refuse the upgrade with an HTTP status
 * (401, 403, 429…). The client gets a complete HTTP response and no WebSocket is opened.
 *
 * ```ts
 * async verify(req) {
 *   if (!req.headers.authorization) throw new HandshakeRejection(401, 'log in first', { 'WWW-Authenticate': 'Bearer' });
 * }
 * ```
 */
export class HandshakeRejection extends Error {
  /** The HTTP status (300–599). */
  readonly status: number;
  /** Extra response headers. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message?: string, headers?: Readonly<Record<string, string>>) {
    super(message ?? `handshake rejected with ${status}`);
    if (!Number.isInteger(status) || status < 300 || status > 599) {
      throw new RangeError(`a rejection status is 300–599, not ${status}`);
    }
    this.name = 'HandshakeRejection';
    this.status = status;
    this.headers = headers ?? {};
  }
}

/** A refused handshake, as data: what to answer and why. */
export interface Rejection {
  status: number;
  code: RejectionCode;
  /** Human-readable reason: the response body and the log line. */
  message: string;
  /** Extra headers (`Allow`, `Sec-WebSocket-Version`, `WWW-Authenticate`…). */
  headers: Readonly<Record<string, string>>;
}

/** Builds a {@link Rejection}. */
export function rejection(
  status: number,
  code: RejectionCode,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): Rejection {
  return { status, code, message, headers };
}
