/**
 * RFC 7692 §7.2.3.4: a sender may end a message's DEFLATE data with a block that has BFINAL set
 * (platforms without a sync flush; `deflateRawSync` with the default Z_FINISH does exactly
 * that). Whatever a receiver then does with the next message — inflate it, or fail the
 * connection with 1007 — it must never deliver it as something it was not.
 *
 * Found by this test: under client context takeover the connection's own inflate stream reached
 * Z_STREAM_END on the first such message, and every later compressed message "inflated" to 0
 * bytes, silently. Now the end of a DEFLATE stream is detected and the next message is inflated
 * by a new stream whose window is the last message's plaintext (so it may refer back into it).
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { OFFER_NO_TAKEOVER, OFFER_TAKEOVER, compressedFrame, connectDeflate, nextMessage } from './deflate-helpers.js';

const { serve } = useFixture();

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

describe('messages that end with a BFINAL block (RFC 7692 §7.2.3.4)', () => {
  for (const offer of [OFFER_TAKEOVER, OFFER_NO_TAKEOVER]) {
    for (const size of [5, 300_000]) {
      test(`${offer}, ${size}-byte messages, three in a row: each echoed intact, or 1007 — never an empty or wrong message`, async () => {
        const s = await serve({ '/': Echo }, { perMessageDeflate: true, pingInterval: 0, closeTimeout: 300 });
        const client = await connectDeflate(s.port, '/', offer);
        for (let i = 0; i < 3; i++) {
          const text = `${'Hello'.repeat(Math.ceil(size / 5)).slice(0, size)}${i}`;
          const payload = zlib.deflateRawSync(Buffer.from(text)); // Z_FINISH: the last block has BFINAL set
          client.sendRaw(compressedFrame(0x1, payload));
          let got: string;
          try {
            got = (await nextMessage(client, { timeout: 5000 })).data.toString();
          } catch (error) {
            expect(String(error)).toMatch(/close frame \(1007/);
            return;
          }
          expect([i, got.length, got === text]).toEqual([i, text.length, true]);
        }
      });
    }
  }

  test('after a BFINAL message, the next one may refer back into it (the LZ77 window is kept, RFC 7692 §7.2.2)', async () => {
    const s = await serve({ '/': Echo }, { perMessageDeflate: true, pingInterval: 0, closeTimeout: 300 });
    const client = await connectDeflate(s.port, '/', OFFER_TAKEOVER);
    const first = Buffer.from(`{"user":"ada","text":"${'the quick brown fox '.repeat(20)}"}`);
    const second = Buffer.from(`{"user":"ada","text":"${'the quick brown fox '.repeat(20)}!"}`);
    client.sendRaw(compressedFrame(0x1, zlib.deflateRawSync(first)));
    expect((await nextMessage(client, { timeout: 5000 })).data.toString()).toBe(first.toString());
    // Compressed against the first message as its window, and ended with BFINAL again.
    const payload = zlib.deflateRawSync(second, { dictionary: first });
    expect(payload.length).toBeLessThan(20); // it does refer back
    client.sendRaw(compressedFrame(0x1, payload));
    expect((await nextMessage(client, { timeout: 5000 })).data.toString()).toBe(second.toString());
  });
});
