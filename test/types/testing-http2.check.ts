/**
 * Issue 14, wsmount/testing over HTTP/2, at the type level (tsc runs this file:
 * `tsc -p tsconfig.test.json`; nothing executes it). Every `@ts-expect-error` fails for the reason
 * its comment gives.
 */
import type { Buffer } from 'node:buffer';
import http2 from 'node:http2';
import { Behavior } from '../../src/index.js';
import {
  type ConnectOptions,
  type HandshakeErrorCode,
  type Http2ListenOptions,
  type Listening,
  type TestTransport,
  connect,
  listen,
} from '../../src/testing/index.js';

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

declare const key: Buffer;
declare const cert: Buffer;

export async function http2Usage(): Promise<void> {
  await using server = await listen({ '/echo': Behavior }, { http2: true });
  const h2server: http2.Http2Server | http2.Http2SecureServer = server.server;
  void h2server;
  await using secure = await listen({ '/echo': Behavior }, { http2: true, tls: { key, cert } });
  const own = await connect(server, '/echo', { http2: true });
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  const shared = await connect(server, '/echo', { http2: session, protocols: ['chat'], perMessageDeflate: true });
  await connect(secure, '/echo', { http2: true, ca: cert, servername: 'localhost' });
  const transport: 'http/1.1' | 'h2' | 'h2c' = own.transport;
  const stream: http2.ClientHttp2Stream | undefined = shared.http2Stream;
  void transport;
  void stream?.rstCode;
  // Without http2 the server is the HTTP/1.1 one, as before.
  await using plain = await listen({ '/echo': Behavior });
  plain.server.closeAllConnections();
}

export const options: ConnectOptions[] = [
  { http2: true },
  { http2: false },
  { http2: http2.connect('http://127.0.0.1:1') },
  // @ts-expect-error http2 is a boolean or a ClientHttp2Session, not a string
  { http2: 'yes' },
  // @ts-expect-error nor a number
  { http2: 1 },
];

export const listenOptions: Http2ListenOptions[] = [
  { http2: true, tls: { key, cert } },
  { http2: true, server: http2.createServer() },
  // @ts-expect-error an HTTP/2 listen() takes an HTTP/2 server, not an http one
  { http2: true, server: {} as import('node:http').Server },
];

export async function listenMisuse(): Promise<void> {
  // @ts-expect-error http2 is true or false
  await listen({ '/echo': Behavior }, { http2: 'yes' });
}

export const shapes: [
  Equal<TestTransport, 'http/1.1' | 'h2' | 'h2c'>,
  Extract<HandshakeErrorCode, 'NO_EXTENDED_CONNECT' | 'NO_HTTP2' | 'STREAM_RESET'> extends never ? false : true,
  Equal<Awaited<ReturnType<typeof listen<Record<string, typeof Behavior>>>> extends Listening<infer S> ? S : never, import('node:http').Server | import('node:https').Server>,
] = [true, true, true];
