// Issue 13: the ws face at the type level (tsc runs this file; nothing executes it). @types/ws is
// the reference shape: code typed against ws, and the three libraries' signatures, take ours.
import type { IncomingMessage } from 'node:http';
import type * as ws from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { applyWSSHandler, getWSConnectionHandler } from '@trpc/server/adapters/ws';
import { initTRPC } from '@trpc/server';
import { setupWSConnection } from '@y/websocket-server/utils';
import { buildSchema } from 'graphql';
import { Behavior, createWebSocketHandler } from '../../src/index.js';
import WebSocketDefault, {
  type CloseEvent,
  type MessageEvent,
  type RawData,
  WebSocket,
  WebSocketServer,
  type WsRouteClass,
  wsRoute,
} from '../../src/compat/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const equal = <T extends true>(value?: T): T | undefined => value;

// Ours are assignable to ws's: a server where a ws WebSocketServer is taken, a socket where a ws WebSocket is.
declare const wss: WebSocketServer;
declare const socket: WebSocket;
const asWsServer: ws.WebSocketServer = wss;
const asWsSocket: ws.WebSocket = socket;
const asWsClients: Set<ws.WebSocket> = wss.clients;
void asWsServer;
void asWsSocket;
void asWsClients;
equal<Equal<typeof WebSocketDefault, typeof WebSocket>>(true);

// The three libraries, as their READMEs mount them: no casts.
const schema = buildSchema('type Query { hello: String }');
useServer({ schema }, wss);
const t = initTRPC.create();
const router = t.router({ hello: t.procedure.query(() => 'world') });
applyWSSHandler({ wss, router });
const onConnection = getWSConnectionHandler({ wss, router });
wss.on('connection', onConnection);
wss.on('connection', (conn, request) => setupWSConnection(conn, request));
wss.on('connection', setupWSConnection);

// A route table mixes ws routes and Behavior routes.
class Chat extends Behavior {}
const route: WsRouteClass = wsRoute((server) => useServer({ schema }, server));
createWebSocketHandler({ '/graphql': route, '/trpc': wsRoute(wss, { maxPayload: 1 << 16 }), '/chat': Chat });

// The events are typed as in @types/ws.
wss.on('connection', (client, request) => {
  const r: IncomingMessage = request;
  void r;
  client.on('message', (data, isBinary) => {
    const d: RawData = data;
    const b: boolean = isBinary;
    void d;
    void b;
    client.send(data, { binary: isBinary }); // RawData, as ws code writes it
  });
  client.on('close', (code, reason) => {
    const c: number = code;
    const text: string = reason.toString();
    void c;
    void text;
  });
  client.once('pong', (data) => void data.length);
  client.onmessage = (event: MessageEvent) => void event.data;
  client.addEventListener('close', (event: CloseEvent) => void event.wasClean);
  client.send('text', (error) => void error);
  client.ping();
  client.close(1000, 'bye');
  const state: 0 | 1 | 2 | 3 = client.readyState;
  void state;
  equal<Equal<typeof client.OPEN, 1>>(true);
  equal<Equal<typeof client.binaryType, 'nodebuffer' | 'arraybuffer' | 'fragments'>>(true);
  // @ts-expect-error: not a binaryType ws knows
  client.binaryType = 'blob';
  // @ts-expect-error: a close code is a number
  client.close('1000');
  // @ts-expect-error: readyState is read-only
  client.readyState = 3;
  // @ts-expect-error: send() takes no object that is not bytes
  client.send({ hello: 1 });
});

// @ts-expect-error: the face does not listen; a port is refused (and throws at run time)
new WebSocketServer({ port: 8080 });
// @ts-expect-error: wsRoute takes a WebSocketServer or a setup function
wsRoute('/graphql');
