/**
 * The client's half of permessage-deflate negotiation (RFC 7692 §5, §7.1) as pure functions:
 * the offer a client sends, and the strict check of the server's response against it. The
 * server's half is {@link negotiatePerMessageDeflate} (negotiate.ts). A client that finds the
 * response wrong MUST fail the connection (RFC 7692 §5): the caller turns a `{ ok: false }` into
 * a failed handshake.
 */
import { type ExtensionParam, parseExtensionOffers } from '../extensions-header.js';
import type { HeaderValue } from '../../handshake/tokens.js';
import { formatExtension } from '../extensions-header.js';
import {
  checkPerMessageDeflateOffer,
  PERMESSAGE_DEFLATE,
  parseWindowBits,
  type PerMessageDeflateOfferParams,
  type WindowBits,
} from './negotiate.js';

/**
 * Formats one permessage-deflate offer, parameters in the RFC's order:
 * `permessage-deflate; server_no_context_takeover; client_no_context_takeover;
 * server_max_window_bits=N; client_max_window_bits[=N]`. `{ clientMaxWindowBits: true }` alone is
 * Chrome's offer; no parameters at all is Firefox's and Safari's.
 */
export function formatPerMessageDeflateOffer(offer: PerMessageDeflateOfferParams): string {
  const params: ExtensionParam[] = [];
  if (offer.serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });
  if (offer.clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });
  if (offer.serverMaxWindowBits !== undefined) params.push({ name: 'server_max_window_bits', value: String(offer.serverMaxWindowBits) });
  if (offer.clientMaxWindowBits !== undefined) {
    params.push({ name: 'client_max_window_bits', value: offer.clientMaxWindowBits === true ? true : String(offer.clientMaxWindowBits) });
  }
  return formatExtension({ name: PERMESSAGE_DEFLATE, params });
}

/** A server's response that accepted one of the client's permessage-deflate offers. */
export interface PerMessageDeflateAcceptance {
  /** The response has `server_no_context_takeover`: the server resets its context per message. */
  readonly serverNoContextTakeover: boolean;
  /** The response has `client_no_context_takeover`: the client must reset its context per message. */
  readonly clientNoContextTakeover: boolean;
  /** The response's `server_max_window_bits`, or 15 when it has none: the window the client inflates with. */
  readonly serverMaxWindowBits: WindowBits;
  /** The response's `client_max_window_bits`, or 15 when it has none. */
  readonly clientMaxWindowBits: WindowBits;
  /** Which element of the offer header this response answers (0 for the first). */
  readonly offerIndex: number;
  /**
   * Whether the client's compressor resets after each message: when the response says so, and
   * also when the client offered `client_no_context_takeover` itself (it told the server it would).
   */
  readonly clientResets: boolean;
  /**
   * The window the client compresses with: the response's `client_max_window_bits`, else the
   * value the client offered, else 15 (RFC 7692 §7.1.2.2).
   */
  readonly clientWindowBits: WindowBits;
}

/** The verdict of {@link checkPerMessageDeflateResponse}. */
export type PerMessageDeflateResponseCheck =
  | { readonly ok: true; readonly acceptance: PerMessageDeflateAcceptance }
  | { readonly ok: false; readonly message: string };

/** The response element's parameters, parsed but not yet compared with an offer. */
interface ResponseParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: WindowBits | undefined;
  clientMaxWindowBits: WindowBits | undefined;
}

/** RFC 7692 §5: an unknown parameter, a repeated one, or an invalid value fails the connection. */
function parseResponseParams(params: readonly ExtensionParam[]): ResponseParams | string {
  const out: ResponseParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const p of params) {
    if (seen.has(p.name)) return `the response has the parameter ${p.name} twice (RFC 7692 §5)`;
    seen.add(p.name);
    switch (p.name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        // RFC 7692 §7.1.1.1, §7.1.1.2: these parameters have no value.
        if (p.value !== true) return `the response's ${p.name} has a value (${JSON.stringify(p.value)}); it takes none (RFC 7692 §7.1.1)`;
        if (p.name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
      case 'client_max_window_bits': {
        // RFC 7692 §7.1.2.1, §7.1.2.2: in a response both carry a value, 8..15 without leading zeros.
        if (p.value === true) return `the response's ${p.name} has no value; a response must give one, 8 to 15 (RFC 7692 §7.1.2)`;
        const bits = parseWindowBits(p.value);
        if (bits === undefined) return `the response's ${p.name}=${p.value} is not an integer from 8 to 15 without leading zeros (RFC 7692 §7.1.2)`;
        if (p.name === 'server_max_window_bits') out.serverMaxWindowBits = bits;
        else out.clientMaxWindowBits = bits;
        break;
      }
      default:
        return `the response has the parameter ${JSON.stringify(p.name)}, which permessage-deflate does not define (RFC 7692 §7.1)`;
    }
  }
  return out;
}

/** Compares a response with one offer (RFC 7692 §7.1.1–§7.1.2): the acceptance, or why not. */
function matchOffer(r: ResponseParams, offer: PerMessageDeflateOfferParams, offerIndex: number): PerMessageDeflateAcceptance | string {
  // §7.1.1.1: an offer with server_no_context_takeover is accepted only with it in the response.
  // The server may add it unasked.
  if (offer.serverNoContextTakeover && !r.serverNoContextTakeover) {
    return 'server_no_context_takeover was offered but the response leaves it out (RFC 7692 §7.1.1.1)';
  }
  // §7.1.2.1: an offer with server_max_window_bits=N is accepted with a value ≤ N. The server may
  // also send it unasked ("even if the … offer … didn't include" it).
  if (offer.serverMaxWindowBits !== undefined) {
    if (r.serverMaxWindowBits === undefined) {
      return `server_max_window_bits=${offer.serverMaxWindowBits} was offered but the response leaves it out (RFC 7692 §7.1.2.1)`;
    }
    if (r.serverMaxWindowBits > offer.serverMaxWindowBits) {
      return `the response's server_max_window_bits=${r.serverMaxWindowBits} is larger than the ${offer.serverMaxWindowBits} offered (RFC 7692 §7.1.2.1)`;
    }
  }
  // §7.1.2.2: not offered ⇒ the response MUST NOT have it; offered with N ⇒ a value ≤ N.
  if (r.clientMaxWindowBits !== undefined) {
    if (offer.clientMaxWindowBits === undefined) {
      return `the response has client_max_window_bits=${r.clientMaxWindowBits}, which was not offered (RFC 7692 §7.1.2.2)`;
    }
    if (offer.clientMaxWindowBits !== true && r.clientMaxWindowBits > offer.clientMaxWindowBits) {
      return `the response's client_max_window_bits=${r.clientMaxWindowBits} is larger than the ${offer.clientMaxWindowBits} offered (RFC 7692 §7.1.2.2)`;
    }
  }
  const offered: WindowBits = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  return {
    serverNoContextTakeover: r.serverNoContextTakeover,
    clientNoContextTakeover: r.clientNoContextTakeover,
    serverMaxWindowBits: r.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: r.clientMaxWindowBits ?? 15,
    offerIndex,
    clientResets: r.clientNoContextTakeover || offer.clientNoContextTakeover,
    clientWindowBits: r.clientMaxWindowBits ?? offered,
  };
}

/**
 * Checks a server's `Sec-WebSocket-Extensions` response against the offer the client sent
 * (`offerHeader`, one or several comma-separated offers) as strictly as RFC 7692 asks of a client
 * (§5: fail the connection on anything the offer does not allow):
 *
 * - the header parses (RFC 6455 §9.1) and has exactly one element, `permessage-deflate` (no other
 *   extension was offered, and one extension appears at most once);
 * - its parameters are the four RFC 7692 defines, each at most once, the flags without a value,
 *   the windows with a value 8..15 without leading zeros;
 * - `server_no_context_takeover` is there if offered (§7.1.1.1);
 * - `server_max_window_bits` is ≤ the value offered, and there if offered (§7.1.2.1); sent
 *   unasked it is allowed, and the client inflates with it;
 * - `client_max_window_bits` only if offered, and ≤ the value offered (§7.1.2.2).
 *
 * With several offers, the response must fit one of them; the first it fits is the one used.
 * Never throws. `response` undefined or empty is not an acceptance: call this only when the
 * server sent the header.
 */
export function checkPerMessageDeflateResponse(response: HeaderValue, offerHeader: string): PerMessageDeflateResponseCheck {
  const fail = (message: string): PerMessageDeflateResponseCheck => ({ ok: false, message });
  const parsed = parseExtensionOffers(response);
  if (parsed.tooLong || parsed.malformed > 0) return fail('the Sec-WebSocket-Extensions response is not valid header syntax (RFC 6455 §9.1)');
  const elements = parsed.offers;
  if (elements.length === 0) return fail('the Sec-WebSocket-Extensions response names no extension');
  for (const e of elements) {
    if (e.name !== PERMESSAGE_DEFLATE) return fail(`the server chose the extension ${JSON.stringify(e.name)}, which was not offered`);
  }
  if (elements.length > 1) {
    return fail(`the response names permessage-deflate ${elements.length} times; an extension is accepted at most once (RFC 6455 §9.1)`);
  }
  const element = elements[0] as (typeof elements)[number];
  const params = parseResponseParams(element.params);
  if (typeof params === 'string') return fail(params);

  const offers = parseExtensionOffers(offerHeader).offers;
  const reasons: string[] = [];
  for (let i = 0; i < offers.length; i++) {
    const offer = offers[i] as (typeof offers)[number];
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const checked = checkPerMessageDeflateOffer(offer);
    if (!checked.ok) continue; // an invalid offer cannot be accepted (the server must decline it)
    const match = matchOffer(params, checked.params, i);
    if (typeof match !== 'string') return { ok: true, acceptance: match };
    reasons.push(match);
  }
  if (reasons.length === 0) return fail('the server accepted permessage-deflate, but no valid permessage-deflate offer was sent');
  if (reasons.length === 1) return fail(reasons[0] as string);
  return fail(`the response fits none of the ${reasons.length} permessage-deflate offers: ${reasons.map((r, i) => `offer ${i + 1}: ${r}`).join('; ')}`);
}
