/**
 * attach() takes what emits 'upgrade' and nothing else. An Express or Koa app passed by mistake
 * (they have on() and listen(), but never emit 'upgrade') used to be accepted silently, and `{}`
 * failed with "server.listeners is not a function": each now throws a TypeError that names the
 * fix, for JavaScript callers too (the types refuse them already, see test/types/attach.check.ts).
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { describe, expect, test } from 'vitest';
import { Behavior, type UpgradeServer, createWebSocketHandler } from '../../src/index.js';
import { connect } from '../../src/testing/index.js';
import { useFixture } from '../helpers/fixture.js';

const { defer, handlerFor } = useFixture();

/** Waits until `server` (already told to listen, by app.listen()) listens; closes it after the test. */
async function listeningNow(server: http.Server): Promise<void> {
  defer(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
}

class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

/** attach() as a JavaScript caller makes it: no types to stop anything. */
function attachAny(target: unknown): void {
  handlerFor({ '/echo': Echo }).attach(target as UpgradeServer);
}

function listening(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('attach() refuses an app and names the fix', () => {
  test('an Express app (a function): use the server app.listen() returns, or http.createServer(app)', () => {
    const app = express();
    expect(() => attachAny(app)).toThrow(TypeError);
    expect(() => attachAny(app)).toThrow(
      "wsmount: attach() needs the http server, not an app: it was given a function (an Express or Connect app?), which never emits 'upgrade'. app.listen(port) returns the server (Express, Koa), or make one with http.createServer(app)",
    );
    expect(app.listeners('upgrade')).toEqual([]);
  });

  test('a Koa app (it has .callback()): app.listen(port), or http.createServer(app.callback())', () => {
    const app = new Koa();
    expect(() => attachAny(app)).toThrow(TypeError);
    expect(() => attachAny(app)).toThrow(
      'wsmount: attach() needs the http server, not a Koa app (it has .callback()): const server = app.listen(port), or http.createServer(app.callback())',
    );
    expect(app.listeners('upgrade')).toEqual([]);
  });

  test('a Fastify instance: pass app.server', async () => {
    const app = Fastify();
    defer(() => app.close());
    expect(() => attachAny(app)).toThrow(/not the app that holds it: pass its \.server \(Fastify: sockets\.attach\(app\.server\)\)/);
  });

  test("an object holding its server as .httpServer (Vite's dev server): pass .httpServer", () => {
    const vite = { httpServer: http.createServer(), listen() {}, close() {} };
    expect(() => attachAny(vite)).toThrow(/pass its \.httpServer \(Vite: sockets\.attach\(server\.httpServer\)\)/);
  });

  test('any other object with listen() that is not a server', () => {
    expect(() => attachAny({ listen() {}, on() {}, listeners: () => [] })).toThrow(
      /^wsmount: attach\(\) needs the http server, not an object with listen\(\) that is not one \(an app\?\): app\.listen\(port\) returns the server/,
    );
  });

  test.each([
    ['{}', {}],
    ['an object with on() but no listeners()', { on() {} }],
  ])('%s: the same kind of message, not "server.listeners is not a function"', (_what, target) => {
    expect(() => attachAny(target)).toThrow(TypeError);
    expect(() => attachAny(target)).toThrow(
      "wsmount: attach() needs an http or https server (something that emits 'upgrade'), not this object: app.listen(port) returns the server (Express, Koa), or make one with http.createServer(app)",
    );
  });

  test.each([
    ['undefined', undefined],
    ['null', null],
    ['a port number', 8080],
    ['a string', 'server'],
  ])('%s', (what, target) => {
    expect(() => attachAny(target)).toThrow(TypeError);
    expect(() => attachAny(target)).toThrow(new RegExp(`^wsmount: attach\\(\\) needs an http or https server, not ${what === 'a string' ? 'server' : String(target)}: app\\.listen\\(port\\) returns the server`));
  });
});

describe('attach() takes what emits upgrade', () => {
  test('http, https and http2 servers (all are net.Servers)', () => {
    const handler = handlerFor({ '/echo': Echo });
    for (const server of [http.createServer(), https.createServer(), http2.createServer(), http2.createSecureServer({ allowHTTP1: true })]) {
      handler.attach(server);
      expect(server.listeners('upgrade')).toContain(handler.handleUpgrade);
      handler.detach(server);
      expect(server.listeners('upgrade')).not.toContain(handler.handleUpgrade);
    }
  });

  test('another EventEmitter that is not an app (duck-typed: it may emit upgrade)', () => {
    const emitter = new EventEmitter();
    const handler = handlerFor({ '/echo': Echo });
    handler.attach(emitter as unknown as UpgradeServer);
    expect(emitter.listeners('upgrade')).toContain(handler.handleUpgrade);
  });

  test('after the mistake, the fix works: attach(app) throws, attach(app.listen()) serves', async () => {
    const app = express();
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    const sockets = handlerFor({ '/echo': Echo });
    expect(() => sockets.attach(app as unknown as UpgradeServer)).toThrow(/app\.listen\(port\) returns the server/);
    const server = app.listen(0, '127.0.0.1');
    await listeningNow(server);
    sockets.attach(server);
    const port = (server.address() as AddressInfo).port;
    const client = await connect(`ws://127.0.0.1:${port}`, '/echo');
    client.sendText('hello');
    expect(await client.nextMessage()).toBe('hello');
    await client.close();
  });

  test('a Koa app’s server, from app.listen()', async () => {
    const app = new Koa();
    const server = app.listen(0, '127.0.0.1');
    await listeningNow(server);
    const sockets = handlerFor({ '/echo': Echo }).attach(server);
    const client = await connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, '/echo');
    client.sendText('koa');
    expect(await client.nextMessage()).toBe('koa');
    await client.close();
    expect(sockets.clients.size).toBe(0);
  });

  test('detach() of something never attached, even not a server, does nothing', () => {
    const handler = handlerFor({ '/echo': Echo });
    expect(() => handler.detach({} as UpgradeServer)).not.toThrow();
    expect(() => handler.detach(http.createServer())).not.toThrow();
  });
});

test('createWebSocketHandler itself needs no server: the check is attach()’s', async () => {
  const handler = createWebSocketHandler({ '/echo': Echo }, { logLevel: 'silent' });
  const server = http.createServer();
  const port = await listening(server);
  handler.attach(server);
  const client = await connect(`ws://127.0.0.1:${port}`, '/echo');
  await client.close();
  await handler.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
