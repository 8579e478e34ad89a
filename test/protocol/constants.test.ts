import { describe, expect, it } from 'vitest';
import { CloseCode, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD, Opcode, isValidWireCloseCode } from '../../src/protocol/constants.js';
import { ProtocolError } from '../../src/protocol/errors.js';

describe('close codes (RFC 6455 §7.4)', () => {
  it('RFC 6455 §7.4.1: the named close codes have their registered values', () => {
    expect(CloseCode).toMatchObject({
      Normal: 1000,
      GoingAway: 1001,
      ProtocolError: 1002,
      UnsupportedData: 1003,
      NoStatus: 1005,
      Abnormal: 1006,
      InvalidPayload: 1007,
      PolicyViolation: 1008,
      MessageTooBig: 1009,
      MandatoryExtension: 1010,
      InternalError: 1011,
      TlsHandshake: 1015,
    });
  });

  it('RFC 6455 §7.4.1/§7.4.2: isValidWireCloseCode accepts exactly 1000–1003, 1007–1014 and 3000–4999 over 0..65535', () => {
    const rule = (c: number): boolean => (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    const wrong: number[] = [];
    for (let code = 0; code <= 65535; code++) if (isValidWireCloseCode(code) !== rule(code)) wrong.push(code);
    expect(wrong).toEqual([]);
  });

  it('RFC 6455 §7.4.1: 1005, 1006 and 1015 are never valid on the wire', () => {
    for (const code of [CloseCode.NoStatus, CloseCode.Abnormal, CloseCode.TlsHandshake, 1004]) {
      expect(isValidWireCloseCode(code)).toBe(false);
    }
  });

  it('RFC 6455 §5.5, §5.5.1: control payloads are at most 125 bytes and close reasons 123', () => {
    expect(MAX_CONTROL_PAYLOAD).toBe(125);
    expect(MAX_CLOSE_REASON).toBe(123);
  });

  it('RFC 6455 §5.2: opcodes have their defined values', () => {
    expect(Opcode).toEqual({ Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 });
  });
});

describe('ProtocolError', () => {
  it('carries its close code and stable string code', () => {
    const e = new ProtocolError('WS_MESSAGE_TOO_BIG', 1009, 'too big');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ProtocolError');
    expect(e.code).toBe('WS_MESSAGE_TOO_BIG');
    expect(e.closeCode).toBe(1009);
    expect(e.message).toBe('too big');
  });
});
