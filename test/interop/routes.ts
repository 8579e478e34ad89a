/**
 * Server-side behaviors shared by the interop suites (undici, Python): each records what it saw
 * in `log`, so a test can assert the server's view beside the client's.
 */
import type { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { Behavior, HandshakeRejection } from '../../src/index.js';
import { sleep } from '../helpers/server.js';

export interface Log {
  opens: string[];
  closes: { tag: string; code: number; reason: string }[];
  texts: string[];
  binaries: Buffer[];
  pings: string[];
  pongs: string[];
}
export const log: Log = { opens: [], closes: [], texts: [], binaries: [], pings: [], pongs: [] };

export function resetLog(): void {
  for (const list of Object.values(log) as unknown[][]) list.length = 0;
}

/** Echoes text and binary; records opens, messages, pings and closes under its `tag`. */
export class Echo extends Behavior {
  tag = 'echo';
  override onOpen(): void {
    log.opens.push(this.tag);
  }
  override onText(text: string): void {
    log.texts.push(text);
    this.sendText(text);
  }
  override onBinary(bytes: Buffer): void {
    log.binaries.push(bytes);
    this.sendBinary(bytes);
  }
  override onPing(data: Buffer): void {
    log.pings.push(data.toString('utf8'));
  }
  override onClose(code: number, reason: string): void {
    log.closes.push({ tag: this.tag, code, reason });
  }
}

/** Text commands drive the server side of each close path and the server ping. */
export class Control extends Echo {
  override tag = 'control';
  override onText(text: string): void {
    if (text === 'close') this.close(4001, 'bye');
    else if (text === 'terminate') this.terminate();
    else if (text === 'ping') this.ping('x');
    else super.onText(text);
  }
  override onPong(data: Buffer): void {
    log.pongs.push(data.toString('utf8'));
    this.sendText(`pong:${data.toString('utf8')}`);
  }
}

/** Accepts subprotocols v2 then v1 (server preference) and says which it chose. */
export class Protocols extends Echo {
  static override protocols = ['v2', 'v1'];
  override tag = 'proto';
  override onOpen(): void {
    super.onOpen();
    this.sendText(`protocol:${String(this.protocol)}`);
  }
}

/** Needs `Authorization: Bearer good`, else 401 with a `WWW-Authenticate` header. */
export class Auth extends Echo {
  override tag = 'auth';
  override verify(request: IncomingMessage): void {
    if (request.headers.authorization !== 'Bearer good') {
      throw new HandshakeRejection(401, 'log in first', { 'WWW-Authenticate': 'Bearer realm="ws"' });
    }
  }
  override onOpen(): void {
    super.onOpen();
    this.sendText('welcome');
  }
}

/** As Auth, decided after an await. */
export class AsyncAuth extends Auth {
  override tag = 'async-auth';
  override async verify(request: IncomingMessage): Promise<void> {
    await sleep(20);
    super.verify(request);
  }
}

/** verify() returns false: 403. */
export class Refuse extends Echo {
  override tag = 'refuse';
  override verify(): boolean {
    return false;
  }
}

/** Reports what the server saw of the request as JSON. */
export class Info extends Behavior<{ room: string }> {
  override onOpen(): void {
    this.sendText(
      JSON.stringify({
        params: this.params,
        query: Object.fromEntries(this.query),
        url: this.request.url,
        origin: this.origin ?? null,
        route: this.route,
      }),
    );
  }
}

/** Info on a wildcard route. */
export class Files extends Info {}
