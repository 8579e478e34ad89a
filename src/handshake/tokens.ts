/** A header value as Node gives it: missing, one string, or several. */
export type HeaderValue = string | readonly string[] | undefined;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Splits a comma-separated header list (RFC 9110 §5.6.1) into trimmed, non-empty elements,
 * across repeated header lines. No regexes: linear in the input.
 */
export function splitList(value: HeaderValue): string[] {
  const out: string[] = [];
  if (value === undefined) return out;
  const lines = typeof value === 'string' ? [value] : value;
  for (const line of lines) {
    let start = 0;
    for (let i = 0; i <= line.length; i++) {
      if (i === line.length || line.charCodeAt(i) === 0x2c) {
        let a = start;
        let b = i;
        while (a < b && isSpace(line.charCodeAt(a))) a++;
        while (b > a && isSpace(line.charCodeAt(b - 1))) b--;
        if (b > a) out.push(line.slice(a, b));
        start = i + 1;
      }
    }
  }
  return out;
}

/** Whether a comma-separated header list holds `token` (compared case-insensitively). */
export function listHasToken(value: HeaderValue, token: string): boolean {
  const wanted = token.toLowerCase();
  for (const element of splitList(value)) {
    if (element.toLowerCase() === wanted) return true;
  }
  return false;
}

/** The single value of a header that must not repeat, or `undefined` when missing or repeated. */
export function singleValue(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

/** RFC 9110 §5.6.2 token characters. */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0x21 || c === 0x23 || c === 0x24 || c === 0x25 || c === 0x26 || c === 0x27 ||
      c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x5e || c === 0x5f ||
      c === 0x60 || c === 0x7c || c === 0x7e;
    if (!ok) return false;
  }
  return true;
}

/**
 * Whether `text` may be written as a header value (RFC 9110 §5.5): tabs, visible ASCII, spaces
 * and obs-text bytes only. No CR or LF (which would split the response), no other control
 * character, nothing beyond one byte (headers are written as latin1).
 */
export function isSafeHeaderValue(text: string): boolean {
  // Written as latin1 (see acceptResponse's caller and rejectionBytes).
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x09) continue;
    if (c < 0x20 || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

function isBase64Char(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
}

/** RFC 6455 §4.2.1: a `Sec-WebSocket-Key` is base64 that decodes to exactly 16 bytes. */
export function isValidKey(key: string): boolean {
  const k = key.trim();
  if (k.length !== 24 || k.charCodeAt(22) !== 0x3d || k.charCodeAt(23) !== 0x3d) return false;
  for (let i = 0; i < 22; i++) if (!isBase64Char(k.charCodeAt(i))) return false;
  return true;
}
