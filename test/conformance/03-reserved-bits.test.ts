/**
 * Autobahn section 3 — reserved bits (RFC 6455 §5.2): with no extension negotiated, a frame with
 * any of RSV1–RSV3 set fails the connection with 1002. What was received before the bad frame is
 * still handled (its echo arrives first); what follows it is not (no pong).
 *
 * Autobahn marks "no echo of the first message" as NON-STRICT for 3.2–3.4; we hold wsmount to the
 * strict behaviour, because it handles frames in order.
 */
import { describe, expect, test } from 'vitest';
import {
  OP,
  closePayload,
  encodeClientFrame,
  expectEcho,
  expectFail,
  sendChopped,
  sendEach,
  useEchoServer,
} from './harness.js';

const server = useEchoServer();
const HELLO = 'Hello, world!';

describe('3 reserved bits', () => {
  test('3.1 text with RSV = 1 → fail 1002, no echo', async () => {
    const c = await server.connect();
    c.send(OP.TEXT, HELLO, { rsv: 1 });
    await expectFail(c, 1002);
  });

  test('3.2 text, then text with RSV = 2, then ping (one write) → echo, then fail 1002, no pong', async () => {
    const c = await server.connect();
    c.sendRaw(
      Buffer.concat([
        encodeClientFrame(OP.TEXT, HELLO),
        encodeClientFrame(OP.TEXT, HELLO, { rsv: 2 }),
        encodeClientFrame(OP.PING),
      ]),
    );
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });

  test('3.3 text, then text with RSV = 3, then ping (a write per frame) → echo, then fail 1002, no pong', async () => {
    const c = await server.connect();
    await sendEach(c, [
      encodeClientFrame(OP.TEXT, HELLO),
      encodeClientFrame(OP.TEXT, HELLO, { rsv: 3 }),
      encodeClientFrame(OP.PING),
    ]);
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });

  test('3.4 text, then text with RSV = 4, then ping, sent byte by byte → echo, then fail 1002, no pong', async () => {
    const c = await server.connect();
    await sendChopped(
      c,
      Buffer.concat([
        encodeClientFrame(OP.TEXT, HELLO),
        encodeClientFrame(OP.TEXT, HELLO, { rsv: 4 }),
        encodeClientFrame(OP.PING),
      ]),
      1,
    );
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });

  test('3.5 binary with RSV = 5 → fail 1002, no echo', async () => {
    const c = await server.connect();
    c.send(OP.BINARY, Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]), { rsv: 5 });
    await expectFail(c, 1002);
  });

  test('3.6 ping with RSV = 6 → fail 1002, no pong', async () => {
    const c = await server.connect();
    c.send(OP.PING, Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]), { rsv: 6 });
    await expectFail(c, 1002);
  });

  test('3.7 close with RSV = 7 → fail 1002 (not a clean 1000 echo)', async () => {
    const c = await server.connect();
    c.send(OP.CLOSE, closePayload(1000), { rsv: 7 });
    await expectFail(c, 1002);
  });
});

/**
 * The full matrix (beyond Autobahn): every RSV value 1–7 on every frame type. Each case first
 * sends a valid message whose echo must arrive before the failure.
 */
describe('3.8 every RSV value on every frame type', () => {
  const kinds: { name: string; frames(rsv: number): Buffer }[] = [
    { name: 'text', frames: (rsv) => encodeClientFrame(OP.TEXT, 'bad', { rsv }) },
    { name: 'binary', frames: (rsv) => encodeClientFrame(OP.BINARY, Buffer.from([1, 2, 3]), { rsv }) },
    {
      name: 'continuation',
      frames: (rsv) =>
        Buffer.concat([encodeClientFrame(OP.TEXT, 'frag', { fin: false }), encodeClientFrame(OP.CONT, 'ment', { rsv })]),
    },
    { name: 'ping', frames: (rsv) => encodeClientFrame(OP.PING, 'ping', { rsv }) },
    { name: 'pong', frames: (rsv) => encodeClientFrame(OP.PONG, 'pong', { rsv }) },
    { name: 'close', frames: (rsv) => encodeClientFrame(OP.CLOSE, closePayload(1000, 'bye'), { rsv }) },
  ];
  let n = 0;
  for (const kind of kinds) {
    for (let rsv = 1; rsv <= 7; rsv++) {
      n++;
      test(`3.8.${n} ${kind.name} with RSV = ${rsv} after a valid text → echo, then fail 1002`, async () => {
        const c = await server.connect();
        c.sendRaw(Buffer.concat([encodeClientFrame(OP.TEXT, HELLO), kind.frames(rsv), encodeClientFrame(OP.PING, 'after')]));
        await expectEcho(c, OP.TEXT, HELLO);
        await expectFail(c, 1002);
      });
    }
  }

  test('3.9 RSV1 after the client offered permessage-deflate that the server did not accept → fail 1002', async () => {
    // An offered extension is not a negotiated one (RFC 6455 §9.1): only what the 101 names counts.
    const c = await server.connect('/echo', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
    expect(c.headers['sec-websocket-extensions']).toBeUndefined();
    c.send(OP.TEXT, HELLO);
    c.send(OP.TEXT, HELLO, { rsv: 4 });
    await expectEcho(c, OP.TEXT, HELLO);
    await expectFail(c, 1002);
  });
});
