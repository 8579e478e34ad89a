/**
 * The upgrade request's headers as a connection keeps them once the request is let go: one flat
 * string instead of an object, its property storage and one string per value. `this.headers`
 * rebuilds the object from it the first time it is read after `onOpen()`.
 *
 * The text is the object's own properties in order, `name\nvalue\n…`; a name that held an array
 * (`set-cookie`) is written once per element, marked with a leading `\u0001`. Anything the text
 * cannot say back exactly (a line feed or `\u0001` in a name or value, a value that is not a
 * string or an array of strings, an object that is not a plain one) keeps the object instead.
 */
import type { IncomingHttpHeaders } from 'node:http';

const LF = '\n';
const ARRAY = '\u0001';

/** `headers` as one flat string, or `null` when it must stay an object (see above). */
export function compactHeaders(headers: IncomingHttpHeaders): string | null {
  if (Object.getPrototypeOf(headers) !== Object.prototype) return null;
  const parts: string[] = [];
  for (const name of Object.keys(headers)) {
    if (!plain(name)) return null;
    const value: unknown = headers[name];
    if (typeof value === 'string') {
      if (!plain(value)) return null;
      parts.push(name, value);
    } else if (Array.isArray(value)) {
      for (const v of value as unknown[]) {
        if (typeof v !== 'string' || !plain(v)) return null;
        parts.push(ARRAY + name, v);
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
    const name = parts[i] as string;
    const value = parts[i + 1] as string;
    if (name.startsWith(ARRAY)) {
      const key = name.slice(1);
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
    if (key === name) return parts[i + 1] as string;
    if (key.startsWith(ARRAY) && key.slice(1) === name) (list ??= []).push(parts[i + 1] as string);
  }
  return list;
}

function plain(s: string): boolean {
  return !s.includes(LF) && !s.includes(ARRAY);
}
