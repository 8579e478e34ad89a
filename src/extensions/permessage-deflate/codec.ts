/**
 * permessage-deflate's per-message transform (RFC 7692 §7.2), driven by the negotiated
 * {@link PerMessageDeflateAgreement}: the connection inflates what arrives with RSV1 set and
 * deflates what it sends. Not wired into the connection yet (issue 12).
 *
 * Engine ('auto'): persistent zlib streams driven synchronously through Node's private
 * `_handle.writeSync` when a startup probe shows it works ('handle'), else public one-shot
 * `*RawSync` calls with the last window of plaintext as `dictionary` ('dictionary'). Inflates
 * over 64 KiB compressed or 256 KiB out, and deflates over 16 KiB, go to the thread pool;
 * `inflate`/`deflate` then return Promises and keep call order.
 */
import { PerMessageDeflater } from './deflate.js';
import { type CodecOptions, PerMessageInflater } from './inflate.js';
import type { PerMessageDeflateAgreement } from './negotiate.js';

export { deflateOnce, type DeflateParams, PerMessageDeflater } from './deflate.js';
export {
  type CodecOptions,
  DEFAULT_MAX_SYNC_DEFLATE,
  DEFAULT_MAX_SYNC_INPUT,
  DEFAULT_MAX_SYNC_OUTPUT,
  type DeflateEngine,
  type InflateResult,
  PerMessageInflater,
} from './inflate.js';
export { privateSyncAvailable, TRAILER } from './zlib-sync.js';

/** One connection's codec: both halves, each allocating its zlib state on first use. */
export interface PerMessageDeflateCodec {
  readonly inflater: PerMessageInflater;
  readonly deflater: PerMessageDeflater;
}

/** The codec for a connection that agreed `agreement` (server side). */
export function createPerMessageDeflateCodec(
  agreement: PerMessageDeflateAgreement,
  options: CodecOptions & { readonly level?: number; readonly memLevel?: number } = {},
): PerMessageDeflateCodec {
  return { inflater: new PerMessageInflater(agreement, options), deflater: new PerMessageDeflater(agreement, options) };
}
