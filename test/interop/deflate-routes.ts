/**
 * The server side of the permessage-deflate interop suites (Python websockets, ws's client,
 * Chromium): a wsmount server with an echo route that records, per connection, what
 * `this.extensions.perMessageDeflate` said and how many compressed connections `stats()` counted
 * at open, and per message its type, byte length and SHA-256 (so a large payload is compared by
 * hash on both sides, and a bug that garbles both directions alike cannot cancel out). Its
 * logger keeps every line at debug level.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Behavior, type CompressionStats, type HandlerOptions, type NegotiatedPerMessageDeflate } from '../../src/index.js';
import { listen } from '../../src/testing/index.js';
import { waitFor } from '../helpers/server.js';
import { Rng } from '../reliability/fixtures/prng.js';

export const MiB = 1 << 20;
export const KiB = 1 << 10;

export interface Seen {
  type: 'text' | 'binary';
  bytes: number;
  sha256: string;
}

export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
}

export interface DeflateServer {
  url(path?: string): string;
  /** `http://127.0.0.1:port/` (the server answers `GET /` with an empty HTML page). */
  readonly httpUrl: string;
  /** What the echo route saw, in order. */
  readonly seen: {
    opens: (NegotiatedPerMessageDeflate | null)[];
    /** `stats().compression.connections` inside each onOpen. */
    connectionsAtOpen: number[];
    messages: Seen[];
    closes: { code: number; reason: string }[];
  };
  /** Every line the handler logged (logLevel 'debug'). */
  readonly logs: LogLine[];
  compression(): CompressionStats;
  /** Number of open clients. */
  clients(): number;
  /** Waits for the previous test's clients to leave, then forgets what they did. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export function sha256(data: string | Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function describeMessage(data: string | Buffer): Seen {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return { type: typeof data === 'string' ? 'text' : 'binary', bytes: bytes.length, sha256: sha256(bytes) };
}

/** `after - before`, field by field. */
export function delta(after: CompressionStats, before: CompressionStats): CompressionStats {
  const out = { ...after };
  for (const k of Object.keys(out) as (keyof CompressionStats)[]) out[k] = after[k] - before[k];
  return out;
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>deflate</title><body>deflate interop</body>';

/** Starts wsmount on 127.0.0.1:0 with `/echo`; `options` go to the handler (perMessageDeflate…). */
export async function startDeflateServer(options: HandlerOptions): Promise<DeflateServer> {
  const seen: DeflateServer['seen'] = { opens: [], connectionsAtOpen: [], messages: [], closes: [] };
  const logs: LogLine[] = [];
  const keep =
    (level: LogLine['level']) =>
    (message: string, ...details: unknown[]): void => {
      logs.push({ level, message: details.length === 0 ? message : `${message} ${details.map(String).join(' ')}` });
    };
  let stats: () => CompressionStats = () => {
    throw new Error('not listening yet');
  };

  class DeflateEcho extends Behavior {
    override onOpen(): void {
      seen.opens.push(this.extensions.perMessageDeflate);
      seen.connectionsAtOpen.push(stats().connections);
    }
    override onText(text: string): void {
      seen.messages.push(describeMessage(text));
      this.sendText(text);
    }
    override onBinary(bytes: Buffer): void {
      seen.messages.push(describeMessage(bytes));
      this.sendBinary(bytes);
    }
    override onClose(code: number, reason: string): void {
      seen.closes.push({ code, reason });
    }
  }

  const listening = await listen(
    { '/echo': DeflateEcho },
    {
      handlerOptions: {
        closeTimeout: 2000,
        logger: { error: keep('error'), warn: keep('warn'), info: keep('info'), debug: keep('debug') },
        logLevel: 'debug',
        ...options,
      },
      closeTimeout: 1000,
      onRequest: (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(PAGE) });
        res.end(PAGE);
      },
    },
  );
  const handler = listening.handler;
  stats = () => handler.stats().compression;
  return {
    url: (path = '/echo') => listening.url(path),
    httpUrl: `http://127.0.0.1:${listening.port}/`,
    seen,
    logs,
    compression: () => stats(),
    clients: () => handler.clients.size,
    async reset() {
      await waitFor(() => handler.clients.size === 0, 10_000, 'clients from the previous test to leave');
      for (const list of Object.values(seen) as unknown[][]) list.length = 0;
      logs.length = 0;
    },
    close: () => listening.close(),
  };
}

// ---- payloads ---------------------------------------------------------------------------------

export interface Spec {
  type: 'text' | 'binary';
  size: number;
  seed: number;
}

const WORDS = ['user', 'room', 'message', 'typing', 'presence', 'über', '日本語', 'true', 'null', 'Faust', '🎉', 'Привет', '{"id":', '},', 'café', 'e\u0301', '𝄞'];

/**
 * A payload of exactly `spec.size` bytes (UTF-8 for text): text is words, non-ASCII among them,
 * so it compresses; binary is 4 KiB random blocks, some repeated, so it partly does. The same
 * spec gives the same payload.
 */
export function payload(spec: Spec): string | Buffer {
  const r = new Rng(spec.seed);
  if (spec.type === 'text') {
    const parts: string[] = [];
    let n = 0;
    for (;;) {
      const w = `${r.pick(WORDS)} `;
      const len = Buffer.byteLength(w);
      if (n + len > spec.size) break;
      parts.push(w);
      n += len;
    }
    return parts.join('') + 'x'.repeat(spec.size - n);
  }
  const block = r.bytes(Math.min(4096, Math.max(spec.size, 1)));
  const out = Buffer.alloc(spec.size);
  for (let at = 0; at < spec.size; at += block.length) {
    (r.chance(0.6) ? block : r.bytes(block.length)).copy(out, at);
  }
  return out;
}

/** Small (under 1024) and large (100 KiB, 2 MiB), text and binary, and empty ones. */
export const MIXED: readonly Spec[] = [
  { type: 'text', size: 16, seed: 1 },
  { type: 'binary', size: 16, seed: 2 },
  { type: 'text', size: 0, seed: 3 },
  { type: 'binary', size: 0, seed: 4 },
  { type: 'text', size: 900, seed: 5 },
  { type: 'binary', size: 1000, seed: 6 },
  { type: 'text', size: 5000, seed: 7 },
  { type: 'binary', size: 5000, seed: 8 },
  { type: 'text', size: 100 * KiB, seed: 9 },
  { type: 'binary', size: 100 * KiB, seed: 10 },
  { type: 'text', size: 2 * MiB, seed: 11 },
  { type: 'binary', size: 2 * MiB, seed: 12 },
  { type: 'text', size: 20, seed: 13 },
];

/**
 * `count` messages to send back to back: mostly under 8 KiB and alike (seeds repeat, so a kept
 * compression context finds matches in earlier messages), every 25th one 300 KiB (deflated and
 * inflated on the thread pool while the small ones around it are not).
 */
export function burst(seed: number, count = 150): Spec[] {
  const r = new Rng(seed);
  return Array.from({ length: count }, (_, i) => ({
    type: r.chance(0.7) ? ('text' as const) : ('binary' as const),
    size: i % 25 === 24 ? 300 * KiB : r.int(8 * KiB),
    seed: 100 + r.int(12),
  }));
}

export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
