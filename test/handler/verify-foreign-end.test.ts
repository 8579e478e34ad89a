/**
 * Another 'upgrade' listener may end a socket that has written nothing (engine.io/socket.io does
 * so after 1 s by default). If that happens while our async verify() runs, the upgrade is dropped:
 * no 101 written to an ended socket, no onOpen, a warning that names the likely cause.
 */
import { expect, test } from 'vitest';
import { Behavior } from '../../src/index.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { fakeLogger, useFixture, within } from '../helpers/fixture.js';
import { sleep } from '../helpers/server.js';

const { mount } = useFixture();

test('a socket ended by a foreign listener during an async verify() never opens and is reported', async () => {
  const events: string[] = [];
  class Slow extends Behavior {
    override async verify(): Promise<void> {
      await sleep(400);
      events.push('verified');
    }
    override onOpen(): void {
      events.push('open');
    }
  }
  const { calls, logger } = fakeLogger();
  const { handler, server, port } = await mount({ '/slow': Slow }, { logger, logLevel: 'debug' });
  // An engine.io-style destroyer: ends any upgrade socket still silent after 100 ms.
  server.on('upgrade', (_req, socket) => {
    setTimeout(() => {
      const s = socket as typeof socket & { bytesWritten: number };
      if (s.writable && s.bytesWritten <= 0) s.end();
    }, 100);
  });
  const answer = await within(rawRequest(port, upgradeRequest('/slow'), 3000), 4000, 'raw request');
  expect(answer.status).toBe(0); // no HTTP answer at all: the foreign listener ended it
  expect(answer.closed).toBe(true);
  await sleep(500); // let verify() finish
  expect(events).toEqual(['verified']);
  expect(handler.clients.size).toBe(0);
  expect(calls.some((c) => c.level === 'warn' && /another 'upgrade' listener ended the socket/.test(c.message))).toBe(true);
});
