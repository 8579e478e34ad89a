/**
 * Type-level tests for WebSockets over HTTP/2 (RFC 8441): `request` is either Node request type,
 * `transport` is a closed union, and overrides written for HTTP/1.1 (`verify(req:
 * IncomingMessage)`) still compile. tsc runs this file; each expected error was checked to fail
 * for the reason its comment gives.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { Behavior, type UpgradeRequest, type WebSocketTransport } from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const requestIsEither: Equal<UpgradeRequest, IncomingMessage | Http2ServerRequest> = true;
export const transports: Equal<WebSocketTransport, 'http/1.1' | 'h2' | 'h2c'> = true;

/** Written before HTTP/2 existed: still compiles (method parameters are bivariant). */
export class Legacy extends Behavior {
  override verify(req: IncomingMessage): boolean {
    return req.headers.authorization !== undefined;
  }
}

export class Aware extends Behavior {
  override verify(req: UpgradeRequest): boolean {
    // Members both request types share need no narrowing.
    const host = req.httpVersionMajor === 2 ? req.headers[':authority'] : req.headers.host;
    return typeof host === 'string' && req.url !== undefined && req.socket.remoteAddress !== undefined;
  }
  override onOpen(): void {
    const t: WebSocketTransport = this.transport;
    if (t === 'h2') this.sendText('over HTTP/2 with TLS');
    // @ts-expect-error: 'h3' is not a transport wsmount serves
    if (t === 'h3') this.sendText('never');
    // @ts-expect-error: transport is read-only (a getter)
    this.transport = 'h2c';
  }
}
