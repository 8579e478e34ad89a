/**
 * A compressed message that fails while inflating (1009 too big, 1007 bad data) ends the
 * connection like any other failure (RFC 6455 §7.1.7): close frame, TCP closed, and the server
 * reads the peer's close reply and FIN, so it lets go of the connection (onClose, `clients`,
 * stats) through the closing handshake — on the thread-pool path as on the synchronous one, not
 * only when closeTimeout runs out. (Before 4ae2235 the socket paused for an inflate on the
 * thread pool stayed paused after a failure, and such connections lingered for closeTimeout,
 * 10 s by default; these tests failed then on every thread-pool case.)
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { waitFor } from '../helpers/server.js';
import { OFFER_NO_TAKEOVER, OFFER_TAKEOVER, bomb, compressedFrame, connectDeflate } from './deflate-helpers.js';
import { answerClose } from './helpers.js';

const { serve } = useFixture();

class Echo extends Behavior {
  static closes: number[] = [];
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
  override onClose(code: number): void {
    Echo.closes.push(code);
  }
}

/** Far longer than the test waits: a connection let go of must have been closed by the handshake. */
const CLOSE_TIMEOUT = 60_000;

const CASES: { name: string; payload: () => Buffer; code: number }[] = [
  { name: 'bad data, 1 KiB (synchronous)', payload: () => Buffer.alloc(1024, 0xff), code: 1007 },
  { name: 'bad data, 100 KiB (thread pool)', payload: () => Buffer.alloc(100 * 1024, 0xff), code: 1007 },
  { name: 'a 62 KiB bomb (256 KiB synchronous, then the thread pool)', payload: () => bomb(60).payload, code: 1009 },
  { name: 'a 1.1 MiB bomb (thread pool)', payload: () => bomb(1100).payload, code: 1009 },
];

describe('after a failure while inflating, the server reads the close reply and lets go at once', () => {
  for (const c of CASES) {
    for (const offer of [OFFER_TAKEOVER, OFFER_NO_TAKEOVER]) {
      test(`${c.name}, ${offer}: ${c.code}, then the connection is released by the closing handshake, not by closeTimeout`, async () => {
        Echo.closes = [];
        const s = await serve({ '/': Echo }, { perMessageDeflate: true, closeTimeout: CLOSE_TIMEOUT, pingInterval: 0 });
        const client = await connectDeflate(s.port, '/', offer);
        client.sendRaw(compressedFrame(0x2, c.payload()));
        const closed = await answerClose(client, 10_000);
        expect(closed.code).toBe(c.code);
        expect(closed.tcpClosed).toBe(true);
        await waitFor(() => s.srv.handler.clients.size === 0, 5000, 'the server to let go of the connection');
        expect(Echo.closes).toEqual([c.code]);
        expect(s.srv.handler.stats().compression.connections).toBe(0);
      }, 20_000);
    }
  }
});
