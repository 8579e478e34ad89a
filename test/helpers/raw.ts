/**
 * A raw-socket WebSocket peer for tests, written independently of src/ so that it checks our
 * codec instead of mirroring it. It masks what it sends, parses what it receives, and can send
 * anything at all: bad frames, odd chunking, half handshakes.
 */
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the TCP connection after answering (within the timeout). */
  closed: boolean;
}

export interface SendOptions {
  fin?: boolean;
  /** 3-bit RSV value (RSV1 = 4). */
  rsv?: number;
  /** Mask the frame (default true, as a client must). */
  mask?: boolean;
  /** Force a 16- or 64-bit length field even for short payloads. */
  lengthBits?: 7 | 16 | 64;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Encodes one frame the way a client would (masked by default). */
export function encodeClientFrame(opcode: number, payload: Buffer | string, options: SendOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const fin = options.fin ?? true;
  const rsv = options.rsv ?? 0;
  const mask = options.mask ?? true;
  const n = data.length;
  const bits = options.lengthBits ?? (n < 126 ? 7 : n < 65536 ? 16 : 64);
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (bits === 7) head.push(m | n);
  else if (bits === 16) head.push(m | 126, n >> 8, n & 0xff);
  else {
    head.push(m | 127);
    const big = BigInt(n);
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(i * 8)) & 0xffn));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = (data[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A close frame payload. */
export function closePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = Buffer.from(reason, 'utf8');
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** The Sec-WebSocket-Accept a server must answer to `key` (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export interface ResponseHead {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  /** The head as received, without the blank line that ends it. */
  text: string;
}

/**
 * Gathers what `socket` receives until the blank line that ends an HTTP response head, then
 * removes its 'data' listener and calls `onHead` at once (within that 'data' event, so that no
 * later chunk is missed) with the head and the bytes that followed it.
 */
export function readResponseHead(socket: Duplex, onHead: (head: ResponseHead, rest: Buffer) => void): void {
  let head = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    socket.removeListener('data', onData);
    const text = head.subarray(0, end).toString('latin1');
    onHead({ ...parseHead(text), text }, head.subarray(end + 4));
  };
  socket.on('data', onData);
}

function parseHead(text: string): { status: number; headers: Record<string, string> } {
  const lines = text.split('\r\n');
  const status = Number((lines[0] ?? '').split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers };
}

/** Sends raw request bytes and reads the whole HTTP answer (until close, or `timeout` ms). */
export function rawRequest(port: number, request: string | Buffer, timeout = 3000, host = '127.0.0.1'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks).toString('utf8');
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) {
        if (all.length === 0) resolve({ status: 0, headers: {}, body: '', closed });
        else reject(new Error(`incomplete HTTP response: ${JSON.stringify(all)}`));
        return;
      }
      const { status, headers } = parseHead(all.slice(0, end));
      resolve({ status, headers, body: all.slice(end + 4), closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    socket.on('data', (d) => chunks.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(request);
  });
}

/** A valid upgrade request for `path`, with extra header lines. */
export function upgradeRequest(path: string, extra: Record<string, string> = {}, key = randomBytes(16).toString('base64')): string {
  const headers: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let out = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (v !== '') out += `${k}: ${v}\r\n`;
  return `${out}\r\n`;
}

export class RawClient {
  /** The TCP socket; over HTTP/2 ({@link RawClient.connectH2}) the CONNECT stream, typed as a socket. */
  readonly socket: net.Socket;
  /** Over HTTP/2: the stream carrying the WebSocket (RFC 8441); null over TCP. */
  stream: http2.ClientHttp2Stream | null = null;
  /** The 101 response head. */
  status = 0;
  headers: Record<string, string> = {};
  /** Set once the server has closed (or reset) the TCP connection. */
  tcpClosed = false;
  private buffer: Buffer = Buffer.alloc(0);
  private frames: RawFrame[] = [];
  private waiters: (() => void)[] = [];
  private readonly closedPromise: Promise<void>;

  private constructor(socket: Duplex) {
    // Over HTTP/2 the stream stands in for the socket: tests use write/destroy/events only.
    this.socket = socket as net.Socket;
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.tcpClosed = true;
        resolve();
        this.wake();
      });
    });
    socket.on('error', () => {});
  }

  /** Opens a WebSocket with a real handshake; rejects unless the server answers a valid 101. */
  static async connect(
    port: number,
    path = '/',
    extraHeaders: Record<string, string> = {},
    host = '127.0.0.1',
  ): Promise<RawClient> {
    const socket = net.connect(port, host);
    socket.setNoDelay(true);
    const client = new RawClient(socket);
    const key = randomBytes(16).toString('base64');
    await new Promise<void>((resolve, reject) => {
      readResponseHead(socket, (parsed, rest) => {
        client.status = parsed.status;
        client.headers = parsed.headers;
        if (parsed.status !== 101) {
          reject(new Error(`handshake answered ${parsed.status}`));
          socket.destroy();
          return;
        }
        if (parsed.headers['sec-websocket-accept'] !== acceptFor(key)) {
          reject(new Error('bad Sec-WebSocket-Accept'));
          socket.destroy();
          return;
        }
        client.attach(rest);
        resolve();
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed during handshake')));
      socket.write(upgradeRequest(path, extraHeaders, key));
    });
    return client;
  }

  /**
   * Opens a WebSocket as an HTTP/2 extended CONNECT (RFC 8441) on `session` (or on a new h2c
   * session to `port`, closed when this stream closes); rejects unless the server answers 200.
   * The server ending its stream (its "TCP close") is answered by ending ours, so the stream
   * closes cleanly; `tcpClosed` then means the stream closed.
   */
  static async connectH2(port: number, path = '/', extraHeaders: Record<string, string> = {}, session?: http2.ClientHttp2Session): Promise<RawClient> {
    const own = session === undefined;
    const s = session ?? http2.connect(`http://127.0.0.1:${port}`);
    // A session of our own is ours to guard; a passed one is its owner's (one listener per stream would pile up).
    if (own) s.on('error', () => {});
    const stream = s.request(
      { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': path, ':authority': `127.0.0.1:${port}`, 'sec-websocket-version': '13', ...extraHeaders },
      { endStream: false },
    );
    const client = new RawClient(stream);
    client.stream = stream;
    stream.on('end', () => stream.end());
    if (own) stream.on('close', () => s.close());
    await new Promise<void>((resolve, reject) => {
      stream.once('response', (headers) => {
        const status = Number(headers[':status']);
        client.status = status;
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) client.headers[k] = String(v);
        if (status !== 200) {
          reject(new Error(`handshake answered ${status}`));
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        client.attach(Buffer.alloc(0));
        resolve();
      });
      stream.once('error', reject);
      stream.once('close', () => reject(new Error(`stream closed during handshake (rst ${stream.rstCode})`)));
    });
    return client;
  }

  private attach(rest: Buffer): void {
    this.socket.on('data', (d: Buffer) => this.feed(d));
    if (rest.length > 0) this.feed(rest);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Chunks not yet joined to `buffer`, and how long `buffer` must be before parsing can go on. */
  private rest: Buffer[] = [];
  private restBytes = 0;
  private want = 0;

  private feed(d: Buffer): void {
    // Join chunks only once the next frame is complete: a large frame arriving in many small
    // pieces (HTTP/2 DATA frames are 16 KiB) is copied once, not once per piece.
    this.rest.push(d);
    this.restBytes += d.length;
    if (this.buffer.length + this.restBytes < this.want) return;
    this.buffer = this.buffer.length === 0 && this.rest.length === 1 ? d : Buffer.concat([this.buffer, ...this.rest]);
    this.rest = [];
    this.restBytes = 0;
    this.want = 0;
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) break;
      const b0 = b[0] as number;
      const b1 = b[1] as number;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) off += 4;
      if (b.length < off + len) {
        this.want = off + len;
        break;
      }
      let payload = Buffer.from(b.subarray(off, off + len));
      if (masked) {
        const key = b.subarray(off - 4, off);
        payload = Buffer.from(payload.map((x, i) => x ^ (key[i % 4] as number)));
      }
      this.frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
      this.buffer = b.subarray(off + len);
    }
    this.wake();
  }

  /** Writes one frame (masked unless told otherwise). */
  send(opcode: number, payload: Buffer | string = Buffer.alloc(0), options: SendOptions = {}): void {
    this.socket.write(encodeClientFrame(opcode, payload, options));
  }

  /** Writes raw bytes. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Writes bytes in pieces of `size`, waiting `delay` ms between pieces (0: next tick). */
  async sendChunked(bytes: Buffer, size: number, delay = 0): Promise<void> {
    for (let i = 0; i < bytes.length; i += size) {
      if (this.socket.destroyed) return;
      this.socket.write(bytes.subarray(i, i + size));
      await new Promise((r) => (delay > 0 ? setTimeout(r, delay) : setImmediate(r)));
    }
  }

  /** The next frame from the server; rejects after `timeout` ms or if TCP closes first. */
  async nextFrame(timeout = 5000): Promise<RawFrame> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const f = this.frames.shift();
      if (f !== undefined) return f;
      if (this.tcpClosed) throw new Error('connection closed before a frame arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Frames received and not yet read, without waiting. */
  pending(): RawFrame[] {
    return this.frames.splice(0);
  }

  /**
   * Reads frames until a close frame (answering nothing, or echoing it with `echo`: RFC 6455
   * §5.5.1), then waits for TCP close.
   * Returns the close code (undefined for an empty close), reason, and the data frames seen first.
   */
  async expectClose(timeout = 5000, options: { echo?: boolean } = {}): Promise<{ code: number | undefined; reason: string; before: RawFrame[]; tcpClosed: boolean }> {
    const before: RawFrame[] = [];
    const deadline = Date.now() + timeout;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode !== 0x8) {
        before.push(f);
        continue;
      }
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
      const reason = f.payload.subarray(2).toString('utf8');
      if (options.echo === true) this.send(0x8, f.payload);
      const tcpClosed = await this.waitClosed(Math.max(1, deadline - Date.now()));
      return { code, reason, before, tcpClosed };
    }
  }

  /** Waits for the server to close TCP; resolves false on timeout. */
  async waitClosed(timeout = 5000): Promise<boolean> {
    if (this.tcpClosed) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeout);
    });
    const result = await Promise.race([this.closedPromise.then(() => true), timedOut]);
    clearTimeout(timer);
    return result;
  }

  /** Sends a close frame and waits for the echo and TCP close. */
  async close(code = 1000, reason = '', timeout = 5000): Promise<{ code: number | undefined; reason: string; tcpClosed: boolean }> {
    this.send(0x8, closePayload(code, reason));
    return this.expectClose(timeout);
  }

  /** Ends the connection abruptly: destroys TCP, or resets the HTTP/2 stream (CANCEL) and nothing else. */
  destroy(): void {
    if (this.stream !== null) {
      if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    this.socket.destroy();
  }
}
