/**
 * Behavior actions: send/sendText/sendBinary with every binary input kind, ping, close argument
 * checks (RFC 6455 §5.5, §7.4), and what sending returns before, during and after a close.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, type SendStatus } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { type RawClient, closePayload } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { serve, connect } = useFixture();

let made: Behavior[] = [];
const closes: number[] = [];

class Held extends Behavior {
  override onOpen(): void {
    made.push(this);
  }
  override onClose(code: number): void {
    closes.push(code);
  }
}

async function open(options = {}): Promise<{ client: RawClient; b: Behavior }> {
  made = [];
  closes.length = 0;
  const server = await serve({ '/held': Held }, options);
  const client = await connect(server.port, '/held');
  await waitFor(() => made.length === 1, 2000, 'open');
  return { client, b: made[0] as Behavior };
}

async function frame(client: RawClient): Promise<{ opcode: number; bytes: number[]; text: string }> {
  const f = await client.nextFrame(2000);
  expect(f.fin).toBe(true);
  expect(f.masked).toBe(false); // RFC 6455 §5.1: a server never masks
  return { opcode: f.opcode, bytes: [...f.payload], text: f.payload.toString() };
}

describe('sending', () => {
  test("sendText returns 'sent' and the client gets a text frame", async () => {
    const { client, b } = await open();
    expect(b.sendText('héllo ✓')).toBe('sent');
    expect(await frame(client)).toMatchObject({ opcode: 0x1, text: 'héllo ✓' });
  });

  test('sendBinary with Buffer, Uint8Array (an offset view), ArrayBuffer and DataView (an offset view) sends exactly those bytes', async () => {
    const { client, b } = await open();
    const backing = new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17]);
    const inputs: [string, Parameters<Behavior['sendBinary']>[0], number[]][] = [
      ['Buffer', Buffer.from([1, 2, 3]), [1, 2, 3]],
      ['Uint8Array view', new Uint8Array(backing.buffer, 2, 3), [12, 13, 14]],
      ['ArrayBuffer', new Uint8Array([4, 5]).buffer, [4, 5]],
      ['DataView view', new DataView(backing.buffer, 5, 2), [15, 16]],
      ['Uint16Array', new Uint16Array([0x0102]), [...new Uint8Array(new Uint16Array([0x0102]).buffer)]],
      ['empty', new Uint8Array(0), []],
    ];
    for (const [, input] of inputs) expect(b.sendBinary(input)).toBe('sent');
    for (const [name, , bytes] of inputs) {
      const f = await frame(client);
      expect({ name, opcode: f.opcode, bytes: f.bytes }).toEqual({ name, opcode: 0x2, bytes });
    }
  });

  test('a large binary view (over the copy threshold) at an offset is sent byte-exact', async () => {
    const { client, b } = await open();
    const backing = Buffer.alloc(20_000);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 7) & 0xff;
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 10_000);
    b.sendBinary(view);
    b.send(new DataView(backing.buffer, backing.byteOffset + 3, 9_000));
    const f1 = await client.nextFrame(2000);
    expect(f1.opcode).toBe(0x2);
    expect(f1.payload.equals(Buffer.from(view))).toBe(true);
    const f2 = await client.nextFrame(2000);
    expect(f2.payload.equals(backing.subarray(3, 9_003))).toBe(true);
  });

  test('send() sends a string as text and anything else as binary', async () => {
    const { client, b } = await open();
    expect(b.send('text')).toBe('sent');
    expect(b.send(Buffer.from('buf'))).toBe('sent');
    expect(b.send(new Uint8Array([7]))).toBe('sent');
    expect(b.send(new Uint8Array([8, 9]).buffer)).toBe('sent');
    expect(b.send(new DataView(new Uint8Array([6]).buffer))).toBe('sent');
    expect(await frame(client)).toMatchObject({ opcode: 0x1, text: 'text' });
    expect(await frame(client)).toMatchObject({ opcode: 0x2, text: 'buf' });
    expect(await frame(client)).toMatchObject({ opcode: 0x2, bytes: [7] });
    expect(await frame(client)).toMatchObject({ opcode: 0x2, bytes: [8, 9] });
    expect(await frame(client)).toMatchObject({ opcode: 0x2, bytes: [6] });
  });

  test('a 100 KB text message arrives whole', async () => {
    const { client, b } = await open();
    const text = 'äbc'.repeat(34_000);
    b.sendText(text);
    const f = await client.nextFrame(3000);
    expect(f.opcode).toBe(0x1);
    expect(f.payload.toString()).toBe(text);
  });

  test("a peer that stops reading makes sends return 'queued' with bufferedAmount > 0; it drains once the peer reads", async () => {
    const { client, b } = await open();
    client.socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    let status: SendStatus = 'sent';
    let n = 0;
    while (b.bufferedAmount === 0 && n < 1000) {
      status = b.sendBinary(chunk);
      n++;
    }
    expect(b.bufferedAmount).toBeGreaterThan(0);
    expect(status).toBe('queued');
    client.socket.resume();
    await waitFor(() => b.bufferedAmount === 0, 10_000, 'drain');
  });
});

describe('ping', () => {
  test('ping() with no payload, a string, or bytes sends a ping frame; the peer’s pong reaches onPong', async () => {
    const { client, b } = await open();
    expect(b.ping()).toBe('sent');
    expect(b.ping('hi')).toBe('sent');
    expect(b.ping(Buffer.alloc(125, 0x61))).toBe('sent');
    expect(await frame(client)).toMatchObject({ opcode: 0x9, bytes: [] });
    expect(await frame(client)).toMatchObject({ opcode: 0x9, text: 'hi' });
    expect(await frame(client)).toMatchObject({ opcode: 0x9, text: 'a'.repeat(125) });
  });

  test('RFC 6455 §5.5: a ping payload over 125 bytes throws RangeError and sends nothing', async () => {
    const { client, b } = await open();
    expect(() => b.ping(Buffer.alloc(126))).toThrow(RangeError);
    expect(() => b.ping('x'.repeat(126))).toThrow(RangeError);
    expect(() => b.ping('é'.repeat(63))).toThrow(RangeError); // 126 bytes, 63 characters
    b.sendText('after');
    expect(await frame(client)).toMatchObject({ opcode: 0x1, text: 'after' });
  });
});

describe('close() arguments (RFC 6455 §7.4)', () => {
  test.each([1005, 1006, 1015, 999, 0, 1004, 2999, 5000])('close(%i) throws RangeError and leaves the connection open', async (code) => {
    const { client, b } = await open();
    expect(() => b.close(code)).toThrow(RangeError);
    expect(b.readyState).toBe(1);
    expect(b.sendText('still open')).toBe('sent');
    expect(await frame(client)).toMatchObject({ opcode: 0x1, text: 'still open' });
  });

  test('a close reason over 123 bytes throws RangeError (bytes, not characters); 123 bytes is fine', async () => {
    const { client, b } = await open();
    expect(() => b.close(1000, 'x'.repeat(124))).toThrow(RangeError);
    expect(() => b.close(1000, 'é'.repeat(62))).toThrow(RangeError);
    expect(b.readyState).toBe(1);
    b.close(4000, 'y'.repeat(123));
    const f = await client.nextFrame(2000);
    expect(f.opcode).toBe(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(4000);
    expect(f.payload.subarray(2).toString()).toBe('y'.repeat(123));
  });

  test('close() with no arguments sends 1000', async () => {
    const { client, b } = await open();
    b.close();
    const f = await client.nextFrame(2000);
    expect(f.opcode).toBe(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(1000);
  });
});

describe('sending around a close', () => {
  test("after close(): send, sendText, sendBinary and ping return 'dropped' and nothing follows the close frame; the same after onClose", async () => {
    const { client, b } = await open();
    b.close(1000, 'done');
    expect(b.readyState).toBe(2);
    expect(b.send('late')).toBe('dropped');
    expect(b.sendText('late')).toBe('dropped');
    expect(b.sendBinary(Buffer.from('late'))).toBe('dropped');
    expect(b.ping()).toBe('dropped');
    const f = await client.nextFrame(2000);
    expect(f.opcode).toBe(0x8);
    client.send(0x8, closePayload(1000));
    expect(await client.waitClosed(2000)).toBe(true);
    expect(client.pending()).toEqual([]);
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(b.readyState).toBe(3);
    expect(b.send('later')).toBe('dropped');
    expect(b.sendBinary(new Uint8Array(1))).toBe('dropped');
    expect(b.ping('x')).toBe('dropped');
    expect(b.bufferedAmount).toBe(0);
    // close() again after the end is a no-op, not an error.
    expect(() => b.close(1000)).not.toThrow();
  });

  test("after the peer vanishes, sends return 'dropped'", async () => {
    const { client, b } = await open();
    client.destroy();
    await waitFor(() => closes.length === 1, 2000, 'onClose');
    expect(closes).toEqual([1006]);
    expect(b.sendText('anyone?')).toBe('dropped');
  });
});
