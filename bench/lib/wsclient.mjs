// A minimal, fast WebSocket client for the load generator: raw net sockets, pre-built masked
// frames, and a streaming frame parser that validates what comes back (opcode, FIN, length,
// sampled payload bytes) so that a broken server cannot score well.
//
// It is deliberately not a general client: it knows exactly what each job expects to receive.

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MASK_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** A deterministic ASCII payload (valid UTF-8, so it can be sent as text or binary). */
export function payloadOf(size) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = 97 + ((i * 7 + (i >>> 8)) % 26);
  return b;
}

/** Applies the fixed mask key to a copy of `payload`. */
export function maskPayload(payload, key = MASK_KEY) {
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i] ^ key[i & 3];
  return out;
}

/** A masked client frame's header for `len` payload bytes (FIN as `fin`), the mask key included. */
export function clientHeader(opcode, len, fin = true, key = MASK_KEY) {
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) head[1] = 0x80 | len;
  else if (ext === 2) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    head.writeUInt32BE(len >>> 0, 6);
  }
  key.copy(head, 2 + ext);
  return head;
}

/** One complete masked client frame (FIN set). */
export function clientFrame(opcode, payload, key = MASK_KEY) {
  return Buffer.concat([clientHeader(opcode, payload.length, true, key), maskPayload(payload, key)]);
}

/** `frame` repeated `count` times in one buffer, so k pipelined frames are one slice. */
export function repeatFrame(frame, count) {
  const out = Buffer.allocUnsafe(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(out, i * frame.length);
  return out;
}

const CLOSE_1000 = clientFrame(OP.CLOSE, Buffer.from([0x03, 0xe8]));

// A small pool of handshake keys with their expected accept values (the generator should not
// spend its time on SHA-1).
const KEYS = [];
for (let i = 0; i < 64; i++) {
  const key = Buffer.alloc(16, i + 1).toString('base64');
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  KEYS.push({ key, accept });
}
let keyIndex = 0;

const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * The server's answer to an upgrade, from `head` (every byte received so far): null while the
 * response head is incomplete; else `{ error }` (too long, not a 101, a missing or wrong
 * Sec-WebSocket-Accept), or `{ text, rest }`: the head and the bytes after it.
 */
export function upgradeAnswer(head, accept) {
  const end = head.indexOf(CRLF2);
  if (end < 0) return head.length > 8192 ? { error: new Error('handshake response too long') } : null;
  const text = head.subarray(0, end).toString('latin1');
  if (!text.startsWith('HTTP/1.1 101')) return { error: new Error(`handshake refused: ${text.split('\r\n')[0]}`) };
  const m = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*)/i.exec(text);
  if (m === null || m[1].trim() !== accept) return { error: new Error('handshake: missing or wrong Sec-WebSocket-Accept') };
  return { text, rest: head.subarray(end + 4) };
}

/**
 * One client connection. `onFrames(client, k, now)` is called after each TCP chunk with the number
 * of complete data frames it finished (only when k > 0). Failures go to `onError(client, error)`.
 */
export class Client {
  /**
   * @param {object} o
   * @param {boolean} [o.allowMasked] the target is a raw TCP echo: frames come back masked.
   * @param {string} [o.extensions] a Sec-WebSocket-Extensions offer (the permessage-deflate
   *   scenario); the server's answer is kept in `extensionsAnswer` (null when it sent none).
   * @param {string} [o.headers] more request header lines, each ending in CRLF (a browser's,
   *   `BROWSER_HEADERS`).
   */
  constructor(o = {}) {
    this.allowMasked = o.allowMasked === true;
    this.extensionsOffer = o.extensions ?? null;
    this.headers = o.headers ?? '';
    this.extensionsAnswer = null;
    this.socket = null;
    this.open = false;
    this.failed = null;
    // what this client expects (set by the job)
    this.expectOpcode = OP.BINARY;
    this.expectLen = 0;
    this.expected = null; // Buffer compared against payload bytes (wire form: masked for raw)
    this.checkEvery = 16;
    // parser state
    this.hdr = Buffer.alloc(14);
    this.hdrFill = 0;
    this.need = 0;
    this.inPayload = false;
    this.opcode = 0;
    this.checking = false;
    this.checkOff = 0;
    this.ctl = null;
    this.ctlFill = 0;
    this.dataFrames = 0;
    // close handshake
    this.closing = false;
    this.closeFrameSeen = false;
    this.closeCode = 0;
    this.closeWaiter = undefined;
    // job hooks and job state
    this.onFrames = null;
    this.onError = null;
    this.inflight = 0;
    this.received = 0;
    this.times = null;
    this.tHead = 0;
    this.tTail = 0;
    // Jobs that read every message (the fan-out's sequence numbers): onPayload(client, bytes, now)
    // is called per data frame with a copy of its payload, `now` being the chunk's arrival time.
    this.onPayload = null;
    this.payloadBuf = null;
    this.chunkTime = 0;
    this.nextSeq = 0;
    this.group = 0;
    this.chunks = 0; // TCP chunks read (counted for onPayload jobs: messages per chunk shows batching)
  }

  /** TCP connect + upgrade; resolves when the 101 has been validated. */
  connect(port, path, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const { key, accept } = KEYS[keyIndex++ & 63];
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      this.socket = socket;
      let head = null;
      let settled = false;
      const timer = setTimeout(() => finish(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('data', onHandshakeData);
        if (error) {
          socket.destroy();
          reject(error);
        } else resolve(this);
      };
      const onHandshakeData = (chunk) => {
        head = head === null ? chunk : Buffer.concat([head, chunk]);
        const answer = upgradeAnswer(head, accept);
        if (answer === null) return;
        if (answer.error) {
          finish(answer.error);
          return;
        }
        const { text, rest } = answer;
        if (this.extensionsOffer !== null) {
          const ext = /\r\nsec-websocket-extensions:[ \t]*([^\r\n]*)/i.exec(text);
          this.extensionsAnswer = ext === null ? null : ext[1].trim();
        }
        this.open = true;
        socket.on('data', (c) => this.data(c));
        finish(null);
        if (rest.length > 0) this.data(rest);
      };
      socket.on('data', onHandshakeData);
      this.watch(socket, () => settled, finish);
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (this.extensionsOffer !== null ? `Sec-WebSocket-Extensions: ${this.extensionsOffer}\r\n` : '') +
          this.headers.replaceAll('{port}', String(port)) +
          '\r\n',
      );
    });
  }

  /**
   * The socket's 'error' and 'close' listeners: until the handshake has settled (`settled()`),
   * they fail it (`finish(error)`); after, they fail the client, unless it is closing.
   */
  watch(socket, settled, finish) {
    socket.on('error', (error) => {
      if (!settled()) finish(error);
      else if (!this.closing) this.fail(error);
    });
    socket.on('close', () => {
      if (!settled()) finish(new Error('socket closed during handshake'));
      this.open = false;
      if (this.closeWaiter !== undefined) this.closeWaiter();
      else if (!this.closing) this.fail(new Error('connection closed unexpectedly by the server'));
    });
  }

  write(buf) {
    this.socket.write(buf);
  }

  fail(error) {
    if (this.failed !== null) return;
    this.failed = error;
    if (this.onError !== null) this.onError(this, error);
  }

  /** Starts the closing handshake; resolves when the socket is closed (never rejects). */
  close(timeoutMs = 5000) {
    return new Promise((resolve) => {
      const s = this.socket;
      if (s === null || s.destroyed) {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        s.destroy();
      }, timeoutMs);
      this.closeWaiter = () => {
        clearTimeout(timer);
        resolve(this.closeFrameSeen);
      };
      this.closing = true;
      s.write(CLOSE_1000);
    });
  }

  destroy() {
    this.closing = true;
    this.socket?.destroy();
  }

  /** Parses one TCP chunk; calls onFrames with the number of completed data frames. */
  data(chunk) {
    const n = chunk.length;
    let i = 0;
    let done = 0;
    if (this.onPayload !== null) {
      this.chunkTime = performance.now();
      this.chunks++;
    }
    while (i < n) {
      if (this.inPayload) {
        const need = this.need;
        const take = need < n - i ? need : n - i;
        if (this.checking) {
          const off = this.checkOff;
          if (!chunk.subarray(i, i + take).equals(this.expected.subarray(off, off + take))) {
            this.fail(new Error(`payload bytes ${off}..${off + take} of an echoed frame differ from what was sent`));
            return;
          }
          this.checkOff = off + take;
        } else if (this.ctl !== null) {
          chunk.copy(this.ctl, this.ctlFill, i, i + take);
          this.ctlFill += take;
        }
        i += take;
        this.need = need - take;
        if (this.need === 0) {
          this.inPayload = false;
          if (this.endFrame()) done++;
          if (this.failed !== null) return;
        }
        continue;
      }
      // frame header
      let buf;
      let off;
      let hlen;
      if (this.hdrFill === 0 && n - i >= 2) {
        const b1 = chunk[i + 1];
        hlen = 2 + ((b1 & 0x7f) === 126 ? 2 : (b1 & 0x7f) === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (n - i >= hlen) {
          buf = chunk;
          off = i;
        }
      }
      if (buf === undefined) {
        // slow path: a header split across chunks
        this.hdr[this.hdrFill++] = chunk[i++];
        if (this.hdrFill < 2) continue;
        const b1 = this.hdr[1];
        hlen = 2 + ((b1 & 0x7f) === 126 ? 2 : (b1 & 0x7f) === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (this.hdrFill < hlen) continue;
        buf = this.hdr;
        off = 0;
        this.hdrFill = 0;
      } else {
        i += hlen;
      }
      if (!this.startFrame(buf, off)) return;
      if (this.need === 0) {
        this.inPayload = false;
        if (this.endFrame()) done++;
        if (this.failed !== null) return;
      }
    }
    if (done > 0 && this.onFrames !== null) this.onFrames(this, done);
  }

  startFrame(buf, off) {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    if (b0 & 0x70) return this.fail(new Error('server frame has RSV bits set')), false;
    const masked = (b1 & 0x80) !== 0;
    if (masked && !this.allowMasked) return this.fail(new Error('server frame is masked')), false;
    let len = b1 & 0x7f;
    if (len === 126) len = buf.readUInt16BE(off + 2);
    else if (len === 127) len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
    const opcode = b0 & 0x0f;
    this.opcode = opcode;
    this.need = len;
    this.inPayload = len > 0;
    this.checking = false;
    this.ctl = null;
    if (opcode === OP.TEXT || opcode === OP.BINARY || opcode === OP.CONT) {
      if ((b0 & 0x80) === 0 || opcode === OP.CONT) return this.fail(new Error('server fragmented a message (unexpected here)')), false;
      if (opcode !== this.expectOpcode) return this.fail(new Error(`expected opcode ${this.expectOpcode}, got ${opcode}`)), false;
      if (len !== this.expectLen) return this.fail(new Error(`expected a ${this.expectLen}-byte message, got ${len} bytes`)), false;
      if (this.onPayload !== null) {
        if (this.payloadBuf === null || this.payloadBuf.length !== len) this.payloadBuf = Buffer.allocUnsafe(len);
        this.ctl = this.payloadBuf;
        this.ctlFill = 0;
      } else if (this.expected !== null && this.dataFrames % this.checkEvery === 0) {
        this.checking = true;
        this.checkOff = 0;
      }
    } else if (opcode >= 0x8 && opcode <= 0xa) {
      if (len > 125) return this.fail(new Error('control frame over 125 bytes')), false;
      this.ctl = Buffer.allocUnsafe(len);
      this.ctlFill = 0;
    } else {
      return this.fail(new Error(`unknown opcode ${opcode}`)), false;
    }
    return true;
  }

  /** A frame is complete; returns true for a data frame. */
  endFrame() {
    const opcode = this.opcode;
    if (opcode === OP.TEXT || opcode === OP.BINARY) {
      this.dataFrames++;
      this.checking = false;
      if (this.onPayload !== null) {
        this.ctl = null;
        this.onPayload(this, this.payloadBuf, this.chunkTime);
      }
      return true;
    }
    const payload = this.ctl ?? Buffer.alloc(0);
    this.ctl = null;
    if (opcode === OP.PING) {
      if (this.allowMasked) return false; // the raw echo reflects our own frames; never a server ping
      if (!this.closing && this.socket.writable) this.socket.write(clientFrame(OP.PONG, payload));
    } else if (opcode === OP.CLOSE) {
      this.closeFrameSeen = true;
      this.closeCode = payload.length >= 2 ? (this.allowMasked ? maskPayload(payload).readUInt16BE(0) : payload.readUInt16BE(0)) : 1005;
      if (!this.closing) this.fail(new Error(`server sent close ${this.closeCode} unexpectedly`));
      else this.socket.end();
    }
    return false;
  }
}

/**
 * Opens `n` clients with at most `concurrency` handshakes in flight. `make()` builds each client
 * (default: a plain Client).
 */
/**
 * The rest of what Chrome 131 sends with a WebSocket upgrade on Linux (besides Host, Upgrade,
 * Connection, the key and the version), with a short session cookie: what a server keeps per
 * connection when it keeps the headers is measured with these (`heap-breakdown --headers=browser`).
 */
export const BROWSER_HEADERS =
  'Pragma: no-cache\r\nCache-Control: no-cache\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n' +
  'Origin: http://127.0.0.1:{port}\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n' +
  'Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n' +
  'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n';

export async function openMany(n, port, path, { concurrency = 200, allowMasked = false, headers = '', setup, make } = {}) {
  const clients = new Array(n);
  let next = 0;
  let error = null;
  const worker = async () => {
    while (next < n && error === null) {
      const index = next++;
      const c = make ? make() : new Client({ allowMasked, headers });
      if (setup) setup(c);
      try {
        await c.connect(port, path);
      } catch (e) {
        error ??= new Error(`connection ${index + 1} of ${n} failed: ${e.message}`);
        return;
      }
      clients[index] = c;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (error !== null) {
    for (const c of clients) c?.destroy();
    throw error;
  }
  return clients;
}

/** Closes every client with a closing handshake (all at once); returns how many got a close frame back. */
export async function closeMany(clients, timeoutMs = 5000) {
  const acks = await Promise.all(clients.map((c) => (c ? c.close(timeoutMs) : false)));
  return acks.filter(Boolean).length;
}
