/**
 * What the handler logs, and at which level (the seed's `loglevel`): handshake rejections and
 * protocol failures at info, slow-consumer and rate-limit closes and verify timeouts at warn,
 * heartbeat terminations and idle closes at info, hook failures at error. Each message appears
 * at its level and above, never below it, and nothing is logged under 'silent'.
 */
import { describe, expect, test } from 'vitest';
import { Behavior, type HandlerOptions, type LogLevel } from '../../src/index.js';
import { type LogCall, fakeLogger, useFixture } from '../helpers/fixture.js';
import { rawRequest, upgradeRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/server.js';
import { connect as connectInMemory } from '../../src/testing/index.js';

const { mount, connect, handlerFor } = useFixture();

const LEVELS: LogLevel[] = ['silent', 'error', 'warn', 'info', 'debug'];
const rank = (level: string): number => LEVELS.indexOf(level as LogLevel);

interface Scenario {
  /** The level its message is logged at. */
  level: Exclude<LogLevel, 'silent'>;
  message: RegExp;
  /** Makes the event happen on a handler with these log options; resolves once it has. */
  run(log: HandlerOptions): Promise<void>;
}

class Refuses extends Behavior {
  override verify(): boolean {
    return false;
  }
}

/**
 * On any text, sends three 10-character messages: the third passes maxBackpressure 24. Over the
 * in-memory transport a write completes only once the peer has read it, on a later tick, so
 * the backlog is exact while the hook runs.
 */
class Bursty extends Behavior {
  static override maxBackpressure = 24;
  override onText(): void {
    for (let i = 0; i < 3; i++) this.sendText('x'.repeat(10));
  }
}

const scenarios: Record<string, Scenario> = {
  'a handshake rejection (status, code, reason)': {
    level: 'info',
    message: /^wsmount: handshake rejected with 403 \(VERIFY_REJECTED\): forbidden$/,
    async run(log) {
      const { port } = await mount({ '/r': Refuses }, log);
      expect((await rawRequest(port, upgradeRequest('/r'))).status).toBe(403);
    },
  },
  'a maxConnections rejection': {
    level: 'info',
    message: /^wsmount: handshake rejected with 503 \(TOO_MANY_CONNECTIONS\): the server is at maxConnections \(0\)$/,
    async run(log) {
      const { port } = await mount({ '/r': Behavior }, { ...log, maxConnections: 0 });
      expect((await rawRequest(port, upgradeRequest('/r'))).status).toBe(503);
    },
  },
  'a protocol failure': {
    level: 'info',
    message: /^wsmount: closing connection \d+ with 1002 \(\w+\): /,
    async run(log) {
      const { port } = await mount({ '/p': Behavior }, log);
      const client = await connect(port, '/p');
      client.send(0x1, 'unmasked', { mask: false });
      expect((await client.expectClose(3000)).code).toBe(1002);
    },
  },
  'a slow-consumer close': {
    level: 'warn',
    message: /^wsmount: closing slow consumer \d+ with 1008: 24 bytes are waiting and a 12-byte message would pass maxBackpressure 24$/,
    async run(log) {
      const handler = handlerFor({ '/b': Bursty }, log);
      const client = await connectInMemory(handler, '/b');
      client.send('go');
      expect((await client.closed).code).toBe(1008);
    },
  },
  'a rate-limit close': {
    level: 'warn',
    message: /^wsmount: closing connection \d+ with 1008: over the message rate limit$/,
    async run(log) {
      const { port } = await mount({ '/r': Behavior }, { ...log, rateLimit: { messages: 1, interval: 60_000 } });
      const client = await connect(port, '/r');
      client.send(0x1, 'one');
      client.send(0x1, 'two');
      for (;;) if ((await client.nextFrame(3000)).opcode === 0x8) break;
    },
  },
  'a verify timeout': {
    level: 'warn',
    message: /^wsmount: verify\(\) for \/v took longer than verifyTimeout \(50 ms\); answered 503$/,
    async run(log) {
      class Slow extends Behavior {
        override async verify(): Promise<void> {
          await sleep(200);
        }
      }
      const { port } = await mount({ '/v': Slow }, { ...log, verifyTimeout: 50 });
      expect((await rawRequest(port, upgradeRequest('/v'))).status).toBe(503);
    },
  },
  'a heartbeat termination': {
    level: 'info',
    message: /^wsmount: terminating connection \d+: no pong within 50 ms$/,
    async run(log) {
      const { port } = await mount({ '/h': Behavior }, { ...log, pingInterval: 50, pongTimeout: 50 });
      const client = await connect(port, '/h');
      expect(await client.waitClosed(3000)).toBe(true);
    },
  },
  'an idle close': {
    level: 'info',
    message: /^wsmount: closing connection \d+ with 1001: no message either way for 100 ms$/,
    async run(log) {
      const { port } = await mount({ '/i': Behavior }, { ...log, idleTimeout: 100, pingInterval: 0 });
      const client = await connect(port, '/i');
      expect((await client.nextFrame(3000)).opcode).toBe(0x8);
    },
  },
  'a hook failure': {
    level: 'error',
    message: /^wsmount: \/t onText threw \(connection \d+; closing it with 1011\)$/,
    async run(log) {
      class Throws extends Behavior {
        override onText(): void {
          throw new Error('boom');
        }
      }
      const { port } = await mount({ '/t': Throws }, log);
      const client = await connect(port, '/t');
      client.send(0x1, 'x');
      for (;;) if ((await client.nextFrame(3000)).opcode === 0x8) break;
    },
  },
};

function below(level: LogLevel): LogLevel {
  return LEVELS[rank(level) - 1] as LogLevel;
}

function matching(calls: LogCall[], message: RegExp): LogCall[] {
  return calls.filter((c) => message.test(c.message));
}

describe('each event is logged at its level', () => {
  test.each(Object.entries(scenarios))('%s', async (_name, s) => {
    // At its own level: logged once, at that level.
    const at = fakeLogger();
    await s.run({ logger: at.logger, logLevel: s.level });
    await sleep(20);
    const hits = matching(at.calls, s.message);
    expect(hits.map((c) => c.level)).toEqual([s.level]);
    for (const c of at.calls) expect(rank(c.level)).toBeLessThanOrEqual(rank(s.level));

    // At debug: still there (a higher level includes the lower ones).
    const loud = fakeLogger();
    await s.run({ logger: loud.logger, logLevel: 'debug' });
    await sleep(20);
    expect(matching(loud.calls, s.message).map((c) => c.level)).toEqual([s.level]);

    // One level quieter: not logged, and nothing below that level is.
    const quiet = fakeLogger();
    const quieter = below(s.level);
    await s.run({ logger: quiet.logger, logLevel: quieter });
    await sleep(20);
    expect(matching(quiet.calls, s.message)).toEqual([]);
    for (const c of quiet.calls) expect(rank(c.level)).toBeLessThanOrEqual(rank(quieter));
  });
});

describe('levels', () => {
  test("'silent' logs nothing at all, whatever happens", async () => {
    const { calls, logger } = fakeLogger();
    for (const s of Object.values(scenarios)) await s.run({ logger, logLevel: 'silent' });
    await sleep(20);
    expect(calls).toEqual([]);
  });

  test("'debug' adds the connection's open to the log", async () => {
    const { calls, logger } = fakeLogger();
    const { port } = await mount({ '/d': Behavior }, { logger, logLevel: 'debug' });
    await connect(port, '/d');
    await waitFor(() => calls.some((c) => /connection \d+ open on \/d/.test(c.message)), 2000, 'the debug line');
    expect(calls.find((c) => /connection \d+ open on \/d/.test(c.message))?.level).toBe('debug');
  });

  test("the default level is 'warn': warnings reach the logger, info does not", async () => {
    const { calls, logger } = fakeLogger();
    // The fixture defaults to 'silent'; an explicit undefined gives the handler's own default back.
    const defaults = { logger, logLevel: undefined } as unknown as HandlerOptions;
    await (scenarios['a slow-consumer close'] as Scenario).run(defaults);
    await (scenarios['a handshake rejection (status, code, reason)'] as Scenario).run(defaults);
    await sleep(20);
    expect(calls.map((c) => c.level)).toEqual(['warn']);
    expect(calls[0]?.message).toMatch(/slow consumer/);
  });

  test('a logger with only some methods works: the others are skipped', async () => {
    const warned: string[] = [];
    const s = scenarios['a slow-consumer close'] as Scenario;
    await s.run({ logger: { warn: (m: string) => warned.push(m) }, logLevel: 'debug' });
    const r = scenarios['a handshake rejection (status, code, reason)'] as Scenario;
    await r.run({ logger: { warn: (m: string) => warned.push(m) }, logLevel: 'debug' });
    await sleep(20);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/slow consumer/);
  });
});
