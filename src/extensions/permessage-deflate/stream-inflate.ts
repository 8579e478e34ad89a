/**
 * Inflating a compressed message that is received as a stream (RFC 7692 §7.2.2), one piece at a
 * time: each piece of payload is fed to zlib as it arrives and its output handed on, at most
 * `step` bytes per call, so a small piece that inflates to a lot (a zip bomb) is produced only as
 * fast as the consumer reads it. The connection counts the output against `maxStreamBytes`.
 *
 * Used only by routes that take messages as streams, which never inflate whole messages: the
 * window (context takeover) lives here alone. It runs on zlib's handle synchronously (zlib-sync.ts);
 * runtimes without that handle cannot inflate streamed messages (`create` returns null).
 */
import { type SyncStream, TRAILER, drive, wrapSync } from './zlib-sync.js';
// Not an ES module import (src/builtins.ts says why).
const zlib = process.getBuiltinModule('node:zlib');

/** Where a call stopped: all input taken, output limit reached (call `more`), or bad data. */
export type StepResult = 'done' | 'more' | 'error';

export class StreamInflater {
  private readonly windowBits: number;
  private readonly takeover: boolean;
  private stream: SyncStream | null = null;
  /** The input being inflated and where in it the last call stopped. */
  private input: Uint8Array[] = [];
  private index = 0;
  private offset = 0;
  /** The message's DEFLATE stream ended (BFINAL): the rest of its input is ignored. */
  private ended = false;

  constructor(windowBits: number, takeover: boolean) {
    this.windowBits = windowBits;
    this.takeover = takeover;
  }

  /** The last zlib error, for the close reason. */
  get error(): string {
    return this.stream?.error ?? 'invalid deflate data';
  }

  /** A message starts. False when zlib's handle cannot be driven synchronously here. */
  begin(): boolean {
    this.ended = false;
    if (this.stream !== null && this.takeover) return true;
    this.stream?.stream.close();
    this.stream = wrapSync(zlib.createInflateRaw({ windowBits: this.windowBits }));
    return this.stream !== null;
  }

  /** Feeds a piece of the message's payload; output goes to `onOutput` (a view: copy it). */
  write(piece: Uint8Array, step: number, onOutput: (view: Buffer) => void): StepResult {
    this.input = [piece];
    this.index = 0;
    this.offset = 0;
    return this.more(step, onOutput);
  }

  /** The message's last piece has been written: the trailer `00 00 ff ff` ends the flush (§7.2.2). */
  finish(step: number, onOutput: (view: Buffer) => void): StepResult {
    return this.write(TRAILER, step, onOutput);
  }

  /** Goes on with the input where the last call stopped at its output limit. */
  more(step: number, onOutput: (view: Buffer) => void): StepResult {
    const s = this.stream;
    if (s === null) return 'error';
    if (this.ended) return 'done';
    const r = drive(s, this.input, this.index, this.offset, zlib.constants.Z_SYNC_FLUSH, step, onOutput);
    if (r.status === 'error') {
      this.stream = null;
      return 'error';
    }
    if (r.status === 'limit') {
      this.index = r.index;
      this.offset = r.offset;
      return 'more';
    }
    if (r.status === 'end') {
      // BFINAL (RFC 7692 §7.2.3.4): the next message starts a new DEFLATE stream. Its window is
      // not carried over here, so a back-reference into this message fails (1007), never decodes wrong.
      this.ended = true;
      s.stream.close();
      this.stream = null;
    }
    this.input = [];
    return 'done';
  }

  /** The message ended: without context takeover the stream is dropped (the next one starts empty). */
  end(): void {
    if (!this.takeover || this.stream === null) this.close();
  }

  close(): void {
    this.stream?.stream.close();
    this.stream = null;
    this.input = [];
  }
}
