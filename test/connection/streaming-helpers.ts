/**
 * Test-side helpers for the streaming tests (issue 15), written independently of src/:
 * - a server child (fixtures/streaming-child.ts) built from the current source, for clean RSS
 *   measurements;
 * - a bare WebSocket handshake over TCP, and a streaming frame reader that never joins a large
 *   payload (it checksums it as it arrives) and checks what a client must check (unmasked server
 *   frames, RSV bits, continuation frames belonging to the message they continue);
 * - a writer of pre-built frames that respects the socket's backpressure;
 * - a message assembler over RawClient frames for the smaller tests.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { IpcChild, compileForChildren } from '../helpers/child.js';
import { type RawClient, type RawFrame, acceptFor, readResponseHead, upgradeRequest } from '../helpers/raw.js';
import { hashUpdate } from './fixtures/streaming-data.js';

// ---- the server child ---------------------------------------------------------------------------

export interface ChildBuild {
  script: string;
  remove(): Promise<void>;
}

/** Compiles src/ and the fixtures the child needs into a temporary directory. */
export async function buildStreamingChild(): Promise<ChildBuild> {
  const { out, remove } = await compileForChildren({
    prefix: 'wsmount-streaming-',
    include: ['src', join('test', 'connection', 'fixtures'), join('test', 'reliability', 'fixtures', 'ipc.ts'), join('test', 'reliability', 'fixtures', 'child-server.ts')],
    compilerOptions: { noUnusedParameters: false, noUnusedLocals: false },
    mustEmit: join('test', 'connection', 'fixtures', 'streaming-child.js'),
  });
  return { script: join(out, 'test', 'connection', 'fixtures', 'streaming-child.js'), remove };
}

export class StreamingChild extends IpcChild {
  port = 0;

  static async start(build: ChildBuild, args: Record<string, unknown> = {}): Promise<StreamingChild> {
    const proc = spawn(process.execPath, ['--expose-gc', build.script], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const child = new StreamingChild(proc, 'streaming server child');
    await child.waitReady(15_000);
    child.port = (await child.call<{ port: number }>('start', args)).port;
    return child;
  }

  /** Closes its server, then disconnects (it exits) and kills it by PID if it lingers. */
  async stop(): Promise<void> {
    if (this.running) await this.call('close', {}, 5000).catch(() => undefined);
    await this.disconnectThenKill(2000);
  }
}

/**
 * Builds and starts a streaming child before the tests of the enclosing describe block (with
 * `args` for its `start`), and stops and removes it after them; returns a getter for it.
 */
export function useStreamingChild(args: Record<string, unknown> = {}): () => StreamingChild {
  let build: ChildBuild | undefined;
  let child: StreamingChild | undefined;
  beforeAll(async () => {
    build = await buildStreamingChild();
    child = await StreamingChild.start(build, args);
  }, 60_000);
  afterAll(async () => {
    await child?.stop();
    await build?.remove();
  });
  return () => child as StreamingChild;
}

// ---- a bare handshake -----------------------------------------------------------------------------

/** Opens a WebSocket over TCP; resolves with the socket (no 'data' listener left) and the bytes after the 101. */
export function handshake(port: number, path: string, headers: Record<string, string> = {}): Promise<{ socket: net.Socket; rest: Buffer; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const key = randomBytes(16).toString('base64');
    readResponseHead(socket, (head, rest) => {
      socket.removeListener('error', reject);
      socket.pause();
      if (head.status !== 101 || head.headers['sec-websocket-accept'] !== acceptFor(key)) {
        socket.destroy();
        reject(new Error(`handshake failed: ${head.text.split('\r\n')[0]}`));
        return;
      }
      resolve({ socket, rest, headers: head.headers });
    });
    socket.on('error', reject);
    socket.write(upgradeRequest(path, headers, key));
  });
}

// ---- a streaming frame reader -------------------------------------------------------------------

/** A frame header's full length from its first two bytes. */
function headerSize(h: Buffer): number {
  const b1 = h[1] as number;
  const len = b1 & 0x7f;
  return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

export interface FrameInfo {
  fin: boolean;
  rsv: number;
  opcode: number;
  length: number;
}

export interface ReadMessage {
  opcode: number;
  /** Frames of this message, in order. */
  frames: FrameInfo[];
  bytes: number;
  /** The rolling checksum of its payload (streaming-data.ts). */
  hash: number;
  /** Its payload, kept only while it is at most `keepUpTo` bytes. */
  payload: Buffer | null;
  complete: boolean;
}

export interface ControlFrame {
  opcode: number;
  payload: Buffer;
  /** How many data frames had arrived before it (all messages). */
  afterDataFrames: number;
  /** Whether it arrived in the middle of a fragmented message. */
  midMessage: boolean;
}

/**
 * Parses server frames from a socket as they arrive, without ever joining a large payload: each
 * data message's payload is checksummed piece by piece. Protocol errors a client must notice
 * (a masked server frame, RSV bits, a continuation with no message, a new data frame inside a
 * fragmented message) are recorded in `errors`. Pings are answered when `autoPong` is set.
 */
export class FrameReader {
  readonly messages: ReadMessage[] = [];
  readonly controls: ControlFrame[] = [];
  readonly errors: string[] = [];
  dataFrames = 0;
  tcpClosed = false;
  autoPong = false;
  /** Which RSV bits are allowed (RSV1 = 4 when permessage-deflate is agreed). */
  allowedRsv = 0;
  private head = Buffer.alloc(0);
  private remaining = 0;
  private current: ReadMessage | null = null;
  private frame: FrameInfo | null = null;
  private control: Buffer[] | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    readonly socket: net.Socket,
    rest: Buffer,
    private readonly keepUpTo = 1 << 20,
  ) {
    socket.on('data', (d: Buffer) => this.feed(d));
    socket.on('close', () => {
      this.tcpClosed = true;
      this.wake();
    });
    socket.on('error', () => {});
    if (rest.length > 0) this.feed(rest);
    socket.resume();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `check()` holds; rejects after `timeout` ms or when TCP closes first. */
  async until(check: () => boolean, timeout: number, what: string): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!check()) {
      if (this.tcpClosed) throw new Error(`connection closed while waiting for ${what}; errors: ${this.errors.join('; ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for TCP close; false after `timeout`. */
  async closed(timeout: number): Promise<boolean> {
    try {
      await this.until(() => this.tcpClosed, timeout, 'close');
      return true;
    } catch {
      return this.tcpClosed;
    }
  }

  /** Writes a masked control frame. */
  sendControl(opcode: number, payload: Buffer = Buffer.alloc(0)): void {
    const key = randomBytes(4);
    const body = Buffer.alloc(payload.length);
    for (let i = 0; i < payload.length; i++) body[i] = (payload[i] as number) ^ (key[i % 4] as number);
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), key, body]));
  }

  private feed(d: Buffer): void {
    let off = 0;
    while (off < d.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, d.length - off);
        this.payload(d.subarray(off, off + n));
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      // A header: 2 bytes, then as many more as they say (length field, mask key).
      const want = this.head.length < 2 ? 2 : headerSize(this.head);
      const take = Math.min(want - this.head.length, d.length - off);
      this.head = Buffer.concat([this.head, d.subarray(off, off + take)]);
      off += take;
      if (this.head.length >= 2 && this.head.length === headerSize(this.head)) {
        const h = this.head;
        this.head = Buffer.alloc(0);
        this.startFrame(h);
      }
    }
    this.wake();
  }

  private startFrame(h: Buffer): void {
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    let len = b1 & 0x7f;
    if (len === 126) len = h.readUInt16BE(2);
    else if (len === 127) len = Number(h.readBigUInt64BE(2));
    const info: FrameInfo = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, length: len };
    if ((b1 & 0x80) !== 0) this.errors.push('a server frame is masked (RFC 6455 §5.1)');
    if ((info.rsv & ~this.allowedRsv) !== 0) this.errors.push(`RSV bits ${info.rsv} set`);
    this.frame = info;
    if (info.opcode >= 8) {
      this.control = [];
    } else {
      this.dataFrames++;
      if (info.opcode === 0) {
        if (this.current === null) this.errors.push('a continuation frame with no message to continue');
        else this.current.frames.push(info);
      } else {
        if (this.current !== null) this.errors.push(`a new data frame (opcode ${info.opcode}) inside a fragmented message (RFC 6455 §5.4)`);
        this.current = { opcode: info.opcode, frames: [info], bytes: 0, hash: 0, payload: Buffer.alloc(0), complete: false };
        this.messages.push(this.current);
      }
    }
    this.remaining = len;
    if (len === 0) this.endFrame();
  }

  private payload(piece: Buffer): void {
    if (this.control !== null) {
      this.control.push(Buffer.from(piece));
      return;
    }
    const m = this.current;
    if (m === null) return;
    m.bytes += piece.length;
    m.hash = hashUpdate(m.hash, piece);
    if (m.payload !== null) m.payload = m.bytes <= this.keepUpTo ? Buffer.concat([m.payload, piece]) : null;
  }

  private endFrame(): void {
    const f = this.frame as FrameInfo;
    if (this.control !== null) {
      const payload = Buffer.concat(this.control);
      this.control = null;
      this.controls.push({ opcode: f.opcode, payload, afterDataFrames: this.dataFrames, midMessage: this.current !== null });
      if (f.opcode === 0x9 && this.autoPong && !this.socket.destroyed) this.sendControl(0xa, payload);
    } else if (f.fin && this.current !== null) {
      this.current.complete = true;
      this.current = null;
    }
    this.frame = null;
  }

  /** The close frame's code and reason, if one arrived. */
  closeFrame(): { code: number | undefined; reason: string } | undefined {
    const c = this.controls.find((x) => x.opcode === 0x8);
    if (c === undefined) return undefined;
    return { code: c.payload.length >= 2 ? c.payload.readUInt16BE(0) : undefined, reason: c.payload.subarray(2).toString('utf8') };
  }
}

// ---- a frame writer -------------------------------------------------------------------------------

/**
 * Writes `frames` (pre-built bytes) as fast as the socket takes them, waiting for 'drain' when it
 * says so; stops early (returning how many were written) once `stop()` is true or the socket is gone.
 */
export async function writeFrames(socket: net.Socket, frames: Iterable<Buffer>, stop: () => boolean = () => false): Promise<number> {
  let n = 0;
  for (const f of frames) {
    if (stop() || socket.destroyed) return n;
    n++;
    if (!socket.write(f)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  return n;
}

// ---- messages from RawClient frames ----------------------------------------------------------------

export interface Assembled {
  opcode: number;
  frames: RawFrame[];
  payload: Buffer;
}

/**
 * Reads frames from `client` until `count` data messages are complete, or a close frame arrives.
 * Throws on an interleaved data frame or a stray continuation (a message must be whole on the
 * wire). Control frames are returned with their position (how many data frames came before).
 */
export async function readMessages(
  client: RawClient,
  count: number,
  timeout = 5000,
  options: { answerPings?: boolean } = {},
): Promise<{ messages: Assembled[]; controls: { frame: RawFrame; afterDataFrames: number; midMessage: boolean }[]; close: RawFrame | null }> {
  const messages: Assembled[] = [];
  const controls: { frame: RawFrame; afterDataFrames: number; midMessage: boolean }[] = [];
  let current: Assembled | null = null;
  let dataFrames = 0;
  const deadline = Date.now() + timeout;
  while (messages.length < count) {
    const f = await client.nextFrame(Math.max(1, deadline - Date.now()));
    if (f.opcode >= 8) {
      controls.push({ frame: f, afterDataFrames: dataFrames, midMessage: current !== null });
      if (f.opcode === 0x9 && options.answerPings === true) client.send(0xa, f.payload);
      if (f.opcode === 0x8) return { messages, controls, close: f };
      continue;
    }
    dataFrames++;
    if (f.opcode === 0) {
      if (current === null) throw new Error('a continuation frame with no message to continue');
      current.frames.push(f);
    } else {
      if (current !== null) throw new Error(`a new data frame (opcode ${f.opcode}) arrived inside a fragmented message`);
      current = { opcode: f.opcode, frames: [f], payload: Buffer.alloc(0) };
    }
    if (f.fin) {
      current.payload = Buffer.concat(current.frames.map((x) => x.payload));
      messages.push(current);
      current = null;
    }
  }
  return { messages, controls, close: null };
}

/** The close code and reason of a close frame. */
export function closeOf(f: RawFrame | null): { code: number | undefined; reason: string } | null {
  if (f === null) return null;
  return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined, reason: f.payload.subarray(2).toString('utf8') };
}
