/**
 * Pings from a peer that reads, but more slowly than the server sends (a feed to a slow client):
 * bounding queued pongs (one in the socket's queue at a time, the latest ping answered) must not
 * stop the server from reading that peer. Its later messages arrive, and its pings are answered.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Backpressure, Behavior } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect, defer } = useFixture();

describe('pings from a slow reader of a continuous feed', () => {
  test('the server keeps reading its messages after a ping, and answers the ping', async () => {
    const heard: string[] = [];
    class Feed extends Behavior {
      static override maxBackpressure = 64 << 20;
      static override backpressure = Backpressure.Drop;
      override onOpen(): void {
        const chunk = Buffer.alloc(4 * 1024, 0x66);
        // Sends more than the reader takes: the socket stays backed up and never fully drains.
        const timer = setInterval(() => {
          for (let i = 0; i < 2; i++) this.sendBinary(chunk);
        }, 1);
        defer(() => clearInterval(timer));
        this.onClose = () => clearInterval(timer);
      }
      override onText(text: string): void {
        heard.push(text);
        if (text === 'unsubscribe') this.onClose(1000, '');
      }
    }
    const { port } = await mount({ '/feed': Feed });
    const client = await connect(port, '/feed');
    // A slow reader: after each chunk it reads, it pauses for 30 ms (about 2 MB/s; the feed
    // sends up to 8 MB/s, so the server's backlog grows and never empties).
    let slow = true;
    const pauses = new Set<NodeJS.Timeout>();
    client.socket.on('data', () => {
      if (!slow) return;
      client.socket.pause();
      const t = setTimeout(() => {
        pauses.delete(t);
        client.socket.resume();
      }, 30);
      pauses.add(t);
    });
    defer(() => {
      for (const t of pauses) clearTimeout(t);
    });
    await new Promise((r) => setTimeout(r, 1500));
    client.send(0x9, 'are you there');
    await new Promise((r) => setTimeout(r, 200));
    client.send(0x1, 'unsubscribe');
    await waitFor(() => heard.includes('unsubscribe'), 10_000, 'the server to read the message sent after the ping');
    // The ping is answered.
    slow = false;
    client.socket.resume();
    let pong: Buffer | undefined;
    for (let i = 0; i < 1_000_000 && pong === undefined; i++) {
      const f = await client.nextFrame(5000);
      if (f.opcode === 0xa) pong = f.payload;
    }
    expect(pong?.toString()).toBe('are you there');
  }, 30_000);
});
