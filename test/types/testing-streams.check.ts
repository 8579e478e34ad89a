/**
 * Issue 15, wsmount/testing's client at the type level (tsc runs this file:
 * `tsc -p tsconfig.test.json`; nothing executes it): `client.sendStream(source, options)`,
 * `connect(…, { streamMessages })` and `client.nextStream()`. Every `@ts-expect-error` fails for
 * the reason its comment gives.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import {
  type ClientStreamedMessage,
  type ConnectOptions,
  type SendStreamOptions,
  type StreamSource,
  type TestClient,
  type TestClientOptions,
  connect,
} from '../../src/testing/index.js';
import type { StreamedMessage } from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

declare const client: TestClient;

export async function sending(): Promise<void> {
  async function* text(): AsyncGenerator<string> {
    yield 'a';
  }
  function* bytes(): Generator<Buffer | Uint8Array | ArrayBuffer | DataView> {
    yield Buffer.from('a');
  }
  const sent: number = await client.sendStream(text());
  await client.sendStream(bytes(), { text: false, fragmentSize: 65_536, signal: AbortSignal.timeout(1000) });
  await client.sendStream(['a', Buffer.from('b')], { text: true });
  await client.sendStream(Readable.from(['a']));
  await client.sendStream(new ReadableStream<Uint8Array>());
  await client.sendStream(new Set([new Uint8Array(1)]));
  void sent;

  // @ts-expect-error a source is needed
  await client.sendStream();
  // @ts-expect-error a number is not a source
  await client.sendStream(42);
  // @ts-expect-error chunks are strings or bytes, not numbers
  await client.sendStream([1, 2, 3]);
  // @ts-expect-error nor objects
  await client.sendStream([{ data: 'a' }]);
  // @ts-expect-error fragmentSize is a number of bytes
  await client.sendStream(['a'], { fragmentSize: '64k' });
  // @ts-expect-error text is a boolean
  await client.sendStream(['a'], { text: 'yes' });
  // @ts-expect-error signal is an AbortSignal, not its controller
  await client.sendStream(['a'], { signal: new AbortController() });
  // @ts-expect-error there is no compress option: streamed messages are never compressed
  await client.sendStream(['a'], { compress: true });
  // @ts-expect-error it resolves with a number of bytes, not a status
  const status: boolean = await client.sendStream(['a']);
  void status;
}

export async function receiving(): Promise<void> {
  const streaming = await connect('ws://127.0.0.1:1/', undefined, { streamMessages: true });
  const message: ClientStreamedMessage = await streaming.nextStream({ timeout: 1000 });
  for await (const chunk of message) {
    const b: Buffer = chunk;
    // @ts-expect-error chunks are Buffers (UTF-8 bytes for text), never strings
    const s: string = chunk;
    void [b, s];
  }
  const flags: [boolean, number, number, boolean] = [message.isText, message.bytesReceived, message.queuedBytes, message.complete];
  const r: Readable = message.readable();
  const t: Promise<string> = message.text();
  const whole: Promise<Buffer> = message.bytes();
  void [flags, r, t, whole];
  // @ts-expect-error what the client reads is not writable
  message.isText = false;
  // @ts-expect-error the server's internals (push, end, abort) are not part of the client's type
  message.push(Buffer.alloc(1));
  // @ts-expect-error nextStream takes options, not a timeout number
  await streaming.nextStream(1000);
  // What nextStream() hands out at run time, the server's own StreamedMessage, has the client's shape.
  const asServer: ClientStreamedMessage = {} as StreamedMessage;
  void asServer;
}

export const options: ConnectOptions[] = [
  { streamMessages: true },
  { streamMessages: false, perMessageDeflate: true, maxPayload: 1 << 20 },
  // @ts-expect-error streamMessages is a boolean
  { streamMessages: 'yes' },
  // @ts-expect-error streamMessages is an option of the client, not a number of messages
  { streamMessages: 1 },
];

export const shapes: [
  Equal<Parameters<TestClient['sendStream']>[0], StreamSource>,
  Equal<Parameters<TestClient['sendStream']>[1], SendStreamOptions | undefined>,
  Equal<ReturnType<TestClient['sendStream']>, Promise<number>>,
  Equal<ReturnType<TestClient['nextStream']>, Promise<ClientStreamedMessage>>,
  Equal<TestClientOptions['streamMessages'], boolean | undefined>,
  ClientStreamedMessage extends AsyncIterable<Buffer> ? true : false,
] = [true, true, true, true, true, true];
