/**
 * Autobahn section 13 — permessage-deflate (RFC 7692) parameters: the JSON corpus, Autobahn's 18
 * sizes and fragmentations (as section 12), under seven offers (case12_x_x.py DEFLATE_PARAMS):
 *
 *   13.1 the default offer   `permessage-deflate; client_no_context_takeover; client_max_window_bits`
 *   13.2 + server_no_context_takeover
 *   13.3 + server_max_window_bits=9
 *   13.4 + server_max_window_bits=15
 *   13.5 + server_no_context_takeover; server_max_window_bits=9
 *   13.6 + server_no_context_takeover; server_max_window_bits=15
 *   13.7 three offers, in order: (13.5's), (13.2's), the default
 *
 * Each answer must fit one of its offers (RFC 7692 §7.1: server_no_context_takeover answered
 * when offered, server_max_window_bits answered ≤ the offer, client_max_window_bits only if
 * offered) and pass Autobahn's strict parse (window values 9..15 only), and every compressed echo
 * must inflate with the window the answer allows — and, walked by deflate-audit.ts, reach no
 * further back than that window, nor into an earlier message when the answer says
 * server_no_context_takeover.
 *
 * Both against wsmount's preset (`perMessageDeflate: true`, which resets its context per message
 * and says so whatever the offer) and against `{ serverNoContextTakeover: false }`, where the
 * server keeps its context between messages unless the client asks it not to: the harder case,
 * where 13.1, 13.3 and 13.4 must decode across messages, 13.3 within a 512-byte window. 252 cases.
 *
 * Then RFC 7692 §6 frame rules with hand-built frames (13.8, beyond Autobahn).
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { jsonCorpus } from './cases/corpora.js';
import { CASE_TIMEOUT, type CompressionServer, MSG_SIZES, runCase, sizeLabel, useCompressionServer } from './compression.js';
import { auditDeflate } from './deflate-audit.js';
import {
  DEFAULT_OFFER,
  type DeflateClient,
  type DeflateOffer,
  MessageDeflater,
  OPCODE,
  RSV1,
  clientFrame,
  messageFrames,
} from './deflate-client.js';

const NCT = { ...DEFAULT_OFFER, serverNoContextTakeover: true };
const PARAMS: { id: string; title: string; offers: DeflateOffer[] }[] = [
  { id: '13.1', title: 'default offer', offers: [DEFAULT_OFFER] },
  { id: '13.2', title: 'server_no_context_takeover', offers: [NCT] },
  { id: '13.3', title: 'server_max_window_bits=9', offers: [{ ...DEFAULT_OFFER, serverMaxWindowBits: 9 }] },
  { id: '13.4', title: 'server_max_window_bits=15', offers: [{ ...DEFAULT_OFFER, serverMaxWindowBits: 15 }] },
  { id: '13.5', title: 'server_no_context_takeover; server_max_window_bits=9', offers: [{ ...NCT, serverMaxWindowBits: 9 }] },
  { id: '13.6', title: 'server_no_context_takeover; server_max_window_bits=15', offers: [{ ...NCT, serverMaxWindowBits: 15 }] },
  { id: '13.7', title: 'three offers: (nct, 9), (nct), default', offers: [{ ...NCT, serverMaxWindowBits: 9 }, NCT, DEFAULT_OFFER] },
];

const preset = useCompressionServer(true);
const takeover = useCompressionServer({ serverNoContextTakeover: false });

function section13(server: CompressionServer, label: string, serverResets: boolean): void {
  for (const p of PARAMS) {
    describe(`${p.id} ${p.title} — ${label}`, () => {
      MSG_SIZES.forEach((size, i) => {
        test(
          `${p.id}.${i + 1} ${sizeLabel(size)} → answer fits the offer, every echo intact within the agreed window, clean close`,
          async () => {
            const r = await runCase(server, {
              offers: p.offers,
              corpus: jsonCorpus(),
              len: size.len,
              fragment: size.fragment,
              expectCompressedEchoes: size.len >= 1024,
              checkAgreement: (c, offerIndex) => {
                const a = c.agreement as NonNullable<DeflateClient['agreement']>;
                // An offered server_no_context_takeover must be answered (matchOffer checked it
                // against the offer the answer fits). Unasked, the preset adds it and the other
                // configuration must not: it keeps its context.
                const asked = p.offers[offerIndex]?.serverNoContextTakeover === true;
                expect(a.serverNoContextTakeover, `server_no_context_takeover in ${JSON.stringify(a.header)}`).toBe(serverResets || asked);
              },
            });
            // The case really exercised the server's context: some echo referred back into an
            // earlier one (JSON slices in sequence share most of their structure).
            if (!serverResets && p.offers[r.offerIndex]?.serverNoContextTakeover !== true && size.len >= 1024) {
              expect(r.stats.takeoverIn, 'compressed echoes that referred into an earlier message').toBeGreaterThan(0);
            }
          },
          CASE_TIMEOUT,
        );
      });
    });
  }
}

section13(preset, 'perMessageDeflate: true', true);
section13(takeover, 'perMessageDeflate: { serverNoContextTakeover: false }', false);

// ---- 13.8 RFC 7692 §6 frame rules, hand-built frames (beyond Autobahn) ----------------------------

const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
/** One message compressed on its own (sync flush, tail stripped: RFC 7692 §7.2.1). */
function deflated(bytes: Buffer | string): Buffer {
  const out = zlib.deflateRawSync(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes, SYNC);
  return out.subarray(0, out.length - 4);
}
/** Chrome's offer: no client_no_context_takeover, so the client keeps its context. */
const CHROME_OFFER: DeflateOffer = { clientMaxWindowBits: true };
const HELLO = 'Hello, compressed world! '.repeat(4);

/** The server fails the connection with `code`, having echoed exactly `echoes` first. */
async function expectFailAfter(c: DeflateClient, code: number, echoes: { opcode: number; payload: Buffer | string }[] = []): Promise<void> {
  const r = await c.expectClose(5000);
  expect(
    r.before.map((m) => `opcode ${m.opcode}: ${m.payload.toString('hex')}`),
    'messages before the close frame',
  ).toEqual(echoes.map((e) => `opcode ${e.opcode}: ${(typeof e.payload === 'string' ? Buffer.from(e.payload, 'utf8') : e.payload).toString('hex')}`));
  expect(r.code, 'close code').toBe(code);
  expect(r.tcpClosed, 'server closed TCP').toBe(true);
}

async function expectEcho(c: DeflateClient, opcode: number, payload: Buffer | string): Promise<void> {
  const m = await c.nextMessage(5000);
  const want = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  expect(`opcode ${m.opcode}, ${m.payload.length} bytes`).toBe(`opcode ${opcode}, ${want.length} bytes`);
  expect(m.payload.equals(want), 'echo equals what was sent').toBe(true);
}

async function expectCleanClose(c: DeflateClient): Promise<void> {
  const r = await c.close(1000);
  expect(r.before.length, 'messages after the last echo').toBe(0);
  expect(r.code, 'echoed close code').toBe(1000);
  expect(r.tcpClosed, 'server closed TCP').toBe(true);
}

describe('13.8 RFC 7692 §6 frame rules (beyond Autobahn; preset server)', () => {
  const connect = (offers: DeflateOffer[] = [DEFAULT_OFFER]): Promise<DeflateClient> => preset.connect(offers);

  test('13.8.1 RSV1 on a continuation frame of a compressed message → fail 1002, no echo', async () => {
    const c = await connect();
    const body = deflated(HELLO);
    const half = body.length >> 1;
    c.raw.sendRaw(Buffer.concat([clientFrame(OPCODE.TEXT, body.subarray(0, half), false, RSV1), clientFrame(OPCODE.CONT, body.subarray(half), true, RSV1)]));
    await expectFailAfter(c, 1002);
  });

  test('13.8.2 RSV1 on a continuation frame of an uncompressed message → fail 1002, no echo', async () => {
    const c = await connect();
    c.raw.sendRaw(Buffer.concat([clientFrame(OPCODE.TEXT, Buffer.from('fragment1'), false), clientFrame(OPCODE.CONT, deflated('fragment2'), true, RSV1)]));
    await expectFailAfter(c, 1002);
  });

  test('13.8.3 RSV1 on a ping → fail 1002, no pong', async () => {
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.PING, Buffer.from('ping'), true, RSV1));
    await expectFailAfter(c, 1002);
  });

  test('13.8.4 RSV1 on a pong → fail 1002', async () => {
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.PONG, Buffer.from('pong'), true, RSV1));
    await expectFailAfter(c, 1002);
  });

  test('13.8.5 RSV1 on a close frame → fail 1002, not a clean close', async () => {
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.CLOSE, Buffer.from([0x03, 0xe8]), true, RSV1));
    await expectFailAfter(c, 1002);
  });

  test('13.8.6 RSV2 on a text frame while permessage-deflate (RSV1 only) is in use → fail 1002', async () => {
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.TEXT, deflated(HELLO), true, RSV1 | 2));
    await expectFailAfter(c, 1002);
  });

  test('13.8.7 compressed text that inflates to invalid UTF-8 → fail 1007, no echo', async () => {
    const c = await connect();
    // κόσμε, then a UTF-16 surrogate encoded in UTF-8 (ed a0 80), then more text.
    const bad = Buffer.concat([Buffer.from('cebae1bdb9cf83cebcceb5', 'hex'), Buffer.from('eda080', 'hex'), Buffer.from(' and more text')]);
    c.raw.sendRaw(clientFrame(OPCODE.TEXT, deflated(bad), true, RSV1));
    await expectFailAfter(c, 1007);
  });

  test('13.8.8 compressed text whose compressed bytes and characters are split across 3 fragments → echo', async () => {
    const c = await connect();
    const text = 'κόσμε — 😀 Grüße '.repeat(20);
    c.raw.sendRaw(messageFrames(OPCODE.TEXT, deflated(text), RSV1, 7));
    await expectEcho(c, OPCODE.TEXT, text);
    await expectCleanClose(c);
  });

  test('13.8.9 compressed text that inflates to UTF-8 cut short at the end → fail 1007', async () => {
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.TEXT, deflated(Buffer.concat([Buffer.from('abc'), Buffer.from('f09f98', 'hex')])), true, RSV1));
    await expectFailAfter(c, 1007);
  });

  test('13.8.10 compressed bytes that are not DEFLATE (reserved block type 3) → fail 1007, no echo', async () => {
    // RFC 7692 names no code for this; 1007 ("data not consistent with the type") as ws does.
    const c = await connect();
    c.raw.sendRaw(clientFrame(OPCODE.BINARY, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), true, RSV1));
    await expectFailAfter(c, 1007);
  });

  test('13.8.11 zip bomb: 8 KiB of compressed zeros that inflate to 8 MiB (maxPayload 1 MiB), in 4 fragments → fail 1009, no echo', async () => {
    const c = await connect();
    const bomb = deflated(Buffer.alloc(8 << 20));
    expect(bomb.length).toBeLessThan(16 * 1024);
    c.raw.sendRaw(messageFrames(OPCODE.BINARY, bomb, RSV1, Math.ceil(bomb.length / 4)));
    await expectFailAfter(c, 1009);
  });

  test('13.8.12 zip bomb in one frame, after a compressed message → its echo, then fail 1009', async () => {
    const c = await connect();
    await c.send(OPCODE.TEXT, HELLO);
    c.raw.sendRaw(clientFrame(OPCODE.BINARY, deflated(Buffer.alloc(8 << 20)), true, RSV1));
    await expectFailAfter(c, 1009, [{ opcode: OPCODE.TEXT, payload: HELLO }]);
  });

  test('13.8.13 compressed message of exactly maxPayload bytes (1 MiB) → echo; one byte more → fail 1009', async () => {
    const c = await connect();
    const exact = Buffer.alloc(1 << 20, 0x61);
    await c.send(OPCODE.BINARY, exact, { fragmentSize: 1000 });
    await expectEcho(c, OPCODE.BINARY, exact);
    await c.send(OPCODE.BINARY, Buffer.alloc((1 << 20) + 1, 0x61), { fragmentSize: 1000 });
    await expectFailAfter(c, 1009);
  });

  test('13.8.14 empty compressed messages: payload 00 (RFC 7692 §7.2.3.6), text and binary → empty echoes', async () => {
    const c = await connect();
    c.raw.sendRaw(Buffer.concat([clientFrame(OPCODE.TEXT, Buffer.from([0x00]), true, RSV1), clientFrame(OPCODE.BINARY, Buffer.from([0x00]), true, RSV1)]));
    await expectEcho(c, OPCODE.TEXT, '');
    await expectEcho(c, OPCODE.BINARY, Buffer.alloc(0));
    await c.send(OPCODE.TEXT, HELLO);
    await expectEcho(c, OPCODE.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('13.8.15 empty payload with RSV1 (no DEFLATE data at all) → empty echo, and the next compressed message is fine', async () => {
    const c = await connect();
    expect(c.agreement?.clientNoContextTakeover, 'offered client_no_context_takeover is answered').toBe(true);
    c.raw.sendRaw(clientFrame(OPCODE.TEXT, Buffer.alloc(0), true, RSV1));
    await expectEcho(c, OPCODE.TEXT, '');
    await c.send(OPCODE.TEXT, HELLO);
    await expectEcho(c, OPCODE.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('13.8.16 client context takeover: compressed, uncompressed, compressed referring back to the first → all three echoed intact', async () => {
    const c = await connect([CHROME_OFFER]);
    expect(c.agreement, 'compression accepted').not.toBeNull();
    expect(c.agreement?.clientNoContextTakeover, `client keeps its context: ${c.agreement?.header}`).toBe(false);
    const json = jsonCorpus().data;
    const first = json.subarray(0, 3000);
    const plain = Buffer.from('An uncompressed message in between, which must not enter the LZ77 window. '.repeat(20));
    const second = json.subarray(0, 2900);
    const deflater = new MessageDeflater(15, false);
    const a = await deflater.compress(first);
    const b = await deflater.compress(second);
    deflater.close();
    // The second message is a back-reference into the first, so a server that put the
    // uncompressed message into its window (or reset it) decodes garbage.
    expect(auditDeflate(b, { windowBits: 15, history: first.length }).usedHistory).toBe(true);
    c.raw.sendRaw(Buffer.concat([clientFrame(OPCODE.TEXT, a, true, RSV1), clientFrame(OPCODE.TEXT, plain, true), clientFrame(OPCODE.TEXT, b, true, RSV1)]));
    await expectEcho(c, OPCODE.TEXT, first);
    await expectEcho(c, OPCODE.TEXT, plain);
    await expectEcho(c, OPCODE.TEXT, second);
    await expectCleanClose(c);
  });

  test('13.8.17 client context takeover over 200 messages with every 3rd sent uncompressed and every 5th empty → all echoed intact', async () => {
    const c = await connect([CHROME_OFFER]);
    expect(c.agreement?.clientNoContextTakeover).toBe(false);
    const json = jsonCorpus().data;
    const sent: Buffer[] = [];
    const wire: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const m = i % 5 === 4 ? Buffer.alloc(0) : json.subarray(i * 97, i * 97 + 100 + ((i * 131) % 3000));
      sent.push(m);
      wire.push(await c.encode(OPCODE.TEXT, m, { compress: i % 3 !== 2, fragmentSize: i % 7 === 0 ? 50 : 0 }));
    }
    c.raw.sendRaw(Buffer.concat(wire));
    for (const m of sent) await expectEcho(c, OPCODE.TEXT, m);
    await expectCleanClose(c);
  });

  test('13.8.18 compressed message in 3 fragments with a ping between → pong at once, then the echo', async () => {
    const c = await connect();
    const body = deflated(HELLO);
    const third = Math.ceil(body.length / 3);
    c.raw.sendRaw(
      Buffer.concat([
        clientFrame(OPCODE.TEXT, body.subarray(0, third), false, RSV1),
        clientFrame(OPCODE.CONT, body.subarray(third, 2 * third), false),
        clientFrame(OPCODE.PING, Buffer.from('mid'), true),
        clientFrame(OPCODE.CONT, body.subarray(2 * third), true),
      ]),
    );
    const f = await c.raw.nextFrame(5000);
    expect(`opcode ${f.opcode} rsv ${f.rsv} ${f.payload.toString()}`).toBe('opcode 10 rsv 0 mid');
    await expectEcho(c, OPCODE.TEXT, HELLO);
    await expectCleanClose(c);
  });

  test('13.8.19 two compressed messages, then RSV1 on a ping → both echoes first, then fail 1002', async () => {
    const c = await connect([CHROME_OFFER]);
    const one = jsonCorpus().data.subarray(0, 2000);
    const two = jsonCorpus().data.subarray(100, 2100);
    c.raw.sendRaw(
      Buffer.concat([
        await c.encode(OPCODE.TEXT, one),
        await c.encode(OPCODE.TEXT, two, { fragmentSize: 100 }),
        clientFrame(OPCODE.PING, Buffer.from('bad'), true, RSV1),
      ]),
    );
    await expectFailAfter(c, 1002, [
      { opcode: OPCODE.TEXT, payload: one },
      { opcode: OPCODE.TEXT, payload: two },
    ]);
  });

  test('13.8.20 a compressed message, then RSV1 on a continuation → its echo first, then fail 1002', async () => {
    const c = await connect();
    c.raw.sendRaw(
      Buffer.concat([
        await c.encode(OPCODE.BINARY, Buffer.from(HELLO)),
        clientFrame(OPCODE.BINARY, deflated('a'), false, RSV1),
        clientFrame(OPCODE.CONT, Buffer.from([0x00]), true, RSV1),
      ]),
    );
    await expectFailAfter(c, 1002, [{ opcode: OPCODE.BINARY, payload: Buffer.from(HELLO) }]);
  });

  test('13.8.21 RSV1 without permessage-deflate negotiated → fail 1002 (RFC 6455 §5.2)', async () => {
    const c = await preset.connect('x-unknown-extension');
    expect(c.agreement).toBeNull();
    c.raw.sendRaw(clientFrame(OPCODE.TEXT, deflated(HELLO), true, RSV1));
    await expectFailAfter(c, 1002);
  });
});
