/**
 * permessage-deflate negotiation (RFC 7692 §5–§7) as pure functions: the client's offers and the
 * server's configuration in, the agreed parameters and the exact response header out — or `null`,
 * which means "answer without the extension" (the connection proceeds uncompressed). Declining is
 * never a handshake failure: an offer that is invalid or that the server cannot accept is skipped
 * and the next one is tried (RFC 7692 §5), never a 400 (the ws #1446 trap).
 */
import type { ExtensionOffer, ExtensionParam } from '../extensions-header.js';
import { formatExtension } from '../extensions-header.js';

/** The extension's registered name (RFC 7692 §7, §9). Compared exactly. */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** An LZ77 window size as a base-2 logarithm: 8 (256 bytes) to 15 (32 KiB) (RFC 7692 §7.1.2). */
export type WindowBits = 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15;

/** The server's negotiation settings, every field given. See {@link resolveDeflateNegotiationConfig}. */
export interface DeflateNegotiationConfig {
  /**
   * The server resets its compression context after every message, and says so in every accepted
   * response (RFC 7692 §7.1.1.1 lets the server add `server_no_context_takeover` unasked). When
   * false, the server still resets whenever the client asks for it.
   */
  readonly serverNoContextTakeover: boolean;
  /**
   * The server requires the client to reset its context after every message, and says so in
   * every accepted response (RFC 7692 §7.1.1.2). Off by default: Safari 15.0–15.3 implement it
   * wrongly (uWS #1347).
   */
  readonly clientNoContextTakeover: boolean;
  /**
   * The largest window the server's deflater uses. Sent as `server_max_window_bits` only when the
   * client offered that parameter (RFC 7692 §7.1.2.1; Firefox failed on it unasked, bugzilla
   * 1137008); otherwise the server just compresses with the smaller window, which any inflater
   * decodes. 8 is legal, but zlib deflates with at least 9 (Node raises 8 to 9 silently, whose
   * match distance ≤ 250 still fits a 256-byte window) and Autobahn's client rejects 8 in a
   * response: prefer 9.
   */
  readonly serverMaxWindowBits: WindowBits;
  /**
   * The largest window the server lets the client compress with (what the server's inflater
   * needs). 15 means no limit. Below 15 it is a hard limit: an offer without
   * `client_max_window_bits` cannot be told the limit (RFC 7692 §7.1.2.2) and is declined —
   * so Firefox and Safari, which offer bare `permessage-deflate`, then get no compression.
   */
  readonly clientMaxWindowBits: WindowBits;
}

/** The defaults: no resets asked, full windows (RFC 7692's own defaults, ws's and zlib's). */
export const DEFAULT_DEFLATE_NEGOTIATION: DeflateNegotiationConfig = Object.freeze({
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
});

/** What both sides use once an offer is accepted. */
export interface PerMessageDeflateAgreement {
  /** The server resets its deflate context after each message (RFC 7692 §7.1.1.1). */
  readonly serverNoContextTakeover: boolean;
  /**
   * The client resets its deflate context after each message, so the server's inflater may too
   * (RFC 7692 §7.1.1.2). True only when the response says so (so it binds the client).
   */
  readonly clientNoContextTakeover: boolean;
  /**
   * The window the server's deflater may use (RFC 7692 §7.1.2.1). Give zlib `max(9, this)`:
   * zlib cannot deflate with 8, and 9's distances (≤ 250) fit a 256-byte window.
   */
  readonly serverMaxWindowBits: WindowBits;
  /** The window the client's deflater may use: what the server's inflater needs (RFC 7692 §7.1.2.2). */
  readonly clientMaxWindowBits: WindowBits;
  /** The exact `Sec-WebSocket-Extensions` value to send: one element, never empty. */
  readonly responseHeader: string;
  /** Which of the offers given was accepted (its index in the list). */
  readonly offerIndex: number;
}

/** One permessage-deflate offer's parameters once validated (RFC 7692 §7.1). */
export interface PerMessageDeflateOfferParams {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  /** `server_max_window_bits=N`, or undefined when not offered. */
  readonly serverMaxWindowBits: WindowBits | undefined;
  /**
   * `client_max_window_bits`: undefined when not offered, `true` when offered without a value
   * (the client supports the parameter in the response), or the value offered.
   */
  readonly clientMaxWindowBits: WindowBits | true | undefined;
}

/** Why an offer was declined (for logs and tests). */
export type DeflateDeclineReason =
  | 'not-permessage-deflate'
  | 'unknown-param'
  | 'duplicate-param'
  | 'invalid-value'
  | 'client-window-not-offered';

/** The result of checking one offer's parameters. */
export type DeflateOfferCheck =
  | { readonly ok: true; readonly params: PerMessageDeflateOfferParams }
  | { readonly ok: false; readonly reason: DeflateDeclineReason; readonly param?: string };

/**
 * A window-bits value: a decimal integer 8..15 without leading zeros (RFC 7692 §7.1.2.1,
 * §7.1.2.2), so "08", "+9", "9.0" and " 9" are invalid. No number parsing: two characters at most.
 */
export function parseWindowBits(value: string): WindowBits | undefined {
  if (value.length === 1) {
    const c = value.charCodeAt(0);
    if (c === 0x38) return 8;
    if (c === 0x39) return 9;
    return undefined;
  }
  if (value.length === 2 && value.charCodeAt(0) === 0x31) {
    const d = value.charCodeAt(1) - 0x30;
    if (d >= 0 && d <= 5) return (10 + d) as WindowBits;
  }
  return undefined;
}

/**
 * Validates one offer as a permessage-deflate offer (RFC 7692 §5, §7.1): an unknown parameter,
 * a parameter given twice, or an invalid value declines it.
 */
export function checkPerMessageDeflateOffer(offer: ExtensionOffer): DeflateOfferCheck {
  if (offer.name !== PERMESSAGE_DEFLATE) return { ok: false, reason: 'not-permessage-deflate' };
  let serverNoContextTakeover = false;
  let clientNoContextTakeover = false;
  let serverMaxWindowBits: WindowBits | undefined;
  let clientMaxWindowBits: WindowBits | true | undefined;
  const seen = new Set<string>();
  for (const p of offer.params) {
    // RFC 7692 §5: "multiple extension parameters with the same name" ⇒ decline.
    if (seen.has(p.name)) return { ok: false, reason: 'duplicate-param', param: p.name };
    seen.add(p.name);
    switch (p.name) {
      case 'server_no_context_takeover': // RFC 7692 §7.1.1.1: no value
        if (p.value !== true) return { ok: false, reason: 'invalid-value', param: p.name };
        serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover': // RFC 7692 §7.1.1.2: no value
        if (p.value !== true) return { ok: false, reason: 'invalid-value', param: p.name };
        clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        // RFC 7692 §7.1.2.1: a value is required in an offer.
        const bits = p.value === true ? undefined : parseWindowBits(p.value);
        if (bits === undefined) return { ok: false, reason: 'invalid-value', param: p.name };
        serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        // RFC 7692 §7.1.2.2: no value, or a value 8..15.
        if (p.value === true) {
          clientMaxWindowBits = true;
        } else {
          const bits = parseWindowBits(p.value);
          if (bits === undefined) return { ok: false, reason: 'invalid-value', param: p.name };
          clientMaxWindowBits = bits;
        }
        break;
      }
      default:
        // RFC 7692 §5: "an extension parameter not defined for use in an offer" ⇒ decline.
        return { ok: false, reason: 'unknown-param', param: p.name };
    }
  }
  return {
    ok: true,
    params: { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits },
  };
}

function min(a: WindowBits, b: WindowBits): WindowBits {
  return a < b ? a : b;
}

/**
 * Accepts one validated offer under `config`, or returns the reason it cannot be accepted.
 * The response carries only what RFC 7692 §7.1 allows, in the RFC's order.
 */
function accept(
  offer: PerMessageDeflateOfferParams,
  config: DeflateNegotiationConfig,
  offerIndex: number,
): PerMessageDeflateAgreement | 'client-window-not-offered' {
  const params: ExtensionParam[] = [];

  // RFC 7692 §7.1.1.1: offered ⇒ the response MUST include it; the server MAY add it unasked.
  const serverNoContextTakeover = offer.serverNoContextTakeover || config.serverNoContextTakeover;
  if (serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });

  // RFC 7692 §7.1.1.2: the server MAY add it unasked. When the client offered it (a hint that
  // it will reset anyway) it is echoed, so the agreement binds the client.
  const clientNoContextTakeover = offer.clientNoContextTakeover || config.clientNoContextTakeover;
  if (clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });

  // RFC 7692 §7.1.2.1: offered ⇒ the response MUST carry a value ≤ the offer's. Not offered ⇒
  // not sent (the server may, but Firefox once failed on it); a smaller window needs no consent.
  let serverMaxWindowBits = config.serverMaxWindowBits;
  if (offer.serverMaxWindowBits !== undefined) {
    serverMaxWindowBits = min(offer.serverMaxWindowBits, config.serverMaxWindowBits);
    params.push({ name: 'server_max_window_bits', value: String(serverMaxWindowBits) });
  }

  // RFC 7692 §7.1.2.2: not offered ⇒ the response MUST NOT include it, and the client may use 15.
  // Offered with a value ⇒ the response may carry a value ≤ it; offered bare ⇒ any value 8..15.
  // A response's value is mandatory (a bare one makes ws and libsoup fail the connection).
  let clientMaxWindowBits: WindowBits = 15;
  if (offer.clientMaxWindowBits === undefined) {
    if (config.clientMaxWindowBits < 15) return 'client-window-not-offered';
  } else {
    const offered: WindowBits = offer.clientMaxWindowBits === true ? 15 : offer.clientMaxWindowBits;
    clientMaxWindowBits = min(offered, config.clientMaxWindowBits);
    // Echoed whenever it limits the client: below 15, or a value the client itself proposed.
    if (clientMaxWindowBits < 15 || offer.clientMaxWindowBits !== true) {
      params.push({ name: 'client_max_window_bits', value: String(clientMaxWindowBits) });
    }
  }

  return {
    serverNoContextTakeover,
    clientNoContextTakeover,
    serverMaxWindowBits,
    clientMaxWindowBits,
    responseHeader: formatExtension({ name: PERMESSAGE_DEFLATE, params }),
    offerIndex,
  };
}

/**
 * Picks the first acceptable permessage-deflate offer, in the client's order (RFC 7692 §5: the
 * offers are listed by preference), and returns what both sides use and the response header to
 * send. Offers of other extensions, and permessage-deflate offers with an unknown or repeated
 * parameter or an invalid value, are skipped. `null` means none can be accepted: send no
 * `Sec-WebSocket-Extensions` header and go on uncompressed. Never throws for any offer list.
 */
export function negotiatePerMessageDeflate(
  offers: readonly ExtensionOffer[],
  config: DeflateNegotiationConfig = DEFAULT_DEFLATE_NEGOTIATION,
): PerMessageDeflateAgreement | null {
  for (let i = 0; i < offers.length; i++) {
    const offer = offers[i];
    if (offer === undefined || offer.name !== PERMESSAGE_DEFLATE) continue;
    const checked = checkPerMessageDeflateOffer(offer);
    if (!checked.ok) continue;
    const agreement = accept(checked.params, config, i);
    if (typeof agreement !== 'string') return agreement;
  }
  return null;
}

/** The reason each offer would be declined, or `'accepted'` for the one chosen (for logs and tests). */
export function explainPerMessageDeflate(
  offers: readonly ExtensionOffer[],
  config: DeflateNegotiationConfig = DEFAULT_DEFLATE_NEGOTIATION,
): (DeflateDeclineReason | 'accepted' | 'not-reached')[] {
  const out: (DeflateDeclineReason | 'accepted' | 'not-reached')[] = [];
  let done = false;
  for (let i = 0; i < offers.length; i++) {
    const offer = offers[i];
    if (done || offer === undefined) {
      out.push('not-reached');
      continue;
    }
    const checked = checkPerMessageDeflateOffer(offer);
    if (!checked.ok) {
      out.push(checked.reason);
      continue;
    }
    const agreement = accept(checked.params, config, i);
    if (typeof agreement === 'string') {
      out.push(agreement);
    } else {
      out.push('accepted');
      done = true;
    }
  }
  return out;
}

const CONFIG_KEYS: ReadonlySet<string> = new Set([
  'serverNoContextTakeover',
  'clientNoContextTakeover',
  'serverMaxWindowBits',
  'clientMaxWindowBits',
]);

function windowBitsOption(name: string, value: unknown): WindowBits {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 8 || value > 15) {
    throw new RangeError(`perMessageDeflate.${name} must be an integer from 8 to 15, got ${String(value)}`);
  }
  return value as WindowBits;
}

function booleanOption(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`perMessageDeflate.${name} must be a boolean, got ${typeof value}`);
  return value;
}

/**
 * Fills the defaults in and checks a user's negotiation settings (for option parsing, once, not
 * per handshake): a TypeError or RangeError names the bad field. Keys other than the four
 * negotiation settings are left to the caller (it may have its own: threshold, level…) unless
 * `strict` is set, in which case an unknown key is a TypeError.
 */
export function resolveDeflateNegotiationConfig(
  options: Partial<DeflateNegotiationConfig> = {},
  strict = false,
): DeflateNegotiationConfig {
  if (typeof options !== 'object' || options === null) throw new TypeError('perMessageDeflate options must be an object');
  if (strict) {
    for (const key of Object.keys(options)) {
      if (!CONFIG_KEYS.has(key)) throw new TypeError(`perMessageDeflate: unknown option ${JSON.stringify(key)}`);
    }
  }
  const d = DEFAULT_DEFLATE_NEGOTIATION;
  return Object.freeze({
    serverNoContextTakeover:
      options.serverNoContextTakeover === undefined ? d.serverNoContextTakeover : booleanOption('serverNoContextTakeover', options.serverNoContextTakeover),
    clientNoContextTakeover:
      options.clientNoContextTakeover === undefined ? d.clientNoContextTakeover : booleanOption('clientNoContextTakeover', options.clientNoContextTakeover),
    serverMaxWindowBits:
      options.serverMaxWindowBits === undefined ? d.serverMaxWindowBits : windowBitsOption('serverMaxWindowBits', options.serverMaxWindowBits),
    clientMaxWindowBits:
      options.clientMaxWindowBits === undefined ? d.clientMaxWindowBits : windowBitsOption('clientMaxWindowBits', options.clientMaxWindowBits),
  });
}
