/**
 * Type-level checks of the wss:// options of wsmount/testing (tsc runs this file:
 * `tsc -p tsconfig.test.json`; vitest does not). Every `@ts-expect-error` fails for the reason
 * its comment gives.
 */
import type { Buffer } from 'node:buffer';
import { Behavior } from '../../src/index.js';
import { type ConnectOptions, type HandshakeErrorCode, type ListenOptions, connect, listen } from '../../src/testing/index.js';

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

declare const key: Buffer;
declare const cert: Buffer;
declare const pem: string;

export async function wssUsage(): Promise<void> {
  await using server = await listen({ '/echo': Behavior }, { tls: { key, cert } });
  await connect(server, '/echo', { ca: cert });
  await connect(server.url('/echo'), undefined, { ca: [cert, pem], servername: 'localhost' });
  const frozen: readonly Buffer[] = [cert];
  await connect('wss://localhost:8443/echo', undefined, { ca: frozen, rejectUnauthorized: false });
}

export const options: ConnectOptions[] = [
  { ca: pem },
  // @ts-expect-error ca is PEM text or bytes, not a number
  { ca: 42 },
  // @ts-expect-error rejectUnauthorized is a boolean
  { rejectUnauthorized: 'no' },
  // @ts-expect-error servername is a string
  { servername: ['localhost'] },
];

export const listenOptions: ListenOptions[] = [
  { tls: { key: pem, cert: pem } },
  // @ts-expect-error tls takes https server options (key and cert), not a boolean
  { tls: true },
];

export const codes: [
  Equal<Extract<HandshakeErrorCode, `TLS_${string}`>, 'TLS_CERTIFICATE' | 'TLS_HOSTNAME' | 'TLS_FAILED'>,
  Equal<ConnectOptions['rejectUnauthorized'], boolean | undefined>,
] = [true, true];
