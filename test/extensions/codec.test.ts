import { floats as prng } from '../reliability/fixtures/prng.js';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  createPerMessageDeflateCodec,
  deflateOnce,
  type DeflateEngine,
  type InflateResult,
  PerMessageDeflater,
  PerMessageInflater,
  privateSyncAvailable,
} from '../../src/extensions/permessage-deflate/codec.js';
import type { PerMessageDeflateAgreement, WindowBits } from '../../src/extensions/permessage-deflate/negotiate.js';
import { hasPython, PYTHON } from '../helpers/python.js';

// ---- helpers ----


const WORDS = ['user', 'room', 'message', 'typing', 'presence', 'id', 'ts', 'lorem', 'ipsum', 'Faust', 'Gretchen', 'über', '日本語', 'true', 'null'];

/** A mixed corpus: JSON-like text, prose, random bytes, zeros; sizes from 0 to ~200 KiB. */
function corpus(seed: number, count: number, maxSize = 200 * 1024): Buffer[] {
  const r = prng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const pick = r();
    const size = pick < 0.05 ? 0 : pick < 0.6 ? Math.floor(r() * 200) : pick < 0.9 ? Math.floor(r() * 4096) : Math.floor(r() * maxSize);
    const kind = Math.floor(r() * 4);
    let b: Buffer;
    if (kind === 0) {
      let s = '';
      while (s.length < size) s += `{"type":"${WORDS[Math.floor(r() * WORDS.length)]}","id":${Math.floor(r() * 1e6)},"ok":${r() < 0.5}},`;
      b = Buffer.from(s).subarray(0, size);
    } else if (kind === 1) {
      let s = '';
      while (s.length < size) s += `${WORDS[Math.floor(r() * WORDS.length)]} `;
      b = Buffer.from(s).subarray(0, size);
    } else if (kind === 2) {
      b = Buffer.alloc(size);
      for (let j = 0; j < size; j++) b[j] = Math.floor(r() * 256);
    } else {
      b = Buffer.alloc(size, r() < 0.5 ? 0 : 0x61);
    }
    out.push(Buffer.from(b));
  }
  return out;
}

/** Splits a payload into 1..4 fragments (empty ones included), like frames of one message. */
function fragment(payload: Buffer, r: () => number): Buffer[] {
  const n = 1 + Math.floor(r() * 4);
  const cuts = Array.from({ length: n - 1 }, () => Math.floor(r() * (payload.length + 1))).sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, payload.length]) {
    parts.push(payload.subarray(at, c));
    at = c;
  }
  return parts;
}

const agreement = (p: Partial<PerMessageDeflateAgreement> = {}): PerMessageDeflateAgreement => ({
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  responseHeader: 'permessage-deflate',
  offerIndex: 0,
  ...p,
});

const ok = (r: InflateResult): Buffer => {
  if (r.kind !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r.data;
};

const ENGINES: DeflateEngine[] = privateSyncAvailable() ? ['handle', 'dictionary'] : ['dictionary'];

// ws's PerMessageDeflate: a real, independent implementation (async zlib streams).
const require = createRequire(import.meta.url);
const wsLib = (file: string): unknown => require(join(dirname(require.resolve('ws')), 'lib', file));
interface WsPmd {
  accept(configurations: unknown[]): unknown;
  compress(data: Buffer, fin: boolean, cb: (err: Error | null, out?: Buffer) => void): void;
  decompress(data: Buffer, fin: boolean, cb: (err: Error | null, out?: Buffer) => void): void;
  cleanup(): void;
}
const WsPerMessageDeflate = wsLib('permessage-deflate.js') as new (opts: Record<string, unknown>) => WsPmd;
const wsParse = (wsLib('extension.js') as { parse(h: string): Record<string, unknown[]> }).parse;

/** ws's client side, configured from our response header (as ws's WebSocket client does). */
function wsClient(responseHeader: string): WsPmd {
  const pmd = new WsPerMessageDeflate({ isServer: false, maxPayload: 0, threshold: 0 });
  pmd.accept(wsParse(responseHeader)['permessage-deflate'] as unknown[]);
  return pmd;
}
const wsCompress = (pmd: WsPmd, b: Buffer): Promise<Buffer> =>
  new Promise((res, rej) => pmd.compress(b, true, (e, out) => (e ? rej(e) : res(out as Buffer))));
const wsDecompress = (pmd: WsPmd, b: Buffer): Promise<Buffer> =>
  new Promise((res, rej) => pmd.decompress(b, true, (e, out) => (e ? rej(e) : res(out as Buffer))));

// ---- tests ----

describe('permessage-deflate codec: round trips (RFC 7692 §7.2)', () => {
  for (const engine of ENGINES) {
    for (const serverNct of [false, true]) {
      for (const clientNct of [false, true]) {
        it(`${engine}: deflater → inflater, server_no_context_takeover=${serverNct}, client_no_context_takeover=${clientNct}, 300 mixed messages incl. thread-pool sizes`, async () => {
          const a = agreement({ serverNoContextTakeover: serverNct, clientNoContextTakeover: clientNct });
          // Our deflater plays the peer; "client" takeover is about what the inflater receives.
          const d = new PerMessageDeflater({ serverNoContextTakeover: clientNct, serverMaxWindowBits: 15 }, { engine });
          const inf = new PerMessageInflater(a, { engine });
          const msgs = corpus(1000 + Number(serverNct) * 2 + Number(clientNct), 300);
          const r = prng(7);
          // Issue every call before awaiting any: results must come back in call order.
          const compressed = msgs.map((m) => d.deflate(m));
          const results = (await Promise.all(compressed)).map((c) => inf.inflate(fragment(c, r), 1 << 30));
          const out = await Promise.all(results);
          out.forEach((o, i) => expect(ok(o).equals(msgs[i] as Buffer)).toBe(true));
          expect(inf.takeover).toBe(!clientNct);
          expect(d.takeover).toBe(!clientNct);
          inf.release(true);
          d.release(true);
          expect(inf.allocated).toBe(false);
        });
      }
    }
  }

  it('a message over maxSyncInput returns a Promise, and a small one queued behind it keeps its place', async () => {
    for (const engine of ENGINES) {
      const d = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 15 }, { engine, maxSyncInput: 1024 });
      const inf = new PerMessageInflater(agreement(), { engine, maxSyncInput: 1024 });
      const large = Buffer.concat(corpus(5, 40, 8192));
      const small = Buffer.from('{"after":"large"}');
      const c1 = d.deflate(large);
      expect(c1).toBeInstanceOf(Promise);
      const c2 = d.deflate(small);
      expect(c2).toBeInstanceOf(Promise); // queued behind c1
      const [b1, b2] = await Promise.all([c1, c2]);
      expect(b1.length).toBeGreaterThan(1024); // so inflating it goes to the thread pool too
      const i1 = inf.inflate([b1], 1 << 20);
      const i2 = inf.inflate([b2], 1 << 20);
      expect(i2).toBeInstanceOf(Promise);
      expect(ok(await i1).equals(large)).toBe(true);
      expect(ok(await i2).equals(small)).toBe(true);
      expect(inf.busy).toBe(false);
    }
  });

  it('maxSyncOutput: a small input inflating past the sync budget finishes on the thread pool (context kept)', async () => {
    for (const engine of ENGINES) {
      const d = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 15 }, { engine });
      const inf = new PerMessageInflater(agreement(), { engine, maxSyncOutput: 4096 });
      const m1 = Buffer.alloc(100_000, 0x61);
      const m2 = Buffer.from('aaaa then something else');
      const c1 = await d.deflate(m1); // 100 kB > maxSyncInput: deflated on the thread pool
      expect(c1.length).toBeLessThan(1024);
      const r1 = inf.inflate([c1], 1 << 20);
      expect(r1).toBeInstanceOf(Promise);
      expect(ok(await r1).equals(m1)).toBe(true);
      expect(ok(await inf.inflate([d.deflate(m2) as Buffer], 1 << 20)).equals(m2)).toBe(true);
    }
  });
});

describe('permessage-deflate codec: interop with ws PerMessageDeflate (an independent implementation)', () => {
  const headers = [
    'permessage-deflate',
    'permessage-deflate; client_no_context_takeover',
    'permessage-deflate; server_no_context_takeover',
    'permessage-deflate; server_max_window_bits=10; client_max_window_bits=11',
    'permessage-deflate; server_max_window_bits=8; client_max_window_bits=9',
  ];
  for (const engine of ENGINES) {
    for (const header of headers) {
      it(`${engine}: "${header}": 1,000 messages each way, ws compresses → we inflate, we deflate → ws decompresses`, async () => {
        const p = wsParse(header)['permessage-deflate']?.[0] as Record<string, [true | string]>;
        const bits = (k: string): WindowBits => (p[k] ? Number(p[k][0]) : 15) as WindowBits;
        const a = agreement({
          serverNoContextTakeover: 'server_no_context_takeover' in p,
          clientNoContextTakeover: 'client_no_context_takeover' in p,
          serverMaxWindowBits: bits('server_max_window_bits'),
          clientMaxWindowBits: bits('client_max_window_bits'),
          responseHeader: header,
        });
        const client = wsClient(header);
        const { inflater, deflater } = createPerMessageDeflateCodec(a, { engine });
        const msgs = corpus(header.length * 31 + 7, 1000, 100 * 1024);
        const r = prng(99);
        for (const m of msgs) {
          // Client → server: ws compresses (its client context), we inflate, fragmented.
          const c = await wsCompress(client, m);
          expect(ok(await inflater.inflate(fragment(c, r), 1 << 20)).equals(m)).toBe(true);
          // Server → client: we deflate, ws inflates.
          const s = await deflater.deflate(m);
          expect((await wsDecompress(client, s)).equals(m)).toBe(true);
        }
        client.cleanup();
      });
    }
  }

  it('uncompressed messages between compressed ones never enter the window (both directions)', async () => {
    for (const engine of ENGINES) {
      const client = wsClient('permessage-deflate');
      const { inflater, deflater } = createPerMessageDeflateCodec(agreement(), { engine });
      const msgs = corpus(4242, 200, 8192);
      for (const [i, m] of msgs.entries()) {
        if (i % 3 === 1) continue; // sent with RSV1 = 0: neither side's deflate/inflate sees it
        expect(ok(await inflater.inflate([await wsCompress(client, m)], 1 << 20)).equals(m)).toBe(true);
        expect((await wsDecompress(client, await deflater.deflate(m))).equals(m)).toBe(true);
      }
    }
  });

  it.runIf(hasPython)('Python zlib (raw deflate, wbits -15): decodes our context-takeover stream, and we inflate its', async () => {
    for (const engine of ENGINES) {
      const msgs = corpus(777, 300, 32 * 1024);
      const d = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 15 }, { engine });
      const ours = (await Promise.all(msgs.map((m) => d.deflate(m)))).map((b) => b.toString('base64'));
      const script = `
import sys, json, zlib, base64, hashlib
job = json.load(sys.stdin)
dec = zlib.decompressobj(-15)
decoded = [hashlib.sha1(dec.decompress(base64.b64decode(c) + b"\\x00\\x00\\xff\\xff")).hexdigest() for c in job["ours"]]
enc = zlib.compressobj(6, zlib.DEFLATED, -15)
theirs = []
for m in job["msgs"]:
    out = enc.compress(base64.b64decode(m)) + enc.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\\x00\\x00\\xff\\xff")
    theirs.append(base64.b64encode(out[:-4]).decode())
print(json.dumps({"decoded": decoded, "theirs": theirs}))
`;
      const res = spawnSync(PYTHON, ['-c', script], {
        input: JSON.stringify({ ours, msgs: msgs.map((m) => m.toString('base64')) }),
        maxBuffer: 1 << 28,
        encoding: 'utf8',
      });
      expect(res.status, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout) as { decoded: string[]; theirs: string[] };
      const sha1 = (b: Buffer): string => require('node:crypto').createHash('sha1').update(b).digest('hex') as string;
      expect(out.decoded).toEqual(msgs.map(sha1));
      const inf = new PerMessageInflater(agreement(), { engine });
      for (const [i, c] of out.theirs.entries()) expect(ok(await inf.inflate([Buffer.from(c, 'base64')], 1 << 20)).equals(msgs[i] as Buffer)).toBe(true);
    }
  });
});

describe('permessage-deflate codec: zip bombs (inflated size counted while inflating)', () => {
  /**
   * DEFLATE's best ratio is ~1032:1 (a 258-byte match in ~2 bits), so "a few KiB → 1 GiB" does not
   * exist: 1 GiB takes ~1 MiB. Built without deflating anything big: the
   * sync-flushed one-shot compression of 1 MiB of zeros (1,037 bytes) is byte-aligned and needs
   * no window, so N copies of it are one valid stream of N MiB of zeros.
   */
  function bomb(totalMiB: number): { payload: Buffer; inflated: number } {
    const zeros = Buffer.alloc(1 << 20);
    const T = Buffer.from([0, 0, 0xff, 0xff]);
    // A one-shot of 1 MiB zeros ends byte-aligned (sync flush): repeated, it decodes to zeros again.
    const first = zlib.deflateRawSync(zeros, { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    if (!first.subarray(first.length - 4).equals(T)) throw new Error('bomb construction failed');
    const parts: Buffer[] = [];
    for (let i = 0; i < totalMiB; i++) parts.push(first);
    const payload = Buffer.concat(parts);
    return { payload: payload.subarray(0, payload.length - 4), inflated: totalMiB << 20 };
  }

  it('the bomb is what it says (checked on a small one)', () => {
    const { payload, inflated } = bomb(8);
    const out = zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(out.length).toBe(inflated);
    expect(out.every((b) => b === 0)).toBe(true);
  });

  const big = bomb(1100); // > 1 GiB inflated
  for (const engine of ENGINES) {
    for (const takeover of [true, false]) {
      it(`${engine}, client_no_context_takeover=${!takeover}: ${(big.payload.length / 1024).toFixed(0)} KiB → ${big.inflated >> 20} MiB is "too-big" at 1 MiB, whole and in 64 fragments; RSS growth < 64 MiB`, async () => {
        const frags: Buffer[] = [];
        for (let i = 0; i < 64; i++) frags.push(big.payload.subarray(Math.floor((i * big.payload.length) / 64), Math.floor(((i + 1) * big.payload.length) / 64)));
        globalThis.gc?.();
        const before = process.memoryUsage().rss;
        for (const payloads of [[big.payload], frags]) {
          const inf = new PerMessageInflater(agreement({ clientNoContextTakeover: !takeover }), { engine });
          const r = await inf.inflate(payloads, 1 << 20);
          expect(r).toEqual({ kind: 'too-big', limit: 1 << 20 });
        }
        // The sync path too: a bomb under maxSyncInput.
        const small = bomb(60);
        expect(small.payload.length).toBeLessThan(64 * 1024);
        const inf = new PerMessageInflater(agreement({ clientNoContextTakeover: !takeover }), { engine });
        expect(inf.inflate([small.payload], 200_000)).toEqual({ kind: 'too-big', limit: 200_000 }); // not a Promise
        expect(await inf.inflate([small.payload], 1 << 20)).toEqual({ kind: 'too-big', limit: 1 << 20 }); // 256 KiB sync, then the pool
        const growth = process.memoryUsage().rss - before;
        expect(growth).toBeLessThan(64 * 1024 * 1024);
      });
    }
  }
});

describe('permessage-deflate codec: bad and edge input', () => {
  for (const engine of ENGINES) {
    it(`${engine}: corrupt data is "invalid" (close 1007), never a throw; the context is dropped`, async () => {
      for (const takeover of [true, false]) {
        const inf = new PerMessageInflater(agreement({ clientNoContextTakeover: !takeover }), { engine });
        const r = inf.inflate([Buffer.from([0xff, 0xff, 0xff, 0xff])], 1 << 20) as InflateResult;
        expect(r.kind).toBe('invalid');
        expect(inf.allocated).toBe(false);
        const r2 = prng(3);
        for (let i = 0; i < 200; i++) {
          const junk = Buffer.from(Array.from({ length: 1 + Math.floor(r2() * 100) }, () => Math.floor(r2() * 256)));
          // Junk may end a DEFLATE stream (BFINAL) or decode to a lot (the thread pool): awaited.
          const x = await inf.inflate([junk], 1 << 20);
          expect(['ok', 'invalid']).toContain(x.kind);
        }
        // A fresh, good message still works after failures (a new context).
        const fresh = new PerMessageInflater(agreement({ clientNoContextTakeover: !takeover }), { engine });
        expect(ok(fresh.inflate([deflateOnce(Buffer.from('hi'), { windowBits: 15 }) as Buffer], 10) as InflateResult).toString()).toBe('hi');
      }
    });

    it(`${engine}: the empty message (RFC 7692 §7.2.3.6): deflates to 00, inflates from 00, from no payload, from empty fragments; window untouched`, async () => {
      const client = wsClient('permessage-deflate');
      const { inflater, deflater } = createPerMessageDeflateCodec(agreement(), { engine });
      const hello = Buffer.from('hello hello hello');
      expect(ok(await inflater.inflate([await wsCompress(client, hello)], 100)).equals(hello)).toBe(true);
      expect(ok(await inflater.inflate([], 100)).length).toBe(0);
      expect(ok(await inflater.inflate([Buffer.alloc(0), Buffer.alloc(0)], 100)).length).toBe(0);
      expect(ok(await inflater.inflate([Buffer.from([0x00])], 100)).length).toBe(0);
      expect(ok(await inflater.inflate([await wsCompress(client, Buffer.alloc(0))], 100)).length).toBe(0);
      expect(ok(await inflater.inflate([await wsCompress(client, hello)], 100)).equals(hello)).toBe(true);
      expect(deflater.deflate(Buffer.alloc(0))).toEqual(Buffer.from([0x00]));
      expect(deflateOnce(Buffer.alloc(0), { windowBits: 15 })).toEqual(Buffer.from([0x00]));
      for (const m of [hello, Buffer.alloc(0), hello]) expect((await wsDecompress(client, await deflater.deflate(m))).equals(m)).toBe(true);
    });

    it(`${engine}: server_max_window_bits=8 compresses with 9, whose distances fit a window-8 inflater`, async () => {
      // zlib cannot deflate with window 8 (≥ 1.2.9), but it still inflates with 8, enforcing the
      // 256-byte window across calls. A Node inflate stream with windowBits 8 and chunkSize 64
      // (≤ 64 output bytes per zlib call, so back-references reach into the real window) is the
      // window-8-limited decoder; the control shows it rejects window-15 output.
      const r = prng(8);
      const msgs = Array.from({ length: 50 }, () => Buffer.from(Array.from({ length: 1500 }, () => 0x61 + Math.floor(r() * 4))));
      const decode = async (payloads: Buffer[]): Promise<boolean> => {
        const s = zlib.createInflateRaw({ windowBits: 8, chunkSize: 64 });
        const out: Buffer[] = [];
        s.on('data', (c: Buffer) => out.push(c));
        try {
          for (const [i, p] of payloads.entries()) {
            await new Promise<void>((res, rej) => {
              s.once('error', rej);
              s.write(Buffer.concat([p, Buffer.from([0, 0, 0xff, 0xff])]));
              s.flush(zlib.constants.Z_SYNC_FLUSH, () => res());
            });
            if (!Buffer.concat(out).equals(msgs[i] as Buffer)) return false;
            out.length = 0;
          }
          return true;
        } catch {
          return false;
        } finally {
          s.close();
        }
      };
      const d8 = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 8 }, { engine });
      expect(await decode(await Promise.all(msgs.map((m) => d8.deflate(m))))).toBe(true);
      expect(await decode(msgs.map((m) => deflateOnce(m, { windowBits: 8 }) as Buffer).slice(0, 1))).toBe(true);
      const d15 = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 15 }, { engine });
      expect(await decode(await Promise.all(msgs.map((m) => d15.deflate(m))))).toBe(false);
      // Our window-8 inflater takes what a window-8 peer sends, and rejects a wider window across messages.
      const inf8 = new PerMessageInflater(agreement({ clientMaxWindowBits: 8 }), { engine });
      const d8b = new PerMessageDeflater({ serverNoContextTakeover: false, serverMaxWindowBits: 8 }, { engine });
      for (const m of msgs) expect(ok(await inf8.inflate([await d8b.deflate(m)], 1 << 20)).equals(m)).toBe(true);
    });

    it(`${engine}: level and memLevel are honored (level 0 = stored blocks)`, () => {
      const m = Buffer.from('abc'.repeat(1000));
      const stored = deflateOnce(m, { windowBits: 15, level: 0 }, { engine }) as Buffer;
      expect(stored.length).toBeGreaterThan(m.length);
      const best = deflateOnce(m, { windowBits: 15, level: 9, memLevel: 9 }, { engine }) as Buffer;
      expect(best.length).toBeLessThan(100);
      const inf = new PerMessageInflater(agreement({ clientNoContextTakeover: true }), { engine });
      expect(ok(inf.inflate([stored], 1 << 20) as InflateResult).equals(m)).toBe(true);
      expect(ok(inf.inflate([best], 1 << 20) as InflateResult).equals(m)).toBe(true);
    });
  }

  it('deflateOnce output is what a fresh inflater expects, so one compressed copy serves every no-context-takeover peer', async () => {
    const m = Buffer.from('{"broadcast":true}'.repeat(20));
    const once = deflateOnce(m, { windowBits: 15 }) as Buffer;
    for (let i = 0; i < 5; i++) {
      const peer = wsClient('permessage-deflate; server_no_context_takeover');
      expect((await wsDecompress(peer, once)).equals(m)).toBe(true);
      expect((await wsDecompress(peer, once)).equals(m)).toBe(true); // again: the peer resets per message
      peer.cleanup();
    }
  });

  it('release(): refused under context takeover unless forced; state is lazy', () => {
    const inf = new PerMessageInflater(agreement());
    expect(inf.allocated).toBe(false);
    ok(inf.inflate([deflateOnce(Buffer.from('x'), { windowBits: 15 }) as Buffer], 10) as InflateResult);
    expect(inf.allocated).toBe(true);
    expect(inf.release()).toBe(false);
    expect(inf.release(true)).toBe(true);
    const nct = new PerMessageInflater(agreement({ clientNoContextTakeover: true }));
    ok(nct.inflate([deflateOnce(Buffer.from('x'), { windowBits: 15 }) as Buffer], 10) as InflateResult);
    expect(nct.allocated).toBe(false); // the process-wide shared inflater
  });
});
