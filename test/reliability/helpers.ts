/**
 * Helpers shared by the reliability tests on flow control, dead peers, shutdown and limits
 * (slow-reader, dead-peer, shutdown, limits): peers that answer the closing handshake or pings
 * the way a real client would, upgrades from another loopback address, a proxy that makes a
 * peer vanish without a FIN, and a gate to hold an async hook open.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type RawClient, type RawFrame, upgradeRequest } from '../helpers/raw.js';

/** A promise the test opens by hand: hold an async hook (verify, onText) until `open()`. */
export interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Data frames (text, binary, continuation) out of a list of frames. */
export function dataFrames(frames: readonly RawFrame[]): RawFrame[] {
  return frames.filter((f) => f.opcode === 0x0 || f.opcode === 0x1 || f.opcode === 0x2);
}

export interface ClosedByServer {
  /** The server's close code (undefined for an empty close frame). */
  code: number | undefined;
  reason: string;
  /** Data frames received before the close frame, in order. */
  data: RawFrame[];
  /** Pings received before the close frame. */
  pings: number;
  /** Whether the server closed TCP after our answer (within the timeout). */
  tcpClosed: boolean;
}

/**
 * Plays a well-behaved client until the server closes: answers pings, reads frames up to the
 * server's close frame, answers it with the same code (RFC 6455 §5.5.1), then waits for the server
 * to close TCP (§7.1.1).
 */
export async function answerClose(client: RawClient, timeout = 5000): Promise<ClosedByServer> {
  const deadline = Date.now() + timeout;
  const data: RawFrame[] = [];
  let pings = 0;
  for (;;) {
    const f = await client.nextFrame(Math.max(1, deadline - Date.now()));
    if (f.opcode === 0x9) {
      pings++;
      client.send(0xa, f.payload);
      continue;
    }
    if (f.opcode !== 0x8) {
      if (f.opcode !== 0xa) data.push(f);
      continue;
    }
    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
    const reason = f.payload.subarray(2).toString('utf8');
    client.send(0x8, f.payload.subarray(0, 2));
    const tcpClosed = await client.waitClosed(Math.max(1, deadline - Date.now()));
    return { code, reason, data, pings, tcpClosed };
  }
}

/** What {@link autoPong} has seen. */
export interface Ponger {
  /** Pings answered so far. */
  readonly pings: number;
  /** Every other frame, in order. */
  readonly frames: RawFrame[];
}

/**
 * Makes a raw client answer every ping with a pong (carrying `payload` when given, the ping's
 * payload otherwise), the way browsers and Node's WebSocket do. It takes every frame the client
 * receives from then on; the others land in `frames`. Ends when the connection closes.
 */
export function autoPong(client: RawClient, payload?: string): Ponger {
  const state = { pings: 0, frames: [] as RawFrame[] };
  void (async () => {
    for (;;) {
      let f: RawFrame;
      try {
        f = await client.nextFrame(60_000);
      } catch {
        return;
      }
      if (f.opcode === 0x9) {
        state.pings++;
        if (!client.socket.destroyed) client.send(0xa, payload ?? f.payload);
      } else {
        state.frames.push(f);
      }
    }
  })();
  return state;
}

/**
 * Sends an upgrade for `path` from the local address `localAddress` (another 127.x.y.z) and
 * resolves with the answer's status and the socket once the response head arrives. The caller
 * owns the socket (destroy it in teardown).
 */
export function upgradeFrom(port: number, path: string, localAddress: string, timeout = 3000): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade from ${localAddress} within ${timeout} ms`));
    }, timeout);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`the upgrade from ${localAddress} was closed before an answer`));
    });
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      resolve({ status: Number(head.subarray(0, end).toString('latin1').split(' ')[1]), socket });
    };
    socket.on('data', onData);
    socket.write(upgradeRequest(path));
  });
}

/** Whether this machine lets a socket bind `address` (e.g. 127.0.0.2) and reach 127.0.0.1 from it. */
export async function canConnectFrom(address: string): Promise<boolean> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ok = await new Promise<boolean>((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: address });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

export interface Blackhole {
  /** Where clients connect; everything is relayed to the target until `cut()`. */
  readonly port: number;
  /**
   * The client "vanishes": its side is destroyed, while the server side of the relay stays
   * connected and goes silent — it never reads, writes, sends FIN or RST again. To the server this
   * is a half-open connection (except that the kernel still ACKs, which loopback cannot avoid).
   */
  cut(): void;
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1 that can make its clients vanish without the server hearing of it. */
export async function blackholeProxy(targetPort: number): Promise<Blackhole> {
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((front) => {
    const back = net.connect(targetPort, '127.0.0.1');
    front.on('error', () => {});
    back.on('error', () => {});
    front.pipe(back);
    back.pipe(front);
    pairs.push([front, back]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      for (const [front, back] of pairs) {
        front.unpipe(back);
        back.unpipe(front);
        back.pause();
        front.destroy();
      }
    },
    async close() {
      for (const [front, back] of pairs) {
        front.destroy();
        back.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A binary payload of `size` bytes carrying `index` in its first 4 bytes. */
export function numbered(index: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x61);
  b.writeUInt32BE(index, 0);
  return b;
}

/** The index {@link numbered} wrote into a payload. */
export function indexOf(payload: Buffer): number {
  return payload.readUInt32BE(0);
}

/** Resolves on the next turn of the event loop (lets sockets be read and written). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
