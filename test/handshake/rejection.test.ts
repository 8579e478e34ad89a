import { describe, expect, it } from 'vitest';
import { HandshakeRejection, rejection } from '../../src/handshake/rejection.js';

describe('HandshakeRejection', () => {
  for (const status of [300, 301, 400, 401, 403, 429, 500, 503, 599]) {
    it(`RFC 9110 §15: status ${status} is a valid rejection status`, () => {
      const r = new HandshakeRejection(status);
      expect(r.status).toBe(status);
      expect(r).toBeInstanceOf(Error);
      expect(r.name).toBe('HandshakeRejection');
      expect(r.message).toContain(String(status));
      expect(r.headers).toEqual({});
    });
  }

  for (const status of [0, 100, 101, 200, 204, 299, 600, 999, -403, 403.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`RFC 9110 §15: status ${status} is outside 300–599 and throws RangeError`, () => {
      expect(() => new HandshakeRejection(status)).toThrow(RangeError);
    });
  }

  it('keeps its message and extra headers', () => {
    const r = new HandshakeRejection(401, 'log in first', { 'WWW-Authenticate': 'Bearer' });
    expect(r.message).toBe('log in first');
    expect(r.headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
  });
});

describe('rejection()', () => {
  it('builds a rejection as plain data, with empty headers by default', () => {
    expect(rejection(404, 'NOT_FOUND', 'no route')).toEqual({ status: 404, code: 'NOT_FOUND', message: 'no route', headers: {} });
    expect(rejection(405, 'METHOD_NOT_ALLOWED', 'm', { Allow: 'GET' }).headers).toEqual({ Allow: 'GET' });
  });
});
