import { Buffer, isAscii, isUtf8 } from 'node:buffer';

/** Below this many bytes a JS loop beats a call into the native validator. */
const NATIVE_THRESHOLD = 48;

/**
 * Incremental UTF-8 validator (RFC 3629, as required for text frames by RFC 6455 §8.1).
 *
 * Bytes may arrive split anywhere, even inside a code point; {@link Utf8Validator.write}
 * returns `false` as soon as the bytes seen so far cannot be the prefix of valid UTF-8, so a
 * fragmented message fails fast on the fragment that carries the bad byte. Bulk bytes are
 * checked by Node's native `isUtf8`; only the few bytes around a split code point go through
 * the state machine below.
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private lo = 0x80;
  private hi = 0xbf;

  /** Feeds more bytes. `false` means the input is not valid UTF-8 (the validator is then spent). */
  write(bytes: Uint8Array): boolean {
    const n = bytes.length;
    let i = 0;
    // Finish a code point left open by the previous write.
    while (this.need > 0 && i < n) {
      const b = bytes[i++] as number;
      if (b < this.lo || b > this.hi) return false;
      this.lo = 0x80;
      this.hi = 0xbf;
      this.need--;
    }
    if (i === n) return true;
    // Split off a trailing code point that is still incomplete, so the bulk before it can
    // be judged as a whole by the native validator.
    let split = n;
    for (let j = n - 1; j >= i && j >= n - 4; j--) {
      const b = bytes[j] as number;
      if ((b & 0xc0) !== 0x80) {
        if (b >= 0xc0) {
          const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
          if (n - j < length) split = j;
        }
        break;
      }
    }
    if (split - i >= NATIVE_THRESHOLD) {
      if (!isUtf8(bytes.subarray(i, split))) return false;
      i = split;
    }
    return this.step(bytes, i, n);
  }

  /** Whether the input so far ends on a code point boundary; resets for the next message. */
  end(): boolean {
    const complete = this.need === 0;
    this.reset();
    return complete;
  }

  /** Forgets any partial code point. */
  reset(): void {
    this.need = 0;
    this.lo = 0x80;
    this.hi = 0xbf;
  }

  private step(bytes: Uint8Array, from: number, to: number): boolean {
    let need = this.need;
    let lo = this.lo;
    let hi = this.hi;
    for (let i = from; i < to; i++) {
      const b = bytes[i] as number;
      if (need === 0) {
        if (b < 0x80) continue;
        if (b < 0xc2) return false; // continuation byte without a lead, or overlong C0/C1
        if (b < 0xe0) {
          need = 1;
        } else if (b < 0xf0) {
          need = 2;
          if (b === 0xe0) lo = 0xa0; // overlong 3-byte form
          else if (b === 0xed) hi = 0x9f; // UTF-16 surrogates
        } else if (b < 0xf5) {
          need = 3;
          if (b === 0xf0) lo = 0x90; // overlong 4-byte form
          else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
        } else {
          return false;
        }
      } else {
        if (b < lo || b > hi) return false;
        lo = 0x80;
        hi = 0xbf;
        need--;
      }
    }
    this.need = need;
    this.lo = lo;
    this.hi = hi;
    return true;
  }
}

/** Whether `bytes` is, as a whole, valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  const n = bytes.length;
  if (n >= NATIVE_THRESHOLD) return isUtf8(bytes);
  // Short ASCII, the common case (a reason, a small message sent as bytes): no validator object.
  let i = 0;
  while (i < n && (bytes[i] as number) < 0x80) i++;
  if (i === n) return true;
  const v = new Utf8Validator();
  return v.write(bytes) && v.end();
}

/** From this length on, an all-ASCII payload is decoded as Latin-1 (identical for ASCII bytes). */
const ASCII_FAST_PATH = 1024;

/**
 * Decodes a text message already validated as UTF-8. Node 20's UTF-8 decoder runs at about
 * 1 GB/s even on plain ASCII; an ASCII payload decodes to the same string as Latin-1, which is a
 * copy (measured here on 1 MiB: 856 µs → 437 µs with the `isAscii` check included).
 */
export function decodeText(bytes: Buffer): string {
  return bytes.length >= ASCII_FAST_PATH && isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * The bytes of a text message given as bytes (`sendText(bytes)`), as a Buffer view: they go out
 * as they are, so they must be UTF-8 (RFC 6455 §8.1). Throws TypeError if not.
 */
export function textBytes(data: ArrayBufferView | ArrayBuffer): Buffer {
  const bytes = Buffer.isBuffer(data)
    ? data
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (!isValidUtf8(bytes)) {
    throw new TypeError('sendText(bytes): the bytes are not valid UTF-8, so they cannot go as a text message (RFC 6455 §8.1); send them with sendBinary()');
  }
  return bytes;
}
