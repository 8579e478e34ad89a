// A minimal, fast HTTP/2 client for the load generator's WebSockets over HTTP/2 (RFC 8441): raw
// net sockets, HTTP/2 framing written by hand (no node:http2 on the generator's side), each
// WebSocket an extended CONNECT stream whose WebSocket frames are parsed and validated by
// lib/wsclient.mjs's Client (the same checks as over HTTP/1.1).
//
// Why not node:http2: the generator must stay cheaper than the server it loads. node:http2 costs
// a JS stream, nghttp2 and a C++/JS crossing per stream write and per DATA frame read, about what
// the server pays; here a pipelined window is one pre-built buffer of DATA frames per stream and
// a TCP chunk is parsed in place.
//
// What it does:
// - Connection: the client preface, then SETTINGS (HEADER_TABLE_SIZE 0, ENABLE_PUSH 0,
//   INITIAL_WINDOW_SIZE = `streamWindow`) and, for a `sessionWindow` above 65,535, a
//   WINDOW_UPDATE on stream 0; it waits for the server's SETTINGS, which must carry
//   SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3), and acknowledges them (and any later
//   SETTINGS, applying an INITIAL_WINDOW_SIZE change to every open stream). PING is answered,
//   GOAWAY, PUSH_PROMISE and a connection error fail every stream.
// - Streams: HEADERS `:method CONNECT`, `:protocol websocket`, `:scheme http`, `:path`,
//   `:authority`, `sec-websocket-version: 13` (HPACK literals without indexing, no Huffman),
//   without END_STREAM; the response must be `:status 200` (RFC 8441 §5). HEADER_TABLE_SIZE 0
//   means the server's HPACK encoder can use the static table only, so the response is decoded
//   by a static-table HPACK decoder that skips Huffman-coded values it does not need (a
//   non-200 status is an error whatever it is). RST_STREAM, END_STREAM or HEADERS after the
//   200 (unless we are closing) fail the stream.
// - Flow control both ways: DATA is sent only within the server's stream and connection
//   windows (a frame that does not fit is split to what is left, like nghttp2 and browsers do;
//   the rest waits in the stream's queue until a WINDOW_UPDATE); received DATA is acknowledged with WINDOW_UPDATE once half a window has
//   been consumed (nghttp2's policy), per stream and for the connection, after each TCP chunk.
// - Every WebSocket message is framed as one masked WebSocket frame in DATA frames of at most
//   16,384 bytes (SETTINGS_MAX_FRAME_SIZE's floor), i.e. one DATA frame per small message, as a
//   browser sends one DATA frame per `WebSocket.send()`.
// - Writes made while a TCP chunk is processed (echoes, WINDOW_UPDATEs, SETTINGS ACKs) leave in
//   one writev (the socket is corked during the chunk).

import { Buffer } from 'node:buffer';
import net from 'node:net';
import { Client, OP, clientFrame } from './wsclient.mjs';

export const DEFAULT_WINDOW = 65_535;
const MAX_FRAME = 16_384;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 };
const S = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6, ENABLE_CONNECT_PROTOCOL: 8 };
const ERR = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];
const errName = (code) => ERR[code] ?? `error ${code}`;

/** A 9-byte frame header followed by `payload`. */
export function frame(type, flags, streamId, payload = Buffer.alloc(0)) {
  const b = Buffer.allocUnsafe(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId & 0x7fffffff, 5);
  payload.copy(b, 9);
  return b;
}

/** `bytes` (WebSocket frames) as consecutive DATA frames of at most 16,384 bytes on `streamId`. */
export function dataFrames(streamId, bytes, endStream = false) {
  const n = Math.max(1, Math.ceil(bytes.length / MAX_FRAME));
  const out = Buffer.allocUnsafe(bytes.length + 9 * n);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const chunk = bytes.subarray(i * MAX_FRAME, Math.min(bytes.length, (i + 1) * MAX_FRAME));
    out.writeUIntBE(chunk.length, o, 3);
    out[o + 3] = T.DATA;
    out[o + 4] = endStream && i === n - 1 ? F.END_STREAM : 0;
    out.writeUInt32BE(streamId, o + 5);
    chunk.copy(out, o + 9);
    o += 9 + chunk.length;
  }
  return out;
}

/**
 * One WebSocket message (a masked client frame of `opcode` and `payload`) as DATA frames on
 * `streamId`, repeated `count` times: k pipelined messages are the first k × unit bytes.
 */
export function dataBatch(streamId, opcode, payload, count) {
  const unit = dataFrames(streamId, clientFrame(opcode, payload));
  const out = Buffer.allocUnsafe(unit.length * count);
  for (let i = 0; i < count; i++) unit.copy(out, i * unit.length);
  return { buffer: out, unitLength: unit.length };
}

function dataHeader(length, flags, streamId) {
  const h = Buffer.allocUnsafe(9);
  h.writeUIntBE(length, 0, 3);
  h[3] = T.DATA;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

function settingsPayload(pairs) {
  const b = Buffer.allocUnsafe(6 * pairs.length);
  pairs.forEach(([id, v], i) => {
    b.writeUInt16BE(id, 6 * i);
    b.writeUInt32BE(v >>> 0, 6 * i + 2);
  });
  return b;
}

function windowUpdate(streamId, increment) {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(increment);
  return frame(T.WINDOW_UPDATE, 0, streamId, p);
}

// ---- HPACK (RFC 7541), just what this client needs -------------------------------------------

function hpackString(s) {
  const b = Buffer.from(s, 'latin1');
  if (b.length >= 127) throw new Error('header value too long for this encoder');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** The extended CONNECT's header block: literals without indexing, no Huffman. */
function connectHeaderBlock(path, authority) {
  return Buffer.concat([
    Buffer.from([0x02]), // :method (static name 2), literal without indexing
    hpackString('CONNECT'),
    Buffer.from([0x00]), // new name
    hpackString(':protocol'),
    hpackString('websocket'),
    Buffer.from([0x86]), // :scheme http (static 6)
    Buffer.from([0x04]), // :path (static name 4)
    hpackString(path),
    Buffer.from([0x01]), // :authority (static name 1)
    hpackString(authority),
    Buffer.from([0x00]),
    hpackString('sec-websocket-version'),
    hpackString('13'),
  ]);
}

const STATUS_BY_INDEX = { 8: '200', 9: '204', 10: '206', 11: '304', 12: '400', 13: '404', 14: '500' };

/**
 * The `:status` of a response header block, decoded with the static table only (the client
 * advertised SETTINGS_HEADER_TABLE_SIZE 0). Throws on anything the decoder cannot accept.
 */
export function statusOf(block) {
  let i = 0;
  const int = (prefixBits) => {
    const max = (1 << prefixBits) - 1;
    let v = block[i++] & max;
    if (v < max) return v;
    let m = 0;
    let b;
    do {
      b = block[i++];
      if (b === undefined) throw new Error('HPACK: truncated integer');
      v += (b & 0x7f) * 2 ** m;
      m += 7;
    } while (b & 0x80);
    return v;
  };
  const str = () => {
    const huffman = (block[i] & 0x80) !== 0;
    const len = int(7);
    if (i + len > block.length) throw new Error('HPACK: truncated string');
    const s = huffman ? null : block.toString('latin1', i, i + len);
    i += len;
    return s;
  };
  let status;
  while (i < block.length) {
    const b = block[i];
    if (b & 0x80) {
      const idx = int(7);
      if (idx === 0 || idx > 61) throw new Error(`HPACK: index ${idx} outside the static table (the dynamic table is 0 bytes)`);
      if (idx >= 8 && idx <= 14) status = STATUS_BY_INDEX[idx];
    } else if ((b & 0xe0) === 0x20) {
      if (int(5) !== 0) throw new Error('HPACK: dynamic table size update above the advertised 0');
    } else {
      const idx = int((b & 0xc0) === 0x40 ? 6 : 4);
      if (idx > 61) throw new Error(`HPACK: name index ${idx} outside the static table`);
      const name = idx === 0 ? str() : null;
      const value = str();
      if ((idx >= 8 && idx <= 14) || name === ':status') status = value ?? '(Huffman-coded, not 200)';
    }
  }
  return status;
}

// ---- a WebSocket on an extended CONNECT stream -------------------------------------------------

/**
 * One WebSocket over HTTP/2: the frame parser and checks of wsclient's Client, fed with the
 * payload of each DATA frame. `write(wsBytes)` frames raw WebSocket bytes as DATA; `writeData()`
 * takes bytes already framed as DATA frames for this stream (pre-built batches).
 */
export class H2Stream extends Client {
  constructor(o = {}) {
    super(o);
    this.session = null;
    this.id = 0;
    this.sendWindow = 0;
    this.recvUnacked = 0;
    this.queue = [];
    this.qOff = 0;
    this.fragLeft = 0; // payload bytes of a split DATA frame still to send
    this.fragFlags = 0;
    this.blocked = false;
    this.localEnded = false;
    this.remoteEnded = false;
    this.reset = false;
    this.responded = null; // (error | null) => void while the CONNECT awaits its response
    this.dirty = false;
    // what wsclient's Client calls on its `socket` (a PONG, the end after the close handshake)
    const self = this;
    this.socket = {
      get writable() {
        return !self.localEnded && !self.reset && !self.session.dead;
      },
      get destroyed() {
        return self.reset || (self.localEnded && self.remoteEnded);
      },
      write: (b) => self.write(b),
      end: () => self.endLocal(),
      destroy: () => self.cancel(),
    };
  }

  /** Raw WebSocket bytes, framed here. */
  write(bytes) {
    if (this.localEnded || this.reset) return;
    this.writeData(dataFrames(this.id, bytes));
  }

  /** Whole DATA frames for this stream, sent within the flow-control windows. */
  writeData(buf) {
    if (this.localEnded || this.reset) return;
    this.queue.push(buf);
    if (!this.blocked) this.session.flush(this);
  }

  endLocal() {
    if (this.localEnded || this.reset) return;
    this.writeData(frame(T.DATA, F.END_STREAM, this.id));
    this.localEnded = true;
    this.maybeClosed();
  }

  cancel() {
    this.closing = true;
    if (this.reset || (this.localEnded && this.remoteEnded)) return;
    this.reset = true;
    this.queue.length = 0;
    this.session.rst(this, 8);
    this.maybeClosed();
  }

  destroy() {
    this.cancel();
  }

  maybeClosed() {
    if (this.open && (this.reset || (this.localEnded && this.remoteEnded))) {
      this.open = false;
      this.session.streams.delete(this.id);
      if (this.closeWaiter !== undefined) this.closeWaiter();
      else if (!this.closing) this.fail(new Error('the stream closed unexpectedly'));
    }
  }

  /** Closing handshake (close 1000, the server's close frame, END_STREAM both ways); never rejects. */
  close(timeoutMs = 5000) {
    return new Promise((resolve) => {
      if (!this.open) {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => this.cancel(), timeoutMs);
      this.closeWaiter = () => {
        clearTimeout(timer);
        resolve(this.closeFrameSeen);
      };
      this.closing = true;
      this.write(CLOSE_1000);
    });
  }
}

const CLOSE_1000 = clientFrame(OP.CLOSE, Buffer.from([0x03, 0xe8]));

// ---- the connection -----------------------------------------------------------------------------

export class H2Session {
  /**
   * @param {object} o
   * @param {number} [o.streamWindow] our SETTINGS_INITIAL_WINDOW_SIZE (default 65,535)
   * @param {number} [o.sessionWindow] our connection receive window (default 65,535)
   * @param {(e: Error) => void} [o.onError] a connection-level failure
   */
  constructor(o = {}) {
    this.streamWindow = o.streamWindow ?? DEFAULT_WINDOW;
    this.sessionWindow = o.sessionWindow ?? DEFAULT_WINDOW;
    this.onError = o.onError ?? null;
    this.socket = null;
    this.streams = new Map();
    this.nextId = 1;
    this.connSend = DEFAULT_WINDOW;
    this.peerInitialWindow = DEFAULT_WINDOW;
    this.peerSettings = {};
    this.connRecvUnacked = 0;
    this.blockedStreams = [];
    this.dirtyStreams = [];
    this.dead = false;
    this.closing = false;
    this.failed = null;
    // parser state
    this.head = Buffer.alloc(9);
    this.headFill = 0;
    this.frameLen = 0;
    this.frameType = 0;
    this.frameFlags = 0;
    this.frameStream = 0;
    this.inFrame = false;
    this.need = 0;
    this.body = null; // non-DATA (or padded DATA) frames are collected whole
    this.bodyFill = 0;
    this.target = null; // the stream of the DATA frame being streamed
    this.headerBlock = null; // HEADERS + CONTINUATION being assembled
    this.headerStream = 0;
    this.chunks = 0; // TCP chunks read
    this.dataFrames = 0; // DATA frames received
    this.stalls = 0; // times a stream had DATA to send and no window left (stream or connection)
    this.windowUpdates = 0; // WINDOW_UPDATE frames received
  }

  /** TCP connect, preface + SETTINGS; resolves once the server's SETTINGS allow extended CONNECT. */
  connect(port, timeoutMs = 10_000) {
    this.port = port;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      this.socket = socket;
      let settled = false;
      const timer = setTimeout(() => finish(new Error(`HTTP/2 connection: no SETTINGS within ${timeoutMs} ms`)), timeoutMs);
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.onSettings = null;
        if (error) {
          this.dead = true;
          socket.destroy();
          reject(error);
        } else resolve(this);
      };
      this.onSettings = () => {
        if (this.peerSettings[S.ENABLE_CONNECT_PROTOCOL] !== 1) finish(new Error('the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)'));
        else finish(null);
      };
      socket.on('data', (chunk) => this.data(chunk));
      socket.on('error', (e) => {
        if (!settled) finish(e);
        else this.fail(e);
      });
      socket.on('close', () => {
        this.dead = true;
        if (!settled) finish(new Error('the HTTP/2 connection closed before the server SETTINGS'));
        if (!this.closing) this.fail(new Error('the HTTP/2 connection was closed by the server'));
        for (const s of [...this.streams.values()]) {
          s.reset = true;
          s.maybeClosed();
        }
        this.closeWaiter?.();
      });
      const out = [
        PREFACE,
        frame(
          T.SETTINGS,
          0,
          0,
          settingsPayload([
            [S.HEADER_TABLE_SIZE, 0],
            [S.ENABLE_PUSH, 0],
            [S.INITIAL_WINDOW_SIZE, this.streamWindow],
          ]),
        ),
      ];
      if (this.sessionWindow > DEFAULT_WINDOW) out.push(windowUpdate(0, this.sessionWindow - DEFAULT_WINDOW));
      socket.write(Buffer.concat(out));
    });
  }

  /** A connection-level failure: every stream fails with it. */
  fail(error) {
    if (this.failed !== null) return;
    this.failed = error;
    this.onError?.(error);
    for (const s of this.streams.values()) if (!s.closing) s.fail(error);
  }

  /** Opens `stream` (an H2Stream) as an extended CONNECT to `path`; resolves at `:status 200`. */
  open(stream, path, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      if (this.dead || this.failed) {
        reject(this.failed ?? new Error('the HTTP/2 connection is closed'));
        return;
      }
      const id = this.nextId;
      this.nextId += 2;
      stream.session = this;
      stream.id = id;
      stream.sendWindow = this.peerInitialWindow;
      this.streams.set(id, stream);
      const timer = setTimeout(() => done(new Error(`no response to the extended CONNECT within ${timeoutMs} ms`)), timeoutMs);
      const done = (error) => {
        clearTimeout(timer);
        stream.responded = null;
        if (error) {
          this.streams.delete(id);
          if (!stream.reset) {
            stream.reset = true;
            this.rst(stream, 8);
          }
          reject(error);
        } else {
          stream.open = true;
          resolve(stream);
        }
      };
      stream.responded = done;
      const block = connectHeaderBlock(path, `127.0.0.1:${this.port}`);
      this.socket.write(frame(T.HEADERS, F.END_HEADERS, id, block));
    });
  }

  rst(stream, code) {
    if (this.dead) return;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code);
    this.socket.write(frame(T.RST_STREAM, 0, stream.id, p));
    this.streams.delete(stream.id);
  }

  /**
   * Sends as much of `stream`'s queue as both windows allow: whole pre-built DATA frames while
   * they fit, then the next one split to what is left of the window (as nghttp2 and browsers do),
   * its remainder sent as further DATA frames when WINDOW_UPDATEs come.
   */
  flush(stream) {
    const q = stream.queue;
    while (q.length > 0) {
      const buf = q[0];
      let off = stream.qOff;
      if (stream.fragLeft > 0) {
        // the rest of a split frame: its payload bytes are at buf[off, off + fragLeft)
        const n = Math.min(stream.sendWindow, this.connSend, stream.fragLeft);
        if (n <= 0) return this.block(stream);
        stream.fragLeft -= n;
        this.socket.write(dataHeader(n, stream.fragLeft === 0 ? stream.fragFlags : 0, stream.id));
        this.socket.write(buf.subarray(off, off + n));
        stream.sendWindow -= n;
        this.connSend -= n;
        off += n;
        stream.qOff = off;
        if (stream.fragLeft > 0) return this.block(stream);
        if (off === buf.length) {
          q.shift();
          stream.qOff = 0;
          continue;
        }
      }
      const start = off;
      let blocked = false;
      while (off < buf.length) {
        const len = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
        if (len > stream.sendWindow || len > this.connSend) {
          blocked = true;
          break;
        }
        stream.sendWindow -= len;
        this.connSend -= len;
        off += 9 + len;
      }
      if (off > start) this.socket.write(start === 0 && off === buf.length ? buf : buf.subarray(start, off));
      if (blocked) {
        const n = Math.min(stream.sendWindow, this.connSend);
        if (n > 0) {
          const len = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
          stream.fragFlags = buf[off + 4];
          stream.fragLeft = len - n;
          this.socket.write(dataHeader(n, 0, stream.id));
          this.socket.write(buf.subarray(off + 9, off + 9 + n));
          stream.sendWindow -= n;
          this.connSend -= n;
          off += 9 + n;
        }
        stream.qOff = off;
        return this.block(stream);
      }
      q.shift();
      stream.qOff = 0;
    }
  }

  block(stream) {
    if (!stream.blocked) {
      stream.blocked = true;
      this.stalls++;
      this.blockedStreams.push(stream);
    }
  }

  /** After a WINDOW_UPDATE or a SETTINGS change: the blocked streams, in the order they blocked. */
  resume() {
    const list = this.blockedStreams;
    if (list.length === 0) return;
    this.blockedStreams = [];
    for (const s of list) {
      s.blocked = false;
      if (!s.reset) this.flush(s);
    }
  }

  /** GOAWAY, then the TCP connection ends; resolves when it is closed. */
  close(timeoutMs = 5000) {
    return new Promise((resolve) => {
      if (this.dead) {
        resolve();
        return;
      }
      this.closing = true;
      const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
      this.closeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const p = Buffer.alloc(8);
      p.writeUInt32BE(Math.max(0, this.lastServerStream ?? 0), 0);
      this.socket.write(frame(T.GOAWAY, 0, 0, p));
      this.socket.end();
    });
  }

  destroy() {
    this.closing = true;
    this.socket?.destroy();
  }

  // ---- reading ----------------------------------------------------------------------------------

  data(chunk) {
    const socket = this.socket;
    socket.cork();
    try {
      this.parse(chunk);
      this.acknowledge();
    } finally {
      socket.uncork();
    }
  }

  parse(chunk) {
    const n = chunk.length;
    this.chunks++;
    let i = 0;
    while (i < n && this.failed === null) {
      if (!this.inFrame) {
        // frame header (9 bytes, maybe split across chunks)
        let h;
        let o;
        if (this.headFill === 0 && n - i >= 9) {
          h = chunk;
          o = i;
          i += 9;
        } else {
          const take = Math.min(9 - this.headFill, n - i);
          chunk.copy(this.head, this.headFill, i, i + take);
          this.headFill += take;
          i += take;
          if (this.headFill < 9) return;
          this.headFill = 0;
          h = this.head;
          o = 0;
        }
        this.frameLen = (h[o] << 16) | (h[o + 1] << 8) | h[o + 2];
        this.frameType = h[o + 3];
        this.frameFlags = h[o + 4];
        this.frameStream = h.readUInt32BE(o + 5) & 0x7fffffff;
        this.need = this.frameLen;
        this.inFrame = true;
        this.target = null;
        this.body = null;
        if (this.frameType === T.DATA && (this.frameFlags & F.PADDED) === 0) {
          this.startData();
          if (this.failed !== null) return;
        } else {
          this.body = Buffer.allocUnsafe(this.frameLen);
          this.bodyFill = 0;
        }
        if (this.need === 0) this.endFrame();
        continue;
      }
      const take = Math.min(this.need, n - i);
      if (this.body !== null) {
        chunk.copy(this.body, this.bodyFill, i, i + take);
        this.bodyFill += take;
      } else if (this.target !== null && take > 0) {
        this.target.data(take === n && i === 0 ? chunk : chunk.subarray(i, i + take));
      }
      i += take;
      this.need -= take;
      if (this.need === 0) this.endFrame();
    }
  }

  /** An unpadded DATA frame: its payload goes to the stream's WebSocket parser as it arrives. */
  startData() {
    const id = this.frameStream;
    this.connRecvUnacked += this.frameLen;
    this.dataFrames++;
    if (id === 0) return this.fail(new Error('DATA on stream 0'));
    const s = this.streams.get(id);
    if (s === undefined) return; // a stream we reset: its data is dropped (but counted above)
    if (s.remoteEnded) return this.fail(new Error(`DATA after END_STREAM on stream ${id}`));
    if (!s.open) return this.fail(new Error(`DATA before the response on stream ${id}`));
    s.recvUnacked += this.frameLen;
    if (!s.dirty) {
      s.dirty = true;
      this.dirtyStreams.push(s);
    }
    this.target = s;
  }

  endFrame() {
    this.inFrame = false;
    const type = this.frameType;
    const flags = this.frameFlags;
    const id = this.frameStream;
    const body = this.body;
    this.body = null;
    if (type === T.DATA) {
      let s = this.target;
      this.target = null;
      if (body !== null) {
        // padded DATA: counted whole, the payload without its padding
        s = this.streams.get(id);
        this.frameLen = body.length;
        this.connRecvUnacked += body.length;
        if (s !== undefined && s.open) {
          s.recvUnacked += body.length;
          if (!s.dirty) {
            s.dirty = true;
            this.dirtyStreams.push(s);
          }
          const pad = body[0];
          if (pad >= body.length) return this.fail(new Error('DATA padding longer than the frame'));
          s.data(body.subarray(1, body.length - pad));
        }
      }
      if (flags & F.END_STREAM && s !== undefined && s !== null) {
        s.remoteEnded = true;
        if (!s.closing) s.fail(new Error(`the server ended stream ${id} (END_STREAM) without a close handshake`));
        s.maybeClosed();
      }
      return;
    }
    switch (type) {
      case T.HEADERS: {
        let p = body;
        let off = 0;
        let end = p.length;
        if (flags & F.PADDED) {
          end -= p[0];
          off = 1;
        }
        if (flags & F.PRIORITY) off += 5;
        this.headerBlock = p.subarray(off, end);
        this.headerStream = id;
        this.headerFlags = flags;
        if (flags & F.END_HEADERS) this.headers();
        return;
      }
      case T.CONTINUATION:
        if (this.headerBlock === null || id !== this.headerStream) return this.fail(new Error('unexpected CONTINUATION'));
        this.headerBlock = Buffer.concat([this.headerBlock, body]);
        if (flags & F.END_HEADERS) this.headers();
        return;
      case T.RST_STREAM: {
        const s = this.streams.get(id);
        const code = body.readUInt32BE(0);
        if (s === undefined) return;
        if (s.responded !== null) {
          s.reset = true;
          s.responded(new Error(`the server reset the extended CONNECT stream (RST_STREAM ${errName(code)})`));
          return;
        }
        s.reset = true;
        if (!s.closing) s.fail(new Error(`the server reset stream ${id} (RST_STREAM ${errName(code)})`));
        s.maybeClosed();
        return;
      }
      case T.SETTINGS: {
        if (id !== 0) return this.fail(new Error('SETTINGS on a stream'));
        if (flags & F.ACK) return;
        for (let o = 0; o + 6 <= body.length; o += 6) {
          const key = body.readUInt16BE(o);
          const v = body.readUInt32BE(o + 2);
          this.peerSettings[key] = v;
          if (key === S.INITIAL_WINDOW_SIZE) {
            const delta = v - this.peerInitialWindow;
            this.peerInitialWindow = v;
            for (const s of this.streams.values()) s.sendWindow += delta;
          }
        }
        this.socket.write(frame(T.SETTINGS, F.ACK, 0));
        this.onSettings?.();
        this.resume();
        return;
      }
      case T.PING:
        if ((flags & F.ACK) === 0) this.socket.write(frame(T.PING, F.ACK, 0, body));
        return;
      case T.GOAWAY: {
        const code = body.readUInt32BE(4);
        if (this.closing && code === 0) return; // the server's answer to our GOAWAY
        return this.fail(new Error(`the server sent GOAWAY ${errName(code)}${body.length > 8 ? `: ${body.toString('latin1', 8)}` : ''}`));
      }
      case T.WINDOW_UPDATE: {
        const inc = body.readUInt32BE(0) & 0x7fffffff;
        this.windowUpdates++;
        if (id === 0) this.connSend += inc;
        else {
          const s = this.streams.get(id);
          if (s !== undefined) s.sendWindow += inc;
        }
        this.resume();
        return;
      }
      case T.PUSH_PROMISE:
        return this.fail(new Error('PUSH_PROMISE although ENABLE_PUSH is 0'));
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  headers() {
    const id = this.headerStream;
    const block = this.headerBlock;
    this.headerBlock = null;
    const s = this.streams.get(id);
    if (s === undefined) return;
    let status;
    try {
      status = statusOf(block);
    } catch (e) {
      return this.fail(e);
    }
    if (s.responded !== null) {
      if (status !== '200') s.responded(new Error(`the server answered the extended CONNECT with :status ${status ?? '(none)'}`));
      else if (this.headerFlags & F.END_STREAM) s.responded(new Error('the server answered 200 with END_STREAM'));
      else s.responded(null);
      return;
    }
    if (!s.closing) s.fail(new Error(`unexpected HEADERS on open stream ${id}`));
  }

  /** WINDOW_UPDATEs for what was consumed, once half a window is (nghttp2's policy). */
  acknowledge() {
    if (this.dead) return;
    const out = [];
    if (this.connRecvUnacked >= this.sessionWindow / 2) {
      out.push(windowUpdate(0, this.connRecvUnacked));
      this.connRecvUnacked = 0;
    }
    const dirty = this.dirtyStreams;
    if (dirty.length > 0) {
      this.dirtyStreams = [];
      for (const s of dirty) {
        s.dirty = false;
        if (s.recvUnacked >= this.streamWindow / 2 && s.open && !s.remoteEnded && !s.reset) {
          out.push(windowUpdate(s.id, s.recvUnacked));
          s.recvUnacked = 0;
        }
      }
    }
    if (out.length === 1) this.socket.write(out[0]);
    else if (out.length > 1) this.socket.write(Buffer.concat(out));
  }
}

/**
 * Opens `n` WebSockets over `sessions` (round-robin), at most `concurrency` extended CONNECTs in
 * flight; `make()` builds each H2Stream (default: a plain one), `setup(stream)` prepares it.
 */
export async function openStreams(n, sessions, path, { concurrency = 200, setup, make } = {}) {
  const streams = new Array(n);
  let next = 0;
  let error = null;
  const worker = async () => {
    while (next < n && error === null) {
      const index = next++;
      const s = make ? make() : new H2Stream();
      if (setup) setup(s);
      try {
        await sessions[index % sessions.length].open(s, path);
      } catch (e) {
        error ??= new Error(`stream ${index + 1} of ${n} failed: ${e.message}`);
        return;
      }
      streams[index] = s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (error !== null) {
    for (const s of streams) s?.destroy();
    throw error;
  }
  return streams;
}
