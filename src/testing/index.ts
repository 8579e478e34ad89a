/**
 * `wsmount/testing`: test your WebSocket routes with any test runner (vitest, Jest, `node:test`,
 * or a plain script). Nothing here imports a test framework.
 *
 * ```ts
 * import { connect, listen, HandshakeError } from 'wsmount/testing';
 *
 * const client = await connect(sockets, '/reverse');   // in memory: no port
 * client.sendText('abc');
 * assert.equal(await client.nextMessage(), 'c.b.a');
 * await client.close();
 * ```
 *
 * @module
 */
export { connect, type ConnectOptions, type ConnectTarget } from './connect.js';
export { listen, type Http2ListenOptions, type Listening, type ListeningServer, type ListenOptions } from './listen.js';
export { TestClient } from './client.js';
export type { AcceptedPerMessageDeflate, TestPerMessageDeflateOptions, TestWindowBits } from './deflate.js';
export type {
  ClientStreamedMessage,
  CloseInfo,
  HandshakeResponse,
  MessageInfo,
  RawFrameSpec,
  TestBinary,
  TestClientOptions,
  TestClientState,
  TestMessage,
  TestTransport,
} from './types.js';
export { HandshakeError, TestClientError, type HandshakeErrorCode, type TestClientErrorCode } from './errors.js';
export type { ClientHeaderValue } from '../handshake/client.js';
export type { ReadableStreamLike, SendStreamOptions, StreamChunk, StreamSource } from '../connection/stream-out.js';
