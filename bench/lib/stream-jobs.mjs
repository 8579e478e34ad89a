// The load generator's streaming jobs (issue 15: large messages as streams), run by loadgen.mjs:
//
//   streamOpen   opens ONE WebSocket (a raw net socket read through `onread` into one reused
//                1 MiB buffer; the 101 and its Sec-WebSocket-Accept checked) to /upload?bytes=N
//                or /download, and holds it
//   streamRun    moves `bytes` through it, timed, and answers MB/s (1 MB = 1e6 bytes), the server's
//                and the generator's CPU over the transfer and the server's RSS sampled from
//                /proc every 5 ms (run.mjs also reads the kernel's exact peak, VmHWM):
//     upload       the client writes pre-built masked frames (a non-zero mask key, so the server
//                  unmasks every byte), 1 MiB per write() with backpressure ('drain'), as
//                  mode 'one'        one frame of `bytes` (a 10-byte length): ONE message
//                  mode 'fragments'  one message in 64 KiB fragments (BINARY, CONTINUATION…, FIN)
//                  mode 'messages'   bytes / 64 KiB complete binary messages of 64 KiB
//                  timed from the first write to the server's text answer "<bytes> ok", which
//                  it sends once it has read every byte (a server that lost, reordered or did not
//                  unmask bytes answers "bad …": the run fails)
//     download     the client writes one text message (the JSON the target reads: bytes, chunk,
//                  mode/source/fragmentSize) and counts what comes back: frame headers parsed,
//                  opcode/FIN/RSV/mask/fragment sequence checked, every payload byte compared
//                  with what the server was asked to send (lib/stream-data.mjs, memcmp per
//                  piece), and exactly `expectMessages` messages (of `expectMessageSize` bytes
//                  when given) adding up to `bytes`; timed from that write to the last byte
//   streamClose  closing handshake (the raw target has none: its socket is destroyed)

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkDownload, MiB, PATTERN } from './stream-data.mjs';
import { Client, OP, clientFrame, clientHeader, maskPayload, upgradeAnswer } from './wsclient.mjs';

const FRAGMENT = 64 * 1024;
const PAGE = 4096;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The client reads into one reused buffer of this size (net's `onread`): no Buffer per read, reads of up to 1 MiB. */
const READ_BUFFER = 1 << 20;

/** PATTERN masked from its first byte: any 4-aligned slice of it is that slice, masked from its start. */
const MASKED = maskPayload(PATTERN);

/**
 * The upload as a list of buffers to write in order (a buffer may repeat: the same object is
 * written again, never modified), each about 1 MiB.
 */
function uploadPlan(mode, bytes) {
  if (bytes % MiB !== 0) throw new Error('the upload size must be a multiple of 1 MiB');
  const units = bytes / MiB;
  if (mode === 'one') {
    return { first: [clientHeader(OP.BINARY, bytes, true), MASKED], middle: MASKED, last: MASKED, units, frames: 1, messages: 1 };
  }
  // a 1 MiB unit of 64 KiB frames; `kind(i)` says each frame's opcode and FIN
  const unit = (kind) => {
    const parts = [];
    for (let off = 0; off < MiB; off += FRAGMENT) {
      const [opcode, fin] = kind(off);
      parts.push(clientHeader(opcode, FRAGMENT, fin), MASKED.subarray(off, off + FRAGMENT));
    }
    return Buffer.concat(parts);
  };
  const perUnit = MiB / FRAGMENT;
  if (mode === 'messages') {
    const u = unit(() => [OP.BINARY, true]);
    return { first: [u], middle: u, last: u, units, frames: units * perUnit, messages: units * perUnit };
  }
  if (mode === 'fragments') {
    const lastOff = MiB - FRAGMENT;
    if (units === 1) return { first: [unit((off) => [off === 0 ? OP.BINARY : OP.CONT, off === lastOff])], middle: null, last: null, units, frames: perUnit, messages: 1 };
    return {
      first: [unit((off) => [off === 0 ? OP.BINARY : OP.CONT, false])],
      middle: unit(() => [OP.CONT, false]),
      last: unit((off) => [OP.CONT, off === lastOff]),
      units,
      frames: units * perUnit,
      messages: 1,
    };
  }
  throw new Error(`unknown upload mode ${mode}`);
}

/** Resident set size of `pid` in bytes (/proc/<pid>/statm, field 2, pages). */
function rssOf(pid) {
  const s = readFileSync(`/proc/${pid}/statm`, 'latin1');
  const a = s.indexOf(' ');
  return Number(s.slice(a + 1, s.indexOf(' ', a + 1))) * PAGE;
}

/**
 * One client whose parser takes any frame sequence: fragmented messages, text answers, control
 * frames; binary payload bytes are counted and checked, never kept. It reads through net's
 * `onread` into one reused 1 MiB buffer (a download is ~256 MiB through one socket: a Buffer
 * and a 'data' event per 64 KiB read would cost the generator more than the checks), and
 * otherwise behaves as wsclient.mjs's Client (whose close() it uses).
 */
class StreamClient extends Client {
  /** TCP connect + upgrade; resolves when the 101 has been validated. */
  connect(port, path, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const key = Buffer.from(Array.from({ length: 16 }, (_, i) => (i * 37 + port) & 0xff)).toString('base64');
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      let head = null;
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          socket.destroy();
          reject(error);
        } else resolve(this);
      };
      const onRead = (n, buf) => {
        if (this.open) {
          this.data(buf.subarray(0, n));
          return;
        }
        const chunk = Buffer.from(buf.subarray(0, n));
        head = head === null ? chunk : Buffer.concat([head, chunk]);
        const answer = upgradeAnswer(head, accept);
        if (answer === null) return;
        if (answer.error) return finish(answer.error);
        const { rest } = answer;
        head = null;
        this.open = true;
        finish(null);
        if (rest.length > 0) this.data(rest);
      };
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true, onread: { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: onRead } });
      this.socket = socket;
      const timer = setTimeout(() => finish(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
      this.watch(socket, () => settled, finish);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  }

  constructor() {
    super();
    this.hbuf = Buffer.alloc(14);
    this.hfill = 0;
    this.inFrame = false;
    this.frameOpcode = 0;
    this.frameFin = false;
    this.inMessage = false;
    this.msgOpcode = 0;
    this.msgBytes = 0;
    this.text = null;
    // totals
    this.offset = 0; // binary payload bytes received (the download's byte stream)
    this.frames = 0;
    this.messages = 0;
    this.tcpChunks = 0;
    // expectations and hooks (set per job)
    this.checkChunk = 0; // the download's chunk size (0: no byte check)
    this.expectMessageSize = 0;
    this.onMessage = null; // (client, opcode, bytes, text) at each FIN
    this.closeReason = '';
  }

  data(chunk) {
    this.tcpChunks++;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.inFrame) {
        const take = this.need < n - i ? this.need : n - i;
        this.payload(chunk, i, i + take);
        i += take;
        this.need -= take;
        if (this.failed !== null) return;
        if (this.need === 0) this.frameEnd();
        if (this.failed !== null) return;
        continue;
      }
      if (this.hfill === 0 && n - i >= 2) {
        const b1 = chunk[i + 1];
        const hlen = 2 + ((b1 & 0x7f) === 126 ? 2 : (b1 & 0x7f) === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (n - i >= hlen) {
          this.header(chunk, i);
          i += hlen;
          if (this.failed !== null) return;
          if (this.need === 0) this.frameEnd();
          if (this.failed !== null) return;
          continue;
        }
      }
      this.hbuf[this.hfill++] = chunk[i++];
      if (this.hfill < 2) continue;
      const b1 = this.hbuf[1];
      const hlen = 2 + ((b1 & 0x7f) === 126 ? 2 : (b1 & 0x7f) === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (this.hfill < hlen) continue;
      this.hfill = 0;
      this.header(this.hbuf, 0);
      if (this.failed !== null) return;
      if (this.need === 0) this.frameEnd();
      if (this.failed !== null) return;
    }
  }

  header(buf, off) {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    if (b0 & 0x70) return this.fail(new Error('server frame has RSV bits set'));
    if (b1 & 0x80) return this.fail(new Error('server frame is masked'));
    let len = b1 & 0x7f;
    if (len === 126) len = buf.readUInt16BE(off + 2);
    else if (len === 127) len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    this.frameOpcode = opcode;
    this.frameFin = fin;
    this.need = len;
    this.inFrame = true;
    if (opcode === OP.TEXT || opcode === OP.BINARY) {
      if (this.inMessage) return this.fail(new Error('a new message started inside a fragmented message'));
      this.inMessage = true;
      this.msgOpcode = opcode;
      this.msgBytes = 0;
      this.text = opcode === OP.TEXT ? [] : null;
      this.frames++;
    } else if (opcode === OP.CONT) {
      if (!this.inMessage) return this.fail(new Error('a continuation frame outside a message'));
      this.frames++;
    } else if (opcode >= 0x8 && opcode <= 0xa) {
      if (!fin) return this.fail(new Error('fragmented control frame'));
      if (len > 125) return this.fail(new Error('control frame over 125 bytes'));
      this.ctl = Buffer.allocUnsafe(len);
      this.ctlFill = 0;
    } else {
      return this.fail(new Error(`unknown opcode ${opcode}`));
    }
  }

  payload(buf, s, e) {
    const op = this.frameOpcode;
    if (op >= 0x8) {
      buf.copy(this.ctl, this.ctlFill, s, e);
      this.ctlFill += e - s;
      return;
    }
    this.msgBytes += e - s;
    if (this.msgOpcode === OP.TEXT) {
      if (this.msgBytes > 4096) return this.fail(new Error('unexpected large text message'));
      this.text.push(Buffer.from(buf.subarray(s, e)));
      return;
    }
    if (this.checkChunk > 0) {
      const bad = checkDownload(buf, s, e, this.offset, this.checkChunk);
      if (bad !== null) return this.fail(new Error(bad));
    }
    this.offset += e - s;
  }

  frameEnd() {
    this.inFrame = false;
    const op = this.frameOpcode;
    if (op < 0x8) {
      if (!this.frameFin) return;
      this.inMessage = false;
      this.messages++;
      const text = this.msgOpcode === OP.TEXT ? Buffer.concat(this.text).toString() : null;
      if (text === null && this.expectMessageSize > 0 && this.msgBytes !== this.expectMessageSize) {
        return this.fail(new Error(`expected ${this.expectMessageSize}-byte messages, got ${this.msgBytes} bytes`));
      }
      if (this.onMessage !== null) this.onMessage(this, this.msgOpcode, this.msgBytes, text);
      return;
    }
    const payload = this.ctl;
    this.ctl = null;
    if (op === OP.PING) {
      if (!this.closing && this.socket.writable) this.socket.write(clientFrame(OP.PONG, payload));
    } else if (op === OP.CLOSE) {
      this.closeFrameSeen = true;
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.closeReason = payload.subarray(2).toString();
      if (!this.closing) this.fail(new Error(`server sent close ${this.closeCode}${this.closeReason ? ` (${this.closeReason})` : ''} unexpectedly`));
      else this.socket.end();
    }
  }
}

export function streamJobs({ failureChannel, snapshot, windowOf, sleep }) {
  let held = null;

  async function streamOpen(o) {
    if (held !== null) held.client.destroy();
    held = null;
    const failure = failureChannel();
    const c = new StreamClient();
    c.onError = (_c, e) => failure.fail(e);
    await c.connect(o.port, o.path);
    held = { client: c, failure };
    return { path: o.path };
  }

  /** Samples the server's RSS every 5 ms while a transfer runs (the kernel's VmHWM is run.mjs's). */
  function rssSampler(pid) {
    let peak = 0;
    let samples = 0;
    const take = () => {
      try {
        const r = rssOf(pid);
        if (r > peak) peak = r;
        samples++;
      } catch {
        // exited
      }
    };
    take();
    const timer = setInterval(take, 5);
    return {
      stop() {
        clearInterval(timer);
        take();
        return { peak, samples };
      },
    };
  }

  async function streamRun(o) {
    if (held === null) throw new Error('streamRun without streamOpen');
    const { client: c, failure } = held;
    const { bytes, serverPid } = o;
    let finish;
    const finished = new Promise((resolve) => {
      finish = resolve;
    });
    let endAt = 0;
    let plan = null;
    let a;
    let timer;
    const timeoutMs = o.timeoutMs ?? 120_000;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the transfer did not finish within ${timeoutMs} ms (${c.offset} bytes in)`)), timeoutMs);
    });
    const sampler = rssSampler(serverPid);
    let rss;
    try {
      if (o.direction === 'upload') {
        plan = uploadPlan(o.mode, bytes);
        c.onMessage = (_c, opcode, _len, text) => {
          if (opcode !== OP.TEXT) return failure.fail(new Error('the server sent a binary message during an upload'));
          const [count, status, ...rest] = text.split(' ');
          if (Number(count) !== bytes) return failure.fail(new Error(`the server counted ${count} bytes, ${bytes} were sent`));
          if (status !== 'ok') return failure.fail(new Error(`the server read wrong bytes: ${[status, ...rest].join(' ')}`));
          endAt = performance.now();
          finish();
        };
        const socket = c.socket;
        a = snapshot(serverPid, 0);
        for (let u = 0; u < plan.units; u++) {
          const parts = u === 0 ? plan.first : [u === plan.units - 1 ? plan.last : plan.middle];
          let ok = true;
          for (const p of parts) ok = socket.write(p);
          if (!ok) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), failure.failed, timeout]);
        }
      } else {
        const expectMessages = o.expectMessages ?? 1;
        c.checkChunk = o.chunk;
        c.expectMessageSize = o.expectMessageSize ?? 0;
        c.onMessage = (cl, opcode) => {
          if (opcode !== OP.BINARY) return failure.fail(new Error('the server sent a text message during a download'));
          if (cl.offset > bytes) return failure.fail(new Error(`the server sent ${cl.offset} bytes, ${bytes} were asked for`));
          if (cl.offset === bytes) {
            if (cl.messages !== expectMessages) return failure.fail(new Error(`${cl.messages} messages, expected ${expectMessages}`));
            endAt = performance.now();
            finish();
          } else if (cl.messages >= expectMessages) {
            return failure.fail(new Error(`${cl.messages} messages made only ${cl.offset} of ${bytes} bytes`));
          }
        };
        const request = { bytes, chunk: o.chunk, mode: o.mode, source: o.source, fragmentSize: o.fragmentSize };
        const go = clientFrame(OP.TEXT, Buffer.from(JSON.stringify(request)));
        a = snapshot(serverPid, 0);
        c.write(go);
      }
      await Promise.race([finished, failure.failed, timeout]);
    } finally {
      clearTimeout(timer);
      c.onMessage = null;
      rss = sampler.stop();
    }
    const startAt = a.t;
    const b = snapshot(serverPid, bytes);
    const w = windowOf(a, b);
    const seconds = (endAt - startAt) / 1000;
    return {
      ...w,
      seconds,
      bytes,
      mbPerSec: bytes / 1e6 / seconds,
      rssSampledPeak: rss.peak,
      rssSamples: rss.samples,
      frames: o.direction === 'upload' ? plan.frames : c.frames,
      messages: o.direction === 'upload' ? plan.messages : c.messages,
      clientReads: c.tcpChunks,
    };
  }

  async function streamClose(o) {
    if (held === null) return { closed: false };
    const { client: c } = held;
    held = null;
    if (o.raw) {
      c.destroy();
      return { closed: true };
    }
    const acked = await c.close(5000);
    return { closed: true, acked };
  }

  return { streamOpen, streamRun, streamClose };
}
