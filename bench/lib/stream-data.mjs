// The bytes of the streaming scenario (issue 15), shared by its targets and the generator, so that
// every byte a server receives or sends is checked without anyone holding a whole message:
//
//   upload    message byte at offset o (counted from the first byte of the first message) is
//             PATTERN[o % 1 MiB]; the client sends it masked, the server checks the first and last
//             byte of every chunk it gets after unmasking (a server that does not unmask, drops or
//             reorders bytes fails the run).
//   download  the server produces the bytes on the fly in chunks of `chunk` bytes (64 KiB or
//             1 MiB; a divisor of 1 MiB): chunk c is a fresh Buffer holding PATTERN[(c·chunk) % 1 MiB …]
//             with c written over its first 4 bytes (uint32 BE). The client checks every byte it
//             receives against that, by offset (memcmp per piece).

import { Buffer } from 'node:buffer';

export const MiB = 1 << 20;
export const PERIOD = MiB;

/** 1 MiB of printable ASCII (valid UTF-8), not periodic in 4 bytes (so a wrong mask shows). */
export const PATTERN = (() => {
  const b = Buffer.allocUnsafe(PERIOD);
  for (let i = 0; i < PERIOD; i++) b[i] = 97 + ((i * 7 + (i >>> 8) + (i >>> 16)) % 26);
  return b;
})();

/** The upload check: first and last byte of a received chunk against the pattern. */
export function uploadChunkOk(chunk, offset) {
  const n = chunk.length;
  if (n === 0) return true;
  return chunk[0] === PATTERN[offset % PERIOD] && chunk[n - 1] === PATTERN[(offset + n - 1) % PERIOD];
}

/**
 * The download source: `total` bytes in fresh chunks of `chunk` bytes, made as they are pulled
 * (a generator never holds more than the chunk it yields).
 */
export function* downloadChunks(total, chunk) {
  if (PERIOD % chunk !== 0) throw new Error(`chunk ${chunk} must divide ${PERIOD}`);
  for (let c = 0, o = 0; o < total; c++, o += chunk) {
    const n = Math.min(chunk, total - o);
    const b = Buffer.allocUnsafe(n);
    const p = o % PERIOD;
    PATTERN.copy(b, 0, p, p + n);
    if (n >= 4) b.writeUInt32BE(c >>> 0, 0);
    yield b;
  }
}

/**
 * Checks received download bytes: buf[start, end) is at offset `off` of the byte stream. Returns
 * null when they are right, else a description of the first mismatch.
 */
export function checkDownload(buf, start, end, off, chunk) {
  let s = start;
  let o = off;
  while (s < end) {
    const inChunk = o % chunk;
    const index = Math.floor(o / chunk);
    const segEnd = Math.min(end, s + (chunk - inChunk));
    let p = s;
    let q = inChunk;
    while (q < 4 && p < segEnd) {
      if (buf[p] !== ((index >>> (8 * (3 - q))) & 0xff)) return `byte ${o + (p - s)}: chunk stamp ${index} wrong`;
      p++;
      q++;
    }
    if (p < segEnd) {
      const g = (o + (p - s)) % PERIOD;
      if (buf.compare(PATTERN, g, g + (segEnd - p), p, segEnd) !== 0) return `bytes ${o + (p - s)}..${o + (segEnd - s)} differ from what the server was asked to send`;
    }
    o += segEnd - s;
    s = segEnd;
  }
  return null;
}
