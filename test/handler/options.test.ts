/**
 * The handler's options are checked when it is built: an unknown key (a misspelling would
 * otherwise be ignored and its default silently kept) throws a TypeError that suggests the
 * nearest valid name, or says where a key that belongs elsewhere goes. The standalone server
 * checks its own keys with the handler's.
 */
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, createWebSocketHandler, memoryBackplane, createWebSocketServer } from '../../src/index.js';

class Echo extends Behavior {}
const routes = { '/echo': Echo };

/** What building a handler with these options throws (the test fails if it does not). */
function thrown(options: unknown, build: (o: HandlerOptions) => unknown = (o) => createWebSocketHandler(routes, o)): Error {
  try {
    build(options as HandlerOptions);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`no error for ${JSON.stringify(options)}`);
}

describe('unknown option keys throw TypeError, naming the nearest valid option', () => {
  test.each([
    ['maxPayloadd', 'maxPayload'],
    ['maxPayLoad', 'maxPayload'],
    ['maxBackPressure', 'maxBackpressure'],
    ['pingIntervall', 'pingInterval'],
    ['pingIntreval', 'pingInterval'],
    ['origin', 'origins'],
    ['maxConection', 'maxConnections'],
    ['maxConnectionPerIp', 'maxConnectionsPerIp'],
    ['ratelimit', 'rateLimit'],
    ['onconnect', 'onConnect'],
    ['onDisconect', 'onDisconnect'],
    ['loglevel', 'logLevel'],
    ['verifyTimout', 'verifyTimeout'],
  ])("'%s' → did you mean '%s'?", (key, near) => {
    const error = thrown({ [key]: 1 });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`wsmount: createWebSocketHandler() has no option '${key}'; did you mean '${near}'?`);
  });

  test('a key like no option lists them all', () => {
    const error = thrown({ timeout: 5000 });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^wsmount: createWebSocketHandler\(\) has no option 'timeout'; the options are origins, maxPayload, /);
    expect(error.message).toContain('onMessage');
  });

  test('an unknown key is refused even when its value is undefined (it is still a misspelling)', () => {
    expect(thrown({ maxPayloadd: undefined }).message).toMatch(/did you mean 'maxPayload'/);
  });

  test("a key that belongs elsewhere says where: the standalone server's options, a behavior's statics", () => {
    expect(thrown({ port: 8080 }).message).toBe(
      "wsmount: createWebSocketHandler() has no option 'port'; it is an option of createWebSocketServer(), the standalone server; a handler you attach to your own server does not listen: give the port to server.listen()",
    );
    expect(thrown({ host: '::' }).message).toMatch(/give the host to server\.listen\(\)/);
    expect(thrown({ onRequest: () => {} }).message).toMatch(/your server already answers plain HTTP requests/);
    expect(thrown({ headersTimeout: 10_000 }).message).toMatch(/set server\.headersTimeout on your server/);
    expect(thrown({ protocols: ['chat'] }).message).toMatch(/a static of the route's Behavior class: static override protocols = \['chat'\]/);
    expect(thrown({ requireProtocol: false }).message).toMatch(/static override requireProtocol = false/);
  });

  test('every option the handler documents is accepted, all at once', () => {
    const all: Required<HandlerOptions> = {
      origins: '*',
      maxPayload: 1,
      perMessageDeflate: { threshold: 0, level: 1 },
      maxFragments: 1,
      maxStreamBytes: 1,
      closeTimeout: 1,
      maxBackpressure: 1,
      backpressure: 'drop',
      pingInterval: 0,
      pongTimeout: 1,
      idleTimeout: 0,
      verifyTimeout: 1,
      maxConnections: 1,
      maxConnectionsPerIp: 1,
      rateLimit: false,
      unclaimedTimeout: 0,
      logger: {},
      logLevel: 'silent',
      onConnect() {},
      onDisconnect() {},
      onMessage() {},
      backplane: memoryBackplane(),
      onSubscription() {},
    };
    expect(() => createWebSocketHandler(routes, all)).not.toThrow();
    expect(() => createWebSocketHandler(routes, {})).not.toThrow();
    expect(() => createWebSocketHandler(routes)).not.toThrow();
  });

  test.each([
    ['null', null],
    ['a number', 1 << 20],
    ['a string', 'maxPayload'],
  ])('options that are %s throw TypeError with an example', (_what, options) => {
    const error = thrown(options);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^wsmount: createWebSocketHandler\(\)'s options are an object like \{ maxPayload: 1 << 20 \}, not /);
    expect(thrown(options, (o) => createWebSocketServer(routes, o)).message).toMatch(/^wsmount: createWebSocketServer\(\)'s options are an object like /);
  });

  test('a bad value still throws RangeError naming the option (the key check runs first, values after)', () => {
    expect(thrown({ maxPayload: -1 })).toBeInstanceOf(RangeError);
    expect(thrown({ maxPayload: -1, maxPayloadd: 1 })).toBeInstanceOf(TypeError);
  });
});

describe('createWebSocketServer checks its own keys together with the handler’s', () => {
  const server = (o: HandlerOptions) => createWebSocketServer(routes, o);

  test('port, host and onRequest are its own: accepted', () => {
    expect(() => createWebSocketServer(routes, { port: 0, host: '127.0.0.1', onRequest: () => {}, maxPayload: 1024 })).not.toThrow();
  });

  test.each([
    ['prot', 'port'],
    ['hots', 'host'],
    ['onrequest', 'onRequest'],
    ['maxPayloadd', 'maxPayload'],
  ])("'%s' → did you mean '%s'? (named as createWebSocketServer's)", (key, near) => {
    const error = thrown({ [key]: 1 }, server);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`wsmount: createWebSocketServer() has no option '${key}'; did you mean '${near}'?`);
  });

  test('the server lists its own options too when nothing is close', () => {
    expect(thrown({ timeout: 1 }, server).message).toMatch(/the options are origins, .*, port, host, onRequest, headersTimeout, requestTimeout, keepAliveTimeout$/);
  });
});

describe("rateLimit: false is off, for the handler option as for a route's static", () => {
  test('accepted and kept as given', () => {
    expect(createWebSocketHandler(routes, { rateLimit: false }).options.rateLimit).toBe(false);
  });

  test('true is refused (a limit is { messages, interval } or false)', () => {
    const error = thrown({ rateLimit: true });
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe('wsmount: rateLimit is { messages, interval } or false (off), not true');
  });
});
