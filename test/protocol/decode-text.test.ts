/**
 * decodeText: a validated UTF-8 payload to a string, with the Latin-1 fast path for long
 * all-ASCII payloads (RFC 6455 §5.6: text is UTF-8; the fast path must never change a string).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { decodeText } from '../../src/protocol/utf8.js';

describe('decodeText', () => {
  const cases: [string, string][] = [
    ['short ASCII', 'hello'],
    ['long ASCII (fast path)', 'abc'.repeat(2000)],
    ['ASCII at exactly 1024 bytes', 'x'.repeat(1024)],
    ['long text with one é at the end', `${'a'.repeat(5000)}é`],
    ['long text with one é at the start', `é${'a'.repeat(5000)}`],
    ['long Latin-1-range text (U+00E9 is C3 A9 in UTF-8, never a Latin-1 byte)', 'é'.repeat(3000)],
    ['long emoji text', '😀'.repeat(1000)],
    ['long CJK text', '漢字かな'.repeat(500)],
    ['NUL and DEL are ASCII', '\u0000\u007f'.repeat(1000)],
  ];
  test.each(cases)('%s decodes to the string that was encoded', (_name, text) => {
    expect(decodeText(Buffer.from(text, 'utf8'))).toBe(text);
  });
});
