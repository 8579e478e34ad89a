/**
 * `sendText(bytes)`: text sent as its UTF-8 bytes, as they are (the raw-text echo), and the
 * check that they are UTF-8 (RFC 6455 §8.1). Also large text both ways over a real socket:
 * frames that span socket reads, and long strings encoded by the ASCII-first path.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { textBytes } from '../../src/protocol/utf8.js';
import { useFixture } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

async function textFrame(client: Awaited<ReturnType<typeof connect>>): Promise<{ opcode: number; payload: Buffer }> {
  return client.nextFrame(5000);
}

describe('sendText(bytes)', () => {
  test('RFC 6455 §5.6: an onRawText echo sends the bytes back as one text frame, byte for byte (small, 64 KiB, 1 MiB)', async () => {
    class RawEcho extends Behavior {
      override onRawText(bytes: Buffer): void {
        this.sendText(bytes);
      }
    }
    const { port } = await mount({ '/raw': RawEcho }, { maxPayload: 4 << 20 });
    const client = await connect(port, '/raw');
    for (const text of ['héllo 👋', 'x'.repeat(65536), `${'日本語'.repeat(100_000)}€`, 'a'.repeat(1 << 20)]) {
      client.send(0x1, text);
      const frame = await textFrame(client);
      expect(frame.opcode).toBe(0x1);
      expect(frame.payload.equals(Buffer.from(text))).toBe(true);
    }
  });

  test('RFC 6455 §5.6: an onText echo of long ASCII and mixed text sends the same text back (the ASCII-first encoder)', async () => {
    class Echo extends Behavior {
      override onText(text: string): void {
        this.sendText(text);
      }
    }
    const { port } = await mount({ '/echo': Echo }, { maxPayload: 4 << 20 });
    const client = await connect(port, '/echo');
    for (const text of ['a'.repeat(70_000), `${'b'.repeat(20_000)}é${'c'.repeat(20_000)}😀`, 'é'.repeat(300_000), 'z'.repeat(1 << 20)]) {
      client.send(0x1, text);
      const frame = await textFrame(client);
      expect(frame.opcode).toBe(0x1);
      expect(frame.payload.toString('utf8')).toBe(text);
    }
  });

  test('any binary view is accepted: a Uint8Array, a DataView, an ArrayBuffer', async () => {
    const sent: string[] = [];
    class Views extends Behavior {
      override onOpen(): void {
        const bytes = Buffer.from('xxabcxx');
        sent.push(this.sendText(new Uint8Array(bytes.buffer, bytes.byteOffset + 2, 3)));
        sent.push(this.sendText(new DataView(Uint8Array.from([0x64, 0x65]).buffer)));
        sent.push(this.sendText(Uint8Array.from([0xc3, 0xa9]).buffer));
      }
    }
    const { port } = await mount({ '/v': Views });
    const client = await connect(port, '/v');
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const frame = await textFrame(client);
      expect(frame.opcode).toBe(0x1);
      got.push(frame.payload.toString('utf8'));
    }
    expect(got).toEqual(['abc', 'de', 'é']);
    expect(sent).toEqual(['sent', 'sent', 'sent']);
  });

  test('RFC 6455 §8.1: bytes that are not valid UTF-8 throw a TypeError and nothing is sent', async () => {
    const errors: unknown[] = [];
    class Bad extends Behavior {
      override onOpen(): void {
        for (const bad of [Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82])]) {
          try {
            this.sendText(bad);
          } catch (error) {
            errors.push(error);
          }
        }
        this.sendText('after');
      }
    }
    const { port } = await mount({ '/bad': Bad });
    const client = await connect(port, '/bad');
    const frame = await textFrame(client);
    expect(frame.payload.toString()).toBe('after');
    await waitFor(() => errors.length === 3, 2000, 'three errors');
    for (const e of errors) expect(e).toBeInstanceOf(TypeError);
  });
});

describe('textBytes', () => {
  test('RFC 6455 §8.1: returns a view of valid UTF-8 without copying, throws on invalid UTF-8 of any length', () => {
    const b = Buffer.from('abc');
    expect(textBytes(b)).toBe(b);
    const big = Buffer.alloc(100_000, 0x61);
    expect(textBytes(big)).toBe(big);
    big[99_999] = 0x80;
    expect(() => textBytes(big)).toThrow(TypeError);
    expect(() => textBytes(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toThrow(TypeError);
    expect(textBytes(new Uint8Array(0)).length).toBe(0);
  });
});
