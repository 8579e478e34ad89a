import { describe, expect, it } from 'vitest';
import { isSafeHeaderValue, isToken, isValidKey, listHasToken, singleValue, splitList } from '../../src/handshake/tokens.js';

describe('splitList (RFC 9110 §5.6.1)', () => {
  it('RFC 9110 §5.6.1: a missing header is an empty list', () => {
    expect(splitList(undefined)).toEqual([]);
    expect(splitList([])).toEqual([]);
  });

  it('RFC 9110 §5.6.1: splits on commas and trims spaces and tabs', () => {
    expect(splitList('a')).toEqual(['a']);
    expect(splitList('a, b')).toEqual(['a', 'b']);
    expect(splitList('a,b')).toEqual(['a', 'b']);
    expect(splitList(' a ,\tb\t,  c  ')).toEqual(['a', 'b', 'c']);
    expect(splitList('\t\tkeep-alive,\t Upgrade \t')).toEqual(['keep-alive', 'Upgrade']);
  });

  it('RFC 9110 §5.6.1: empty elements are ignored', () => {
    expect(splitList(',')).toEqual([]);
    expect(splitList(',,,')).toEqual([]);
    expect(splitList(', ,\t,')).toEqual([]);
    expect(splitList('a,,b')).toEqual(['a', 'b']);
    expect(splitList(',a,')).toEqual(['a']);
    expect(splitList('')).toEqual([]);
    expect(splitList('   ')).toEqual([]);
  });

  it('RFC 9110 §5.3: repeated header lines (an array) are one list, in order', () => {
    expect(splitList(['a, b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(splitList(['', ' , ', 'x'])).toEqual(['x']);
    expect(splitList(['a,', ',b'])).toEqual(['a', 'b']);
  });

  it('RFC 9110 §5.6.1: inner whitespace stays part of the element', () => {
    expect(splitList('a b, c')).toEqual(['a b', 'c']);
  });

  it('is linear: 100k-character pathological values finish and give the right answer', () => {
    const n = 100_000;
    expect(splitList(' '.repeat(n))).toEqual([]);
    expect(splitList(','.repeat(n))).toEqual([]);
    expect(splitList(' ,'.repeat(n / 2))).toEqual([]);
    expect(splitList('\t'.repeat(n) + 'x' + '\t'.repeat(n))).toEqual(['x']);
    const spaced = `a${' '.repeat(n)}b`;
    expect(splitList(spaced)).toEqual([spaced]);
    const many = splitList('x,'.repeat(n / 2));
    expect(many.length).toBe(n / 2);
    expect(many.every((e) => e === 'x')).toBe(true);
    const padded = splitList(`${' '.repeat(n / 2)}a${' '.repeat(n / 2)},${' '.repeat(n / 2)}`);
    expect(padded).toEqual(['a']);
    expect(splitList(Array.from({ length: 1000 }, () => ' , '.repeat(100)))).toEqual([]);
  });
});

describe('listHasToken', () => {
  it('RFC 6455 §4.2.1: tokens compare ASCII case-insensitively', () => {
    expect(listHasToken('Upgrade', 'upgrade')).toBe(true);
    expect(listHasToken('keep-alive, UPGRADE', 'upgrade')).toBe(true);
    expect(listHasToken(['keep-alive', 'Upgrade'], 'upgrade')).toBe(true);
    expect(listHasToken('WebSocket', 'websocket')).toBe(true);
  });

  it('RFC 9110 §5.6.1: a token must be a whole element, not a prefix or substring', () => {
    expect(listHasToken('upgraded', 'upgrade')).toBe(false);
    expect(listHasToken('no-upgrade', 'upgrade')).toBe(false);
    expect(listHasToken('keep-alive upgrade', 'upgrade')).toBe(false);
    expect(listHasToken(undefined, 'upgrade')).toBe(false);
    expect(listHasToken('', 'upgrade')).toBe(false);
  });

  it('is linear on a 100k-character pathological value', () => {
    expect(listHasToken(`${' ,'.repeat(50_000)} upgrade`, 'upgrade')).toBe(true);
    expect(listHasToken(' ,'.repeat(50_000), 'upgrade')).toBe(false);
  });
});

describe('singleValue', () => {
  it('RFC 6455 §4.2.1: a header that must not repeat has one value, or none when missing or repeated', () => {
    expect(singleValue(undefined)).toBeUndefined();
    expect(singleValue('x')).toBe('x');
    expect(singleValue('')).toBe('');
    expect(singleValue(['x'])).toBe('x');
    expect(singleValue(['x', 'y'])).toBeUndefined();
    expect(singleValue(['x', 'x'])).toBeUndefined();
    expect(singleValue([])).toBeUndefined();
  });
});

describe('isToken (RFC 9110 §5.6.2)', () => {
  it('RFC 9110 §5.6.2: accepts tchar strings', () => {
    for (const t of ['a', 'X-Custom-Header', 'Sec-WebSocket-Protocol', "!#$%&'*+-.^_`|~", '0123456789', 'chat.v2']) {
      expect(isToken(t), t).toBe(true);
    }
  });

  it('RFC 9110 §5.6.2: rejects the empty string, separators, whitespace, controls and non-ASCII', () => {
    for (const t of ['', 'a b', 'a:b', 'a\r\nb', 'a\tb', 'a,b', 'a;b', '"a"', '(a)', 'a/b', 'a=b', 'a@b', '[a]', '{a}', 'ä', 'a\0', '\x7f', '?']) {
      expect(isToken(t), JSON.stringify(t)).toBe(false);
    }
  });
});

describe('isSafeHeaderValue', () => {
  it('RFC 9110 §5.5: CR, LF and NUL are never allowed in a header value we write', () => {
    expect(isSafeHeaderValue('text/plain; charset=utf-8')).toBe(true);
    expect(isSafeHeaderValue('')).toBe(true);
    expect(isSafeHeaderValue('a\tb')).toBe(true);
    expect(isSafeHeaderValue('a\rb')).toBe(false);
    expect(isSafeHeaderValue('a\nb')).toBe(false);
    expect(isSafeHeaderValue('a\r\nSet-Cookie: x=1')).toBe(false);
    expect(isSafeHeaderValue('a\0b')).toBe(false);
  });

  it('RFC 9110 §5.5: other control characters and anything beyond one byte are refused; obs-text is allowed', () => {
    expect(isSafeHeaderValue('a\x01b')).toBe(false);
    expect(isSafeHeaderValue('a\x1fb')).toBe(false);
    expect(isSafeHeaderValue('a\x7fb')).toBe(false);
    expect(isSafeHeaderValue('caf\u00e9')).toBe(true);
    expect(isSafeHeaderValue('\u0100')).toBe(false);
    expect(isSafeHeaderValue('\u{1f44b}')).toBe(false);
  });
});

describe('isValidKey (RFC 6455 §4.2.1 item 5)', () => {
  it('RFC 6455 §4.2.1: base64 of exactly 16 bytes is valid', () => {
    expect(isValidKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe(true);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAA==')).toBe(true);
    expect(isValidKey('/////////////////////w==')).toBe(true);
    expect(isValidKey(Buffer.from('0123456789abcdef').toString('base64'))).toBe(true);
  });

  it('RFC 6455 §4.2.1: anything else is invalid', () => {
    for (const k of [
      '',
      'dGhlIHNhbXBsZSBub25jZQ=',
      'dGhlIHNhbXBsZSBub25jZQ',
      'dGhlIHNhbXBsZSBub25jZQ===',
      'dGhlIHNhbXBsZSBub25jZ===',
      Buffer.alloc(15).toString('base64'),
      Buffer.alloc(17).toString('base64'),
      Buffer.alloc(16).toString('base64url'),
      'dGhlIHNhbXBsZSBub25jZ-==',
      'dGhlIHNhbXBsZSBub25jZ_==',
      'dGhlIHNhbXBsZSBub25j ZQ==',
      '========================',
    ]) {
      expect(isValidKey(k), JSON.stringify(k)).toBe(false);
    }
  });
});
