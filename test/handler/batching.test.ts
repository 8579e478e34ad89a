/**
 * Write batching across sockets: everything written to *other* sockets while one incoming chunk
 * is handled (a broadcast, a chat relay) is held and handed to each socket in one write when the
 * chunk is done — the DESIGN's "one syscall per batch", extended from the echo to the fan-out.
 * Counted at the recipient's server-side socket: how many times Node's stream called `_write` /
 * `_writev` on it.
 */
import { expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { useFixture } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/server.js';
import { countWrites } from '../helpers/writes.js';
import { encodeClientFrame } from '../helpers/raw.js';

const { mount, connect } = useFixture();

const listeners: Behavior[] = [];
class Listener extends Behavior {
  // The test counts writes on the socket it reaches through the request, after onOpen.
  static override keepRequest = true;
  override onOpen(): void {
    listeners.push(this);
  }
}
class Speaker extends Behavior {
  override onText(text: string): void {
    this.handler.broadcast(text, { route: '/listen' });
  }
}


test('16 messages arriving in one chunk and broadcast to two other sockets reach each of them in one write, in order', async () => {
  listeners.length = 0;
  const { port } = await mount({ '/listen': Listener, '/speak': Speaker }, { pingInterval: 0 });
  const a = await connect(port, '/listen');
  const b = await connect(port, '/listen');
  await waitFor(() => listeners.length === 2, 2000, 'the listeners');
  const writes = listeners.map((l) => countWrites(l.request.socket));
  const speaker = await connect(port, '/speak');
  const sent = Array.from({ length: 16 }, (_, i) => `message ${i}`);
  speaker.sendRaw(Buffer.concat(sent.map((m) => encodeClientFrame(0x1, m))));
  for (const client of [a, b]) {
    const got: string[] = [];
    while (got.length < 16) got.push((await client.nextFrame(2000)).payload.toString());
    expect(got).toEqual(sent);
  }
  await sleep(20);
  expect(writes.map((w) => w.calls)).toEqual([1, 1]);
});

test('a broadcast made outside any incoming chunk (a timer) is written at once', async () => {
  listeners.length = 0;
  const { port, handler } = await mount({ '/listen': Listener }, { pingInterval: 0 });
  const a = await connect(port, '/listen');
  await waitFor(() => listeners.length === 1, 2000, 'the listener');
  const writes = countWrites((listeners[0] as Behavior).request.socket);
  await new Promise<void>((resolve) =>
    setTimeout(() => {
      handler.broadcast('one');
      handler.broadcast('two');
      expect(writes.calls).toBe(2); // nothing held back: no chunk is being handled
      resolve();
    }, 5),
  );
  expect((await a.nextFrame(2000)).payload.toString()).toBe('one');
  expect((await a.nextFrame(2000)).payload.toString()).toBe('two');
});
