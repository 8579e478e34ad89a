/**
 * The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1) as data: parsing a client's offers and
 * formatting the server's response. Pure, I/O-free, no regexes: one left-to-right pass over the
 * characters, so the work is linear in a header whose length is capped.
 *
 * Grammar (RFC 6455 §9.1, with RFC 9110 §5.6 for token, quoted-string, OWS and lists):
 *
 * ```
 * Sec-WebSocket-Extensions = 1#extension
 * extension       = extension-token *( OWS ";" OWS extension-param )
 * extension-param = token [ OWS "=" OWS ( token / quoted-string ) ]
 *     ; a quoted-string value, once unescaped, MUST be a token (RFC 6455 §9.1, RFC 7692 §7.1)
 * ```
 *
 * What a malformed header yields (it never throws):
 * - an element (one comma-separated offer) whose syntax is invalid is skipped whole, and counted
 *   in `malformed`; the elements around it are still read. Offers are alternatives in the
 *   client's order of preference (RFC 7692 §5), so leaving one out can only remove an option,
 *   never make the server accept something the client did not offer. A server that answered 400
 *   here would break clients over an optional feature (the ws #1446 trap); answering without
 *   the extension is always a valid answer (RFC 6455 §9.1).
 * - a header longer than {@link MAX_EXTENSIONS_HEADER_LENGTH} is ignored whole (`tooLong`): no
 *   real client comes near it, and cutting it would cut an offer in the middle.
 * - elements past {@link MAX_EXTENSION_OFFERS} are ignored (counted in `ignored`).
 * - an element with more than {@link MAX_EXTENSION_PARAMS} parameters is malformed (skipped).
 */
import { type HeaderValue, isToken } from '../handshake/tokens.js';

/** One parameter of an offer: `name` or `name=value` (a quoted value already unescaped). */
export interface ExtensionParam {
  readonly name: string;
  /** The value, or `true` when the parameter has none. */
  readonly value: string | true;
}

/** One element of the header: an extension name and its parameters, in the order sent. */
export interface ExtensionOffer {
  readonly name: string;
  readonly params: readonly ExtensionParam[];
}

/** What {@link parseExtensionOffers} read from a header. */
export interface ParsedExtensions {
  /** The well-formed elements, in the order sent (across header lines, in line order). */
  readonly offers: readonly ExtensionOffer[];
  /** Elements skipped because their syntax is invalid. */
  readonly malformed: number;
  /** Well-formed elements past {@link MAX_EXTENSION_OFFERS}, ignored. */
  readonly ignored: number;
  /** The header was longer than {@link MAX_EXTENSIONS_HEADER_LENGTH} and was ignored whole. */
  readonly tooLong: boolean;
}

/**
 * The longest header read, in characters, over all its lines (each line counts one more, as if
 * joined with commas). Browsers send about 45 characters; Autobahn's three-offer case 13.7 about
 * 150; all four permessage-deflate parameters fit in 120.
 */
export const MAX_EXTENSIONS_HEADER_LENGTH = 4096;
/** The most offers read from one header; later ones are ignored. */
export const MAX_EXTENSION_OFFERS = 32;
/** The most parameters in one offer (permessage-deflate defines 4); more makes it malformed. */
export const MAX_EXTENSION_PARAMS = 16;

const NONE: ParsedExtensions = Object.freeze({ offers: Object.freeze([]), malformed: 0, ignored: 0, tooLong: false });

const COMMA = 0x2c;
const SEMI = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** RFC 9110 §5.6.2 tchar. */
function isTchar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 || c === 0x23 || c === 0x24 || c === 0x25 || c === 0x26 || c === 0x27 ||
    c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x5e || c === 0x5f ||
    c === 0x60 || c === 0x7c || c === 0x7e
  );
}

/** RFC 9110 §5.6.3 OWS: spaces and horizontal tabs. */
function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** RFC 9110 §5.6.4 qdtext: HTAB, SP, %x21, %x23-5B, %x5D-7E, obs-text. */
function isQdtext(c: number): boolean {
  return c === 0x09 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** RFC 9110 §5.6.4 quoted-pair's second character: HTAB, SP, VCHAR, obs-text. */
function isQuotable(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** Reads one line; the cursor-based parser of one element lives in {@link readElement}. */
class LineReader {
  pos = 0;
  constructor(readonly line: string) {}

  at(): number {
    return this.pos < this.line.length ? this.line.charCodeAt(this.pos) : -1;
  }

  skipOws(): void {
    while (this.pos < this.line.length && isOws(this.line.charCodeAt(this.pos))) this.pos++;
  }

  /** A token (RFC 9110 §5.6.2), or '' when none starts here. */
  token(): string {
    const start = this.pos;
    while (this.pos < this.line.length && isTchar(this.line.charCodeAt(this.pos))) this.pos++;
    return this.line.slice(start, this.pos);
  }

  /**
   * A quoted-string starting at the opening quote (RFC 9110 §5.6.4), unescaped; `undefined` when
   * it is invalid. An invalid one is still read to its closing quote (or the end of the line), so
   * that a comma inside it is never taken for a list separator.
   */
  quoted(): string | undefined {
    this.pos++; // the opening DQUOTE
    let value = '';
    let valid = true;
    while (this.pos < this.line.length) {
      const c = this.line.charCodeAt(this.pos);
      if (c === DQUOTE) {
        this.pos++;
        return valid ? value : undefined;
      }
      if (c === BACKSLASH) {
        const next = this.pos + 1 < this.line.length ? this.line.charCodeAt(this.pos + 1) : -1;
        if (next === -1) break;
        if (isQuotable(next)) value += this.line[this.pos + 1];
        else valid = false;
        this.pos += 2;
        continue;
      }
      if (isQdtext(c)) value += this.line[this.pos];
      else valid = false;
      this.pos++;
    }
    return undefined; // unterminated
  }

  /** Skips to just past the next comma outside a quoted-string (or to the end). */
  skipElement(): void {
    while (this.pos < this.line.length) {
      const c = this.line.charCodeAt(this.pos);
      if (c === COMMA) {
        this.pos++;
        return;
      }
      if (c === DQUOTE) this.quoted();
      else this.pos++;
    }
  }
}

/**
 * Reads one element at the cursor (after its leading OWS) and leaves the cursor past its comma.
 * Returns the offer, or `undefined` when its syntax is invalid (the rest of it is skipped).
 */
function readElement(r: LineReader): ExtensionOffer | undefined {
  const name = r.token();
  if (name === '') {
    r.skipElement();
    return undefined;
  }
  const params: ExtensionParam[] = [];
  for (;;) {
    r.skipOws();
    const c = r.at();
    if (c === -1) return { name, params };
    if (c === COMMA) {
      r.pos++;
      return { name, params };
    }
    if (c !== SEMI || params.length === MAX_EXTENSION_PARAMS) break;
    r.pos++;
    r.skipOws();
    const paramName = r.token();
    if (paramName === '') break;
    r.skipOws();
    if (r.at() !== EQUALS) {
      params.push({ name: paramName, value: true });
      continue;
    }
    r.pos++;
    r.skipOws();
    let value: string | undefined;
    if (r.at() === DQUOTE) {
      value = r.quoted();
      // RFC 6455 §9.1, RFC 7692 §7.1: the unescaped value must itself be a token.
      if (value === undefined || !isToken(value)) break;
    } else {
      value = r.token();
      if (value === '') break;
    }
    params.push({ name: paramName, value });
  }
  r.skipElement();
  return undefined;
}

/**
 * Parses `Sec-WebSocket-Extensions` (one value, or several header lines as Node gives them) into
 * the client's offers, in order. Never throws; see the module comment for what a malformed or
 * hostile header yields. Names and values keep their case (RFC 7692's names are compared exactly,
 * as ws and python-websockets do).
 */
export function parseExtensionOffers(value: HeaderValue): ParsedExtensions {
  if (value === undefined) return NONE;
  const lines: readonly string[] = typeof value === 'string' ? [value] : value;
  // Bounded work: refuse a header past the cap before reading any of it.
  let length = 0;
  for (const line of lines) {
    length += (typeof line === 'string' ? line.length : 0) + 1;
    if (length > MAX_EXTENSIONS_HEADER_LENGTH + 1) return { offers: [], malformed: 0, ignored: 0, tooLong: true };
  }
  const offers: ExtensionOffer[] = [];
  let malformed = 0;
  let ignored = 0;
  for (const line of lines) {
    if (typeof line !== 'string') continue; // only reachable from untyped callers
    const r = new LineReader(line);
    for (;;) {
      r.skipOws();
      const c = r.at();
      if (c === -1) break;
      if (c === COMMA) {
        r.pos++; // RFC 9110 §5.6.1: empty list elements are ignored
        continue;
      }
      const offer = readElement(r);
      if (offer === undefined) malformed++;
      else if (offers.length < MAX_EXTENSION_OFFERS) offers.push(offer);
      else ignored++;
    }
  }
  return { offers, malformed, ignored, tooLong: false };
}

/**
 * Formats one extension for a response header: `name; param; param=value`. Every name and value
 * must be a token (RFC 6455 §9.1); anything else is a programming error and throws a TypeError,
 * so a header is never written with a value that would need quoting or could split the response.
 */
export function formatExtension(offer: ExtensionOffer): string {
  if (!isToken(offer.name)) throw new TypeError(`extension name is not a token: ${JSON.stringify(offer.name)}`);
  let out = offer.name;
  for (const p of offer.params) {
    if (!isToken(p.name)) throw new TypeError(`extension parameter name is not a token: ${JSON.stringify(p.name)}`);
    if (p.value === true) {
      out += `; ${p.name}`;
    } else {
      if (!isToken(p.value)) throw new TypeError(`extension parameter value is not a token: ${JSON.stringify(p.value)}`);
      out += `; ${p.name}=${p.value}`;
    }
  }
  return out;
}
