/**
 * A connection's frame parser is made when bytes arrive and let go by the heartbeat sweep when it
 * holds nothing (src/connection/connection.ts, `FrameParser.atRest`): an idle connection keeps
 * none. What must never happen is losing what it holds: a frame header cut in two, a fragmented
 * message's first frames, half a UTF-8 character, a control frame's partial payload, a streamed
 * message in progress. Each is sent in pieces with five sweeps or more between them (a 30 ms
 * heartbeat sweeps every 3 ms; the test counts them), over a raw socket, and must arrive whole
 * (or fail as the RFC says).
 */
import { expect, test } from 'vitest';
import { Behavior, type StreamedMessage } from '../../src/index.js';
import { internals } from '../../src/behavior-types.js';
import { useFixture } from '../helpers/fixture.js';
import { encodeClientFrame, type RawClient, type RawFrame } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect } = useFixture();

const OPTIONS = { pingInterval: 30, pongTimeout: 60_000 };

const opened: Behavior[] = [];

class Echo extends Behavior {
  override onOpen(): void {
    opened.push(this);
  }
  override onText(text: string): void {
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    this.sendBinary(bytes);
  }
}

class Streamed extends Echo {
  override async onStream(message: StreamedMessage): Promise<void> {
    this.sendText(await message.text());
  }
}

/** The connection's parser slot (private: read here through a cast). */
function parserOf(b: Behavior): unknown {
  const c = internals.connection(b) as unknown as { parserSlot: unknown } | null;
  if (c === null) throw new Error('no connection');
  return c.parserSlot;
}

/** The next frame that is not one of the heartbeat's pings (left unanswered: the pong timeout is long). */
async function nextNonPing(client: RawClient): Promise<RawFrame> {
  for (;;) {
    const frame = await client.nextFrame();
    if (frame.opcode !== 0x9) return frame;
  }
}

async function open(path: string): Promise<{ client: RawClient; server: Behavior; quiet: () => Promise<void> }> {
  opened.length = 0;
  const routes = path === '/s' ? { '/s': Streamed } : { '/e': Echo };
  const { port } = await mount(routes, OPTIONS);
  const client = await connect(port, path);
  await waitFor(() => opened.length === 1, 5000, 'onOpen');
  const server = opened[0] as Behavior;
  // The heartbeat sweeps of this connection, counted: a quiet spell lasts until five have run
  // (a starved event loop makes it longer, never a spell with no sweep).
  const c = internals.connection(server) as unknown as { sweep(now: number): void };
  const sweep = c.sweep.bind(c);
  let sweeps = 0;
  c.sweep = (now: number) => {
    sweeps++;
    sweep(now);
  };
  const quiet = async (): Promise<void> => {
    const from = sweeps;
    await waitFor(() => sweeps >= from + 5, 5000, 'five sweeps');
  };
  return { client, server, quiet };
}

test('a connection that has sent nothing holds no parser; one that spoke lets it go at a sweep and reads on', async () => {
  const { client, server, quiet } = await open('/e');
  await quiet();
  expect(parserOf(server)).toBeNull();
  client.send(0x1, 'first');
  const echo = await nextNonPing(client);
  expect(echo.payload.toString()).toBe('first');
  await waitFor(() => parserOf(server) === null, 5000, 'the parser let go');
  client.send(0x2, Buffer.from([1, 2, 3]));
  const again = await nextNonPing(client);
  expect([again.opcode, [...again.payload]]).toEqual([0x2, [1, 2, 3]]);
});

test('a frame header cut in two outside any message is kept across sweeps', async () => {
  const { client, server, quiet } = await open('/e');
  client.send(0x1, 'first');
  await nextNonPing(client);
  await waitFor(() => parserOf(server) === null, 5000, 'the parser let go');
  // One byte of a 16-bit-length binary frame's header, then quiet: the parser holds it.
  const whole = encodeClientFrame(0x2, Buffer.alloc(300, 5));
  client.sendRaw(whole.subarray(0, 1));
  await quiet();
  expect(parserOf(server)).not.toBeNull();
  client.sendRaw(whole.subarray(1, 3));
  await quiet();
  client.sendRaw(whole.subarray(3));
  const echo = await nextNonPing(client);
  expect([echo.opcode, echo.payload.length, echo.payload.every((b) => b === 5)]).toEqual([0x2, 300, true]);
});

test('a fragmented message, a frame header cut in two and half a UTF-8 character are kept across sweeps', async () => {
  const { client, server, quiet } = await open('/e');
  // 'h' and the first byte of 'é' (C3 A9), then quiet.
  client.send(0x1, Buffer.from([0x68, 0xc3]), { fin: false });
  await quiet();
  expect(parserOf(server)).not.toBeNull();
  const last = encodeClientFrame(0x0, Buffer.from([0xa9, 0x21]), { fin: true });
  client.sendRaw(last.subarray(0, 1));
  await quiet();
  client.sendRaw(last.subarray(1, 4));
  await quiet();
  client.sendRaw(last.subarray(4));
  const echo = await nextNonPing(client);
  expect([echo.opcode, echo.payload.toString('utf8')]).toEqual([0x1, 'hé!']);
  await waitFor(() => parserOf(server) === null, 5000, 'the parser let go');
});

test("a control frame's payload cut in two across sweeps is answered whole", async () => {
  const { client, quiet } = await open('/e');
  const ping = encodeClientFrame(0x9, 'are you there');
  client.sendRaw(ping.subarray(0, 9));
  await quiet();
  client.sendRaw(ping.subarray(9));
  const pong = await nextNonPing(client);
  expect([pong.opcode, pong.payload.toString()]).toEqual([0xa, 'are you there']);
});

test('invalid UTF-8 split across sweeps still fails the connection with 1007', async () => {
  const { client, quiet } = await open('/e');
  // C3 then 28: a two-byte sequence whose second byte is not a continuation byte.
  client.send(0x1, Buffer.from([0xc3]), { fin: false });
  await quiet();
  client.send(0x0, Buffer.from([0x28]), { fin: true });
  const { code } = await client.expectClose();
  expect(code).toBe(1007);
});

test('a streamed message in progress is kept across sweeps', async () => {
  const { client, server, quiet } = await open('/s');
  client.send(0x1, 'one ', { fin: false });
  await quiet();
  expect(parserOf(server)).not.toBeNull();
  client.send(0x0, 'two ', { fin: false });
  await quiet();
  client.send(0x0, 'three', { fin: true });
  const echo = await nextNonPing(client);
  expect(echo.payload.toString()).toBe('one two three');
  await waitFor(() => parserOf(server) === null, 5000, 'the parser let go');
});
