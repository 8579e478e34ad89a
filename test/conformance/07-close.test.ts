/**
 * Autobahn section 7 — the closing handshake (RFC 6455 §5.5.1, §7): the server answers a close
 * frame with a close frame echoing the code (an empty close with an empty close), then closes
 * TCP, and handles nothing that arrives after it. A bad close payload — 1 byte, a code that may
 * not be sent, a reason that is not UTF-8, over 125 bytes — fails the connection instead.
 */
import { describe, expect, test } from 'vitest';
import {
  OP,
  closePayload,
  encodeClientFrame,
  expectCleanClose,
  expectEcho,
  expectFail,
  expectOnlyCloseAnswer,
  sendChopped,
  textPayload,
  useEchoServer,
  WAIT,
} from './harness.js';

const server = useEchoServer();

describe('7.1 basic close behaviour', () => {
  test('7.1.1 text message, then clean close 1000 → echo, then close 1000 echoed and TCP closed', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, 'Hello World!');
    await expectEcho(c, OP.TEXT, 'Hello World!');
    await expectCleanClose(c, 1000);
  });

  test('7.1.2 two close frames → one close 1000 answer, the second close ignored, TCP closed', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.CLOSE, closePayload(1000)), encodeClientFrame(OP.CLOSE)]));
    await expectOnlyCloseAnswer(c, 1000); // exactly one close frame, nothing after it, TCP closed
  });

  test('7.1.3 close, then ping → close 1000 answered, the ping is not (no pong)', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.CLOSE, closePayload(1000)), encodeClientFrame(OP.PING, 'after close')]));
    await expectOnlyCloseAnswer(c, 1000);
  });

  test('7.1.3b close, then a ping in a later TCP write → no pong', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE, closePayload(1000));
    // Race the close answer: the ping goes out as its own write right away.
    c.send(OP.PING, 'after close');
    await expectOnlyCloseAnswer(c, 1000);
  });

  test('7.1.4 close, then text → close 1000 answered, the text is not echoed', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.CLOSE, closePayload(1000)), encodeClientFrame(OP.TEXT, 'Hello World!')]));
    await expectOnlyCloseAnswer(c, 1000);
  });

  test('7.1.5 text fragment 1, close, fragment 2 → clean close 1000, the message is never echoed', async () => {
    const c = await server.connect();
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.TEXT, 'fragment1', { fin: false }),
        encodeClientFrame(OP.CLOSE, closePayload(1000)),
        encodeClientFrame(OP.CONT, 'fragment2'),
      ]),
    );
    await expectOnlyCloseAnswer(c, 1000);
  });

  test('7.1.6 256 KiB text, small text, close, ping → (NON-STRICT: echoes may be missing) close 1000, no pong, TCP closed', async () => {
    const c = await server.connect();
    const big = textPayload(256 * 1024);
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.TEXT, big),
        encodeClientFrame(OP.TEXT, 'Hello World!'),
        encodeClientFrame(OP.CLOSE, closePayload(1000)),
        encodeClientFrame(OP.PING),
      ]),
    );
    const r = await c.expectClose(WAIT);
    // Autobahn: OK if both echoes arrive first, NON-STRICT if the close overtook them; a
    // partial or reordered echo, a pong, or any other code fails.
    const seen = r.before.map((f) => ({ opcode: f.opcode, fin: f.fin, payload: f.payload }));
    const ok = [
      { opcode: OP.TEXT, fin: true, payload: big },
      { opcode: OP.TEXT, fin: true, payload: Buffer.from('Hello World!') },
    ];
    expect([0, 2]).toContain(seen.length);
    if (seen.length === 2) expect(seen).toEqual(ok);
    expect(r.code).toBe(1000);
    expect(r.tcpClosed).toBe(true);
    expect(c.pending()).toEqual([]);
  });

  test('7.1.7 close sent byte by byte → close 1000 echoed, TCP closed', async () => {
    const c = await server.connect();
    await sendChopped(c, encodeClientFrame(OP.CLOSE, closePayload(1000, 'slowly')), 1);
    const r = await c.expectClose(WAIT);
    expect(r.before).toEqual([]);
    expect(r.code).toBe(1000);
    expect(r.reason).toBe('slowly');
    expect(r.tcpClosed).toBe(true);
  });
});

describe('7.3 close frame payloads', () => {
  test('7.3.1 empty close → empty close answered (no code), TCP closed', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE);
    const r = await c.expectClose(WAIT);
    expect(r.before).toEqual([]);
    // RFC 6455 §5.5.1: the server may echo the status code it received; with none, it sends none.
    // Autobahn accepts an empty close or 1000; wsmount sends an empty one.
    expect(r.code).toBeUndefined();
    expect(r.reason).toBe('');
    expect(r.tcpClosed).toBe(true);
  });

  test('7.3.2 close with a 1-byte payload → fail 1002', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE, Buffer.from('a'));
    await expectFail(c, 1002);
  });

  test('7.3.3 close 1000 with no reason → close 1000 echoed, TCP closed', async () => {
    const c = await server.connect();
    await expectCleanClose(c, 1000);
  });

  test('7.3.4 close 1000 with a reason → close 1000 echoed, TCP closed', async () => {
    const c = await server.connect();
    const r = await c.close(1000, 'Hello World!', WAIT);
    expect(r.code).toBe(1000);
    // Echoing the reason is optional; if echoed, it must be the same text.
    expect(['', 'Hello World!']).toContain(r.reason);
    expect(r.tcpClosed).toBe(true);
  });

  test('7.3.5 close 1000 with a 123-byte reason (125-byte payload) → close 1000 echoed, TCP closed', async () => {
    const c = await server.connect();
    const reason = '*'.repeat(123);
    const r = await c.close(1000, reason, WAIT);
    expect(r.code).toBe(1000);
    expect(['', reason]).toContain(r.reason);
    expect(r.tcpClosed).toBe(true);
  });

  test('7.3.6 close 1000 with a 124-byte reason (126-byte payload, control frame too long) → fail 1002', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE, closePayload(1000, '*'.repeat(124)));
    await expectFail(c, 1002);
  });

  test('7.3.7 close 1000 with a 123-byte multi-byte UTF-8 reason → close 1000 echoed', async () => {
    const c = await server.connect();
    // κόσμε with the 3-byte ό (U+1F79) is 11 bytes: 11 of them and "ab" make 123 bytes.
    const reason = Buffer.concat([Buffer.from('cebae1bdb9cf83cebcceb5'.repeat(11), 'hex'), Buffer.from('ab')]).toString('utf8');
    const payload = closePayload(1000, reason);
    expect(payload.length).toBe(125);
    c.send(OP.CLOSE, payload);
    const r = await c.expectClose(WAIT);
    expect(r.code).toBe(1000);
    expect(['', reason]).toContain(r.reason);
    expect(r.tcpClosed).toBe(true);
  });
});

describe('7.5 close reason UTF-8', () => {
  test('7.5.1 close 1000 with an invalid UTF-8 reason → fail 1007', async () => {
    const c = await server.connect();
    // κόσμε + U+D800 (a surrogate) + "edited"
    const reason = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');
    c.send(OP.CLOSE, Buffer.concat([Buffer.from([0x03, 0xe8]), reason]));
    await expectFail(c, 1007);
  });

  test('7.5.2 close 1000 with a reason truncated mid code point → fail 1007 (beyond Autobahn)', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('cebae1', 'hex')]));
    await expectFail(c, 1007);
  });
});

describe('7.7 valid close codes are echoed', () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
  valid.forEach((code, i) => {
    test(`7.7.${i + 1} close with valid code ${code} → close ${code} echoed, TCP closed`, async () => {
      const c = await server.connect();
      // Autobahn also accepts an answer of 1000; wsmount echoes the code, and we hold it to that.
      await expectCleanClose(c, code);
    });
  });
});

describe('7.9 invalid close codes fail the connection', () => {
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  invalid.forEach((code, i) => {
    test(`7.9.${i + 1} close with invalid code ${code} → fail 1002`, async () => {
      const c = await server.connect();
      c.send(OP.CLOSE, closePayload(code));
      await expectFail(c, 1002);
    });
  });
});

describe('7.13 data after the close frame', () => {
  test('7.13.1 close, then binary, text, a fragmented message and a ping in the same write → only the close answer', async () => {
    const c = await server.connect();
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.CLOSE, closePayload(1000)),
        encodeClientFrame(OP.BINARY, Buffer.from([1, 2, 3])),
        encodeClientFrame(OP.TEXT, 'not echoed'),
        encodeClientFrame(OP.TEXT, 'frag', { fin: false }),
        encodeClientFrame(OP.CONT, 'ment'),
        encodeClientFrame(OP.PING, 'no pong'),
      ]),
    );
    await expectOnlyCloseAnswer(c, 1000);
  });

  test('7.13.2 close, then garbage that would be a protocol error → still the clean 1000 answer, not 1002', async () => {
    const c = await server.connect();
    c.sendRaw(Buffer.concat([encodeClientFrame(OP.CLOSE, closePayload(1000)), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
    await expectOnlyCloseAnswer(c, 1000);
  });
});
