/**
 * Type-level tests of the typed route table (tsc runs this file: `tsc -p tsconfig.test.json`).
 * Every `@ts-expect-error` below was checked to fail for the reason its comment gives.
 */
import type { IncomingMessage } from 'node:http';
import {
  Behavior,
  type BroadcastOptions,
  type Client,
  type ClientOf,
  createWebSocketHandler,
  createWebSocketServer,
  type RouteParams,
  type Routes,
  WebSocketHandler,
  type WebSocketServer,
} from '../../src/index.js';
import { connect, listen } from '../../src/testing/index.js';

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// ---- the simple case stays simple: no annotations anywhere ----

class Echo extends Behavior {
  override onText(text: string) {
    this.sendText(text);
  }
}
const simple = createWebSocketHandler({ '/echo': Echo, '/anywhere/:x/*': Echo, '/plain': Behavior });
export const simpleTypes: [
  Equal<typeof simple, WebSocketHandler<{ '/echo': typeof Echo; '/anywhere/:x/*': typeof Echo; '/plain': typeof Behavior }>>,
  Equal<ClientOf<typeof simple extends WebSocketHandler<infer R> ? R : never>, Echo | Behavior>,
  Equal<Echo['data'], unknown>,
] = [true, true, true];

// ---- a typed table: each route's behavior, its data and its params ----

class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  override data = { user: '', joined: 0 };
  override verify(req: IncomingMessage) {
    this.data = { user: String(req.headers['x-user']), joined: Date.now() };
  }
}
class Files extends Behavior<RouteParams<'/files/*'>> {
  override data: { bytes: number } | null = null;
}
const sockets = createWebSocketHandler({ '/echo': Echo, '/rooms/:room': Room, '/files/*': Files });

export const tableTypes: [
  Equal<ReturnType<typeof sockets.clientsOf<'/rooms/:room'>>, ReadonlySet<Room>>,
  Equal<ReturnType<typeof sockets.clientsOf<'/files/*'>>, ReadonlySet<Files>>,
  Equal<typeof sockets.clients, ReadonlySet<Echo | Room | Files>>,
] = [true, true, true];

for (const client of sockets.clientsOf('/rooms/:room')) {
  const user: string = client.data.user; // the route's data type
  const room: string = client.params.room; // the route's params
  void [user, room];
}
for (const client of sockets.clients) {
  if (client instanceof Room) void (client.data.user satisfies string); // a union, narrowed as usual
  // @ts-expect-error: `clients` holds any route's behavior; `user` is Room's alone
  void client.data.user;
}

// broadcast: the filter sees the route's type when `route` is given, the union when it is not.
sockets.broadcast('hi', { route: '/rooms/:room', filter: (c) => c.params.room === 'a' && c.data.user !== '' });
sockets.broadcast('hi', { route: '/files/*', filter: (c) => c.data !== null && c.params['*'].endsWith('.txt') });
sockets.broadcast('hi', { filter: (c) => c instanceof Room || c instanceof Files });
sockets.broadcast('hi');
sockets.broadcast('hi', { route: undefined });

// ---- mistakes the table catches ----

// @ts-expect-error: '/room/:room' is not a pattern of the table (a typo of '/rooms/:room')
sockets.clientsOf('/room/:room');
// @ts-expect-error: a path is not a pattern: clientsOf takes the pattern as written in the table
sockets.clientsOf('/rooms/lobby');
// @ts-expect-error: broadcast's route must be a pattern of the table
sockets.broadcast('hi', { route: '/room/:room' });
// @ts-expect-error: with route '/echo' the filter sees an Echo, whose data is unknown
sockets.broadcast('hi', { route: '/echo', filter: (c) => c.data.user === 'x' });
// @ts-expect-error: without a route the filter sees any client: Room's params are not there
sockets.broadcast('hi', { filter: (c) => c.params.room === 'a' });

class RoomById extends Behavior<RouteParams<'/rooms/:id'>> {}
createWebSocketHandler({
  '/echo': Echo,
  // @ts-expect-error: RoomById reads params.id, '/rooms/:room' gives params.room (the error is on this key)
  '/rooms/:room': RoomById,
});
createWebSocketHandler({
  // @ts-expect-error: Room reads params.room; '/lobby' gives no params
  '/lobby': Room,
});
class TwoParams extends Behavior<RouteParams<'/a/:x/:y'>> {}
// @ts-expect-error: '/a/:x' gives x but not y
createWebSocketHandler({ '/a/:x': TwoParams });
// @ts-expect-error: the constructor checks the table too
new WebSocketHandler({ '/rooms/:room': RoomById });
// More params than the behavior reads is fine: '/rooms/:room/*' gives room and '*'.
createWebSocketHandler({ '/rooms/:room/*': Room, '/orgs/:org/rooms/:room': Room });
// A hand-written Params type works as RouteParams does.
class Hand extends Behavior<{ room: string }> {}
createWebSocketHandler({ '/r/:room': Hand });

class NotABehavior {
  onText() {}
}
// @ts-expect-error: a route maps to a Behavior class, not any class
createWebSocketHandler({ '/x': NotABehavior });
// @ts-expect-error: nor a function
createWebSocketHandler({ '/x': () => Echo });
// @ts-expect-error: nor an instance
createWebSocketHandler({ '/x': new Echo() });

// ---- the loose table still works, with loose types ----

const loose: Routes = { '/echo': Echo, '/rooms/:room': Room };
const looseHandler = createWebSocketHandler(loose);
export const looseTypes: [
  Equal<typeof looseHandler, WebSocketHandler>,
  Equal<ReturnType<typeof looseHandler.clientsOf>, ReadonlySet<Client>>,
  Equal<Client['data'], unknown>,
  Equal<Client['params'], Record<string, string>>,
] = [true, true, true, true];
looseHandler.clientsOf('/anything'); // compiles; throws at run time if the pattern is not a route
looseHandler.broadcast('hi', { route: '/rooms/:room', filter: (c) => c.params.room === 'a' });

// ---- WebSocketHandler without type arguments is any handler ----

const anyHandler: WebSocketHandler = sockets;
const handlers: WebSocketHandler[] = [sockets, simple, looseHandler];
export async function usesTestingHelpers(): Promise<void> {
  const server = await listen(sockets);
  await connect(sockets, '/echo');
  await server.close();
}
export function takesAny(h: WebSocketHandler): number {
  return h.broadcast('x', { route: '/echo' }) + h.clients.size;
}
takesAny(sockets);
export function generic<R extends Routes>(h: WebSocketHandler<R>): WebSocketHandler {
  return h;
}
void [anyHandler, handlers];
const broadcastOptions: BroadcastOptions = { route: '/echo', filter: (c) => c.readyState === 1 };
void broadcastOptions;

// ---- handler-level callbacks see the union of the table's behaviors ----

createWebSocketHandler(
  { '/echo': Echo, '/rooms/:room': Room },
  {
    onConnect(client) {
      const c: Echo | Room = client;
      if (client instanceof Room) void (client.data.user satisfies string);
      void c;
    },
    onMessage: (client, data) => {
      void (client satisfies Echo | Room);
      void (data satisfies string | Buffer);
    },
    onDisconnect(client, code, reason) {
      void [client.id, code, reason];
    },
  },
);

// ---- the standalone server carries the table the same way ----

const standalone: WebSocketServer<{ '/rooms/:room': typeof Room }> = createWebSocketServer({ '/rooms/:room': Room }, { port: 0 });
export const serverTypes: [Equal<ReturnType<typeof standalone.handler.clientsOf<'/rooms/:room'>>, ReadonlySet<Room>>] = [true];
// @ts-expect-error: the standalone server checks params the same way
createWebSocketServer({ '/rooms/:room': RoomById });
const anyServer: WebSocketServer = standalone;
void anyServer;
