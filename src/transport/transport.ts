/**
 * What differs between the ways a WebSocket arrives (an HTTP/1.1 'upgrade', an HTTP/2 extended
 * CONNECT stream): how its byte stream is guarded before a connection takes it, whether someone
 * else has answered it, and how an acceptance or a refusal is written. Everything else (routing,
 * the handshake decision, limits, verify(), the connection) is the same for both.
 */
import type { Duplex } from 'node:stream';
import type { Acceptance } from '../handshake/decide.js';
import type { Rejection } from '../handshake/rejection.js';
import type { ExtraHeaders } from '../handshake/response.js';

/** One way a WebSocket arrives. Stateless: one object per transport, shared by every upgrade. @internal */
export interface Transport {
  /** HTTP/2 (RFC 8441): the handshake is an extended CONNECT, decided by its own rules. */
  readonly http2: boolean;
  /** Marks the byte stream as seen, and swallows its errors until a connection takes it. */
  guard(socket: Duplex): void;
  /** Whether anyone has answered, taken or closed it (an unmatched upgrade left for other listeners). */
  handled(socket: Duplex): boolean;
  /** Whether a listener that is not wsmount's may still take an unmatched upgrade. */
  othersMayTake(socket: Duplex): boolean;
  /**
   * Whether another listener ended it without answering (socket.io's destroyUpgrade): a
   * configuration problem worth a log line, not a 404.
   */
  endedUnanswered(socket: Duplex): boolean;
  /**
   * During an async verify(), the peer's end arrived after our side had already ended: over
   * HTTP/1.1 another 'upgrade' listener ended the socket (socket.io's destroyUpgrade). Never
   * over HTTP/2, where a reset ends both sides at once and an app's answer shows as
   * {@link Transport.answeredByOther}.
   */
  endedByOther(socket: Duplex): boolean;
  /**
   * Whether another listener has answered it although wsmount had claimed it (an HTTP/2 app's
   * `'connect'` listener during an async verify()): it is then left alone.
   */
  answeredByOther(socket: Duplex): boolean;
  /** Writes the acceptance (a 101, or an HTTP/2 `:status 200`); the socket is corked. */
  accept(socket: Duplex, decision: Acceptance, extraHeaders: ExtraHeaders | undefined): void;
  /** Writes a complete refusal, then closes the byte stream (bounded by `timeout` ms). */
  reject(socket: Duplex, r: Rejection, timeout: number): void;
}
