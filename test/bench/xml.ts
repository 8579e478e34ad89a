/**
 * A small, strict XML reader for the chart tests: enough of XML 1.0 to read what an SVG writer
 * produces, and to refuse what is not well-formed — unclosed or crossed elements, unquoted or
 * repeated attributes, a raw `<` in an attribute, a bare `&` or an unknown entity, text or a
 * second element after the root. No DOCTYPE, no CDATA (the chart writer emits neither).
 */

export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

const isNameStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === ':';
const isNameChar = (c: string): boolean => isNameStart(c) || (c >= '0' && c <= '9') || c === '-' || c === '.';
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Replaces the character and entity references of a text or attribute value; throws on a bare `&`. */
function decode(raw: string, at: number): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] ?? '';
    if (c !== '&') {
      out += c;
      continue;
    }
    const end = raw.indexOf(';', i);
    if (end < 0) throw new Error(`offset ${at + i}: '&' without ';'`);
    const ref = raw.slice(i + 1, end);
    let ch: string | undefined;
    if (ref.startsWith('#x')) ch = hexOrDec(ref.slice(2), 16);
    else if (ref.startsWith('#')) ch = hexOrDec(ref.slice(1), 10);
    else ch = ENTITIES[ref];
    if (ch === undefined) throw new Error(`offset ${at + i}: unknown reference &${ref};`);
    out += ch;
    i = end;
  }
  return out;
}

function hexOrDec(digits: string, radix: number): string | undefined {
  if (digits === '') return undefined;
  for (const d of digits.toLowerCase()) if (!'0123456789abcdef'.slice(0, radix).includes(d)) return undefined;
  const cp = Number.parseInt(digits, radix);
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
  return String.fromCodePoint(cp);
}

/** Parses a whole document into its root element; throws with an offset on the first fault. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (why: string): never => {
    throw new Error(`offset ${i}: ${why}`);
  };
  const readName = (): string => {
    const start = i;
    if (!isNameStart(text[i] ?? '')) fail(`a name expected, got ${JSON.stringify(text[i] ?? 'end of input')}`);
    while (i < text.length && isNameChar(text[i] ?? '')) i++;
    return text.slice(start, i);
  };
  const skipSpace = (): boolean => {
    const start = i;
    while (i < text.length && isSpace(text[i] ?? '')) i++;
    return i > start;
  };

  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>');
    if (end < 0) fail('unclosed XML declaration');
    i = end + 2;
  }
  while (i < text.length) {
    const c = text[i];
    if (c !== '<') {
      const end = text.indexOf('<', i);
      const raw = text.slice(i, end < 0 ? text.length : end);
      const parent = stack.at(-1);
      if (parent === undefined) {
        if (raw.trim() !== '') fail('text outside the root element');
      } else {
        parent.children.push(decode(raw, i));
      }
      i = end < 0 ? text.length : end;
      continue;
    }
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) fail('unclosed comment');
      if (text.slice(i + 4, end).includes('--')) fail("'--' inside a comment");
      i = end + 3;
      continue;
    }
    if (text.startsWith('<!', i) || text.startsWith('<?', i)) fail('DOCTYPE, CDATA and processing instructions are not expected here');
    if (text.startsWith('</', i)) {
      i += 2;
      const name = readName();
      skipSpace();
      if (text[i] !== '>') fail(`'>' expected to end </${name}`);
      i++;
      const open = stack.pop();
      if (open === undefined) fail(`</${name}> closes nothing`);
      if (open?.name !== name) fail(`</${name}> closes <${open?.name}>`);
      continue;
    }
    i++;
    if (root !== undefined && stack.length === 0) fail('a second root element');
    const el: XmlElement = { name: readName(), attrs: new Map(), children: [] };
    for (;;) {
      const spaced = skipSpace();
      if (text.startsWith('/>', i)) {
        i += 2;
        attach(el, false);
        break;
      }
      if (text[i] === '>') {
        i++;
        attach(el, true);
        break;
      }
      if (i >= text.length) fail(`unclosed start tag <${el.name}`);
      if (!spaced) fail('white space expected before an attribute');
      const name = readName();
      skipSpace();
      if (text[i] !== '=') fail(`'=' expected after attribute ${name}`);
      i++;
      skipSpace();
      const quote = text[i];
      if (quote !== '"' && quote !== "'") fail(`attribute ${name}: value not quoted`);
      const end = text.indexOf(quote ?? '"', i + 1);
      if (end < 0) fail(`attribute ${name}: unclosed value`);
      const raw = text.slice(i + 1, end);
      if (raw.includes('<')) fail(`attribute ${name}: '<' in a value`);
      if (el.attrs.has(name)) fail(`attribute ${name} repeated`);
      el.attrs.set(name, decode(raw, i + 1));
      i = end + 1;
    }
  }
  if (stack.length > 0) throw new Error(`end of input inside <${stack.at(-1)?.name}>`);
  if (root === undefined) throw new Error('no root element');
  return root;

  function attach(el: XmlElement, open: boolean): void {
    const parent = stack.at(-1);
    if (parent !== undefined) parent.children.push(el);
    else root = el;
    if (open) stack.push(el);
  }
}

/** Every element under `el` (not `el` itself), in document order. */
export function descendants(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    for (const c of e.children) {
      if (typeof c === 'string') continue;
      out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}

/** The element's text, its descendants' included. */
export function textOf(el: XmlElement): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}

/** The element's child elements. */
export function elements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== 'string');
}
