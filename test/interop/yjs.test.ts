/**
 * Yjs over wsmount/ws: demo/ws/yjs.js mounts @y/websocket-server's `setupWSConnection` (written
 * for ws) on '/yjs/:doc' with `wsRoute`, beside a plain Behavior route ('/peek/:doc', which reads
 * the server's copy of a document), on one handler and one http.Server. Real y-websocket
 * `WebsocketProvider` clients (over the `ws` package), each with its own Y.Doc, edit one document.
 *
 * The providers run with `disableBc: true`: Node 20 has a global BroadcastChannel, and two
 * providers of one room in one process would otherwise sync through it, never through the server.
 * Every wait is bounded; providers are destroyed and the demo closed after each test.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import type { WebSocketHandler } from '../../src/index.js';
import { within } from '../helpers/fixture.js';
import { startWsDemo, stopWsDemos } from './ws-demos.js';
import { type OpenSocket, openWebSocket } from '../mount/examples.js';

interface YjsDemo {
  server: Server;
  sockets: WebSocketHandler;
  url: string;
  close(): Promise<void>;
}
/** What '/peek/:doc' sends: the server's copy of the document. */
interface Snapshot {
  doc: string;
  editors: number;
  text: string;
}

interface Editor {
  doc: Y.Doc;
  text: Y.Text;
  map: Y.Map<unknown>;
  provider: WebsocketProvider;
  /** Codes of the server-sent closes this provider saw (it does not reconnect after one when `once`). */
  closes: number[];
}

const editors: Editor[] = [];
const peeks: OpenSocket[] = [];

afterEach(async () => {
  // Providers first: left alive they would reconnect (and keep timers) while the server closes.
  for (const e of editors.splice(0)) {
    e.provider.destroy();
    e.doc.destroy();
  }
  for (const p of peeks.splice(0)) p.ws.close();
  await stopWsDemos();
});

function startDemo(): Promise<YjsDemo & { ws: string }> {
  return startWsDemo<YjsDemo>('yjs');
}

/** A y-websocket client with its own Y.Doc on `room`, over the ws package, without BroadcastChannel. */
function editor(app: { ws: string }, room: string, options: { reconnect?: boolean } = {}): Editor {
  const doc = new Y.Doc();
  const closes: number[] = [];
  const provider = new WebsocketProvider(`${app.ws}/yjs`, room, doc, {
    WebSocketPolyfill: WS as unknown as typeof WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
    shouldReconnect: (event) => {
      closes.push(event.code);
      return options.reconnect ?? true;
    },
  });
  const e: Editor = { doc, text: doc.getText('text'), map: doc.getMap('map'), provider, closes };
  editors.push(e);
  return e;
}

/** Resolves once `check()` holds, polling every 10 ms; fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  let stop = false;
  const poll = async (): Promise<void> => {
    while (!stop && !(await check())) await delay(10);
  };
  try {
    await within(poll(), ms, what);
  } finally {
    stop = true;
  }
}

async function synced(...es: Editor[]): Promise<void> {
  await until('the providers to sync', () => es.every((e) => e.provider.synced));
}

/** Opens '/peek/:doc' (the Behavior route) and keeps it open; `read()` asks for a fresh snapshot. */
async function peek(app: { ws: string }, room: string): Promise<{ socket: OpenSocket; first: Snapshot; read(): Promise<Snapshot> }> {
  const socket = await openWebSocket(`${app.ws}/peek/${room}`);
  peeks.push(socket);
  const first = JSON.parse(await socket.next()) as Snapshot;
  return {
    socket,
    first,
    async read() {
      socket.ws.send('again');
      return JSON.parse(await socket.next()) as Snapshot;
    },
  };
}

describe('Yjs (@y/websocket-server) on a wsRoute, y-websocket clients', () => {
  it('two providers on one document converge through the server, and the Behavior route works beside them', async () => {
    const app = await startDemo();
    const room = `notes-${randomUUID()}`;
    const a = editor(app, room);
    const b = editor(app, room);
    await synced(a, b);
    expect(app.sockets.clientsOf('/yjs/:doc').size).toBe(2);

    // Both edit at once: concurrent inserts at 0 and map sets from each side.
    a.text.insert(0, 'Hello');
    b.text.insert(0, 'World');
    a.map.set('from-a', 1);
    b.map.set('from-b', [2, 'two']);
    await until('both documents to converge', () => {
      const t = a.text.toString();
      return t.length === 10 && t === b.text.toString() && a.map.has('from-b') && b.map.has('from-a');
    });
    expect(a.text.toString()).toMatch(/^(HelloWorld|WorldHello)$/);
    expect(a.map.toJSON()).toEqual({ 'from-a': 1, 'from-b': [2, 'two'] });
    expect(b.map.toJSON()).toEqual(a.map.toJSON());
    expect(Y.encodeStateVector(a.doc)).toEqual(Y.encodeStateVector(b.doc));

    // The Behavior route on the same handler, at the same time: the server's copy has both edits.
    const p = await peek(app, room);
    expect(p.first).toEqual({ doc: room, editors: 2, text: a.text.toString() });
    expect(app.sockets.clientsOf('/peek/:doc').size).toBe(1);

    // Awareness goes through the server too.
    a.provider.awareness.setLocalStateField('user', 'ann');
    b.provider.awareness.setLocalStateField('user', 'bob');
    await until("each to see the other's awareness", () => {
      return b.provider.awareness.getStates().get(a.doc.clientID)?.['user'] === 'ann' && a.provider.awareness.getStates().get(b.doc.clientID)?.['user'] === 'bob';
    });

    // A second document is separate (the doc name is the route param).
    const other = editor(app, `${room}-other`);
    await synced(other);
    expect(other.text.toString()).toBe('');
    expect((await p.read()).editors).toBe(2);
  });

  it('a provider that disconnects misses nothing: the other edits meanwhile, and it catches up on reconnect', async () => {
    const app = await startDemo();
    const room = `notes-${randomUUID()}`;
    const a = editor(app, room);
    const b = editor(app, room);
    await synced(a, b);
    b.provider.awareness.setLocalStateField('user', 'bob');
    a.text.insert(0, 'shared;');
    await until('b to get the first edit', () => b.text.toString() === 'shared;');
    await until("a to see b's awareness", () => a.provider.awareness.getStates().has(b.doc.clientID));

    b.provider.disconnect();
    await until('the server to see b leave', () => app.sockets.clientsOf('/yjs/:doc').size === 1);
    await until("a to drop b's awareness", () => !a.provider.awareness.getStates().has(b.doc.clientID));

    // Both edit while b is away.
    a.text.insert(a.text.length, 'a-while-b-away;');
    a.map.set('k', 'from a');
    b.text.insert(0, 'b-offline;');
    const p = await peek(app, room);
    await until("the server's copy to have a's edit", async () => (await p.read()).text === 'shared;a-while-b-away;');
    // b really is away (no BroadcastChannel path): it has not seen a's edit, nor a b's.
    expect(b.text.toString()).toBe('b-offline;shared;');
    expect(b.map.has('k')).toBe(false);
    expect(a.text.toString()).toBe('shared;a-while-b-away;');

    b.provider.connect();
    await until('both to converge after b reconnects', () => a.text.toString() === b.text.toString() && b.map.get('k') === 'from a');
    expect(a.text.toString()).toBe('b-offline;shared;a-while-b-away;');
    expect(Y.encodeStateVector(a.doc)).toEqual(Y.encodeStateVector(b.doc));
    await until("the server's copy to have b's offline edit", async () => (await p.read()).text === a.text.toString());
    expect(app.sockets.clientsOf('/yjs/:doc').size).toBe(2);
  });

  it('sockets.close() sends 1001 to the providers and to the Behavior route, and resolves', async () => {
    const app = await startDemo();
    const room = `notes-${randomUUID()}`;
    // Not reconnecting after a server close: the test ends with nothing left trying.
    const a = editor(app, room, { reconnect: false });
    const b = editor(app, room, { reconnect: false });
    await synced(a, b);
    a.text.insert(0, 'bye');
    await until('b to get the edit', () => b.text.toString() === 'bye');
    const p = await peek(app, room);

    await within(app.sockets.close(), 5000, 'sockets.close()');
    expect(app.sockets.clients.size).toBe(0);
    await until('both providers to see the server close', () => a.closes.length === 1 && b.closes.length === 1);
    expect(a.closes).toEqual([1001]);
    expect(b.closes).toEqual([1001]);
    expect((await within(p.socket.closed, 5000, 'the peek socket to close')).code).toBe(1001);
    expect(a.provider.wsconnected || b.provider.wsconnected).toBe(false);
    expect(a.provider.shouldConnect || b.provider.shouldConnect).toBe(false);
    await within(app.close(), 5000, 'app.close()');
    expect(app.server.listening).toBe(false);
  });
});
