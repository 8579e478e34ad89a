// The frame parser alone, in one process, with no socket: nanoseconds per message for masked
// client frames of a few sizes, fed in chunks as TCP would hand them over (16 small frames per
// chunk; 64 KiB chunks for large frames, so a large frame spans chunks and is assembled). With
// --base=<other dist dir> the same for another build, rounds interleaved: an A/B of a parser
// change that the network scenarios, whose rounds move by ±20% on this VM, cannot resolve.
//
//   npm run build && node --expose-gc bench/parse.mjs
//   node --expose-gc bench/parse.mjs --base=/tmp/wt-base/dist      # this build ÷ that one
//
// Median of 9 rounds; each round parses 4,096 distinct frames (fresh copies: the parser unmasks
// in place) 20–200 times, after a forced GC (with --expose-gc) so that one round's garbage is not
// collected in the next. A sink counts the messages; nothing is sent.

import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const builds = [{ name: 'this build', dir: join(here, '..', 'dist') }];
if (option('base')) builds.push({ name: 'base', dir: option('base') });
const parsers = await Promise.all(builds.map((b) => import(join(b.dir, 'protocol', 'parser.js'))));

/** `count` masked client frames of `size` bytes (ASCII text, or bytes), each with its own key. */
function frames(count, size, opcode) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const payload = opcode === 1 ? Buffer.alloc(size, 0x61 + (i % 26)) : randomBytes(size);
    const key = randomBytes(4);
    const head = size < 126 ? [0x80 | opcode, 0x80 | size] : size < 65536 ? [0x80 | opcode, 0x80 | 126, size >> 8, size & 255] : [0x80 | opcode, 0x80 | 127, 0, 0, 0, 0, size >>> 24, (size >>> 16) & 255, (size >>> 8) & 255, size & 255];
    const body = Buffer.alloc(size);
    for (let j = 0; j < size; j++) body[j] = payload[j] ^ key[j & 3];
    out.push(Buffer.from(head), key, body);
  }
  return Buffer.concat(out);
}

const OPTIONS = { expectMasked: true, maxPayload: 1 << 26, maxFragments: 1_000_000, allowRsv1: false, streaming: false, maxStreamBytes: 1 << 30 };
const CASES = [
  { size: 32, frames: 4096, chunk: (f) => 16 * f, reps: 200 },
  { size: 1024, frames: 4096, chunk: (f) => 16 * f, reps: 40 },
  { size: 65536, frames: 256, chunk: () => 65536, reps: 20 },
];
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const fmt = (n) => (n < 1000 ? `${n.toFixed(0)} ns` : `${(n / 1000).toFixed(2)} µs`);

console.log(`# Frame parser, ns per message (median of 9 interleaved rounds), Node ${process.version}\n`);
console.log(`| size | type | ${builds.map((b) => b.name).join(' | ')}${builds.length > 1 ? ' | this ÷ base (time) |' : ' |'}`);
console.log(`|---:|:--|${builds.map(() => '--:').join('|')}|${builds.length > 1 ? '--:|' : ''}`);
for (const c of CASES) {
  for (const opcode of [1, 2]) {
    const data = frames(c.frames, c.size, opcode);
    const chunk = c.chunk(data.length / c.frames);
    const pieces = [];
    for (let at = 0; at < data.length; at += chunk) pieces.push(data.subarray(at, at + chunk));
    const times = builds.map(() => []);
    for (let round = 0; round < 9; round++) {
      parsers.forEach((m, k) => {
        let messages = 0;
        const sink = {
          onMessage() {
            messages++;
          },
          onPing() {},
          onPong() {},
          onCloseFrame() {},
          onProtocolError(e) {
            throw e;
          },
        };
        const parser = new m.FrameParser(sink, OPTIONS);
        // Copies made outside the timed part: the parser unmasks in place.
        const copies = [];
        for (let r = 0; r < c.reps; r++) for (const p of pieces) copies.push(Buffer.from(p));
        globalThis.gc?.();
        const t0 = process.hrtime.bigint();
        for (const p of copies) parser.push(p);
        const ns = Number(process.hrtime.bigint() - t0);
        if (messages !== c.frames * c.reps) throw new Error(`${builds[k].name}: ${messages} messages, expected ${c.frames * c.reps}`);
        times[k].push(ns / messages);
      });
    }
    const m = times.map(median);
    const ratio = builds.length > 1 ? ` ${(m[0] / m[1]).toFixed(2)}× |` : '';
    console.log(`| ${c.size >= 1024 ? `${c.size / 1024} KiB` : `${c.size} B`} | ${opcode === 1 ? 'text' : 'binary'} | ${m.map(fmt).join(' | ')} |${ratio}`);
  }
}
