import { floats as prng } from '../reliability/fixtures/prng.js';
import { describe, expect, it } from 'vitest';
import {
  type ExtensionOffer,
  formatExtension,
  MAX_EXTENSION_OFFERS,
  MAX_EXTENSION_PARAMS,
  MAX_EXTENSIONS_HEADER_LENGTH,
  parseExtensionOffers,
} from '../../src/extensions/extensions-header.js';

const offers = (v: Parameters<typeof parseExtensionOffers>[0]): readonly ExtensionOffer[] => parseExtensionOffers(v).offers;


describe('parseExtensionOffers: RFC 6455 §9.1 grammar', () => {
  it('RFC 6455 §9.1: a missing or empty header is no offer', () => {
    for (const v of [undefined, '', '   ', ',', ' , ,\t', [], ['', ' ']]) {
      expect(parseExtensionOffers(v)).toEqual({ offers: [], malformed: 0, ignored: 0, tooLong: false });
    }
  });

  it("browsers' offers (wave2 §1.4): Chrome, Firefox, Safari", () => {
    expect(offers('permessage-deflate; client_max_window_bits')).toEqual([
      { name: 'permessage-deflate', params: [{ name: 'client_max_window_bits', value: true }] },
    ]);
    expect(offers('permessage-deflate')).toEqual([{ name: 'permessage-deflate', params: [] }]);
  });

  it('RFC 6455 §9.1: extension-param = token [ "=" token ]; params keep their order', () => {
    expect(offers('permessage-deflate; server_max_window_bits=10; client_no_context_takeover; client_max_window_bits=9')).toEqual([
      {
        name: 'permessage-deflate',
        params: [
          { name: 'server_max_window_bits', value: '10' },
          { name: 'client_no_context_takeover', value: true },
          { name: 'client_max_window_bits', value: '9' },
        ],
      },
    ]);
  });

  it('RFC 9110 §5.6.3: OWS around ";", "=" and "," is tolerated, none is needed', () => {
    const want = [{ name: 'a', params: [{ name: 'b', value: '1' }, { name: 'c', value: true }] }, { name: 'd', params: [] }];
    expect(offers('a;b=1;c,d')).toEqual(want);
    expect(offers(' \ta \t; \tb \t= \t1 \t;\tc\t ,\t d \t')).toEqual(want);
    expect(offers('a ; b = "1" ; c , d')).toEqual(want);
  });

  it('RFC 9110 §5.6.1: a comma list, across repeated header lines, in order; empty elements ignored', () => {
    expect(offers('a, b; x, c').map((o) => o.name)).toEqual(['a', 'b', 'c']);
    expect(offers(['a', 'b; x', ' , ', 'c,,']).map((o) => o.name)).toEqual(['a', 'b', 'c']);
    expect(offers(',,a,,,b,').map((o) => o.name)).toEqual(['a', 'b']);
  });

  it('RFC 6455 §9.1: the same extension may be offered several times (alternatives, RFC 7692 §5)', () => {
    expect(offers('permessage-deflate; server_max_window_bits=9, permessage-deflate')).toEqual([
      { name: 'permessage-deflate', params: [{ name: 'server_max_window_bits', value: '9' }] },
      { name: 'permessage-deflate', params: [] },
    ]);
  });

  it('RFC 9110 §5.6.4: a quoted-string value is unescaped', () => {
    expect(offers('a; b="10"')).toEqual([{ name: 'a', params: [{ name: 'b', value: '10' }] }]);
    expect(offers('a; b="1\\0"')).toEqual([{ name: 'a', params: [{ name: 'b', value: '10' }] }]);
    expect(offers('a; b="\\x\\y"')).toEqual([{ name: 'a', params: [{ name: 'b', value: 'xy' }] }]);
  });

  it('RFC 6455 §9.1 / RFC 7692 §7.1: a quoted value that is not a token after unescaping is malformed', () => {
    for (const v of ['a; b=""', 'a; b="1 0"', 'a; b="1,0"', 'a; b="x;y"', 'a; b="\\""', 'a; b="é"']) {
      expect(parseExtensionOffers(v), v).toEqual({ offers: [], malformed: 1, ignored: 0, tooLong: false });
    }
  });

  it('a comma inside a quoted-string does not split the list', () => {
    const r = parseExtensionOffers('a; b="1,0", c; d="x,y,z" junk, e');
    expect(r.offers.map((o) => o.name)).toEqual(['e']);
    expect(r.malformed).toBe(2);
  });

  it('names and values keep their case (compared exactly by the extension)', () => {
    expect(offers('PerMessage-Deflate; Client_Max_Window_Bits=A')).toEqual([
      { name: 'PerMessage-Deflate', params: [{ name: 'Client_Max_Window_Bits', value: 'A' }] },
    ]);
  });

  it('a parameter named __proto__ is plain data (no prototype pollution)', () => {
    const [o] = offers('__proto__; __proto__=x; constructor');
    expect(o).toEqual({ name: '__proto__', params: [{ name: '__proto__', value: 'x' }, { name: 'constructor', value: true }] });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('parseExtensionOffers: malformed input skips that element, never throws', () => {
  const cases: [string, string][] = [
    ['empty name before ";"', '; a'],
    ['trailing ";"', 'permessage-deflate;'],
    ['";" without a parameter', 'permessage-deflate; ; x'],
    ['two tokens without a separator', 'permessage-deflate client_max_window_bits'],
    ['a parameter name with a space', 'permessage-deflate; client max'],
    ['"=" without a value', 'permessage-deflate; server_max_window_bits='],
    ['"=" then a separator', 'permessage-deflate; server_max_window_bits=;x'],
    ['a value that is two tokens', 'permessage-deflate; server_max_window_bits=1 0'],
    ['a non-token character in a value', 'permessage-deflate; server_max_window_bits=1/0'],
    ['"==" ', 'permessage-deflate; a==1'],
    ['an unterminated quoted-string', 'permessage-deflate; a="10'],
    ['junk after a quoted-string', 'permessage-deflate; a="10"x'],
    ['a quoted name', '"permessage-deflate"'],
    ['a control character', 'permessage-deflate;\u0000a'],
    ['a CR LF', 'permessage-deflate\r\n; a'],
    ['a character past latin1', 'permessage-deflate; a=\u2028'],
    ['a backslash ending the value', 'permessage-deflate; a="1\\'],
    ['a separator as a name', '=; a'],
  ];
  for (const [what, header] of cases) {
    it(`${what}: ${JSON.stringify(header)} → skipped, later elements still read`, () => {
      expect(() => parseExtensionOffers(header)).not.toThrow();
      const alone = parseExtensionOffers(header);
      expect(alone.offers).toEqual([]);
      expect(alone.malformed).toBe(1);
      const r = parseExtensionOffers([`${header}`, 'permessage-deflate']);
      expect(r.offers).toEqual([{ name: 'permessage-deflate', params: [] }]);
      expect(r.malformed).toBe(1);
    });
  }

  it('an unterminated quote eats only the rest of its own header line', () => {
    const r = parseExtensionOffers(['a; b="x, c', 'd']);
    expect(r.offers.map((o) => o.name)).toEqual(['d']);
    expect(r.malformed).toBe(1);
  });

  it('valid elements before and after a malformed one are kept, in order', () => {
    const r = parseExtensionOffers('a, b c, d; e=, f');
    expect(r.offers.map((o) => o.name)).toEqual(['a', 'f']);
    expect(r.malformed).toBe(2);
  });
});

describe('parseExtensionOffers: bounded work on hostile input', () => {
  it(`a header longer than ${MAX_EXTENSIONS_HEADER_LENGTH} characters is ignored whole`, () => {
    const long = `permessage-deflate${' '.repeat(MAX_EXTENSIONS_HEADER_LENGTH)}`;
    expect(parseExtensionOffers(long)).toEqual({ offers: [], malformed: 0, ignored: 0, tooLong: true });
    const exact = `permessage-deflate${' '.repeat(MAX_EXTENSIONS_HEADER_LENGTH - 'permessage-deflate'.length)}`;
    expect(parseExtensionOffers(exact).offers).toHaveLength(1);
  });

  it('the length cap counts every header line (and one per line), so many empty lines are refused', () => {
    expect(parseExtensionOffers(Array.from({ length: 100_000 }, () => '')).tooLong).toBe(true);
    expect(parseExtensionOffers(Array.from({ length: 3000 }, () => 'a')).tooLong).toBe(true);
    expect(parseExtensionOffers(Array.from({ length: 10 }, () => 'a')).offers).toHaveLength(10);
  });

  it(`offers past ${MAX_EXTENSION_OFFERS} are ignored and counted`, () => {
    const r = parseExtensionOffers(Array.from({ length: MAX_EXTENSION_OFFERS + 5 }, (_, i) => `x${i}`).join(','));
    expect(r.offers).toHaveLength(MAX_EXTENSION_OFFERS);
    expect(r.offers[0]?.name).toBe('x0');
    expect(r.ignored).toBe(5);
  });

  it(`an offer with more than ${MAX_EXTENSION_PARAMS} parameters is malformed`, () => {
    const params = (n: number): string => Array.from({ length: n }, (_, i) => `p${i}`).join('; ');
    expect(parseExtensionOffers(`a; ${params(MAX_EXTENSION_PARAMS)}`).offers[0]?.params).toHaveLength(MAX_EXTENSION_PARAMS);
    const r = parseExtensionOffers(`a; ${params(MAX_EXTENSION_PARAMS + 1)}, b`);
    expect(r.offers.map((o) => o.name)).toEqual(['b']);
    expect(r.malformed).toBe(1);
  });

  it('pathological inputs within the cap finish fast', () => {
    const n = MAX_EXTENSIONS_HEADER_LENGTH;
    const inputs = [
      ';'.repeat(n),
      ','.repeat(n),
      '"'.repeat(n),
      '\\'.repeat(n),
      `a; b="${'\\"'.repeat(n / 2 - 4)}`,
      'a'.repeat(n),
      'a;'.repeat(n / 2),
      'a=,'.repeat(n / 3),
      ' '.repeat(n),
      `a${' '.repeat(n - 2)}b`,
    ];
    const t0 = performance.now();
    for (let k = 0; k < 20; k++) for (const v of inputs) parseExtensionOffers(v);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('fuzz (seeded): random headers from the grammar\'s alphabet never throw and stay bounded', () => {
    const alphabet = ['permessage-deflate', 'client_max_window_bits', 'server_max_window_bits', '=', ';', ',', ' ', '\t', '"', '\\', '1', '5', '08', 'x', '\u0000', '\u00ff', '\u0100', '\r', '\n', '__proto__'];
    const rand = prng(7692);
    const t0 = performance.now();
    for (let run = 0; run < 5000; run++) {
      let header = '';
      const len = Math.floor(rand() * 40);
      for (let k = 0; k < len; k++) header += alphabet[Math.floor(rand() * alphabet.length)];
      const lines = rand() < 0.3 ? [header, header.slice(0, Math.floor(rand() * header.length))] : header;
      const r = parseExtensionOffers(lines);
      expect(r.offers.length).toBeLessThanOrEqual(MAX_EXTENSION_OFFERS);
      for (const o of r.offers) {
        expect(o.name.length).toBeGreaterThan(0);
        expect(o.params.length).toBeLessThanOrEqual(MAX_EXTENSION_PARAMS);
        // Whatever is kept re-formats into a header that parses back to itself.
        expect(parseExtensionOffers(formatExtension(o)).offers).toEqual([o]);
      }
    }
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('fuzz (seeded): random bytes never throw', () => {
    const rand = prng(6455);
    for (let run = 0; run < 2000; run++) {
      let header = '';
      const len = Math.floor(rand() * 200);
      for (let k = 0; k < len; k++) header += String.fromCharCode(Math.floor(rand() * 0x180));
      expect(() => parseExtensionOffers(header)).not.toThrow();
    }
  });

  it('untyped callers: non-string lines are skipped, not thrown on', () => {
    expect(parseExtensionOffers([1, null, 'a'] as unknown as string[]).offers).toEqual([{ name: 'a', params: [] }]);
  });
});

describe('formatExtension', () => {
  it('RFC 6455 §9.1: name; param; param=value', () => {
    expect(formatExtension({ name: 'permessage-deflate', params: [] })).toBe('permessage-deflate');
    expect(
      formatExtension({
        name: 'permessage-deflate',
        params: [
          { name: 'server_no_context_takeover', value: true },
          { name: 'client_max_window_bits', value: '10' },
        ],
      }),
    ).toBe('permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
  });

  it('refuses anything that is not a token (no quoting, no header splitting)', () => {
    expect(() => formatExtension({ name: 'a b', params: [] })).toThrow(TypeError);
    expect(() => formatExtension({ name: '', params: [] })).toThrow(TypeError);
    expect(() => formatExtension({ name: 'a', params: [{ name: 'b\r\nX: y', value: true }] })).toThrow(TypeError);
    expect(() => formatExtension({ name: 'a', params: [{ name: 'b', value: '' }] })).toThrow(TypeError);
    expect(() => formatExtension({ name: 'a', params: [{ name: 'b', value: '1,2' }] })).toThrow(TypeError);
  });
});
