/**
 * The connection lifecycle on node:diagnostics_channel (src/diagnostics.ts): a subscriber sees
 * each event with its fields, in lifecycle order, over real sockets (HTTP/1.1 and HTTP/2), for
 * refusals by status, protocol errors (RFC 6455 §5.1: an unmasked client frame is 1002),
 * backpressure drops and closes, and every close with its code. (That nothing is built without a
 * subscriber cannot be seen from outside: bench/'s observability scenario measures it.)
 */
import { Buffer } from 'node:buffer';
import diagnostics_channel from 'node:diagnostics_channel';
import { afterEach, describe, expect, test } from 'vitest';
import {
  Behavior,
  DIAGNOSTICS_CHANNELS,
  type BackpressureMessage,
  type ConnectionCloseMessage,
  type ConnectionOpenMessage,
  type HandshakeAcceptedMessage,
  type HandshakeRejectedMessage,
  ProtocolError,
  type ProtocolErrorMessage,
  type UpgradeReceivedMessage,
} from '../../src/index.js';
import { connect as connectTo, listen } from '../../src/testing/index.js';
import { Echo, useFixture } from '../helpers/fixture.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect, defer, handlerFor } = useFixture();

type Name = keyof typeof DIAGNOSTICS_CHANNELS;
interface Seen {
  name: Name;
  message: unknown;
}

/** Subscribes to every channel until the test ends; returns the events in arrival order. */
function record(): Seen[] {
  const seen: Seen[] = [];
  for (const name of Object.keys(DIAGNOSTICS_CHANNELS) as Name[]) {
    const listener = (message: unknown): void => {
      seen.push({ name, message });
    };
    diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS[name], listener);
    defer(() => {
      diagnostics_channel.unsubscribe(DIAGNOSTICS_CHANNELS[name], listener);
    });
  }
  return seen;
}

function of<T>(seen: Seen[], name: Name): T[] {
  return seen.filter((s) => s.name === name).map((s) => s.message as T);
}

const made: Behavior[] = [];
/** What had been published when onOpen / onClose ran. */
const atHook: { open: Name[]; close: Name[] } = { open: [], close: [] };
let current: Seen[] = [];

class Watched extends Echo {
  override onOpen(): void {
    made.push(this);
    atHook.open = current.map((s) => s.name);
  }
  override onClose(): void {
    atHook.close = current.map((s) => s.name);
  }
}

afterEach(() => {
  made.length = 0;
  current = [];
});

describe('diagnostics_channel: the connection lifecycle', () => {
  test('the channel names are stable strings under wsmount:', () => {
    expect(DIAGNOSTICS_CHANNELS).toEqual({
      upgrade: 'wsmount:upgrade',
      accepted: 'wsmount:handshake:accepted',
      rejected: 'wsmount:handshake:rejected',
      open: 'wsmount:connection:open',
      protocolError: 'wsmount:connection:protocol-error',
      backpressure: 'wsmount:connection:backpressure',
      close: 'wsmount:connection:close',
    });
  });

  test('an accepted connection: upgrade, accepted, open (before onOpen), then close with the code and reason (before onClose)', async () => {
    const seen = record();
    current = seen;
    const { port } = await mount({ '/e/:room': Watched });
    const client = await connect(port, '/e/lobby?x=1');
    await waitFor(() => made.length === 1, 2000, 'open');
    const b = made[0] as Behavior;
    client.send(0x1, 'hi');
    await client.nextFrame(2000);
    await client.close(4001, 'done');
    await waitFor(() => of(seen, 'close').length === 1, 2000, 'the close event');

    expect(seen.map((s) => s.name)).toEqual(['upgrade', 'accepted', 'open', 'close']);
    const [upgrade] = of<UpgradeReceivedMessage>(seen, 'upgrade');
    expect(upgrade).toMatchObject({ path: '/e/lobby', route: '/e/:room', transport: 'http/1.1' });
    expect(upgrade?.request.url).toBe('/e/lobby?x=1');
    expect(typeof upgrade?.socket.write).toBe('function');
    const [accepted] = of<HandshakeAcceptedMessage>(seen, 'accepted');
    expect(accepted?.client).toBe(b);
    expect(accepted?.request.headers['sec-websocket-version']).toBe('13');
    expect(accepted?.client.params).toEqual({ room: 'lobby' });
    expect(of<ConnectionOpenMessage>(seen, 'open')[0]?.client).toBe(b);
    expect(of<ConnectionCloseMessage>(seen, 'close')).toEqual([{ client: b, code: 4001, reason: 'done' }]);
    expect(atHook.open).toEqual(['upgrade', 'accepted', 'open']);
    expect(atHook.close).toEqual(['upgrade', 'accepted', 'open', 'close']);
  });

  test('refusals: 404 for an unmatched path (route null), 403 from verify(), 426 for a wrong version, each with its status and code', async () => {
    const seen = record();
    class Picky extends Behavior {
      override verify(): boolean {
        return false;
      }
    }
    const { port } = await mount({ '/p': Picky });
    expect((await rawRequest(port, upgradeRequest('/nowhere'))).status).toBe(404);
    expect((await rawRequest(port, upgradeRequest('/p'))).status).toBe(403);
    expect((await rawRequest(port, upgradeRequest('/p', { 'Sec-WebSocket-Version': '8' }))).status).toBe(426);
    await waitFor(() => of(seen, 'rejected').length === 3, 2000, 'three refusals');
    expect(of<UpgradeReceivedMessage>(seen, 'upgrade').map((u) => [u.path, u.route])).toEqual([
      ['/nowhere', null],
      ['/p', '/p'],
      ['/p', '/p'],
    ]);
    expect(of<HandshakeRejectedMessage>(seen, 'rejected').map((r) => [r.route, r.status, r.code, r.request.url])).toEqual([
      [null, 404, 'NOT_FOUND', '/nowhere'],
      ['/p', 403, 'VERIFY_REJECTED', '/p'],
      ['/p', 426, 'BAD_VERSION', '/p'],
    ]);
    expect(of(seen, 'accepted')).toEqual([]);
    expect(of(seen, 'open')).toEqual([]);
  });

  test('a protocol error: the ProtocolError with its close code (1002 for an unmasked frame), then the close with that code', async () => {
    const seen = record();
    const { port } = await mount({ '/e': Watched });
    const client = await connect(port, '/e');
    await waitFor(() => made.length === 1, 2000, 'open');
    client.socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // FIN text "hi", mask bit clear
    await waitFor(() => of(seen, 'close').length === 1, 3000, 'the close event');
    const [failure] = of<ProtocolErrorMessage>(seen, 'protocolError');
    expect(failure?.client).toBe(made[0]);
    expect(failure?.error).toBeInstanceOf(ProtocolError);
    expect(failure?.error.closeCode).toBe(1002);
    expect(of<ConnectionCloseMessage>(seen, 'close')[0]?.code).toBe(1002);
    expect(seen.map((s) => s.name)).toEqual(['upgrade', 'accepted', 'open', 'protocolError', 'close']);
  });

  test("backpressure: each dropped send with the action ('drop' or 'close'), its size, the backlog and the limit", async () => {
    const seen = record();
    class Burst extends Behavior {
      override onText(text: string): void {
        for (const size of text.split(',').map(Number)) this.sendText('x'.repeat(size));
      }
    }
    class Dropper extends Burst {
      static override backpressure = 'drop' as const;
    }
    const handler = handlerFor({ '/close': Burst, '/drop': Dropper }, { maxBackpressure: 150 });
    // In memory, what is sent inside a hook stays buffered until the peer reads, on a later tick.
    const dropping = await connectTo(handler, '/drop');
    dropping.sendText('100,100');
    const closing = await connectTo(handler, '/close');
    closing.sendText('100,100');
    await waitFor(() => of(seen, 'backpressure').length === 2, 2000, 'two drops');
    const events = of<BackpressureMessage>(seen, 'backpressure');
    expect(events.map((e) => [e.client.route, e.action, e.bytes, e.bufferedAmount, e.maxBackpressure])).toEqual([
      ['/drop', 'drop', 102, 102, 150],
      ['/close', 'close', 102, 102, 150],
    ]);
    await waitFor(() => of<ConnectionCloseMessage>(seen, 'close').some((c) => c.code === 1008), 2000, 'the slow consumer closed');
  });

  test('over HTTP/2 (RFC 8441 extended CONNECT), upgrade says h2c and the lifecycle is the same', async () => {
    const seen = record();
    await using server = await listen({ '/e': Echo }, { http2: true });
    const client = await connectTo(server, '/e', { http2: true });
    await client.close();
    await waitFor(() => of(seen, 'close').length === 1, 2000, 'the close event');
    expect(seen.map((s) => s.name)).toEqual(['upgrade', 'accepted', 'open', 'close']);
    expect(of<UpgradeReceivedMessage>(seen, 'upgrade')[0]?.transport).toBe('h2c');
    expect(of<ConnectionCloseMessage>(seen, 'close')[0]?.code).toBe(1000);
  });

  test('wsmount subscribes to none of its channels itself; a subscriber added mid-connection sees only what follows', async () => {
    const { port } = await mount({ '/e': Watched });
    const first = await connect(port, '/e');
    await waitFor(() => made.length === 1, 2000, 'first open');
    for (const name of Object.keys(DIAGNOSTICS_CHANNELS) as Name[]) {
      expect(diagnostics_channel.hasSubscribers(DIAGNOSTICS_CHANNELS[name])).toBe(false);
    }
    const seen = record();
    await first.close(1000);
    await waitFor(() => of(seen, 'close').length === 1, 2000, 'the close event');
    expect(seen.map((s) => s.name)).toEqual(['close']);
  });
});
