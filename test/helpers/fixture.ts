/**
 * The per-file fixture shared by the end-to-end test files: a teardown list run after each test
 * (last registered, first run), time limits that make a hang fail fast, and servers, handlers and
 * clients that register their own teardown.
 *
 * Call `useFixture()` once at the top level of a test file: vitest attaches the `afterEach` it
 * registers to that file, and each call gets its own teardown list.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect } from 'vitest';
import { Behavior, type HandlerOptions, type Logger, type Routes, type WebSocketHandler, createWebSocketHandler } from '../../src/index.js';
import { type HttpAnswer, RawClient } from './raw.js';
import { type TestServer, startServer } from './server.js';

export type Cleanup = () => Promise<void> | void;

/** Rejects if `promise` takes longer than `ms`: a hang fails fast instead of at the test timeout. */
export function within<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** For teardown: waits at most 3 s and never throws (the test itself asserts what matters). */
export function bounded(promise: Promise<unknown>): Promise<void> {
  return within(promise, 3000, 'teardown').then(
    () => {},
    () => {},
  );
}

export interface Mounted {
  handler: WebSocketHandler;
  server: http.Server;
  port: number;
}

export interface Fixture {
  /** Runs `cleanup` after the current test, before anything registered earlier. */
  defer(cleanup: Cleanup): void;
  /** Destroys `thing` after the current test; returns it. */
  keep<T extends { destroy(): void }>(thing: T): T;
  /** A standalone test server (see startServer), closed after the test. */
  serve(routes: Routes, options?: HandlerOptions): Promise<TestServer>;
  /** A handler with quiet logs unless overridden, closed (300 ms timeout) after the test. */
  handlerFor(routes: Routes, options?: HandlerOptions): WebSocketHandler;
  /** A handler attached to a fresh http.Server on 127.0.0.1 whose app answers 'app'; both closed after the test. */
  mount(routes: Routes, options?: HandlerOptions): Promise<Mounted>;
  /** A raw client through a real handshake, destroyed after the test. */
  connect(port: number, path: string, headers?: Record<string, string>): Promise<RawClient>;
  /** A promise the test opens when it likes (a verify() or hook waiting on it), opened at teardown at the latest. */
  gate(): { wait: Promise<void>; open: () => void };
}

/** Registers this file's `afterEach` teardown and returns the helpers that feed it. */
export function useFixture(): Fixture {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f();
  });

  const defer = (cleanup: Cleanup): void => {
    cleanups.push(cleanup);
  };

  const keep = <T extends { destroy(): void }>(thing: T): T => {
    defer(() => thing.destroy());
    return thing;
  };

  const handlerFor = (routes: Routes, options: HandlerOptions = {}): WebSocketHandler => {
    const handler = createWebSocketHandler(routes, { logLevel: 'silent', ...options });
    defer(() => bounded(handler.close({ timeout: 300 })));
    return handler;
  };

  return {
    defer,
    keep,
    handlerFor,
    async serve(routes, options = {}) {
      const s = await startServer(routes, options);
      defer(() => bounded(s.close()));
      return s;
    },
    async mount(routes, options = {}) {
      const server = http.createServer((_req, res) => res.end('app'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      defer(() =>
        bounded(
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
        ),
      );
      const handler = handlerFor(routes, options).attach(server);
      return { handler, server, port: (server.address() as AddressInfo).port };
    },
    async connect(port, path, headers = {}) {
      return keep(await RawClient.connect(port, path, headers));
    },
    gate() {
      let open!: () => void;
      const wait = new Promise<void>((resolve) => {
        open = resolve;
      });
      defer(() => open());
      return { wait, open };
    },
  };
}

export interface LogCall {
  level: keyof Logger;
  message: string;
  details: unknown[];
}

/** A Logger that records every call, in order. */
export function fakeLogger(): { calls: LogCall[]; logger: Logger } {
  const calls: LogCall[] = [];
  const rec =
    (level: keyof Logger) =>
    (message: string, ...details: unknown[]): void => {
      calls.push({ level, message, details });
    };
  return { calls, logger: { error: rec('error'), warn: rec('warn'), info: rec('info'), debug: rec('debug') } };
}

/** A refusal is one complete HTTP response: its status, `Connection: close`, a correct `Content-Length`, then the socket closed. */
export function expectCompleteRejection(answer: HttpAnswer, status: number): void {
  expect(answer.status).toBe(status);
  expect(answer.closed).toBe(true);
  expect(answer.headers['connection']).toBe('close');
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
}

/** Echoes every text message back. */
export class Echo extends Behavior {
  override onText(text: string): void {
    this.sendText(text);
  }
}

/** Sends `text` and expects it back in one text frame. */
export async function echoes(client: RawClient, text: string): Promise<void> {
  client.send(0x1, text);
  const f = await client.nextFrame(2000);
  expect(f.opcode).toBe(0x1);
  expect(f.payload.toString()).toBe(text);
}
