import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors.js';
import { headerViolation, readClosePayload } from '../../src/protocol/frame-rules.js';

/** Every (first byte, second byte) pair headerViolation lets through, for one state. */
function allowed(messageOpen: boolean, allowRsv1: boolean, expectMasked: boolean): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let b0 = 0; b0 < 256; b0++) {
    for (let b1 = 0; b1 < 256; b1++) {
      if (headerViolation(b0, b1, messageOpen, allowRsv1, expectMasked) === null) out.push([b0, b1]);
    }
  }
  return out;
}

function codeOf(b0: number, b1: number, messageOpen = false, allowRsv1 = false, expectMasked = true): string | null {
  const v = headerViolation(b0, b1, messageOpen, allowRsv1, expectMasked);
  if (v === null) return null;
  expect(v).toBeInstanceOf(ProtocolError);
  return `${v.code} ${v.closeCode}`;
}

describe('headerViolation', () => {
  // Counts worked out from RFC 6455 §5.2-5.5 by hand: a data frame (text or binary, FIN 0 or 1)
  // may have any 7-bit length code (128), a control frame (close, ping, pong, FIN 1 only) a
  // length of 0..125 (126); a continuation only inside an open message; RSV1 only on the first
  // frame of a data message, with permessage-deflate; the mask bit exactly as the role says.
  it.each([
    // messageOpen, allowRsv1, expectMasked, allowed pairs
    [false, false, true, 4 * 128 + 3 * 126],
    [true, false, true, 2 * 128 + 3 * 126],
    [false, true, true, 8 * 128 + 3 * 126],
    [true, true, true, 2 * 128 + 3 * 126],
    [false, false, false, 4 * 128 + 3 * 126],
    [true, true, false, 2 * 128 + 3 * 126],
  ])('open=%s rsv1=%s masked=%s lets exactly %i header pairs through', (messageOpen, allowRsv1, expectMasked, count) => {
    const pairs = allowed(messageOpen, allowRsv1, expectMasked);
    expect(pairs.length).toBe(count);
    for (const [, b1] of pairs) expect((b1 & 0x80) !== 0).toBe(expectMasked);
  });

  it('names each rule it enforces, with its close code', () => {
    expect(codeOf(0x81, 0x80)).toBeNull();
    expect(codeOf(0x82, 0xff)).toBeNull();
    expect(codeOf(0x01, 0x85)).toBeNull(); // a first fragment
    expect(codeOf(0x80, 0x80, true)).toBeNull(); // the final continuation
    expect(codeOf(0x89, 0x80 + 125)).toBeNull();
    expect(codeOf(0xc1, 0x80, false, true)).toBeNull(); // RSV1 on a compressed first frame
    expect(codeOf(0xc1, 0x80)).toBe('WS_RESERVED_BITS 1002');
    expect(codeOf(0xa2, 0x80, false, true)).toBe('WS_RESERVED_BITS 1002'); // RSV2
    expect(codeOf(0xc0, 0x80, true, true)).toBe('WS_RESERVED_BITS 1002'); // RSV1 on a continuation
    expect(codeOf(0xc9, 0x80, false, true)).toBe('WS_RESERVED_BITS 1002'); // RSV1 on a ping
    expect(codeOf(0x8b, 0x80)).toBe('WS_UNKNOWN_OPCODE 1002');
    expect(codeOf(0x83, 0x80)).toBe('WS_UNKNOWN_OPCODE 1002');
    expect(codeOf(0x09, 0x80)).toBe('WS_CONTROL_FRAGMENTED 1002');
    expect(codeOf(0x89, 0x80 + 126)).toBe('WS_CONTROL_TOO_LONG 1002');
    expect(codeOf(0x88, 0x80 + 127)).toBe('WS_CONTROL_TOO_LONG 1002');
    expect(codeOf(0x80, 0x80)).toBe('WS_UNEXPECTED_CONTINUATION 1002');
    expect(codeOf(0x81, 0x80, true)).toBe('WS_EXPECTED_CONTINUATION 1002');
    expect(codeOf(0x81, 0x00)).toBe('WS_UNMASKED_FRAME 1002');
    expect(codeOf(0x81, 0x80, false, false, false)).toBe('WS_MASKED_FRAME 1002');
  });

  it('matches, pair by pair, the RFC read as a set (every first and second byte, every state)', () => {
    // RFC 6455 §5.2: opcodes 0 (continuation), 1 (text), 2 (binary), 8 (close), 9 (ping), 10 (pong).
    // §5.4: a continuation only inside a message, a new text or binary frame only outside one.
    // §5.5: control frames have FIN and at most 125 bytes. §5.1: the mask bit is the role's.
    // RFC 7692 §6.1: RSV1 (and only it) on the first frame of a data message, with deflate.
    const rfc = (b0: number, b1: number, open: boolean, rsv1: boolean, masked: boolean): boolean => {
      const fin = b0 >= 0x80;
      const rsv = (b0 >> 4) & 7;
      const op = b0 & 15;
      const first = op === 1 || op === 2;
      if (![0, 1, 2, 8, 9, 10].includes(op)) return false;
      if (rsv !== 0 && !(rsv === 4 && rsv1 && first)) return false;
      if (op >= 8 && (!fin || (b1 & 127) > 125)) return false;
      if (op === 0 && !open) return false;
      if (first && open) return false;
      return (b1 >= 0x80) === masked;
    };
    for (const open of [false, true]) {
      for (const rsv1 of [false, true]) {
        for (const masked of [false, true]) {
          let differing = 0;
          for (let b0 = 0; b0 < 256; b0++) {
            for (let b1 = 0; b1 < 256; b1++) {
              if ((headerViolation(b0, b1, open, rsv1, masked) === null) !== rfc(b0, b1, open, rsv1, masked)) differing++;
            }
          }
          expect(differing, `open=${open} rsv1=${rsv1} masked=${masked}`).toBe(0);
        }
      }
    }
  });

  it('reports the first rule broken, in the order the RFC lists them, when a frame breaks several', () => {
    expect(codeOf(0x4b, 0x00)).toBe('WS_RESERVED_BITS 1002'); // RSV2, unknown opcode, unmasked
    expect(codeOf(0x0b, 0x00)).toBe('WS_UNKNOWN_OPCODE 1002'); // unknown control opcode, not FIN, unmasked
    expect(codeOf(0x09, 0x7e)).toBe('WS_CONTROL_FRAGMENTED 1002'); // not FIN, 126 bytes, unmasked
    expect(codeOf(0x89, 0x7e)).toBe('WS_CONTROL_TOO_LONG 1002'); // 126 bytes, unmasked
    expect(codeOf(0x00, 0x00)).toBe('WS_UNEXPECTED_CONTINUATION 1002'); // no message, unmasked
    expect(codeOf(0x81, 0x00, true)).toBe('WS_EXPECTED_CONTINUATION 1002'); // message open, unmasked
  });

  it('says which RSV rule was broken', () => {
    expect(headerViolation(0xc1, 0x80, false, false, true)?.message).toMatch(/no extension negotiated/);
    expect(headerViolation(0xc0, 0x80, true, true, true)?.message).toMatch(/continuation/);
    expect(headerViolation(0xca, 0x80, false, true, true)?.message).toMatch(/control frame/);
  });
});

describe('readClosePayload', () => {
  const payload = (code: number, reason: Buffer | string = ''): Buffer => {
    const out = Buffer.alloc(2);
    out.writeUInt16BE(code, 0);
    return Buffer.concat([out, typeof reason === 'string' ? Buffer.from(reason) : reason]);
  };

  it('reads an empty payload as 1005 with no reason', () => {
    expect(readClosePayload(Buffer.alloc(0))).toEqual({ code: 1005, reason: '' });
  });

  it('reads a code and a UTF-8 reason', () => {
    expect(readClosePayload(payload(1000))).toEqual({ code: 1000, reason: '' });
    expect(readClosePayload(payload(4999, 'ünïcödé 🚀'))).toEqual({ code: 4999, reason: 'ünïcödé 🚀' });
    expect(readClosePayload(payload(3000, 'x'.repeat(123)))).toEqual({ code: 3000, reason: 'x'.repeat(123) });
  });

  it('refuses a 1-byte payload, codes that must not be sent, and a reason that is not UTF-8', () => {
    const verdict = (p: Buffer): string => {
      const v = readClosePayload(p);
      return v instanceof ProtocolError ? `${v.code} ${v.closeCode}` : `ok ${v.code}`;
    };
    expect(verdict(Buffer.from([0x03]))).toBe('WS_INVALID_CLOSE_PAYLOAD 1002');
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      expect(verdict(payload(code))).toBe('WS_INVALID_CLOSE_CODE 1002');
    }
    for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000]) expect(verdict(payload(code))).toBe(`ok ${code}`);
    expect(verdict(payload(1000, Buffer.from([0xc3, 0x28])))).toBe('WS_INVALID_UTF8 1007');
    expect(verdict(payload(1000, Buffer.from([0xe2, 0x82])))).toBe('WS_INVALID_UTF8 1007'); // cut inside a code point
  });
});
