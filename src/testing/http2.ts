/**
 * `connect(…, { http2 })`: a test WebSocket as an RFC 8441 extended CONNECT stream over
 * `node:http2`, in its own HTTP/2 connection or in one the caller opened. After the `200` the
 * stream is the byte stream the TestClient runs over, exactly as a TCP socket after a `101`.
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { abort as abortStream } from '../connection/write.js';
import { type Http2ClientHandshake, checkHttp2HandshakeResponse } from '../handshake/client.js';
import { TestClient } from './client.js';
import type { ConnectOptions } from './connect.js';
import { ClientDeflate, type ResolvedTestDeflate } from './deflate.js';
import { HandshakeError, MAX_BODY, refusalError } from './errors.js';
import { tlsConnectOptions, tlsFailure } from './tls.js';
import type { TestTransport } from './types.js';

const DEFAULT_TIMEOUT = 5000;

/** RFC 9113 §7 error codes by number, for messages. */
const ERROR_CODES: readonly string[] = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

function errorCodeName(code: number): string {
  return ERROR_CODES[code] ?? `error code ${code}`;
}

/** What {@link connectHttp2} needs, checked and built by `connect()`. */
export interface Http2Plan {
  /** The request headers and what checking the response needs. */
  handshake: Http2ClientHandshake;
  /** `https:` or `http:` origin of the HTTP/2 connection to open (when `session` is `null`). */
  origin: string;
  /** The host name for TLS (SNI and certificate checks). */
  hostname: string;
  /** The target's `host:port`, for messages. */
  where: string;
  /** Over TLS (`wss://`). */
  secure: boolean;
  /** A session the caller opened and keeps, or `null`: open one for this WebSocket and close it with it. */
  session: ClientHttp2Session | null;
}

// ---- the server's SETTINGS ---------------------------------------------------------------------

/** Per session: resolves once the server's SETTINGS are known (or the session is gone). */
const settingsKnown = new WeakMap<ClientHttp2Session, Promise<void>>();

/**
 * Resolves once `session.remoteSettings` holds what the server sent (RFC 8441 §3: a client
 * waits for SETTINGS_ENABLE_CONNECT_PROTOCOL before sending `:protocol`), or the session closed.
 * A session opened by someone else may have received its SETTINGS long ago (its
 * `'remoteSettings'` will not fire again): a PING's ACK proves it, since the server's SETTINGS
 * is the first frame it sends (RFC 9113 §3.4). One wait per session, however many streams ask.
 */
function remoteSettingsKnown(session: ClientHttp2Session): Promise<void> {
  let known = settingsKnown.get(session);
  if (known === undefined) {
    known = new Promise<void>((resolve) => {
      const done = (): void => {
        session.removeListener('remoteSettings', done);
        session.removeListener('close', done);
        resolve();
      };
      session.once('remoteSettings', done);
      session.once('close', done);
      try {
        session.ping((error) => {
          if (error === null) done();
        });
      } catch {
        // a closing session: 'close' follows
      }
    });
    settingsKnown.set(session, known);
  }
  return known;
}

// ---- the handshake -----------------------------------------------------------------------------

/** The response's regular headers by lower-case name, pseudo-headers left out. */
function regularHeaders(headers: IncomingHttpHeaders & IncomingHttpStatusHeader): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const name of Object.keys(headers)) {
    if (name.startsWith(':')) continue;
    const value: unknown = headers[name];
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value)) out[name] = value.map(String);
    else if (typeof value === 'number') out[name] = String(value);
  }
  return out;
}

/** The name `client.transport` gives this session: its ALPN protocol (`h2`, or `h2c` in cleartext). */
function transportOf(session: ClientHttp2Session): TestTransport {
  const alpn = session.alpnProtocol;
  if (alpn === 'h2' || alpn === 'h2c') return alpn;
  return session.encrypted === true ? 'h2' : 'h2c';
}

/**
 * Why a session this client opened died before the handshake completed, as a HandshakeError
 * that says what to do; network errors (ECONNREFUSED…) pass through unchanged.
 */
function sessionFailure(error: Error | undefined, plan: Http2Plan, connected: boolean, gotSettings: boolean): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  const options = error === undefined ? undefined : { cause: error };
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    return new HandshakeError(
      'NO_HTTP2',
      `the server at ${plan.where} does not speak HTTP/2 over TLS (it offered no ALPN "h2"): serve it with http2.createSecureServer(), or connect without http2`,
      0,
      {},
      '',
      options,
    );
  }
  if (plan.secure && !connected) {
    const mapped = tlsFailure(error ?? new HandshakeError('NO_RESPONSE', 'closed'), plan.where, false);
    if (mapped !== error) return mapped;
  }
  if (!gotSettings && (error === undefined || code === 'ERR_HTTP2_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' || code === 'ECONNRESET')) {
    return new HandshakeError(
      'NO_HTTP2',
      `the connection to ${plan.where} ${error === undefined ? 'closed' : `failed (${code}: ${error.message})`} before the server's HTTP/2 SETTINGS: is it serving ${plan.secure ? 'HTTP/2' : 'cleartext HTTP/2 (h2c, http2.createServer())'} on that port?`,
      0,
      {},
      '',
      options,
    );
  }
  return error ?? new HandshakeError('NO_RESPONSE', `the HTTP/2 connection to ${plan.where} closed before the handshake response`);
}

/**
 * Opens the WebSocket as an extended CONNECT (RFC 8441 §4) and resolves with its TestClient once
 * the server answered `200` and the response passed the client's checks.
 */
export function connectHttp2(plan: Http2Plan, options: ConnectOptions, deflate: ResolvedTestDeflate | null): Promise<TestClient> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  const { handshake } = plan;
  return new Promise<TestClient>((resolve, reject) => {
    const own = plan.session === null;
    let session: ClientHttp2Session;
    if (plan.session !== null) {
      session = plan.session;
      if (session.closed || session.destroyed) {
        reject(new Error(`wsmount/testing: the HTTP/2 session given as \`http2\` is ${session.destroyed ? 'destroyed' : 'closing'}`));
        return;
      }
    } else {
      session = plan.secure ? http2.connect(plan.origin, tlsConnectOptions(plan.hostname, options)) : http2.connect(plan.origin);
    }
    let settled = false;
    let stream: ClientHttp2Stream | null = null;
    // Only for a session this client opened: its errors are ours to report (and to swallow later).
    let sessionError: Error | undefined;
    let connected = false;
    let gotSettings = false;
    if (own) {
      session.on('error', (error: Error) => {
        sessionError ??= error;
      });
      session.once('connect', () => {
        connected = true;
      });
      session.once('remoteSettings', () => {
        gotSettings = true;
      });
    }

    const fail = (error: unknown, graceful = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const s = stream;
      if (s !== null) {
        s.removeAllListeners('response');
        s.on('error', () => {});
        // After a complete refusal, end our half too: the stream closes with no RST_STREAM.
        if (!s.closed) {
          if (graceful && s.writable) s.end();
          else abortStream(s);
        }
      }
      if (own) {
        if (graceful) session.close();
        else session.destroy();
      }
      reject(error);
    };
    const timer = setTimeout(() => {
      if (finishRefusal !== null) finishRefusal(false);
      else if (stream === null) fail(new HandshakeError('TIMEOUT', `no HTTP/2 SETTINGS from ${plan.where} within ${timeout} ms`));
      else fail(new HandshakeError('TIMEOUT', `no handshake response within ${timeout} ms`));
    }, timeout);
    /** Set while the body of a refusal is being read. */
    let finishRefusal: ((complete: boolean) => void) | null = null;

    const open = (): void => {
      if (settled) return;
      if (session.destroyed || session.closed) {
        fail(own ? sessionFailure(sessionError, plan, connected, gotSettings) : new Error('wsmount/testing: the HTTP/2 session given as `http2` closed before the handshake'));
        return;
      }
      if (session.remoteSettings.enableConnectProtocol !== true) {
        fail(
          new HandshakeError(
            'NO_EXTENDED_CONNECT',
            `the HTTP/2 server at ${plan.where} has no RFC 8441 support: its SETTINGS do not enable the extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL), so it serves no WebSocket over HTTP/2; attach wsmount to it (sockets.attach(server)), or connect over HTTP/1.1`,
          ),
          true,
        );
        return;
      }
      let s: ClientHttp2Stream;
      try {
        s = session.request(handshake.headers, { endStream: false });
      } catch (error) {
        fail(error);
        return;
      }
      stream = s;
      let streamError: Error | undefined;
      const onError = (error: Error): void => {
        streamError ??= error;
      };
      const onClose = (): void => {
        if (finishRefusal !== null) {
          finishRefusal(true);
          return;
        }
        if (own && (sessionError !== undefined || session.destroyed)) {
          fail(sessionFailure(sessionError ?? streamError, plan, connected, gotSettings));
          return;
        }
        const rst = s.rstCode ?? 0;
        if (rst !== 0) {
          const hint = rst === http2.constants.NGHTTP2_PROTOCOL_ERROR ? ' (a server without RFC 8441 support refuses `:protocol` so)' : '';
          fail(new HandshakeError('STREAM_RESET', `the server reset the stream (RST_STREAM ${errorCodeName(rst)}) before answering the extended CONNECT${hint}`, 0, {}, '', streamError === undefined ? undefined : { cause: streamError }));
          return;
        }
        fail(streamError ?? new HandshakeError('NO_RESPONSE', 'the stream closed before the handshake response'));
      };
      s.on('error', onError);
      s.on('close', onClose);
      s.once('response', (headers) => {
        const status = Number(headers[':status']);
        const regular = regularHeaders(headers);
        if (status !== 200) {
          // A refusal: read its body (until END_STREAM, at most MAX_BODY bytes) for the error.
          const chunks: Buffer[] = [];
          let size = 0;
          finishRefusal = (complete: boolean): void => {
            finishRefusal = null;
            fail(refusalError(status, STATUS_CODES[status] ?? '', regular, Buffer.concat(chunks)), complete);
          };
          s.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            size += chunk.length;
            if (size >= MAX_BODY) finishRefusal?.(false);
          });
          s.on('end', () => finishRefusal?.(true));
          return;
        }
        const verdict = checkHttp2HandshakeResponse(status, regular, handshake);
        if (!verdict.ok) {
          fail(new HandshakeError(verdict.failure, `WebSocket handshake failed: ${verdict.message}`, status, regular));
          return;
        }
        settled = true;
        clearTimeout(timer);
        s.removeListener('error', onError);
        s.removeListener('close', onClose);
        if (own) s.once('close', () => session.close());
        const codec = verdict.perMessageDeflate === null || deflate === null ? null : new ClientDeflate(verdict.perMessageDeflate, deflate);
        // A bare RST_STREAM CANCEL, as a browser sends (stream.close() would send END_STREAM first).
        const abort = (): void => abortStream(s);
        resolve(
          new TestClient(s, Buffer.alloc(0), verdict.protocol, { status, headers: regular }, options, { extensions: verdict.extensions, deflate: codec }, {
            name: transportOf(session),
            abort,
            stream: s,
          }),
        );
      });
    };

    if (!own && session.remoteSettings.enableConnectProtocol === true && !session.connecting) open();
    else void remoteSettingsKnown(session).then(open);
  });
}
