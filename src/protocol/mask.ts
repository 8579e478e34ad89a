/** Payloads at least this long are unmasked 32 bits at a time. */
const WORD_THRESHOLD = 64;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * XORs `bytes` in place with the 4-byte masking key (RFC 6455 §5.3). `position` is the offset
 * of `bytes[0]` within the frame payload, so a payload that arrives in pieces can be unmasked
 * piece by piece. Masking and unmasking are the same operation.
 */
export function applyMask(bytes: Uint8Array, key: Uint8Array, position: number): void {
  const n = bytes.length;
  const k0 = key[0] as number;
  const k1 = key[1] as number;
  const k2 = key[2] as number;
  const k3 = key[3] as number;
  let i = 0;
  if (n >= WORD_THRESHOLD) {
    // Walk to a 4-byte aligned address, then XOR whole words with the key rotated to match.
    const lead = (4 - (bytes.byteOffset & 3)) & 3;
    for (; i < lead; i++) bytes[i] = (bytes[i] as number) ^ (key[(position + i) & 3] as number);
    const r = (position + i) & 3;
    const a = r === 0 ? k0 : r === 1 ? k1 : r === 2 ? k2 : k3;
    const b = r === 0 ? k1 : r === 1 ? k2 : r === 2 ? k3 : k0;
    const c = r === 0 ? k2 : r === 1 ? k3 : r === 2 ? k0 : k1;
    const d = r === 0 ? k3 : r === 1 ? k0 : r === 2 ? k1 : k2;
    const word = LITTLE_ENDIAN ? (a | (b << 8) | (c << 16) | (d << 24)) : ((a << 24) | (b << 16) | (c << 8) | d);
    const words = (n - i) >>> 2;
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] = (view[w] as number) ^ word;
    i += words << 2;
  }
  for (; i < n; i++) bytes[i] = (bytes[i] as number) ^ (key[(position + i) & 3] as number);
}
