import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { rejection } from '../../src/handshake/rejection.js';
import { acceptResponse, reasonPhrase, rejectionResponse } from '../../src/handshake/response.js';

interface Parsed {
  statusLine: string;
  /** Header lines in order, as [name, value]. */
  headers: [string, string][];
  body: string;
}

/** A strict HTTP/1.1 response head parser (RFC 9112 §2.1, §5.1). */
function parseResponse(text: string): Parsed {
  const end = text.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const head = text.slice(0, end);
  const body = text.slice(end + 4);
  const [statusLine, ...lines] = head.split('\r\n');
  // No bare CR or LF anywhere in the head: every line ends in CRLF.
  expect(/\r(?!\n)|(?<!\r)\n/.test(head)).toBe(false);
  expect(statusLine).toMatch(/^HTTP\/1\.1 [1-5]\d\d [^\r\n]+$/);
  const headers: [string, string][] = [];
  for (const line of lines) {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([^\r\n\0]*)$/.exec(line);
    if (m === null) expect.fail(`malformed header line: ${JSON.stringify(line)}`);
    headers.push([m[1] as string, m[2] as string]);
  }
  return { statusLine: statusLine as string, headers, body };
}

function header(p: Parsed, name: string): string[] {
  return p.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

describe('rejectionResponse (RFC 9112)', () => {
  it('RFC 9112 §4: a rejection is a complete response with status line, Connection: close and the message body', () => {
    const text = rejectionResponse(rejection(403, 'ORIGIN_FORBIDDEN', 'origin not allowed'));
    const p = parseResponse(text);
    expect(p.statusLine).toBe('HTTP/1.1 403 Forbidden');
    expect(header(p, 'Connection')).toEqual(['close']);
    expect(header(p, 'Content-Type')).toHaveLength(1);
    expect(p.body).toContain('origin not allowed');
  });

  it('RFC 9110 §8.6: Content-Length is the byte length of the body, also for non-ASCII messages', () => {
    for (const message of ['bad request', 'näïve € 😀 body', '']) {
      const p = parseResponse(rejectionResponse(rejection(400, 'BAD_KEY', message)));
      expect(header(p, 'Content-Length')).toEqual([String(Buffer.byteLength(p.body, 'utf8'))]);
      expect(p.body).toContain(message);
    }
  });

  it('RFC 6455 §4.2.2: extra headers such as Allow and Sec-WebSocket-Version are written', () => {
    const p = parseResponse(rejectionResponse(rejection(405, 'METHOD_NOT_ALLOWED', 'GET only', { Allow: 'GET' })));
    expect(p.statusLine).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(header(p, 'Allow')).toEqual(['GET']);
    const p2 = parseResponse(rejectionResponse(rejection(426, 'BAD_VERSION', 'v13', { 'Sec-WebSocket-Version': '13' })));
    expect(p2.statusLine).toBe('HTTP/1.1 426 Upgrade Required');
    expect(header(p2, 'Sec-WebSocket-Version')).toEqual(['13']);
  });

  it('RFC 9112 §2.2 (response splitting): header values with CR or LF, and names that are not tokens, are dropped', () => {
    const text = rejectionResponse(
      rejection(401, 'VERIFY_REJECTED', 'log in', {
        'WWW-Authenticate': 'Bearer',
        'X-Evil': 'a\r\nSet-Cookie: session=stolen',
        'X-Evil-LF': 'a\nSet-Cookie: x=1',
        'X-Evil-CR': 'a\rb',
        'X-Nul': 'a\0b',
        'X-Bad\r\nInjected': 'v',
        'Bad Name': 'v',
        'Bad:Name': 'v',
        '': 'v',
      }),
    );
    expect(text).not.toContain('Set-Cookie');
    expect(text).not.toContain('Injected');
    const p = parseResponse(text);
    expect(p.headers.map(([n]) => n).sort()).toEqual(['Connection', 'Content-Length', 'Content-Type', 'WWW-Authenticate']);
    expect(header(p, 'WWW-Authenticate')).toEqual(['Bearer']);
  });

  it('RFC 9110 §8.6: extra headers cannot override Connection, Content-Length or Content-Type', () => {
    const p = parseResponse(
      rejectionResponse(
        rejection(503, 'SHUTTING_DOWN', 'bye', { connection: 'keep-alive', 'Content-Length': '0', 'CONTENT-TYPE': 'text/html', 'Retry-After': '5' }),
      ),
    );
    expect(header(p, 'Connection')).toEqual(['close']);
    expect(header(p, 'Content-Length')).toEqual([String(Buffer.byteLength(p.body))]);
    expect(header(p, 'Content-Type')).toHaveLength(1);
    expect(header(p, 'Content-Type')[0]).not.toBe('text/html');
    expect(header(p, 'Retry-After')).toEqual(['5']);
  });

  it('RFC 9110 §15: every status gets a reason phrase; unknown ones a generic one', () => {
    expect(rejectionResponse(rejection(404, 'NOT_FOUND', 'x')).startsWith('HTTP/1.1 404 Not Found\r\n')).toBe(true);
    expect(rejectionResponse(rejection(503, 'SHUTTING_DOWN', 'x')).startsWith('HTTP/1.1 503 Service Unavailable\r\n')).toBe(true);
    expect(reasonPhrase(499)).toBe('Client Error');
    expect(reasonPhrase(399)).toBe('Redirection');
    expect(reasonPhrase(599)).toBe('Server Error');
    expect(reasonPhrase(400)).toBe('Bad Request');
    expect(reasonPhrase(101)).toBe('Switching Protocols');
  });
});

describe('acceptResponse (RFC 6455 §4.2.2)', () => {
  it('RFC 6455 §4.2.2: the 101 response has Upgrade, Connection and Sec-WebSocket-Accept, and ends the head', () => {
    const text = acceptResponse('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', undefined);
    expect(text.endsWith('\r\n\r\n')).toBe(true);
    const p = parseResponse(text);
    expect(p.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
    expect(header(p, 'Upgrade')).toEqual(['websocket']);
    expect(header(p, 'Connection')).toEqual(['Upgrade']);
    expect(header(p, 'Sec-WebSocket-Accept')).toEqual(['s3pPLMBiTxaQ9kYGzzhZRbK+xOo=']);
    expect(p.body).toBe('');
  });

  it('RFC 6455 §4.2.2: Sec-WebSocket-Protocol is present only when a subprotocol was chosen', () => {
    expect(header(parseResponse(acceptResponse('k', undefined)), 'Sec-WebSocket-Protocol')).toEqual([]);
    expect(header(parseResponse(acceptResponse('k', 'chat.v2')), 'Sec-WebSocket-Protocol')).toEqual(['chat.v2']);
  });

  it('RFC 6455 §4.2.2: extra headers are added, but cannot replace the handshake headers or inject lines', () => {
    const p = parseResponse(
      acceptResponse('abc=', 'chat', {
        'Set-Cookie': 'id=1',
        'sec-websocket-accept': 'forged',
        UPGRADE: 'h2c',
        connection: 'close',
        'Sec-WebSocket-Protocol': 'other',
        'X-Evil': 'x\r\nX-Injected: 1',
        'X Bad': 'v',
      }),
    );
    expect(header(p, 'Set-Cookie')).toEqual(['id=1']);
    expect(header(p, 'Sec-WebSocket-Accept')).toEqual(['abc=']);
    expect(header(p, 'Upgrade')).toEqual(['websocket']);
    expect(header(p, 'Connection')).toEqual(['Upgrade']);
    expect(header(p, 'Sec-WebSocket-Protocol')).toEqual(['chat']);
    expect(header(p, 'X-Injected')).toEqual([]);
    expect(header(p, 'X-Evil')).toEqual([]);
  });
});
