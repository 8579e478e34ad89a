/**
 * TLS for `connect()` (`wss://`, and HTTP/2 over TLS): the certificate options, and the TLS
 * failures before any HTTP as a HandshakeError that says what to do.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectOptions } from './connect.js';
import { HandshakeError, type HandshakeErrorCode } from './errors.js';

/** The TLS options of {@link ConnectOptions}. */
export type TlsOptions = Pick<ConnectOptions, 'ca' | 'rejectUnauthorized' | 'servername'>;

/** Whether any TLS option (`ca`, `rejectUnauthorized`, `servername`) was given. */
export function hasTlsOptions(options: TlsOptions): boolean {
  return options.ca !== undefined || options.rejectUnauthorized !== undefined || options.servername !== undefined;
}

/**
 * The certificate checks of `connect()`'s TLS options, for `tls.connect()` and `http2.connect()`
 * alike: Node's default CAs unless `ca` is given, verification on unless `rejectUnauthorized` is
 * false, and SNI with the host's name (never an IP address, RFC 6066 §3) unless `servername` says.
 */
export function tlsConnectOptions(host: string, options: TlsOptions): tls.ConnectionOptions {
  const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: options.rejectUnauthorized ?? true };
  const { ca, servername } = options;
  if (ca !== undefined) tlsOptions.ca = typeof ca === 'string' || Buffer.isBuffer(ca) ? ca : [...(ca as ReadonlyArray<string | Buffer>)];
  const name = servername ?? (net.isIP(host) === 0 ? host : undefined);
  if (name !== undefined) tlsOptions.servername = name;
  return tlsOptions;
}

/** A TLS connection to `host`:`port`, verified as {@link tlsConnectOptions} says. */
export function tlsSocket(host: string, port: number, options: TlsOptions): tls.TLSSocket {
  return tls.connect({ ...tlsConnectOptions(host, options), host, port });
}

/**
 * The TLS failures before any HTTP, as a HandshakeError that says what to do. Network errors
 * (ECONNREFUSED, ECONNRESET…) and every other error pass through unchanged.
 */
export function tlsFailure(error: unknown, target: string, secured: boolean): unknown {
  if (secured) return error;
  if (error instanceof HandshakeError) {
    if (error.code !== 'NO_RESPONSE') return error;
    return new HandshakeError('TLS_FAILED', `the connection to ${target} closed during the TLS handshake: is the server serving TLS (https) on that port?`);
  }
  if (!(error instanceof Error)) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const detail = `${code === '' ? '' : `${code}: `}${error.message}`;
  const fail = (failure: HandshakeErrorCode, message: string): HandshakeError => new HandshakeError(failure, message, 0, {}, '', { cause: error });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return fail(
      'TLS_HOSTNAME',
      `the server's TLS certificate is not valid for ${target} (${detail}): connect by a name the certificate lists, or pass that name as \`servername\``,
    );
  }
  // OpenSSL's errors in the TLS handshake itself carry `library` (ERR_SSL_…, EPROTO).
  if ('library' in error || code === 'EPROTO' || code.startsWith('ERR_SSL_')) {
    return fail('TLS_FAILED', `the TLS handshake with ${target} failed (${detail}): is the server serving TLS (https) on that port?`);
  }
  // Certificate verification errors carry an X.509 code only (DEPTH_ZERO_SELF_SIGNED_CERT,
  // CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE…); system errors have a `syscall`.
  if (!('syscall' in error) && /^[A-Z][A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_')) {
    return fail(
      'TLS_CERTIFICATE',
      `the server's TLS certificate is not trusted (${detail}): pass the certificate or its CA as \`ca\` (PEM), or \`rejectUnauthorized: false\` for a self-signed test certificate`,
    );
  }
  return error;
}
