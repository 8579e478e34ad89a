/**
 * Handler-wide limits reach every connection, and a route's static override wins
 * (RFC 6455 §7.4.1: 1009 message too big, 1008 policy violation).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import type { RawClient } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { serve, connect } = useFixture();

const sizes: number[] = [];
class Sink extends Behavior {
  override onBinary(bytes: Buffer): void {
    sizes.push(bytes.length);
    this.sendText(`got ${bytes.length}`);
  }
}
class Roomy extends Sink {
  static override maxPayload = 4096;
}
class Choppy extends Sink {
  static override maxFragments = 2;
}

/** Connects a fresh client to `path` and sends one binary message of `size` bytes on it. */
async function sendBinary(port: number, path: string, size: number): Promise<RawClient> {
  const client = await connect(port, path);
  client.send(0x2, Buffer.alloc(size));
  return client;
}

describe('limits', () => {
  test('defaults are safe: maxPayload 1 MiB, maxFragments 1024, closeTimeout 10 s, unclaimedTimeout 2 s', () => {
    const o = createWebSocketHandler({ '/s': Sink }).options;
    expect(o.maxPayload).toBe(1 << 20);
    expect(o.closeTimeout).toBe(10_000);
    expect(o.maxFragments).toBe(1024);
    expect(o.unclaimedTimeout).toBe(2000);
  });

  test('the handler maxPayload closes an oversize message with 1009; a message at the limit passes', async () => {
    sizes.length = 0;
    const s = await serve({ '/s': Sink }, { maxPayload: 1000 });
    const ok = await sendBinary(s.port, '/s', 1000);
    expect((await ok.nextFrame(2000)).payload.toString()).toBe('got 1000');
    const big = await sendBinary(s.port, '/s', 1001);
    expect((await big.expectClose(2000)).code).toBe(1009);
    expect(sizes).toEqual([1000]);
  });

  test("a route's static maxPayload overrides the handler's", async () => {
    sizes.length = 0;
    const s = await serve({ '/small': Sink, '/roomy': Roomy }, { maxPayload: 100 });
    const roomy = await sendBinary(s.port, '/roomy', 4000);
    expect((await roomy.nextFrame(2000)).payload.toString()).toBe('got 4000');
    const small = await sendBinary(s.port, '/small', 101);
    expect((await small.expectClose(2000)).code).toBe(1009);
  });

  test("maxFragments (a route's override) closes a message in too many frames with 1008", async () => {
    sizes.length = 0;
    const s = await serve({ '/choppy': Choppy });
    const two = await connect(s.port, '/choppy');
    two.send(0x2, Buffer.from([1]), { fin: false });
    two.send(0x0, Buffer.from([2]), { fin: true });
    expect((await two.nextFrame(2000)).payload.toString()).toBe('got 2');
    const three = await connect(s.port, '/choppy');
    three.send(0x2, Buffer.from([1]), { fin: false });
    three.send(0x0, Buffer.from([2]), { fin: false });
    three.send(0x0, Buffer.from([3]), { fin: true });
    expect((await three.expectClose(2000)).code).toBe(1008);
    await waitFor(() => s.srv.handler.clients.size === 1, 2000, 'the cut client left');
  });
});
