/**
 * Handshake refusals end to end through a mounted handler (RFC 6455 §4.2.1–4.2.2, §4.4): every
 * refusal is one complete HTTP response with its status, `Connection: close`, a correct
 * `Content-Length`, and then the socket is closed.
 */
import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { Echo, useFixture, within } from '../helpers/fixture.js';
import { type HttpAnswer, closePayload, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep } from '../helpers/server.js';

const { mount, connect } = useFixture();

function expectCompleteRejection(answer: HttpAnswer, status: number): void {
  expect(answer.status).toBe(status);
  expect(answer.closed).toBe(true);
  expect(answer.headers['connection']).toBe('close');
  expect(answer.headers['content-length']).toBeDefined();
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
  expect(answer.headers['upgrade']).toBeUndefined();
  expect(answer.headers['sec-websocket-accept']).toBeUndefined();
}

describe('handshake refusals through the handler', () => {
  test('RFC 6455 §4.2.1: a POST upgrade gets 405 with Allow: GET', async () => {
    const { port, handler } = await mount({ '/echo': Echo });
    const answer = await rawRequest(port, upgradeRequest('/echo').replace(/^GET /, 'POST '));
    expectCompleteRejection(answer, 405);
    expect(answer.headers['allow']).toBe('GET');
    expect(handler.clients.size).toBe(0);
  });

  test('RFC 6455 §4.4: an unsupported Sec-WebSocket-Version gets 426 with Sec-WebSocket-Version: 13', async () => {
    const { port } = await mount({ '/echo': Echo });
    const answer = await rawRequest(port, upgradeRequest('/echo', { 'Sec-WebSocket-Version': '8' }));
    expectCompleteRejection(answer, 426);
    expect(answer.headers['sec-websocket-version']).toBe('13');
  });

  test.each([
    ['too short', 'abc'],
    ['15 bytes', Buffer.alloc(15, 1).toString('base64')],
    ['not base64', '!!!!!!!!!!!!!!!!!!!!!!=='],
  ])('RFC 6455 §4.2.1: a bad Sec-WebSocket-Key (%s) gets 400', async (_what, key) => {
    const { port } = await mount({ '/echo': Echo });
    const answer = await rawRequest(port, upgradeRequest('/echo', { 'Sec-WebSocket-Key': key }));
    expectCompleteRejection(answer, 400);
  });

  test('a missing Sec-WebSocket-Key gets 400', async () => {
    const { port } = await mount({ '/echo': Echo });
    const answer = await rawRequest(port, upgradeRequest('/echo', {}, ''));
    expectCompleteRejection(answer, 400);
  });

  test('an origin outside `origins` gets 403; a listed one opens', async () => {
    const { port, handler } = await mount({ '/echo': Echo }, { origins: ['https://good.example'] });
    const answer = await rawRequest(port, upgradeRequest('/echo', { Origin: 'https://evil.example' }));
    expectCompleteRejection(answer, 403);
    expect(answer.body).toContain('evil.example');
    const ok = await connect(port, '/echo', { Origin: 'https://good.example' });
    expect(ok.status).toBe(101);
    ok.send(0x1, 'hi');
    expect((await ok.nextFrame(2000)).payload.toString()).toBe('hi');
    expect(handler.clients.size).toBe(1);
  });

  test('a path with no route gets 404', async () => {
    const { port } = await mount({ '/echo': Echo });
    const answer = await rawRequest(port, upgradeRequest('/echo/more'));
    expectCompleteRejection(answer, 404);
  });

  test('once handler.close() has started, upgrades get 503 with Retry-After (while closing and after)', async () => {
    const { port, handler } = await mount({ '/echo': Echo });
    const lingering = await connect(port, '/echo');
    const closing = handler.close({ timeout: 5000 });
    const frame = await lingering.nextFrame(2000);
    expect(frame.opcode).toBe(0x8);

    const during = await rawRequest(port, upgradeRequest('/echo'));
    expectCompleteRejection(during, 503);
    expect(during.headers['retry-after']).toBeDefined();

    lingering.send(0x8, closePayload(1001));
    await within(closing, 3000, 'close');
    const after = await rawRequest(port, upgradeRequest('/echo'));
    expectCompleteRejection(after, 503);
  });

  test('a subprotocol route refuses a client that offers none of its protocols with 400', async () => {
    class Chat extends Echo {
      static override protocols = ['chat.v1'];
    }
    const { port } = await mount({ '/chat': Chat });
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/chat')), 400);
    expectCompleteRejection(await rawRequest(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'other' })), 400);
  });

  test('refusals go on while connections are served; a refused socket never opens a client', async () => {
    let opened = 0;
    class Counted extends Echo {
      override onOpen(): void {
        opened++;
      }
    }
    const { port, handler } = await mount({ '/echo': Counted }, { origins: 'https://good.example' });
    const answers = await Promise.all([
      rawRequest(port, upgradeRequest('/echo', { Origin: 'https://bad.example' })),
      rawRequest(port, upgradeRequest('/echo', { 'Sec-WebSocket-Version': '7' })),
      rawRequest(port, upgradeRequest('/echo').replace(/^GET /, 'PUT ')),
      rawRequest(port, upgradeRequest('/missing')),
    ]);
    expect(answers.map((a) => a.status)).toEqual([403, 426, 405, 404]);
    await sleep(50);
    expect(opened).toBe(0);
    expect(handler.clients.size).toBe(0);
  });
});
