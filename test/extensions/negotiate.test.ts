import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExtensionOffers } from '../../src/extensions/extensions-header.js';
import {
  checkPerMessageDeflateOffer,
  type DeflateNegotiationConfig,
  DEFAULT_DEFLATE_NEGOTIATION,
  explainPerMessageDeflate,
  negotiatePerMessageDeflate,
  parseWindowBits,
  type PerMessageDeflateAgreement,
  resolveDeflateNegotiationConfig,
  type WindowBits,
} from '../../src/extensions/permessage-deflate/negotiate.js';
import { hasPython, PYTHON } from '../helpers/python.js';

// ---- Fixtures: what real clients send (research/wave2.md §1.4, §1.7; checked where noted) ----

/** Chrome / Chromium / Edge / Opera (py #1109, gorilla/websocket #201; seen from Chromium 156). */
const CHROME = 'permessage-deflate; client_max_window_bits';
/** Firefox (py #1109): no parameters. */
const FIREFOX = 'permessage-deflate';
/** Safari ≥ 15, NSURLSession WebSocket (nginx-push-stream-module #295): no parameters. */
const SAFARI = 'permessage-deflate';
/** undici 7 / Node's WebSocket (seen on the wire). */
const UNDICI = 'permessage-deflate; client_max_window_bits';
/** python-websockets' default client offer (checked: 10.4's build_extension of its default factory). */
const PYTHON_WEBSOCKETS = 'permessage-deflate; client_max_window_bits';
/** ws's client default offer (`format({ 'permessage-deflate': new PerMessageDeflate().offer() })`). */
const WS_CLIENT = 'permessage-deflate; client_max_window_bits';
/** Autobahn's default offer (cases 12.*, 13.1). */
const AUTOBAHN = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';
/** Autobahn 13.7: three offers, the server picks one. */
const AUTOBAHN_13_7 =
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=9, ' +
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, ' +
  'permessage-deflate; client_no_context_takeover; client_max_window_bits';

const negotiate = (header: string | string[], config: Partial<DeflateNegotiationConfig> = {}): PerMessageDeflateAgreement | null =>
  negotiatePerMessageDeflate(parseExtensionOffers(header).offers, resolveDeflateNegotiationConfig(config));

const response = (header: string | string[], config: Partial<DeflateNegotiationConfig> = {}): string | null =>
  negotiate(header, config)?.responseHeader ?? null;

const WINDOWS: WindowBits[] = [8, 9, 10, 11, 12, 13, 14, 15];

/** Configurations the fixtures are run against (the defaults, each knob, and all together). */
const CONFIGS: [string, Partial<DeflateNegotiationConfig>][] = [
  ['defaults', {}],
  ['serverNoContextTakeover', { serverNoContextTakeover: true }],
  ['clientNoContextTakeover', { clientNoContextTakeover: true }],
  ['serverMaxWindowBits 10', { serverMaxWindowBits: 10 }],
  ['serverMaxWindowBits 9', { serverMaxWindowBits: 9 }],
  ['clientMaxWindowBits 10', { clientMaxWindowBits: 10 }],
  ['clientMaxWindowBits 9', { clientMaxWindowBits: 9 }],
  ['everything', { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }],
  ['uWS/Bun shared (both resets)', { serverNoContextTakeover: true, clientNoContextTakeover: true }],
  ['python-websockets server (12 both ways)', { serverMaxWindowBits: 12, clientMaxWindowBits: 12 }],
];

describe("real clients' offers (wave2 §1.4)", () => {
  it('Chrome with the defaults: accepted, nothing added, the client keeps 15', () => {
    const a = negotiate(CHROME);
    expect(a).toEqual({
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
      responseHeader: 'permessage-deflate',
      offerIndex: 0,
    });
  });

  it('Firefox and Safari (bare offer) with the defaults: accepted as plain permessage-deflate', () => {
    expect(response(FIREFOX)).toBe('permessage-deflate');
    expect(response(SAFARI)).toBe('permessage-deflate');
  });

  it('undici, python-websockets and ws clients offer what Chrome does', () => {
    for (const h of [UNDICI, PYTHON_WEBSOCKETS, WS_CLIENT]) expect(negotiate(h)).toEqual(negotiate(CHROME));
  });

  it('serverNoContextTakeover: every browser gets server_no_context_takeover (RFC 7692 §7.1.1.1 "MAY include")', () => {
    for (const h of [CHROME, FIREFOX, SAFARI]) {
      const a = negotiate(h, { serverNoContextTakeover: true });
      expect(a?.responseHeader).toBe('permessage-deflate; server_no_context_takeover');
      expect(a?.serverNoContextTakeover).toBe(true);
    }
  });

  it('clientMaxWindowBits 10: Chrome is told =10; Firefox and Safari cannot be, so they are declined (not a 400: ws #1446)', () => {
    expect(negotiate(CHROME, { clientMaxWindowBits: 10 })).toMatchObject({
      clientMaxWindowBits: 10,
      responseHeader: 'permessage-deflate; client_max_window_bits=10',
    });
    expect(negotiate(FIREFOX, { clientMaxWindowBits: 10 })).toBeNull();
    expect(negotiate(SAFARI, { clientMaxWindowBits: 10 })).toBeNull();
  });

  it('serverMaxWindowBits below 15 is never sent unasked to a browser (bugzilla 1137008, faye PR #1)', () => {
    for (const h of [CHROME, FIREFOX, SAFARI]) {
      const a = negotiate(h, { serverMaxWindowBits: 9 });
      expect(a?.responseHeader).toBe('permessage-deflate');
      expect(a?.serverMaxWindowBits).toBe(9);
    }
  });

  it('Autobahn 12.*/13.1 default offer: client_no_context_takeover is echoed, which binds the client', () => {
    expect(negotiate(AUTOBAHN)).toMatchObject({
      clientNoContextTakeover: true,
      responseHeader: 'permessage-deflate; client_no_context_takeover',
    });
  });

  it('Autobahn 13.7: three offers, the first acceptable (the first) wins', () => {
    expect(negotiate(AUTOBAHN_13_7)).toMatchObject({
      offerIndex: 0,
      serverNoContextTakeover: true,
      serverMaxWindowBits: 9,
      responseHeader: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9',
    });
  });
});

describe('RFC 7692 §7.1.1 context takeover', () => {
  it('RFC 7692 §7.1.1.1: server_no_context_takeover offered ⇒ the response MUST include it, whatever the config', () => {
    for (const [, config] of CONFIGS) {
      const a = negotiate('permessage-deflate; server_no_context_takeover; client_max_window_bits', config);
      expect(a?.serverNoContextTakeover).toBe(true);
      expect(a?.responseHeader).toContain('; server_no_context_takeover');
    }
  });

  it('RFC 7692 §7.1.1.1: the server MAY add server_no_context_takeover unasked (config), and only then', () => {
    expect(response(FIREFOX, { serverNoContextTakeover: true })).toBe('permessage-deflate; server_no_context_takeover');
    expect(response(FIREFOX, { serverNoContextTakeover: false })).toBe('permessage-deflate');
  });

  it('RFC 7692 §7.1.1.2: client_no_context_takeover may be added unasked (config) and is echoed when offered', () => {
    expect(negotiate(FIREFOX, { clientNoContextTakeover: true })).toMatchObject({
      clientNoContextTakeover: true,
      responseHeader: 'permessage-deflate; client_no_context_takeover',
    });
    expect(negotiate('permessage-deflate; client_no_context_takeover')).toMatchObject({
      clientNoContextTakeover: true,
      responseHeader: 'permessage-deflate; client_no_context_takeover',
    });
  });

  it('RFC 7692 §7.1.1.2: by default client_no_context_takeover is never forced (Safari 15.0–15.3, uWS #1347)', () => {
    for (const h of [CHROME, FIREFOX, SAFARI]) expect(negotiate(h)?.clientNoContextTakeover).toBe(false);
  });
});

describe('RFC 7692 §7.1.2.1 server_max_window_bits', () => {
  it('RFC 7692 §7.1.2.1: offered ⇒ echoed with a value ≤ the offer and ≤ the server limit', () => {
    for (const offered of WINDOWS) {
      for (const limit of WINDOWS) {
        const a = negotiate(`permessage-deflate; server_max_window_bits=${offered}`, { serverMaxWindowBits: limit });
        const want = Math.min(offered, limit);
        expect(a?.serverMaxWindowBits).toBe(want);
        expect(a?.responseHeader).toBe(`permessage-deflate; server_max_window_bits=${want}`);
      }
    }
  });

  it('RFC 7692 §7.1.2.1: 8 offered ⇒ 8 answered, never raised to 9 (the uWS trap); zlib then deflates with 9', () => {
    expect(response('permessage-deflate; server_max_window_bits=8')).toBe('permessage-deflate; server_max_window_bits=8');
  });

  it('never answers 8 unless 8 was offered or configured (Autobahn\'s client rejects 8)', () => {
    for (const offered of WINDOWS.filter((w) => w > 8)) {
      for (const limit of WINDOWS.filter((w) => w > 8)) {
        expect(response(`permessage-deflate; server_max_window_bits=${offered}`, { serverMaxWindowBits: limit })).not.toContain('=8');
      }
    }
  });

  it('RFC 7692 §7.1.2.1: not offered ⇒ not in the response; the server simply uses its smaller window', () => {
    for (const limit of WINDOWS) {
      const a = negotiate(CHROME, { serverMaxWindowBits: limit });
      expect(a?.responseHeader).not.toContain('server_max_window_bits');
      expect(a?.serverMaxWindowBits).toBe(limit);
    }
  });

  it('RFC 7692 §7.1.2.1: server_max_window_bits without a value, or out of 8..15, declines the offer', () => {
    for (const bad of ['', '=7', '=16', '=0', '=08', '=+9', '=9.0', '=1e1', '=0x9', '=nine', '=-9', '=015', '=150']) {
      expect(negotiate(`permessage-deflate; server_max_window_bits${bad}`), bad).toBeNull();
    }
  });

  it('RFC 7692 §7.1: a quoted value is read after unescaping ("10" is 10)', () => {
    expect(response('permessage-deflate; server_max_window_bits="10"')).toBe('permessage-deflate; server_max_window_bits=10');
    expect(response('permessage-deflate; client_max_window_bits="1\\2"', {})).toBe('permessage-deflate; client_max_window_bits=12');
  });
});

describe('RFC 7692 §7.1.2.2 client_max_window_bits', () => {
  it('RFC 7692 §7.1.2.2: not offered ⇒ the response MUST NOT include it (coder/websocket #443), whatever the config', () => {
    for (const [, config] of CONFIGS) {
      const r = response(FIREFOX, config);
      if (r !== null) expect(r).not.toContain('client_max_window_bits');
    }
  });

  it('RFC 7692 §7.1.2.2: not offered and the server limits the client window ⇒ declined (null), next offer tried', () => {
    expect(negotiate(FIREFOX, { clientMaxWindowBits: 14 })).toBeNull();
    expect(negotiate(`${FIREFOX}, ${CHROME}`, { clientMaxWindowBits: 12 })).toMatchObject({
      offerIndex: 1,
      clientMaxWindowBits: 12,
      responseHeader: 'permessage-deflate; client_max_window_bits=12',
    });
  });

  it('RFC 7692 §7.1.2.2: offered without a value ⇒ the client supports it; the server sends its limit, or nothing at 15', () => {
    expect(negotiate(CHROME)).toMatchObject({ clientMaxWindowBits: 15, responseHeader: 'permessage-deflate' });
    for (const limit of WINDOWS.filter((w) => w < 15)) {
      expect(negotiate(CHROME, { clientMaxWindowBits: limit })).toMatchObject({
        clientMaxWindowBits: limit,
        responseHeader: `permessage-deflate; client_max_window_bits=${limit}`,
      });
    }
  });

  it('RFC 7692 §7.1.2.2: offered with a value ⇒ echoed with a value ≤ it (and ≤ the server limit)', () => {
    for (const offered of WINDOWS) {
      for (const limit of WINDOWS) {
        const want = Math.min(offered, limit);
        expect(negotiate(`permessage-deflate; client_max_window_bits=${offered}`, { clientMaxWindowBits: limit })).toMatchObject({
          clientMaxWindowBits: want,
          responseHeader: `permessage-deflate; client_max_window_bits=${want}`,
        });
      }
    }
  });

  it('RFC 7692 §7.1.2.2: a response value is always given (a bare one fails ws and libsoup clients)', () => {
    for (const [, config] of CONFIGS) {
      const r = response(CHROME, config);
      expect(r).not.toMatch(/client_max_window_bits(?!=)/);
    }
  });

  it('RFC 7692 §7.1.2.2: an invalid value declines the offer', () => {
    for (const bad of ['=7', '=16', '=08', '= 9x', '=a', '=""']) {
      expect(negotiate(`permessage-deflate; client_max_window_bits${bad}`), bad).toBeNull();
    }
  });
});

describe('RFC 7692 §5: declining an offer, trying the next', () => {
  it('RFC 7692 §5: an unknown parameter declines that offer', () => {
    expect(negotiate('permessage-deflate; foo')).toBeNull();
    expect(negotiate('permessage-deflate; foo=1, permessage-deflate')?.offerIndex).toBe(1);
    expect(checkPerMessageDeflateOffer({ name: 'permessage-deflate', params: [{ name: 'mem_level', value: '5' }] })).toEqual({
      ok: false,
      reason: 'unknown-param',
      param: 'mem_level',
    });
  });

  it('RFC 7692 §5: parameter names are exact (an upper-case one is unknown)', () => {
    expect(negotiate('permessage-deflate; Server_No_Context_Takeover')).toBeNull();
  });

  it('RFC 7692 §5: a duplicate parameter declines that offer (even with equal values)', () => {
    for (const h of [
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
      'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
      'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
      'permessage-deflate; client_max_window_bits=9; client_max_window_bits=9',
    ]) {
      expect(negotiate(h), h).toBeNull();
      expect(negotiate(`${h}, ${FIREFOX}`)?.offerIndex, h).toBe(1);
      expect(checkPerMessageDeflateOffer(parseExtensionOffers(h).offers[0]!)).toMatchObject({ ok: false, reason: 'duplicate-param' });
    }
  });

  it('RFC 7692 §7.1.1: a value on a no_context_takeover parameter declines the offer', () => {
    for (const h of [
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover=true',
      'permessage-deflate; client_no_context_takeover="x"',
    ]) {
      expect(negotiate(h), h).toBeNull();
    }
  });

  it('RFC 7692 §5: several offers in the client\'s order: the first acceptable wins', () => {
    const h = [
      'x-webkit-deflate-frame',
      'permessage-deflate; server_max_window_bits=10; bogus',
      'permessage-deflate; client_max_window_bits=9',
      'permessage-deflate',
    ].join(', ');
    expect(negotiate(h)).toMatchObject({ offerIndex: 2, clientMaxWindowBits: 9 });
    expect(explainPerMessageDeflate(parseExtensionOffers(h).offers, DEFAULT_DEFLATE_NEGOTIATION)).toEqual([
      'not-permessage-deflate',
      'unknown-param',
      'accepted',
      'not-reached',
    ]);
  });

  it('RFC 6455 §9.1: offers over several header lines are one ordered list', () => {
    expect(negotiate(['permessage-deflate; x', 'permessage-deflate; server_no_context_takeover'])).toMatchObject({
      offerIndex: 1,
      serverNoContextTakeover: true,
    });
  });

  it('other extensions, and names that differ in case, are never answered', () => {
    expect(negotiate('x-webkit-deflate-frame')).toBeNull();
    expect(negotiate('deflate-frame, permessage-bzip2')).toBeNull();
    expect(negotiate('Permessage-Deflate')).toBeNull();
  });

  it('no header, an empty one, or only malformed elements ⇒ null (no header sent, uncompressed), not a throw', () => {
    for (const h of ['', ' , ', 'permessage-deflate;', 'permessage-deflate; a="', ';;;', '"permessage-deflate"']) {
      expect(negotiate(h), h).toBeNull();
    }
    expect(negotiatePerMessageDeflate([])).toBeNull();
  });

  it('a malformed element does not hide a valid offer after it', () => {
    expect(negotiate('permessage-deflate; server_max_window_bits=1 0, permessage-deflate; client_max_window_bits')).toMatchObject({
      offerIndex: 0, // index into the parsed (well-formed) offers
      responseHeader: 'permessage-deflate',
    });
  });
});

// ---- A client-side check of every response, by RFC 7692 §5.1 and §7.1 (what a client enforces) ----

interface OfferShape {
  snct: boolean;
  cnct: boolean;
  smwb: WindowBits | undefined;
  cmwb: WindowBits | true | undefined;
}

function offerHeader(o: OfferShape): string {
  let h = 'permessage-deflate';
  if (o.snct) h += '; server_no_context_takeover';
  if (o.cnct) h += '; client_no_context_takeover';
  if (o.smwb !== undefined) h += `; server_max_window_bits=${o.smwb}`;
  if (o.cmwb === true) h += '; client_max_window_bits';
  else if (o.cmwb !== undefined) h += `; client_max_window_bits=${o.cmwb}`;
  return h;
}

/** The RFC 7692 §5.1 / §7.1 checks a client makes on a response; returns the violations. */
function clientViolations(offer: OfferShape, header: string): string[] {
  const bad: string[] = [];
  const parsed = parseExtensionOffers(header);
  if (parsed.malformed !== 0 || parsed.offers.length !== 1) return ['not one well-formed element'];
  const el = parsed.offers[0]!;
  if (el.name !== 'permessage-deflate') bad.push('name');
  const seen = new Set<string>();
  for (const p of el.params) {
    if (seen.has(p.name)) bad.push(`duplicate ${p.name}`);
    seen.add(p.name);
    if (p.name === 'server_no_context_takeover' || p.name === 'client_no_context_takeover') {
      if (p.value !== true) bad.push(`${p.name} has a value`);
    } else if (p.name === 'server_max_window_bits') {
      const v = p.value === true ? undefined : parseWindowBits(p.value);
      if (v === undefined) bad.push('server_max_window_bits invalid');
      else if (offer.smwb !== undefined && v > offer.smwb) bad.push('server_max_window_bits above the offer');
      if (offer.smwb === undefined) bad.push('server_max_window_bits unasked');
    } else if (p.name === 'client_max_window_bits') {
      const v = p.value === true ? undefined : parseWindowBits(p.value);
      if (v === undefined) bad.push('client_max_window_bits without a valid value');
      if (offer.cmwb === undefined) bad.push('client_max_window_bits not offered'); // RFC 7692 §7.1.2.2
      else if (offer.cmwb !== true && v !== undefined && v > offer.cmwb) bad.push('client_max_window_bits above the offer');
    } else {
      bad.push(`unknown ${p.name}`);
    }
  }
  if (offer.snct && !seen.has('server_no_context_takeover')) bad.push('server_no_context_takeover dropped'); // §7.1.1.1
  if (offer.smwb !== undefined && !seen.has('server_max_window_bits')) bad.push('server_max_window_bits dropped'); // §7.1.2.1
  return bad;
}

function allOffers(): OfferShape[] {
  const out: OfferShape[] = [];
  for (const snct of [false, true])
    for (const cnct of [false, true])
      for (const smwb of [undefined, ...WINDOWS])
        for (const cmwb of [undefined, true as const, ...WINDOWS]) out.push({ snct, cnct, smwb, cmwb });
  return out;
}

function allConfigs(): DeflateNegotiationConfig[] {
  const out: DeflateNegotiationConfig[] = [];
  for (const serverNoContextTakeover of [false, true])
    for (const clientNoContextTakeover of [false, true])
      for (const serverMaxWindowBits of WINDOWS)
        for (const clientMaxWindowBits of WINDOWS)
          out.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
  return out;
}

describe('every offer × every configuration (360 × 256)', () => {
  it('RFC 7692 §5.1/§7.1: every response passes the client-side checks, and the server\'s limits are never exceeded', () => {
    // Plain checks collected into one list (92k expect() calls would take seconds).
    const failures: string[] = [];
    let accepted = 0;
    let declined = 0;
    for (const offer of allOffers()) {
      const header = offerHeader(offer);
      const offers = parseExtensionOffers(header).offers;
      for (const config of allConfigs()) {
        const a = negotiatePerMessageDeflate(offers, config);
        const fail = (what: string): void => {
          failures.push(`${header} / ${JSON.stringify(config)} -> ${a?.responseHeader ?? 'null'}: ${what}`);
        };
        if (a === null) {
          declined++;
          // The only reason to decline a valid offer: a client window limit the offer cannot hear.
          if (!(offer.cmwb === undefined && config.clientMaxWindowBits < 15)) fail('declined');
          continue;
        }
        accepted++;
        for (const v of clientViolations(offer, a.responseHeader)) fail(v);
        // The server's limits.
        if (a.serverMaxWindowBits > config.serverMaxWindowBits) fail('server window above the limit');
        if (a.clientMaxWindowBits > config.clientMaxWindowBits) fail('client window above the limit');
        // The client's requests.
        if (offer.smwb !== undefined && a.serverMaxWindowBits > offer.smwb) fail('server window above the offer');
        if (typeof offer.cmwb === 'number' && a.clientMaxWindowBits > offer.cmwb) fail('client window above the offer');
        if (a.serverNoContextTakeover !== (offer.snct || config.serverNoContextTakeover)) fail('serverNoContextTakeover');
        if (a.clientNoContextTakeover !== (offer.cnct || config.clientNoContextTakeover)) fail('clientNoContextTakeover');
        // The agreement is what the header says (a client reading only the header agrees with us).
        if (a.responseHeader.includes('server_no_context_takeover') !== a.serverNoContextTakeover) fail('snct vs header');
        if (a.responseHeader.includes('client_no_context_takeover') !== a.clientNoContextTakeover) fail('cnct vs header');
        if (a.clientMaxWindowBits < 15 && !a.responseHeader.includes(`client_max_window_bits=${a.clientMaxWindowBits}`)) fail('cmwb vs header');
        // 8 is only answered when 8 was offered or configured.
        if (
          a.responseHeader.includes('=8') &&
          !(offer.smwb === 8 || offer.cmwb === 8 || config.serverMaxWindowBits === 8 || config.clientMaxWindowBits === 8)
        ) {
          fail('8 answered unasked');
        }
        if (a.offerIndex !== 0) fail('offerIndex');
      }
    }
    expect(failures.slice(0, 10)).toEqual([]);
    expect(accepted + declined).toBe(360 * 256);
    expect(accepted).toBeGreaterThan(declined);
  });
});

describe('hostile input never throws', () => {
  it('fuzz (seeded): random permessage-deflate offers never throw, and any response passes the client checks', () => {
    let a = 12345;
    const rand = (): number => {
      a = (a * 1103515245 + 12345) & 0x7fffffff;
      return a / 0x80000000;
    };
    const pieces = ['permessage-deflate', '; ', ';', ', ', 'server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits', '=', '"', '8', '9', '15', '16', '0', ' ', 'x', '\\'];
    const configs = allConfigs();
    const t0 = performance.now();
    for (let run = 0; run < 5000; run++) {
      let h = '';
      const n = Math.floor(rand() * 16);
      for (let k = 0; k < n; k++) h += pieces[Math.floor(rand() * pieces.length)];
      const config = configs[Math.floor(rand() * configs.length)]!;
      const offers = parseExtensionOffers(h).offers;
      const agreement = negotiatePerMessageDeflate(offers, config);
      if (agreement !== null) {
        const chosen = offers[agreement.offerIndex]!;
        const check = checkPerMessageDeflateOffer(chosen);
        expect(check.ok).toBe(true);
        if (check.ok) {
          const p = check.params;
          const shape: OfferShape = { snct: p.serverNoContextTakeover, cnct: p.clientNoContextTakeover, smwb: p.serverMaxWindowBits, cmwb: p.clientMaxWindowBits };
          expect(clientViolations(shape, agreement.responseHeader), h).toEqual([]);
        }
      }
    }
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe('parseWindowBits (RFC 7692 §7.1.2: 8..15, no leading zeros)', () => {
  it('reads exactly "8".."15"', () => {
    for (const w of WINDOWS) expect(parseWindowBits(String(w))).toBe(w);
    for (const bad of ['', '0', '7', '16', '08', '010', '1', '19', '１５', ' 9', '9 ', '+9', '9.', '1_0', 'a']) {
      expect(parseWindowBits(bad), bad).toBeUndefined();
    }
  });
});

describe('resolveDeflateNegotiationConfig', () => {
  it('fills the defaults: no resets asked, windows 15', () => {
    expect(resolveDeflateNegotiationConfig()).toEqual(DEFAULT_DEFLATE_NEGOTIATION);
    expect(resolveDeflateNegotiationConfig({ serverMaxWindowBits: 9 })).toEqual({ ...DEFAULT_DEFLATE_NEGOTIATION, serverMaxWindowBits: 9 });
  });

  it('names a bad field: window bits are integers 8..15, flags are booleans', () => {
    for (const bad of [7, 16, 9.5, Number.NaN, '9', null]) {
      expect(() => resolveDeflateNegotiationConfig({ serverMaxWindowBits: bad as never })).toThrow(/serverMaxWindowBits/);
      expect(() => resolveDeflateNegotiationConfig({ clientMaxWindowBits: bad as never })).toThrow(/clientMaxWindowBits/);
    }
    expect(() => resolveDeflateNegotiationConfig({ serverNoContextTakeover: 1 as never })).toThrow(TypeError);
    expect(() => resolveDeflateNegotiationConfig(null as never)).toThrow(TypeError);
  });

  it('unknown keys are left to the caller, or refused when strict', () => {
    expect(() => resolveDeflateNegotiationConfig({ threshold: 1024 } as never)).not.toThrow();
    expect(() => resolveDeflateNegotiationConfig({ threshold: 1024 } as never, true)).toThrow(/threshold/);
  });
});

// ---- End to end: real clients' own response parsers accept what we send ----

interface WsPerMessageDeflate {
  offer(): Record<string, unknown>;
  accept(configurations: unknown[]): Record<string, unknown>;
}
const require = createRequire(import.meta.url);
// ws's internals are not in its "exports": load them by path, next to its entry point.
const wsLib = (file: string): unknown => require(join(dirname(require.resolve('ws')), 'lib', file));
const wsExtension = wsLib('extension.js') as {
  parse(header: string): Record<string, unknown[]>;
  format(extensions: Record<string, unknown>): string;
};
const WsPerMessageDeflate = wsLib('permessage-deflate.js') as new (
  options: Record<string, unknown>,
  isServer: boolean,
) => WsPerMessageDeflate;

/** Each fixture with ws client options that produce exactly that offer (checked in the test). */
const WS_CLIENTS: [string, string, Record<string, unknown>][] = [
  ['Chrome', CHROME, {}],
  ['Firefox', FIREFOX, { clientMaxWindowBits: false }],
  ['Safari', SAFARI, { clientMaxWindowBits: false }],
  ['undici', UNDICI, {}],
  ['python-websockets', PYTHON_WEBSOCKETS, {}],
  ['ws client', WS_CLIENT, {}],
  ['Autobahn default', AUTOBAHN, { clientNoContextTakeover: true }],
  ['server_no_context_takeover', 'permessage-deflate; server_no_context_takeover; client_max_window_bits', { serverNoContextTakeover: true }],
  ['server_max_window_bits=8', 'permessage-deflate; server_max_window_bits=8; client_max_window_bits', { serverMaxWindowBits: 8 }],
  ['server_max_window_bits=10', 'permessage-deflate; server_max_window_bits=10', { serverMaxWindowBits: 10, clientMaxWindowBits: false }],
  ['client_max_window_bits=11', 'permessage-deflate; client_max_window_bits=11', { clientMaxWindowBits: 11 }],
  [
    'everything',
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9',
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 9 },
  ],
];

describe("end to end: ws's client accepts every response (ws/lib/extension.js parse + PerMessageDeflate.accept)", () => {
  for (const [who, offer, options] of WS_CLIENTS) {
    it(`${who}: ${offer}`, () => {
      const client = new WsPerMessageDeflate(options, false);
      // The ws client, so configured, sends exactly the fixture (parameter order aside).
      expect(parseExtensionOffers(wsExtension.format({ 'permessage-deflate': client.offer() })).offers[0]?.params).toEqual(
        expect.arrayContaining(parseExtensionOffers(offer).offers[0]!.params as never[]),
      );
      expect(parseExtensionOffers(wsExtension.format({ 'permessage-deflate': client.offer() })).offers[0]?.params).toHaveLength(
        parseExtensionOffers(offer).offers[0]!.params.length,
      );
      for (const [name, config] of CONFIGS) {
        const a = negotiate(offer, config);
        if (a === null) continue;
        // ws's websocket.js: the response must hold exactly one extension, permessage-deflate.
        const parsed = wsExtension.parse(a.responseHeader);
        expect(Object.keys(parsed), name).toEqual(['permessage-deflate']);
        const c = new WsPerMessageDeflate(options, false);
        const params = c.accept(parsed['permessage-deflate']!);
        // What ws's client will do matches our agreement.
        expect(Boolean(params.server_no_context_takeover), name).toBe(a.serverNoContextTakeover);
        expect(Boolean(params.client_no_context_takeover), name).toBe(a.clientNoContextTakeover);
        expect(params.server_max_window_bits ?? 15, name).toBeGreaterThanOrEqual(a.serverMaxWindowBits);
        expect((params.client_max_window_bits as number | undefined) ?? 15, name).toBeLessThanOrEqual(a.clientMaxWindowBits);
      }
    });
  }
});

const PY_CHECK = `
import json, sys
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.headers import parse_extension
out = []
for case in json.loads(sys.stdin.read()):
    try:
        ext = parse_extension(case["response"])
        assert len(ext) == 1 and ext[0][0] == "permessage-deflate", ext
        f = ClientPerMessageDeflateFactory(**case["kwargs"])
        e = f.process_response_params(ext[0][1], [])
        out.append({"ok": True, "snct": e.remote_no_context_takeover, "cnct": e.local_no_context_takeover,
                    "smwb": e.remote_max_window_bits, "cmwb": e.local_max_window_bits})
    except Exception as err:
        out.append({"ok": False, "error": repr(err)})
print(json.dumps(out))
`;

/** Fixture offers as python-websockets client factory arguments (client_max_window_bits: None = not offered). */
const PY_CLIENTS: [string, string, Record<string, unknown>][] = [
  ['Chrome', CHROME, {}],
  ['Firefox / Safari', FIREFOX, { client_max_window_bits: null }],
  ['python-websockets default', PYTHON_WEBSOCKETS, {}],
  ['Autobahn default', AUTOBAHN, { client_no_context_takeover: true }],
  ['server_no_context_takeover', 'permessage-deflate; server_no_context_takeover; client_max_window_bits', { server_no_context_takeover: true }],
  ['server_max_window_bits=8', 'permessage-deflate; server_max_window_bits=8; client_max_window_bits', { server_max_window_bits: 8 }],
  ['client_max_window_bits=11', 'permessage-deflate; client_max_window_bits=11', { client_max_window_bits: 11 }],
  [
    'everything',
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9',
    { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 12, client_max_window_bits: 9 },
  ],
];

describe.skipIf(!hasPython)("end to end: python-websockets' client accepts every response (process_response_params)", () => {
  it('every fixture × every configuration', () => {
    const cases: { who: string; config: string; agreement: PerMessageDeflateAgreement; response: string; kwargs: Record<string, unknown> }[] = [];
    for (const [who, offer, kwargs] of PY_CLIENTS) {
      for (const [config, c] of CONFIGS) {
        const agreement = negotiate(offer, c);
        if (agreement !== null) cases.push({ who, config, agreement, response: agreement.responseHeader, kwargs });
      }
    }
    expect(cases.length).toBeGreaterThan(50);
    const run = spawnSync(PYTHON, ['-c', PY_CHECK], {
      input: JSON.stringify(cases.map(({ response, kwargs }) => ({ response, kwargs }))),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const results = JSON.parse(run.stdout) as { ok: boolean; error?: string; snct: boolean; cnct: boolean; smwb: number; cmwb: number }[];
    results.forEach((r, i) => {
      const { who, config, agreement } = cases[i]!;
      const label = `${who} / ${config}: ${agreement.responseHeader}`;
      expect(r.ok, `${label} ${r.error ?? ''}`).toBe(true);
      expect(r.snct, label).toBe(agreement.serverNoContextTakeover);
      expect(r.cnct, label).toBe(agreement.clientNoContextTakeover);
      expect(r.smwb, label).toBeGreaterThanOrEqual(agreement.serverMaxWindowBits);
      expect(r.cmwb, label).toBe(agreement.clientMaxWindowBits);
    });
  });
});
