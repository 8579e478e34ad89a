/**
 * Type-level tests of attach(): it takes what emits 'upgrade' (http, https and http2 servers, and
 * the server types frameworks hand out), never an app. tsc runs this file; every expected error
 * below was checked to fail for the reason its comment gives.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import type { ViteDevServer } from 'vite';
import { Behavior, createWebSocketHandler, type UpgradeServer } from '../../src/index.js';

class Echo extends Behavior {}
const sockets = createWebSocketHandler({ '/echo': Echo });

export function servers(vite: ViteDevServer): void {
  sockets.attach(http.createServer());
  sockets.attach(https.createServer({}));
  sockets.attach(http2.createSecureServer({ allowHTTP1: true })); // RFC 8441 streams, and 'upgrade' for HTTP/1.1 clients
  sockets.attach(http2.createServer()); // cleartext HTTP/2 (h2c): RFC 8441 streams
  const app = express();
  sockets.attach(app.listen(0)); // Express: listen() returns the http.Server
  sockets.attach(http.createServer(app));
  const koa = new Koa();
  sockets.attach(koa.listen(0)); // Koa: the same
  sockets.attach(http.createServer(koa.callback()));
  const fastify = Fastify();
  sockets.attach(fastify.server); // Fastify: its server exists before listen()
  sockets.attach(serve({ fetch: new Hono().fetch, port: 0 })); // @hono/node-server: http | http2 server
  if (vite.httpServer) sockets.attach(vite.httpServer); // Vite: http.Server | Http2SecureServer
  sockets.detach(vite.httpServer ?? undefined);

  // @ts-expect-error: an Express app is a request handler, not a server: it never emits 'upgrade'
  sockets.attach(app);
  // @ts-expect-error: a Koa app is not a server either
  sockets.attach(koa);
  // @ts-expect-error: nor is a Fastify instance (pass fastify.server)
  sockets.attach(fastify);
  // @ts-expect-error: nor a Vite dev server (pass vite.httpServer)
  sockets.attach(vite);
  // @ts-expect-error: nor any object
  sockets.attach({});
  // @ts-expect-error: nor a plain EventEmitter
  sockets.attach(new EventEmitter());
}

export type Accepted = [http.Server, https.Server, http2.Http2Server, http2.Http2SecureServer] extends UpgradeServer[] ? true : false;
export const accepted: Accepted = true;
