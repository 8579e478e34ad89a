/**
 * UTF-8 test sequences for section 6, after Markus Kuhn's UTF-8-test.txt as grouped by the
 * Autobahn TestSuite (cases 6.5–6.23), plus our own edge texts (6.24). Each entry says whether
 * it is valid UTF-8 per RFC 3629 (the encoding RFC 6455 §8.1 requires for text); the suite
 * cross-checks every flag against an independent decoder (WHATWG TextDecoder, fatal mode).
 */
import { Buffer } from 'node:buffer';

export interface Utf8Case {
  /** Case id, e.g. "6.7.3". */
  id: string;
  valid: boolean;
  bytes: Buffer;
}

export interface Utf8Group {
  section: string;
  title: string;
  cases: Utf8Case[];
}

const h = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const s = (text: string): Buffer => Buffer.from(text, 'utf8');

/** κόσμε, the classic Greek test word: ce ba e1 bd b9 cf 83 ce bc ce b5. */
export const KOSME = h('cebae1bdb9cf83cebcceb5');

function group(section: string, title: string, entries: [boolean, Buffer][]): Utf8Group {
  return { section, title, cases: entries.map(([valid, bytes], i) => ({ id: `${section}.${i + 1}`, valid, bytes })) };
}

/** Every 2-byte and longer sequence missing its last byte (Kuhn 3.3). */
const MISSING_LAST = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'].map(h);

/** Lonely start bytes in [from, to], each followed by a space (Kuhn 3.2). */
function lonely(from: number, to: number): Buffer {
  const out: number[] = [];
  for (let b = from; b <= to; b++) out.push(b, 0x20);
  return Buffer.from(out);
}

function range(from: number, to: number): Buffer {
  const out: number[] = [];
  for (let b = from; b <= to; b++) out.push(b);
  return Buffer.from(out);
}

/** Non-characters U+FFFE/U+FFFF and U+nFFFE/U+nFFFF in planes 1–16: valid UTF-8 (Kuhn 5.3). */
function nonCharacters(): [boolean, Buffer][] {
  const out: [boolean, Buffer][] = [[true, h('efbfbe')], [true, h('efbfbf')]];
  for (const z1 of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const z2 of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if (z1 === 0xf4 && z2 !== 0x8f) continue; // above U+10FFFF
      if (z1 === 0xf0 && z2 === 0x8f) continue; // overlong
      for (const z3 of [0xbe, 0xbf]) out.push([true, Buffer.from([z1, z2, 0xbf, z3])]);
    }
  }
  return out;
}

export const UTF8_GROUPS: Utf8Group[] = [
  group('6.5', 'some valid UTF-8 sequences', [
    [true, s('hello$world')],
    [true, h('68656c6c6f c2a2 776f726c64')],
    [true, h('68656c6c6f e282ac 776f726c64')],
    [true, h('68656c6c6f f0a4ada2 776f726c64')],
    [true, KOSME],
  ]),
  group(
    '6.6',
    'all prefixes of κόσμε',
    // Complete code points end after bytes 2, 5, 7, 9 and 11.
    Array.from({ length: KOSME.length }, (_, i) => [[2, 5, 7, 9, 11].includes(i + 1), KOSME.subarray(0, i + 1)] as [boolean, Buffer]),
  ),
  group('6.7', 'first possible sequence of each length', [
    [true, h('00')],
    [true, h('c280')],
    [true, h('e0a080')],
    [true, h('f0908080')],
  ]),
  group('6.8', 'first possible 5- and 6-byte sequences (not UTF-8)', [
    [false, h('f888808080')],
    [false, h('fc8480808080')],
  ]),
  group('6.9', 'last possible sequence of each length', [
    [true, h('7f')],
    [true, h('dfbf')],
    [true, h('efbfbf')],
    [true, h('f48fbfbf')],
  ]),
  group('6.10', 'last possible 4-, 5- and 6-byte sequences (beyond U+10FFFF)', [
    [false, h('f7bfbfbf')],
    [false, h('fbbfbfbfbf')],
    [false, h('fdbfbfbfbfbf')],
  ]),
  group('6.11', 'other boundary conditions', [
    [true, h('ed9fbf')], // U+D7FF
    [true, h('ee8080')], // U+E000
    [true, h('efbfbd')], // U+FFFD
    [true, h('f48fbfbf')], // U+10FFFF
    [false, h('f4908080')], // U+110000
  ]),
  group('6.12', 'unexpected continuation bytes', [
    [false, h('80')],
    [false, h('bf')],
    [false, h('80bf')],
    [false, h('80bf80')],
    [false, h('80bf80bf')],
    [false, h('80bf80bf80')],
    [false, h('80bf80bf80bf')],
    [false, range(0x80, 0xbf)],
  ]),
  group('6.13', 'lonely start bytes, each followed by a space', [
    [false, lonely(0xc0, 0xdf)],
    [false, lonely(0xe0, 0xef)],
    [false, lonely(0xf0, 0xf7)],
    [false, lonely(0xf8, 0xfb)],
    [false, lonely(0xfc, 0xfd)],
  ]),
  group(
    '6.14',
    'sequences with the last continuation byte missing',
    MISSING_LAST.map((b) => [false, b] as [boolean, Buffer]),
  ),
  group('6.15', 'concatenation of incomplete sequences', [[false, Buffer.concat(MISSING_LAST)]]),
  group('6.16', 'impossible bytes', [
    [false, h('fe')],
    [false, h('ff')],
    [false, h('fefeffff')],
  ]),
  group('6.17', 'overlong ASCII "/"', [
    [false, h('c0af')],
    [false, h('e080af')],
    [false, h('f08080af')],
    [false, h('f8808080af')],
    [false, h('fc80808080af')],
  ]),
  group('6.18', 'maximum overlong sequences', [
    [false, h('c1bf')],
    [false, h('e09fbf')],
    [false, h('f08fbfbf')],
    [false, h('f887bfbfbf')],
    [false, h('fc83bfbfbfbf')],
  ]),
  group('6.19', 'overlong NUL', [
    [false, h('c080')],
    [false, h('e08080')],
    [false, h('f0808080')],
    [false, h('f880808080')],
    [false, h('fc8080808080')],
  ]),
  group('6.20', 'single UTF-16 surrogates', [
    [false, h('eda080')],
    [false, h('edadbf')],
    [false, h('edae80')],
    [false, h('edafbf')],
    [false, h('edb080')],
    [false, h('edbe80')],
    [false, h('edbfbf')],
  ]),
  group('6.21', 'paired UTF-16 surrogates', [
    [false, h('eda080edb080')],
    [false, h('eda080edbfbf')],
    [false, h('edadbfedb080')],
    [false, h('edadbfedbfbf')],
    [false, h('edae80edb080')],
    [false, h('edae80edbfbf')],
    [false, h('edafbfedb080')],
    [false, h('edafbfedbfbf')],
  ]),
  group('6.22', 'non-characters (valid UTF-8)', nonCharacters()),
  group('6.23', 'Unicode specials', [
    [true, h('efbfb9')],
    [true, h('efbfba')],
    [true, h('efbfbb')],
    [true, h('efbfbc')],
    [true, h('efbfbd')],
    [true, h('efbfbe')],
    [true, h('efbfbf')],
  ]),
  group('6.24', 'edge texts (beyond Autobahn)', [
    [true, s('κόσμε')],
    [true, s('emoji 😀 and 🏳️‍🌈 and 𝄞')],
    [true, s('\uFFFF')],
    [true, s('\u{10FFFF}')],
    [true, s('a\u{10FFFF}\uFFFF\u{10000}\u0800\u0080z')],
    [true, s('\u0000nul\u0000')],
    [true, h('efbbbf 68656c6c6f')], // a BOM is text like any other: it must echo, not be stripped
    [true, Buffer.concat([s('κόσμε '.repeat(20)), s('😀')])], // crosses the 48-byte native-validation threshold
    [false, Buffer.concat([s('κόσμε '.repeat(20)), h('eda080')])], // surrogate after a long valid run
    [false, Buffer.concat([s('x'.repeat(100)), h('c0af'), s('y'.repeat(100))])], // overlong in the middle of a long run
    [false, Buffer.concat([s('😀'.repeat(30)), h('f09f98')])], // long valid run ending in a truncated emoji
  ]),
];

export const ALL_UTF8_CASES: Utf8Case[] = UTF8_GROUPS.flatMap((g) => g.cases);

/**
 * The oracle: where a fatal streaming decoder first rejects `bytes` — the 1-based count of bytes
 * after which no continuation can make it valid — or `'end'` if only the end of the message makes
 * it invalid (a truncated sequence), or `null` if it is valid.
 */
export function firstInvalidAt(bytes: Buffer): number | 'end' | null {
  for (let k = 1; k <= bytes.length; k++) {
    const d = new TextDecoder('utf-8', { fatal: true });
    try {
      d.decode(bytes.subarray(0, k), { stream: true });
    } catch {
      return k;
    }
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return null;
  } catch {
    return 'end';
  }
}
