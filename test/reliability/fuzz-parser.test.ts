/**
 * Parser fuzzing: tens of thousands of seeded streams — valid client frames of every kind (text,
 * binary, fragmented with control frames between, ping/pong, close with and without codes), then
 * lied-about frames (FIN, RSV, opcode, MASK, length forms and values) and byte mutations (bit
 * flips, truncation, insertion, deletion, duplication, splices, random bytes) — fed to FrameParser
 * in two chunkings each (whole, and random or byte by byte). For every input: `push` never
 * throws and always returns; every event is valid (text is UTF-8, control payloads ≤ 125 bytes,
 * close codes may be sent); at most one protocol error, with a stable string code and the close
 * code that goes with it, and nothing after a close frame or an error; and the events equal those
 * of an independent reference model (fixtures/fuzz-core.ts), whatever the chunking.
 *
 * Reproducible: the seeds below, or `FUZZ_SEED=0x… [FUZZ_CASES=n] [FUZZ_CASE=i]` to run others
 * (FUZZ_CASE runs one case of the seed and prints it). The cases run in a worker thread from a
 * private build: an endless loop in the parser fails the test with its case instead of hanging.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ProtocolErrorCode } from '../../src/protocol/errors.js';
import { buildForChildren, type Build } from './fixtures/children.js';
import { CLOSE_CODE_OF } from './fixtures/fuzz-core.js';
import type { FuzzReport } from './fixtures/fuzz-worker.js';
import { hexSeed, seedFromEnv } from './fixtures/prng.js';

const envSeed = seedFromEnv(process.env['FUZZ_SEED']);
const envCase = process.env['FUZZ_CASE'] === undefined ? undefined : Number(process.env['FUZZ_CASE']);
const SEEDS = envSeed === undefined ? [0x0b5e55ed, 0xc0ffee11, 0x5eed2026] : [envSeed];
const CASES = envCase !== undefined ? 1 : Number(process.env['FUZZ_CASES'] ?? 8000);
const FIRST = envCase ?? 0;
/** A worker that finishes no case for this long is stuck in the parser. */
const STALL = 5000;

let build: Build;
beforeAll(async () => {
  build = await buildForChildren();
}, 60_000);
afterAll(async () => {
  await build?.remove();
});

/** Runs `count` cases of `seed` in a worker; rejects naming the case if the worker stalls. */
function runSeed(seed: number): Promise<FuzzReport> {
  const progress = new SharedArrayBuffer(8);
  const cells = new Int32Array(progress);
  const worker = new Worker(build.fixture('fuzz-worker'), { workerData: { seed, first: FIRST, count: CASES, progress } });
  return new Promise<FuzzReport>((resolve, reject) => {
    let done = -1;
    let lastMove = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(cells, 1);
      if (now !== done) {
        done = now;
        lastMove = Date.now();
      } else if (Date.now() - lastMove > STALL) {
        const index = Atomics.load(cells, 0);
        clearInterval(watchdog);
        void worker.terminate();
        reject(new Error(`the parser made no progress for ${STALL} ms on case ${index} (reproduce: FUZZ_SEED=${hexSeed(seed)} FUZZ_CASE=${index})`));
      }
    }, 250);
    worker.once('message', (report: FuzzReport) => {
      clearInterval(watchdog);
      resolve(report);
    });
    worker.once('error', (error) => {
      clearInterval(watchdog);
      reject(error);
    });
    worker.once('exit', (code) => {
      clearInterval(watchdog);
      reject(new Error(`fuzz worker exited with ${code} before reporting`));
    });
  }).finally(() => void worker.terminate());
}

describe('FrameParser under fuzzing (RFC 6455 §5, §7.4, §8.1)', () => {
  const totals = { cases: 0, errorCodes: new Set<string>() };

  for (const seed of SEEDS) {
    test(`seed ${hexSeed(seed)}: ${CASES} mutated streams in two chunkings each end only in valid events, as the reference model says`, async () => {
      const started = Date.now();
      const r = await runSeed(seed);
      const ms = Date.now() - started;
      console.log(
        `fuzz-parser: seed ${hexSeed(seed)}, cases ${FIRST}–${FIRST + r.cases - 1}, ${r.bytes} bytes, ${ms} ms; ` +
          `events ${JSON.stringify(r.events)}; errors ${JSON.stringify(r.errorCodes)}; closes ${JSON.stringify(r.closeCodes)}`,
      );
      for (const f of r.failures) {
        console.log(
          `fuzz-parser ${f.problems.length > 0 ? 'FAILURE' : 'case'}: FUZZ_SEED=${hexSeed(seed)} FUZZ_CASE=${f.index}\n  made by: ${f.steps.join(' ')}\n  stream: ${f.stream}\n` +
            `  chunkings: ${JSON.stringify(f.chunkings)}\n  events: ${f.events}\n  ${f.problems.join('\n  ') || 'no problem'}`,
        );
      }
      expect(r.cases).toBe(CASES);
      expect(r.failureCount, `${r.failureCount} failing cases (first: FUZZ_SEED=${hexSeed(seed)} FUZZ_CASE=${r.failures[0]?.index})`).toBe(0);
      totals.cases += r.cases;
      for (const code of Object.keys(r.errorCodes)) totals.errorCodes.add(code);
    }, 60_000);
  }

  test.runIf(CASES >= 5000)('the fuzz reaches every protocol error the parser can report', () => {
    expect(totals.cases).toBe(SEEDS.length * CASES);
    // WS_INVALID_COMPRESSED_DATA is the inflater's (after the parser), not the parser's; WS_STREAM_INTERRUPTED
    // is what a streamed message's reader gets when the connection ends, never a parser verdict.
    const all = (Object.keys(CLOSE_CODE_OF) as ProtocolErrorCode[]).filter((code) => code !== 'WS_INVALID_COMPRESSED_DATA' && code !== 'WS_STREAM_INTERRUPTED');
    expect(all.filter((code) => !totals.errorCodes.has(code))).toEqual([]);
  });
});
