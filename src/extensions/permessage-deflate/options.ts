/**
 * The user-facing `perMessageDeflate` setting (handler option and a route's static): its type,
 * the `true` preset, and the checks that run once when a handler is built.
 */
import { type DeflateNegotiationConfig, resolveDeflateNegotiationConfig, type WindowBits } from './negotiate.js';

type Preset = Required<Omit<PerMessageDeflateOptions, 'serverMaxWindowBits' | 'clientMaxWindowBits'>> & {
  readonly serverMaxWindowBits: WindowBits;
  readonly clientMaxWindowBits: WindowBits;
};

/**
 * permessage-deflate (RFC 7692) settings. Every field is optional; a missing one takes the value
 * of the `true` preset ({@link PER_MESSAGE_DEFLATE_PRESET}).
 */
export interface PerMessageDeflateOptions {
  /**
   * Messages shorter than this many bytes are sent uncompressed (RFC 7692 lets any message go
   * uncompressed; small ones gain little and cost CPU). Default 1024. Incoming messages are
   * inflated whatever their size.
   */
  threshold?: number;
  /**
   * Reset the server's compression context after every message, and say so in the handshake.
   * Default `true`: no per-connection compressor at all (one shared one), and a broadcast or
   * publish is compressed once for every such connection. `false` keeps a compressor per
   * connection (about 80–230 KiB each once used) for better ratios on streams of similar
   * messages; a client that asks for the reset still gets it.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Ask every client to reset its context after every message, so the server keeps no inflate
   * window per connection. Default `false`: Safari 15.0–15.3 implement it wrongly, and browsers
   * compress better with their window kept. A client that offers it gets it either way. When set,
   * Safari 15.0–15.3 (by User-Agent) get no compression instead of a broken one.
   */
  clientNoContextTakeover?: boolean;
  /**
   * The largest LZ77 window (an integer 8–15, as log2 bytes) the server compresses with. Default
   * 15. (A `number`, so that `static override perMessageDeflate = { serverMaxWindowBits: 10 }`
   * compiles without `as const`; checked when the handler is built.)
   */
  serverMaxWindowBits?: number;
  /**
   * The largest window (8–15) a client may compress with. Default 15. Below 15 it is a hard
   * limit: a client that cannot be told it (Firefox and Safari offer no `client_max_window_bits`)
   * gets no compression (RFC 7692 §7.1.2.2).
   */
  clientMaxWindowBits?: number;
  /**
   * zlib compression level 0–9 (0 stores, 9 is the slowest and smallest). Default 1 (zlib's
   * fastest): measured here on JSON-like text it is 3–6× faster than zlib's default 6 for
   * 8–64 KiB messages, for output ~5–10% larger (ratio 0.145 vs 0.132 at 16 KiB). Messages are
   * compressed on the event loop up to 64 KiB at level ≤ 1 and up to 16 KiB above it; longer
   * ones on the thread pool.
   */
  level?: number;
  /** zlib memLevel 1–9 (memory for the compressor's hash table). Default 8, zlib's default. */
  memLevel?: number;
}

/** A resolved `perMessageDeflate` setting (in `ResolvedHandlerOptions.deflate`). */
export interface DeflateConfig {
  readonly negotiation: DeflateNegotiationConfig;
  readonly threshold: number;
  readonly level: number;
  readonly memLevel: number;
}

/** What `perMessageDeflate: true` means. */
export const PER_MESSAGE_DEFLATE_PRESET: Readonly<Preset> = Object.freeze({
  threshold: 1024,
  serverNoContextTakeover: true,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  level: 1,
  memLevel: 8,
});

const KEYS: ReadonlySet<string> = new Set(Object.keys(PER_MESSAGE_DEFLATE_PRESET));

function integerIn(where: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`wsmount: ${where}perMessageDeflate.${name} must be an integer from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}

/**
 * Resolves a `perMessageDeflate` setting: `false`/`undefined` → null (compression declined),
 * `true` → the preset, an object → the preset with its fields over it. Throws a TypeError or
 * RangeError naming the bad field (`where` prefixes the route, for a static). @internal
 */
export function resolvePerMessageDeflate(value: boolean | PerMessageDeflateOptions | undefined, where = ''): DeflateConfig | null {
  if (value === undefined || value === false) return null;
  const o: PerMessageDeflateOptions = value === true ? {} : value;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new TypeError(`wsmount: ${where}perMessageDeflate is true, false or an object like { threshold: 1024 }, not ${String(value)}`);
  }
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) {
      throw new TypeError(`wsmount: ${where}perMessageDeflate has no option '${key}'; the options are ${[...KEYS].join(', ')}`);
    }
  }
  const p = PER_MESSAGE_DEFLATE_PRESET;
  let negotiation: DeflateNegotiationConfig;
  try {
    negotiation = resolveDeflateNegotiationConfig({
      serverNoContextTakeover: o.serverNoContextTakeover ?? p.serverNoContextTakeover,
      clientNoContextTakeover: o.clientNoContextTakeover ?? p.clientNoContextTakeover,
      // Checked there: an integer 8..15, else a RangeError naming the field.
      serverMaxWindowBits: (o.serverMaxWindowBits ?? p.serverMaxWindowBits) as WindowBits,
      clientMaxWindowBits: (o.clientMaxWindowBits ?? p.clientMaxWindowBits) as WindowBits,
    });
  } catch (error) {
    const e = error as Error;
    const Ctor = error instanceof RangeError ? RangeError : TypeError;
    throw new Ctor(`wsmount: ${where}${e.message}`);
  }
  const threshold = o.threshold ?? p.threshold;
  if (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 0) {
    throw new RangeError(`wsmount: ${where}perMessageDeflate.threshold must be a non-negative number of bytes, not ${String(threshold)}`);
  }
  return Object.freeze({
    negotiation,
    threshold,
    level: integerIn(where, 'level', o.level ?? p.level, 0, 9),
    memLevel: integerIn(where, 'memLevel', o.memLevel ?? p.memLevel, 1, 9),
  });
}
