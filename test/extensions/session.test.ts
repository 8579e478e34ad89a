/**
 * The per-connection seam (session.ts): a broadcast is compressed once for every connection that
 * resets its context after each message (RFC 7692 §7.2.3 makes shared bytes valid only there),
 * and separately, by the connection's own compressor, for one that keeps its context.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { OutgoingMessage } from '../../src/connection/outgoing.js';
import { negotiatePerMessageDeflate } from '../../src/extensions/permessage-deflate/negotiate.js';
import { resolvePerMessageDeflate } from '../../src/extensions/permessage-deflate/options.js';
import { type DeflateCounters, DeflateSession } from '../../src/extensions/permessage-deflate/session.js';
import { parseExtensionOffers } from '../../src/extensions/extensions-header.js';
import { Opcode } from '../../src/protocol/constants.js';
import { type Frame, encodeFrame } from '../../src/protocol/framer.js';

function counters(): DeflateCounters {
  return { compressedMessagesIn: 0, compressedBytesIn: 0, inflatedBytesIn: 0, compressedMessagesOut: 0, uncompressedBytesOut: 0, compressedBytesOut: 0 };
}

function session(offer: string, settings: Parameters<typeof resolvePerMessageDeflate>[0], c = counters()): DeflateSession {
  const config = resolvePerMessageDeflate(settings);
  if (config === null) throw new Error('no config');
  const agreement = negotiatePerMessageDeflate(parseExtensionOffers(offer).offers, config.negotiation);
  if (agreement === null) throw new Error('declined');
  return new DeflateSession(agreement, config, c);
}

function payloadOf(frame: Frame): Buffer {
  if (!Buffer.isBuffer(frame)) return frame[1];
  const n = (frame[1] as number) & 0x7f;
  return frame.subarray(n === 127 ? 10 : n === 126 ? 4 : 2);
}

function inflate(frame: Frame): string {
  return zlib.inflateRawSync(Buffer.concat([payloadOf(frame), Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString();
}

const TEXT = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ id: i, name: `user ${i}`, online: i % 3 === 0 })));

describe('a broadcast frame is compressed once per parameter set', () => {
  test('no-context-takeover sessions with the same parameters share one compressed frame (same bytes object)', () => {
    const c = counters();
    const a = session('permessage-deflate', true, c);
    const b = session('permessage-deflate; client_max_window_bits', true, c);
    const message = new OutgoingMessage(Opcode.Text, encodeFrame(Opcode.Text, Buffer.from(TEXT)));
    const fa = a.frameShared(message) as Frame;
    const fb = b.frameShared(message) as Frame;
    expect(fa).toBe(fb);
    expect(inflate(fa)).toBe(TEXT);
    expect(((Buffer.isBuffer(fa) ? fa[0] : fa[0][0]) as number) & 0x40).toBe(0x40); // RSV1
    // Counted once per recipient, though compressed once.
    expect(c.compressedMessagesOut).toBe(2);
    expect(c.uncompressedBytesOut).toBe(2 * TEXT.length);
  });

  test('a different window gets its own shared frame, which it can decode', () => {
    const a = session('permessage-deflate', true);
    const small = session('permessage-deflate; server_max_window_bits=9', true);
    const message = new OutgoingMessage(Opcode.Text, encodeFrame(Opcode.Text, Buffer.from(TEXT)));
    const fa = a.frameShared(message) as Frame;
    const fs = small.frameShared(message) as Frame;
    expect(fs).not.toBe(fa);
    expect(zlib.inflateRawSync(Buffer.concat([payloadOf(fs), Buffer.from([0, 0, 0xff, 0xff])]), { windowBits: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString()).toBe(TEXT);
  });

  test('a context-takeover session never takes the shared frame: its own compressor, its own window', () => {
    const shared = session('permessage-deflate', true);
    const own = session('permessage-deflate', { serverNoContextTakeover: false });
    const message = new OutgoingMessage(Opcode.Text, encodeFrame(Opcode.Text, Buffer.from(TEXT)));
    const fs = shared.frameShared(message) as Frame;
    const f1 = own.frameShared(message) as Frame;
    const f2 = own.frameShared(message) as Frame;
    expect(f1).not.toBe(fs);
    // The second copy refers back into the first: only a context-takeover inflater decodes both.
    const out: string[] = [];
    for (const f of [f1, f2]) {
      out.push(zlib.inflateRawSync(Buffer.concat([payloadOf(f), Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH, ...(out.length === 0 ? {} : { dictionary: Buffer.from(TEXT) }) }).toString());
    }
    expect(out).toEqual([TEXT, TEXT]);
    expect(payloadOf(f2).length).toBeLessThan(payloadOf(f1).length / 4);
  });
});
