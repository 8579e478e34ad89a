/**
 * Handshake control from a behavior: extra headers on the 101 (`setResponseHeader` in verify()),
 * choosing the subprotocol per request (`selectProtocol`), and raw text (`onRawText`); plus the
 * route and hook named in the logs when a hook throws.
 */
import { Buffer } from 'node:buffer';
import type http from 'node:http';
import net from 'node:net';
import { describe, expect, test } from 'vitest';
import { Behavior, HandshakeRejection } from '../../src/index.js';
import { fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { encodeClientFrame, rawRequest, upgradeRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/server.js';

const { mount, connect, keep } = useFixture();

/** Sends an upgrade and returns the response head exactly as written (repeated headers kept). */
async function rawHead(port: number, path: string, extra: Record<string, string> = {}): Promise<string> {
  const socket = keep(net.connect(port, '127.0.0.1'));
  socket.on('error', () => {});
  let text = '';
  const head = new Promise<string>((resolve) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) resolve(text.slice(0, end));
    });
    socket.on('close', () => resolve(text));
  });
  socket.write(upgradeRequest(path, extra));
  return within(head, 3000, 'the response head');
}

describe('setResponseHeader() in verify(): extra headers on the 101', () => {
  test('adds headers; Set-Cookie given as an array repeats; a name set again is replaced', async () => {
    class Session extends Behavior {
      override verify(): void {
        this.setResponseHeader('Set-Cookie', ['sid=abc; HttpOnly; Path=/', 'theme=dark; Path=/']);
        this.setResponseHeader('X-Session-Refreshed', 'no');
        this.setResponseHeader('x-session-refreshed', 'yes');
      }
    }
    const { port } = await mount({ '/s': Session });
    const head = await rawHead(port, '/s');
    expect(head.startsWith('HTTP/1.1 101')).toBe(true);
    const lines = head.split('\r\n');
    expect(lines.filter((l) => l.startsWith('Set-Cookie: '))).toEqual(['Set-Cookie: sid=abc; HttpOnly; Path=/', 'Set-Cookie: theme=dark; Path=/']);
    expect(lines.filter((l) => l.toLowerCase().startsWith('x-session-refreshed:'))).toEqual(['x-session-refreshed: yes']);
  });

  test('an async verify() can set them too', async () => {
    class Later extends Behavior {
      override async verify(): Promise<void> {
        await new Promise((r) => setTimeout(r, 20));
        this.setResponseHeader('X-Later', '1');
      }
    }
    const { port } = await mount({ '/l': Later });
    expect(await rawHead(port, '/l')).toContain('\r\nX-Later: 1');
  });

  test('CR/LF injection, bad names and headers wsmount writes itself throw TypeError; nothing reaches the wire', async () => {
    const errors: string[] = [];
    class Careless extends Behavior {
      override verify(): void {
        for (const [name, value] of [
          ['X-Evil', 'a\r\nX-Injected: 1'],
          ['X-Evil', 'a\nb'],
          ['X-Evil', 'nul\0'],
          ['Bad Name', 'x'],
          ['X-Evil\r\nX-Injected', 'x'],
          ['Sec-WebSocket-Accept', 'forged'],
          ['Upgrade', 'h2c'],
          ['Content-Length', '0'],
        ] as const) {
          try {
            this.setResponseHeader(name, value);
          } catch (error) {
            errors.push(`${(error as Error).name}: ${(error as Error).message}`);
          }
        }
      }
    }
    const { port } = await mount({ '/c': Careless });
    const head = await rawHead(port, '/c');
    expect(head.startsWith('HTTP/1.1 101')).toBe(true);
    expect(errors).toHaveLength(8);
    for (const e of errors) expect(e.startsWith('TypeError: setResponseHeader')).toBe(true);
    expect(head).not.toContain('X-Injected');
    expect(head).not.toContain('X-Evil');
    expect(head).not.toContain('forged');
    expect(head.match(/^Upgrade:/gim)).toHaveLength(1);
  });

  test('after the 101 (in onOpen) it throws, saying it is for verify()', async () => {
    let message = '';
    class TooLate extends Behavior {
      override onOpen(): void {
        try {
          this.setResponseHeader('X-Late', '1');
        } catch (error) {
          message = (error as Error).message;
        }
      }
    }
    const { port } = await mount({ '/t': TooLate });
    await connect(port, '/t');
    await waitFor(() => message !== '', 2000, 'onOpen');
    expect(message).toMatch(/is for verify\(\)/);
  });

  test('a refusal carries its HandshakeRejection headers, not the ones set for the 101', async () => {
    class Refuses extends Behavior {
      override verify(): void {
        this.setResponseHeader('Set-Cookie', 'sid=new');
        throw new HandshakeRejection(401, 'log in', { 'WWW-Authenticate': 'Bearer' });
      }
    }
    const { port } = await mount({ '/r': Refuses });
    const answer = await rawRequest(port, upgradeRequest('/r'));
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer');
    expect(answer.headers['set-cookie']).toBeUndefined();
  });
});

describe('selectProtocol(): the subprotocol chosen per request', () => {
  class Versioned extends Behavior {
    static override protocols = ['chat.v2', 'chat.v1'];
    seen = '';
    override selectProtocol(offered: readonly string[], request: http.IncomingMessage): string | undefined | false {
      // Old app builds get v1 even when they offer v2.
      if (request.headers['x-build'] === 'legacy') return offered.includes('chat.v1') ? 'chat.v1' : false;
      return super.selectProtocol(offered, request);
    }
    override verify(): void {
      this.setResponseHeader('X-Protocol-In-Verify', this.protocol ?? 'none');
    }
  }

  test('the hook sees the offer and the request; verify() sees its choice', async () => {
    const { port } = await mount({ '/chat': Versioned });
    const modern = await rawHead(port, '/chat', { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' });
    expect(modern).toContain('\r\nSec-WebSocket-Protocol: chat.v2');
    expect(modern).toContain('\r\nX-Protocol-In-Verify: chat.v2');
    const legacy = await rawHead(port, '/chat', { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2', 'X-Build': 'legacy' });
    expect(legacy).toContain('\r\nSec-WebSocket-Protocol: chat.v1');
  });

  test('returning false refuses with 400; the default (super) keeps the static list and requireProtocol', async () => {
    const { port } = await mount({ '/chat': Versioned });
    const refused = await rawRequest(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'chat.v2', 'X-Build': 'legacy' }));
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('no acceptable subprotocol');
    const none = await rawRequest(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'other' }));
    expect(none.status).toBe(400);
  });

  test('undefined means no subprotocol, even on a route without a static list', async () => {
    class Optional extends Behavior {
      override selectProtocol(offered: readonly string[]): string | undefined {
        return offered.find((p) => p.startsWith('json.'));
      }
    }
    const { port } = await mount({ '/o': Optional });
    expect(await rawHead(port, '/o', { 'Sec-WebSocket-Protocol': 'xml.v1, json.v3' })).toContain('\r\nSec-WebSocket-Protocol: json.v3');
    const without = await rawHead(port, '/o', { 'Sec-WebSocket-Protocol': 'xml.v1' });
    expect(without.startsWith('HTTP/1.1 101')).toBe(true);
    expect(without).not.toContain('Sec-WebSocket-Protocol');
  });

  test('choosing a name the client did not offer is a server bug: 500, logged with the path', async () => {
    const { calls, logger } = fakeLogger();
    class Wrong extends Behavior {
      override selectProtocol(): string {
        return 'made-up';
      }
    }
    const { port } = await mount({ '/w/:id': Wrong }, { logger, logLevel: 'error' });
    const answer = await rawRequest(port, upgradeRequest('/w/7', { 'Sec-WebSocket-Protocol': 'real' }));
    expect(answer.status).toBe(500);
    expect(calls.map((c) => c.message)).toEqual(['wsmount: selectProtocol() for /w/7 threw']);
    expect(String(calls[0]?.details[0])).toContain("chose 'made-up', which the client did not offer");
  });

  test('a HandshakeRejection thrown from it answers with its status', async () => {
    class Picky extends Behavior {
      override selectProtocol(): never {
        throw new HandshakeRejection(426, 'upgrade your app');
      }
    }
    const { port } = await mount({ '/p': Picky });
    const answer = await rawRequest(port, upgradeRequest('/p'));
    expect(answer.status).toBe(426);
    expect(answer.body).toBe('upgrade your app\n');
  });
});

describe('onRawText(bytes): text as its validated UTF-8 bytes', () => {
  test('overriding it delivers Buffers (fragments joined) and onText is not called; invalid UTF-8 still fails with 1007', async () => {
    const got: Buffer[] = [];
    let texts = 0;
    class Raw extends Behavior {
      override onRawText(bytes: Buffer): void {
        got.push(bytes);
      }
      override onText(): void {
        texts++;
      }
    }
    const { port } = await mount({ '/raw': Raw });
    const client = await connect(port, '/raw');
    client.send(0x1, 'héllo 👋');
    client.sendRaw(Buffer.concat([encodeClientFrame(0x1, 'frag', { fin: false }), encodeClientFrame(0x0, 'mented')]));
    await waitFor(() => got.length === 2, 2000, 'two raw messages');
    expect(Buffer.isBuffer(got[0])).toBe(true);
    expect(got[0]?.equals(Buffer.from('héllo 👋'))).toBe(true);
    expect(got[1]?.toString()).toBe('fragmented');
    expect(texts).toBe(0);
    client.sendRaw(encodeClientFrame(0x1, Buffer.from([0xc3, 0x28])));
    let frame = await client.nextFrame(2000);
    while (frame.opcode !== 0x8) frame = await client.nextFrame(2000);
    expect(frame.payload.readUInt16BE(0)).toBe(1007);
    expect(got).toHaveLength(2);
  });

  test('an async onRawText orders later messages like onText', async () => {
    const order: string[] = [];
    class SlowRaw extends Behavior {
      override async onRawText(bytes: Buffer): Promise<void> {
        order.push(`start ${bytes.toString()}`);
        await new Promise((r) => setTimeout(r, 20));
        order.push(`end ${bytes.toString()}`);
      }
    }
    const { port } = await mount({ '/raw': SlowRaw });
    const client = await connect(port, '/raw');
    client.send(0x1, 'a');
    client.send(0x1, 'b');
    await waitFor(() => order.length === 4, 2000, 'both messages');
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  test('without the override, text still reaches onText as a string', async () => {
    const got: unknown[] = [];
    class Plain extends Behavior {
      override onText(text: string): void {
        got.push(text);
      }
    }
    const { port } = await mount({ '/p': Plain });
    const client = await connect(port, '/p');
    client.send(0x1, 'plain');
    await waitFor(() => got.length === 1, 2000, 'the message');
    expect(got).toEqual(['plain']);
  });
});

describe('hook failures name the route and the hook', () => {
  test('onOpen, onRawText and an async onText rejection, each logged as "<route> <hook> threw"', async () => {
    const { calls, logger } = fakeLogger();
    class OpenThrows extends Behavior {
      override onOpen(): void {
        throw new Error('open boom');
      }
    }
    class RawThrows extends Behavior {
      override onRawText(): void {
        throw new Error('raw boom');
      }
    }
    class AsyncThrows extends Behavior {
      override async onText(): Promise<void> {
        await Promise.resolve();
        throw new Error('async boom');
      }
    }
    const { port } = await mount({ '/open': OpenThrows, '/rooms/:room': RawThrows, '/async': AsyncThrows }, { logger, logLevel: 'error' });
    await connect(port, '/open');
    const raw = await connect(port, '/rooms/lobby');
    raw.send(0x1, 'x');
    const asyncClient = await connect(port, '/async');
    asyncClient.send(0x1, 'x');
    await waitFor(() => calls.length >= 3, 2000, 'three errors');
    const messages = calls.map((c) => c.message.replace(/connection \d+/, 'connection N')).sort();
    expect(messages).toEqual([
      'wsmount: /async onText threw (connection N; closing it with 1011)',
      'wsmount: /open onOpen threw (connection N; closing it with 1011)',
      'wsmount: /rooms/:room onRawText threw (connection N; closing it with 1011)',
    ]);
  });

  test('a verify() that throws is logged with the request path', async () => {
    const { calls, logger } = fakeLogger();
    class Boom extends Behavior {
      override verify(): void {
        throw new Error('db down');
      }
    }
    const { port } = await mount({ '/rooms/:room': Boom }, { logger, logLevel: 'error' });
    expect((await rawRequest(port, upgradeRequest('/rooms/42'))).status).toBe(500);
    expect(calls.map((c) => c.message)).toEqual(['wsmount: verify() for /rooms/42 threw']);
  });
});

describe('review follow-ups: encodings and offers', () => {
  test('a latin1 header value (obs-text) goes out as one byte per character, not UTF-8', async () => {
    class Latin extends Behavior {
      override verify(): void {
        this.setResponseHeader('X-Place', 'café');
      }
    }
    const { port } = await mount({ '/l': Latin });
    const head = await rawHead(port, '/l'); // read as latin1
    expect(head.split('\r\n')).toContain('X-Place: café'); // UTF-8 would read 'cafÃ©' here
  });

  test('a character beyond U+00FF is refused with a message that says what is allowed', async () => {
    let message = '';
    class Emoji extends Behavior {
      override verify(): void {
        try {
          this.setResponseHeader('X-Mood', '👋');
        } catch (error) {
          message = (error as Error).message;
        }
      }
    }
    const { port } = await mount({ '/e': Emoji });
    await rawHead(port, '/e');
    expect(message).toMatch(/nothing beyond U\+00FF/);
  });

  test('RFC 6455 §4.1: an offer that is not a list of distinct tokens is refused with 400', async () => {
    const offers: string[] = [];
    class Sees extends Behavior {
      override selectProtocol(offered: readonly string[]): string | undefined {
        offers.push(offered.join('|'));
        return undefined;
      }
    }
    const { port } = await mount({ '/s': Sees });
    for (const bad of ['chat, chat', 'ch\xe9', 'a b']) {
      const answer = await rawRequest(port, upgradeRequest('/s', { 'Sec-WebSocket-Protocol': bad }));
      expect(answer.status).toBe(400);
      expect(answer.body).toContain('distinct tokens');
    }
    expect(offers).toEqual([]);
    expect((await rawHead(port, '/s', { 'Sec-WebSocket-Protocol': 'a, b' })).startsWith('HTTP/1.1 101')).toBe(true);
    expect(offers).toEqual(['a|b']);
  });

  test('an origins function that throws is logged as such, not as selectProtocol()', async () => {
    const { calls, logger } = fakeLogger();
    const { port } = await mount(
      { '/o': Behavior },
      {
        logger,
        logLevel: 'error',
        origins: () => {
          throw new Error('policy store down');
        },
      },
    );
    expect((await rawRequest(port, upgradeRequest('/o', { Origin: 'https://a.example' }))).status).toBe(500);
    expect(calls.map((c) => c.message)).toEqual(['wsmount: the origins function for /o threw']);
  });
});
