/**
 * Type-level tests for messages as streams (issue 15): `onStream` overrides (async or not),
 * what `sendStream` takes (iterables of text or bytes, Node `Readable`, web `ReadableStream`) and
 * refuses, and the shape of `StreamedMessage`. tsc runs this file; each expected error was checked
 * to fail for the reason its comment gives.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import { Behavior, type SendStreamOptions, type StreamSource, type StreamedMessage } from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export class AsyncReader extends Behavior {
  override async onStream(message: StreamedMessage): Promise<void> {
    for await (const chunk of message) {
      const b: Buffer = chunk;
      void b;
    }
  }
}

export class SyncReader extends Behavior {
  override onStream(message: StreamedMessage): void {
    const r: Readable = message.readable();
    const t: boolean = message.isText;
    const n: number = message.bytesReceived;
    void [r, t, n];
  }
}

export class Collector extends Behavior {
  override async onStream(message: StreamedMessage): Promise<void> {
    const s: string = await message.text();
    const b: Buffer = await message.bytes();
    void [s, b];
  }
}

export class WrongHook extends Behavior {
  // @ts-expect-error onStream takes a StreamedMessage, not a string
  override onStream(message: string): void {
    void message;
  }
}

export class Sender extends Behavior {
  override async onOpen(): Promise<void> {
    async function* text(): AsyncGenerator<string> {
      yield 'a';
    }
    function* bytes(): Generator<Uint8Array> {
      yield new Uint8Array(1);
    }
    const sent: number = await this.sendStream(text());
    await this.sendStream(bytes(), { fragmentSize: 1 << 16 });
    await this.sendStream([Buffer.from('x'), new ArrayBuffer(2), 'y']);
    await this.sendStream(Readable.from([Buffer.alloc(1)]), { text: false, signal: AbortSignal.timeout(1000) });
    await this.sendStream(new ReadableStream<Uint8Array>({ start: (c) => c.close() }));
    // @ts-expect-error a source yields text or bytes, not numbers
    await this.sendStream([1, 2, 3]);
    // @ts-expect-error a number is not a source of chunks
    await this.sendStream(42);
    // @ts-expect-error fragmentSize is a number of bytes
    await this.sendStream(text(), { fragmentSize: '64k' });
    void sent;
  }
}

export class Statics extends Behavior {
  static override maxStreamBytes = 4 * 2 ** 30;
}

export const sourceTakesReadable: Readable extends StreamSource ? true : false = true;
export const optionKeys: Equal<keyof SendStreamOptions, 'text' | 'fragmentSize' | 'signal'> = true;
