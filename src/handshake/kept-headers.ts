/**
 * The upgrade request's headers as a connection keeps them once the request is let go: one flat
 * string instead of an object, its property storage and one string per value. `this.headers`
 * rebuilds the object from it the first time it is read after `onOpen()`.
 *
 * The text is the object's own properties in order, `name\nvalue\n…`; a name that held an array
 * (`set-cookie`) is written once per element, marked with a leading `\u0001`. Names every
 * upgrade request carries are one control character each (`NAMES`), and a header whose whole
 * line is one that clients send alike (`connection: Upgrade`, `sec-websocket-version: 13`, a
 * browser's `cache-control: no-cache`…) is one character with an empty value (`PAIRS`): a bit
 * like HPACK's static table. That takes 70 bytes off a minimal request's text and about 240
 * off Chrome's. Anything the text cannot say back exactly (a control character other than a tab
 * in a name or value, a value that is not a string or an array of strings, an object that is
 * not a plain one) keeps the object instead.
 */
import type { IncomingHttpHeaders } from 'node:http';

const LF = '\n';
const ARRAY = '\u0001';

/** Header names written as one character each: U+0002 to U+0008, then U+000B on (not tab or LF). */
const NAMES: readonly string[] = [
  'host',
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'origin',
  'user-agent',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'pragma',
  'cookie',
  'x-forwarded-for',
];
/** Whole headers (name, value) written as one character and an empty value, after NAMES' characters. */
const PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['connection', 'Upgrade'],
  ['connection', 'upgrade'],
  ['upgrade', 'websocket'],
  ['sec-websocket-version', '13'],
  ['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits'],
  ['cache-control', 'no-cache'],
  ['pragma', 'no-cache'],
  ['accept-encoding', 'gzip, deflate, br, zstd'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['accept-encoding', 'gzip, deflate'],
];

/** The token character of dictionary entry `i` (skipping tab and LF, which stay themselves). */
const tokenChar = (i: number): string => String.fromCharCode(i < 7 ? 2 + i : 4 + i);
// Every token must be a character plain() refuses in a real name or value (U+0002–U+001F but
// tab and LF): 28 entries at most.
if (NAMES.length + PAIRS.length > 28) throw new Error('kept-headers: more dictionary entries than token characters');
/** Name → its token, and its values that have a pair token. */
const ENCODE = new Map<string, { token: string; pairs: Map<string, string> }>();
/** Token → [name, value]; value null for a name token. */
const DECODE = new Map<string, readonly [string, string | null]>();
NAMES.forEach((name, i) => {
  ENCODE.set(name, { token: tokenChar(i), pairs: new Map() });
  DECODE.set(tokenChar(i), [name, null]);
});
PAIRS.forEach(([name, value], j) => {
  const t = tokenChar(NAMES.length + j);
  (ENCODE.get(name) as { pairs: Map<string, string> }).pairs.set(value, t);
  DECODE.set(t, [name, value]);
});

/** `headers` as one flat string, or `null` when it must stay an object (see above). */
export function compactHeaders(headers: IncomingHttpHeaders): string | null {
  if (Object.getPrototypeOf(headers) !== Object.prototype) return null;
  const parts: string[] = [];
  for (const name of Object.keys(headers)) {
    const value: unknown = headers[name];
    const known = ENCODE.get(name);
    // A dictionary name, and a value that makes a dictionary pair, are plain already.
    if (known === undefined && !plain(name)) return null;
    if (typeof value === 'string') {
      const pair = known?.pairs.get(value);
      if (pair !== undefined) parts.push(pair, '');
      else if (!plain(value)) return null;
      else parts.push(known?.token ?? name, value);
    } else if (Array.isArray(value)) {
      for (const v of value as unknown[]) {
        if (typeof v !== 'string' || !plain(v)) return null;
        parts.push(ARRAY + (known?.token ?? name), v);
      }
      // An empty array cannot be written; Node never makes one.
      if (value.length === 0) return null;
    } else {
      return null;
    }
  }
  // join() builds one flat string: a `+=` chain would keep every piece alive.
  return parts.join(LF);
}

/** The headers object `compactHeaders()` was given, rebuilt (a new object, equal to it). */
export function expandHeaders(text: string): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  if (text === '') return headers;
  const parts = text.split(LF);
  for (let i = 0; i + 1 < parts.length; i += 2) {
    let name = parts[i] as string;
    let value = parts[i + 1] as string;
    const entry = name.length === 1 ? DECODE.get(name) : undefined;
    if (entry !== undefined) {
      name = entry[0];
      value = entry[1] ?? value;
    }
    if (name.startsWith(ARRAY)) {
      const key = nameOf(name.slice(1));
      const list = headers[key];
      if (Array.isArray(list)) list.push(value);
      else headers[key] = [value];
    } else {
      headers[name] = value;
    }
  }
  return headers as IncomingHttpHeaders;
}

/**
 * One header of `text` (as `compactHeaders()` wrote it) without rebuilding the object: its value,
 * or `undefined` when there is none (an array header gives its elements).
 */
export function keptHeader(text: string, name: string): string | string[] | undefined {
  if (text === '') return undefined;
  const parts = text.split(LF);
  let list: string[] | undefined;
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const key = parts[i] as string;
    const entry = key.length === 1 ? DECODE.get(key) : undefined;
    if (entry !== undefined) {
      if (entry[0] === name) return entry[1] ?? (parts[i + 1] as string);
    } else if (key === name) {
      return parts[i + 1] as string;
    } else if (key.startsWith(ARRAY) && nameOf(key.slice(1)) === name) {
      (list ??= []).push(parts[i + 1] as string);
    }
  }
  return list;
}

/** A name as written (maybe a token) as the name it stands for. */
function nameOf(written: string): string {
  return (written.length === 1 ? DECODE.get(written)?.[0] : undefined) ?? written;
}

/**
 * Whether the text can carry `s` as it is: no control character but tab (LF, U+0001 and the
 * tokens are the text's own). A loop, not a regular expression: a handshake's few short strings
 * cost less (0.23 against 0.33 µs for a minimal request's names and values, Node 24).
 */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x09) return false;
  }
  return true;
}
