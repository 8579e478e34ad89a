/**
 * The route table at run time: what the types promise (test/types/routes.check.ts) holds when
 * connections open, and what JavaScript callers (and loose tables) can still get wrong is refused
 * when the handler is built, with a message that names the route and what to write. A route
 * mapped to a class that is not a Behavior used to be accepted and crash the whole process at its
 * first upgrade ("Cannot write private member #rawQuery").
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { Behavior, type RouteParams, type Routes, createWebSocketHandler } from '../../src/index.js';
import { connect } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';

const { defer } = useFixture();

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

/** Builds a handler from a table as JavaScript would pass it, and returns what it throws. */
function refusal(routes: unknown): Error {
  try {
    createWebSocketHandler(routes as Routes);
  } catch (error) {
    return error as Error;
  }
  throw new Error('no error');
}

describe('a route value that is not a Behavior class is refused when the handler is built', () => {
  test('a class that does not extend Behavior', () => {
    class Plain {
      onText(): void {}
    }
    const error = refusal({ '/echo': Echo, '/plain': Plain });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(
      "wsmount: route '/plain' maps to 'Plain', which does not extend Behavior: write class X extends Behavior { … } (import { Behavior } from 'wsmount')",
    );
  });

  test('an arrow function', () => {
    expect(refusal({ '/f': () => Echo }).message).toBe(
      "wsmount: route '/f' maps to a function, which does not extend Behavior: write class X extends Behavior { … } (import { Behavior } from 'wsmount')",
    );
  });

  test('an instance instead of its class', () => {
    expect(refusal({ '/echo': new Echo() }).message).toBe("wsmount: route '/echo' maps to an instance of Echo; map it to the class itself: { '/echo': Echo }");
  });

  test.each([
    ['undefined', undefined],
    ['null', null],
    ['string', 'Echo'],
    ['object', { onText() {} }],
  ])('%s', (what, value) => {
    expect(refusal({ '/x': value }).message).toBe(
      `wsmount: route '/x' maps to ${what}, not a Behavior class: write { '/x': X } where class X extends Behavior { … }`,
    );
  });

  test("a class extending another copy's Behavior (two installs of wsmount) is named as such", () => {
    // Stands in for a Behavior class from a second copy of the package: same name, same shape.
    const Foreign = { Behavior: class {
      sendText(): void {}
    } }.Behavior;
    Object.defineProperty(Foreign, 'name', { value: 'Behavior' });
    class Chat extends Foreign {}
    expect(refusal({ '/chat': Chat }).message).toBe(
      "wsmount: route '/chat' maps to 'Chat', which does not extend Behavior: it extends another copy of wsmount's Behavior (two installs in node_modules?); import Behavior from the same 'wsmount' as createWebSocketHandler",
    );
  });

  test('Behavior itself and subclasses of subclasses are accepted', () => {
    class Deeper extends Echo {}
    expect(() => createWebSocketHandler({ '/plain': Behavior, '/echo': Echo, '/deeper': Deeper })).not.toThrow();
  });

  test.each([
    ['undefined', undefined],
    ['null', null],
    ['a class', Echo],
  ])('a table that is %s is refused', (_what, routes) => {
    const error = refusal(routes);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^wsmount: the routes are an object of URL patterns to Behavior classes, like \{ '\/echo': Echo \}, not /);
  });
});

describe('route patterns: every error names the route and says what to write', () => {
  test('a parameter name used twice reads as English', () => {
    expect(refusal({ '/a/:id/:id': Echo }).message).toBe(
      "wsmount: route '/a/:id/:id': the parameter name 'id' is used twice; give each parameter its own name (params holds one value per name)",
    );
  });

  test.each([
    ['echo', "wsmount: route 'echo': a pattern starts with '/', like '/echo'"],
    ['/a?b', "wsmount: route '/a?b': a pattern is a path only, without '?' or '#'; read the query string from this.query in the behavior"],
    ['/a/*/b', "wsmount: route '/a/*/b': '*' takes the rest of the path, so it can only be the last segment, as in '/files/*'"],
    ['/a/b*', "wsmount: route '/a/b*': '*' and ':name' must each be a whole segment between slashes, as in '/files/*' or '/rooms/:id' (the segment here is 'b*')"],
    ['/a/:', "wsmount: route '/a/:': a parameter needs a name after the ':', as in '/rooms/:id'"],
    ['/:*', "wsmount: route '/:*': ':*' is not a parameter; write '*' alone for the rest of the path, or ':name'"],
  ])('%s', (pattern, message) => {
    const error = refusal({ [pattern]: Echo });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(message);
  });

  test('two patterns that differ only in parameter names are one route', () => {
    expect(refusal({ '/rooms/:id': Echo, '/rooms/:room': Echo }).message).toBe(
      "wsmount: route '/rooms/:room' is the same route as '/rooms/:id' (parameter names do not tell routes apart): keep one of them",
    );
  });
});

describe('the typed table at run time', () => {
  class Room extends Behavior<RouteParams<'/rooms/:room'>> {
    override data = { user: '' };
    seenInVerify = '';
    override verify(req: IncomingMessage): void {
      this.seenInVerify = JSON.stringify(this.data); // the declared starting value, before verify sets it
      this.data = { user: String(req.headers['x-user']) };
    }
  }
  class Plain extends Behavior {}

  test("clientsOf(pattern) gives the route's instances with their data and params; broadcast's filter sees them", async () => {
    const sockets = createWebSocketHandler({ '/echo': Echo, '/rooms/:room': Room, '/plain': Plain }, { logLevel: 'silent' });
    defer(() => sockets.close({ timeout: 300 }));
    const ann = await connect(sockets, '/rooms/lobby', { headers: { 'x-user': 'ann' } });
    const bob = await connect(sockets, '/rooms/kitchen', { headers: { 'x-user': 'bob' } });
    const echo = await connect(sockets, '/echo');
    const plain = await connect(sockets, '/plain');
    const rooms = [...sockets.clientsOf('/rooms/:room')];
    expect(rooms.map((c) => [c.params.room, c.data.user, c.seenInVerify]).sort()).toEqual([
      ['kitchen', 'bob', '{"user":""}'],
      ['lobby', 'ann', '{"user":""}'],
    ]);
    expect(sockets.broadcast('to ann', { route: '/rooms/:room', filter: (c) => c.data.user === 'ann' })).toBe(1);
    expect(await ann.nextMessage()).toBe('to ann');
    expect(sockets.broadcast('to all rooms', { route: '/rooms/:room' })).toBe(2);
    expect(await bob.nextMessage()).toBe('to all rooms');
    // A behavior that declares no data gets an empty object of its own (JavaScript may add keys).
    const [p] = sockets.clientsOf('/plain');
    expect(p?.data).toEqual({});
    for (const c of [ann, bob, echo, plain]) await c.close();
  });

  test('a loose table (typed Routes) takes any string at compile time and throws at run time, listing the routes', () => {
    const loose: Routes = { '/echo': Echo, '/rooms/:room': Room };
    const sockets = createWebSocketHandler(loose);
    expect(() => sockets.clientsOf('/room/:room')).toThrow("wsmount: no route /room/:room; the routes are /echo, /rooms/:room");
    expect(() => sockets.broadcast('x', { route: '/rooms/lobby' })).toThrow(/no route \/rooms\/lobby; the routes are/);
  });
});
