/**
 * Issue 15 against an independent peer: Python `websockets` 10.4 (Debian's python3-websockets,
 * /usr/bin/python3), both ways, with and without permessage-deflate.
 *
 * - Python sends ONE message from an async iterator (a frame per item); the route takes it with
 *   `onStream` and must have a first chunk before Python sends the rest (Python waits for the
 *   route's "first"), compressed or not; the route's SHA-256 must equal Python's.
 * - The route sends with `sendStream`; Python's Sans-I/O connection hands over each fragment as
 *   it is parsed (10.4's equivalent of recv_streaming) and checks the framing, the UTF-8 of a text
 *   stream whose chunks split code points, the SHA-256, and that streamed frames are not
 *   compressed on a compressed connection while the next message is.
 *
 * The Python side is test/interop/stream_client.py.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { Behavior, type StreamedMessage } from '../../src/index.js';
import { PYTHON, type Json, PythonScript, hasPython } from '../helpers/python.js';
import { type TestServer, startServer, waitFor } from '../helpers/server.js';

const SCRIPT = fileURLToPath(new URL('./stream_client.py', import.meta.url));
const MiB = 1 << 20;

class PyRun extends PythonScript {
  constructor(url: string, scenario: string, opts: Json) {
    super(SCRIPT, url, scenario, opts, 55_000);
  }

  /** Waits for exit 0 and returns the final (`done`) line. */
  async result(): Promise<Json> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`python exited with ${String(code)}:\n${this.stderr}\n${JSON.stringify(this.lines)}`);
    const done = this.lines.find((l) => l.done === true);
    if (done === undefined) throw new Error(`python printed no result: ${JSON.stringify(this.lines)}\n${this.stderr}`);
    return done;
  }
}

function python(url: string, scenario: string, opts: Json): Promise<Json> {
  return new PyRun(url, scenario, opts).result();
}

// ---- routes ---------------------------------------------------------------------------------------

const failures: { route: string; error: unknown; bytes?: number }[] = [];
const sendResults: unknown[] = [];

/** Takes every message as a stream: "first" after the first chunk, then a JSON report. */
class Up extends Behavior {
  override async onStream(message: StreamedMessage): Promise<void> {
    const hash = createHash('sha256');
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let bytes = 0;
    let chunks = 0;
    let textOk = true;
    try {
      for await (const chunk of message) {
        if (chunks === 0) this.sendText('first');
        chunks++;
        bytes += chunk.length;
        hash.update(chunk);
        if (message.isText) {
          try {
            decoder.decode(chunk, { stream: true });
          } catch {
            textOk = false;
          }
        }
      }
      if (message.isText) {
        try {
          decoder.decode();
        } catch {
          textOk = false;
        }
      }
    } catch (error) {
      failures.push({ route: this.route, error, bytes });
      return;
    }
    this.sendText(
      JSON.stringify({ bytes, sha256: hash.digest('hex'), isText: message.isText, chunks, textOk, bytesReceived: message.bytesReceived, deflate: this.extensions.perMessageDeflate !== null }),
    );
  }
}

class UpDeflate extends Up {
  static override perMessageDeflate = true;
}

class UpLimited extends Up {
  static override perMessageDeflate = true;
  static override maxStreamBytes = 8 * MiB;
}

const PATTERN = Buffer.from('aé€😀'.repeat(200_000), 'utf8'); // 2 MB, a multiple of the 10-byte unit

/** Text bytes at [off, off + n) of the endless 'aé€😀' pattern (a chunk may start or end inside a code point). */
function textAt(off: number, n: number): Buffer {
  const start = off % 10;
  return Buffer.from(PATTERN.subarray(start, start + n));
}

/** Sends `size` bytes with sendStream in chunks of `chunk` (random bytes, or pattern text), then a JSON report; on a compressed connection, then 8 KiB of 'z'. */
class Down extends Behavior {
  override onOpen(): void {
    const size = Number(this.query.get('size'));
    const chunk = Number(this.query.get('chunk'));
    const text = this.query.get('text') === '1';
    const hash = createHash('sha256');
    async function* source(): AsyncGenerator<Buffer> {
      for (let off = 0; off < size; off += chunk) {
        const n = Math.min(chunk, size - off);
        const c = text ? textAt(off, n) : randomBytes(n);
        hash.update(c);
        yield c;
      }
    }
    this.sendStream(source(), { text }).then(
      (sent) => {
        sendResults.push(sent);
        this.sendText(JSON.stringify({ sent, sha256: hash.digest('hex') }));
        if (this.extensions.perMessageDeflate !== null) this.sendText('z'.repeat(8192));
      },
      (error: unknown) => failures.push({ route: this.route, error }),
    );
  }
}

class DownDeflate extends Down {
  static override perMessageDeflate = true;
}

// ---- tests ----------------------------------------------------------------------------------------

describe.runIf(hasPython)(`python websockets (${PYTHON}) and streamed messages`, () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer({ '/up': Up, '/up-deflate': UpDeflate, '/up-limited': UpLimited, '/down': Down, '/down-deflate': DownDeflate });
  });

  afterAll(async () => {
    await srv?.close();
  });

  beforeEach(async () => {
    await waitFor(() => srv.srv.handler.clients.size === 0, 5000, 'clients from the previous test to leave');
    failures.length = 0;
    sendResults.length = 0;
  });

  test('python sends 64 MiB from an async iterator (64 fragments): onStream gets its first chunk before python sends the rest, and all of it', async () => {
    const r = await python(srv.url('/up'), 'upload', { size: 64 * MiB, fragment: MiB });
    expect(r.first).toBe('first');
    const sent = r.sent as { bytes: number; fragments: number };
    expect(sent).toEqual({ bytes: 64 * MiB, fragments: 64 });
    expect(r.extensions).toEqual([]);
    expect(r.report).toMatchObject({ bytes: 64 * MiB, bytesReceived: 64 * MiB, sha256: r.sha256, isText: false, deflate: false });
    expect(r.close).toEqual({ code: 1000, reason: 'done' });
    expect(failures).toEqual([]);
  });

  test('python sends a 16 MiB text message in 64 fragments: valid UTF-8 all through, same SHA-256', async () => {
    const r = await python(srv.url('/up'), 'upload', { size: 16 * MiB, fragment: 256 * 1024, text: true });
    expect(r.first).toBe('first');
    const sent = r.sent as { bytes: number; fragments: number };
    expect(sent.fragments).toBe(64);
    expect(r.report).toMatchObject({ bytes: sent.bytes, sha256: r.sha256, isText: true, textOk: true });
    expect(r.close).toEqual({ code: 1000, reason: 'done' });
  });

  test('permessage-deflate: python compresses each fragment of a 32 MiB text message; the route inflates them one at a time (first chunk before the rest is sent)', async () => {
    const r = await python(srv.url('/up-deflate'), 'upload', { size: 32 * MiB, fragment: MiB, text: true, compress: true });
    expect(r.first).toBe('first');
    const sent = r.sent as { bytes: number; fragments: number };
    expect(sent.fragments).toBe(32);
    expect(r.extensions).toEqual(['PerMessageDeflate']);
    expect(r.report).toMatchObject({ bytes: sent.bytes, sha256: r.sha256, isText: true, textOk: true, deflate: true });
    expect(r.close).toEqual({ code: 1000, reason: 'done' });
    expect(failures).toEqual([]);
  });

  test('permessage-deflate: 64 MiB of zeros (64 compressed fragments of ~1 KiB) past maxStreamBytes (8 MiB) closes with 1009; the consumer never gets more than 8 MiB', async () => {
    const r = await python(srv.url('/up-limited'), 'upload', { size: 64 * MiB, fragment: MiB, compress: true, zeros: true });
    expect(r.first).toBe('first');
    expect(r.extensions).toEqual(['PerMessageDeflate']);
    expect((r.close as { code: number }).code).toBe(1009);
    await waitFor(() => failures.length === 1, 3000, "the route's consumer to fail");
    expect((failures[0]?.error as { closeCode?: number }).closeCode).toBe(1009);
    expect(failures[0]?.bytes).toBeLessThanOrEqual(8 * MiB);
  });

  test('the route sends 64 MiB with sendStream: python receives it fragment by fragment as one binary message, same SHA-256', async () => {
    const size = 64 * MiB;
    const r = await python(srv.url(`/down?size=${size}&chunk=${MiB}`), 'download', { after: 1 });
    const stream = r.stream as Record<string, unknown>;
    const report = JSON.parse((r.after as { data: string }[])[0]?.data as string) as { sent: number; sha256: string };
    expect(report.sent).toBe(size);
    expect(stream).toMatchObject({ opcode: 2, bytes: size, sha256: report.sha256, middle_ok: true });
    expect(stream.fragments as number).toBeGreaterThan(64);
    expect((stream.first as unknown[]).slice(0, 2)).toEqual([2, false]);
    expect(stream.last).toEqual([0, true, null, 0]);
    expect(r.close).toEqual({ code: 1000, reason: 'done' });
    expect(sendResults).toEqual([size]);
  });

  test('the route sends a 64 MB text stream whose chunks (1 MiB + 1) split code points: python decodes it as valid UTF-8, same SHA-256', async () => {
    const size = 64_000_000;
    const r = await python(srv.url(`/down?size=${size}&chunk=${MiB + 1}&text=1`), 'download', { after: 1 });
    const stream = r.stream as Record<string, unknown>;
    const report = JSON.parse((r.after as { data: string }[])[0]?.data as string) as { sent: number; sha256: string };
    expect(report.sent).toBe(size);
    expect(stream).toMatchObject({ opcode: 1, bytes: size, sha256: report.sha256, text_ok: true, middle_ok: true });
    expect(stream.last).toEqual([0, true, null, 0]);
  });

  test('permessage-deflate agreed with python: streamed fragments arrive uncompressed (RSV1 clear), the next message compressed (RSV1 set)', async () => {
    const size = 16 * MiB;
    const r = await python(srv.url(`/down-deflate?size=${size}&chunk=${MiB}`), 'download', { after: 2, compress: true });
    expect(String((r.handshake as { extensions: string }).extensions)).toMatch(/^permessage-deflate/);
    const stream = r.stream as Record<string, unknown>;
    const after = r.after as { data: string; rsv1: boolean; opcode: number }[];
    const report = JSON.parse(after[0]?.data as string) as { sent: number; sha256: string };
    expect(stream).toMatchObject({ opcode: 2, bytes: size, sha256: report.sha256, rsv1: ['False'] });
    expect(after[1]).toMatchObject({ opcode: 1, rsv1: true, data: 'z'.repeat(8192) });
    expect(r.close).toEqual({ code: 1000, reason: 'done' });
  });
});
