/**
 * The client's half of permessage-deflate negotiation (RFC 7692 §5, §7.1): the offer it formats
 * and the strict check of the server's response. Also a cross-check of the two halves: every
 * response wsmount's server negotiates passes the client's check, for every offer shape and
 * server setting, and both sides agree on the parameters.
 */
import { describe, expect, test } from 'vitest';
import { parseExtensionOffers } from '../../src/extensions/extensions-header.js';
import { checkPerMessageDeflateResponse, formatPerMessageDeflateOffer } from '../../src/extensions/permessage-deflate/client-negotiate.js';
import {
  checkPerMessageDeflateOffer,
  type DeflateNegotiationConfig,
  negotiatePerMessageDeflate,
  type PerMessageDeflateOfferParams,
  type WindowBits,
} from '../../src/extensions/permessage-deflate/negotiate.js';

describe('formatPerMessageDeflateOffer', () => {
  test('Chrome\'s, Firefox\'s and a full offer; parameters in the RFC\'s order; the server parses it back', () => {
    const none = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: undefined, clientMaxWindowBits: undefined };
    expect(formatPerMessageDeflateOffer({ ...none, clientMaxWindowBits: true })).toBe('permessage-deflate; client_max_window_bits');
    expect(formatPerMessageDeflateOffer(none)).toBe('permessage-deflate');
    const full: PerMessageDeflateOfferParams = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 12 };
    const header = formatPerMessageDeflateOffer(full);
    expect(header).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12');
    const [offer] = parseExtensionOffers(header).offers;
    expect(checkPerMessageDeflateOffer(offer as NonNullable<typeof offer>)).toEqual({ ok: true, params: full });
  });
});

describe('checkPerMessageDeflateResponse', () => {
  const CHROME = 'permessage-deflate; client_max_window_bits';

  test('the bare acceptance of Chrome\'s offer: defaults, the client compresses with 15 and keeps its window', () => {
    expect(checkPerMessageDeflateResponse('permessage-deflate', CHROME)).toEqual({
      ok: true,
      acceptance: {
        serverNoContextTakeover: false,
        clientNoContextTakeover: false,
        serverMaxWindowBits: 15,
        clientMaxWindowBits: 15,
        offerIndex: 0,
        clientResets: false,
        clientWindowBits: 15,
      },
    });
  });

  test('the client keeps to what it offered when the response does not say (RFC 7692 §7.1.1.2, §7.1.2.2)', () => {
    const r = checkPerMessageDeflateResponse('permessage-deflate', 'permessage-deflate; client_no_context_takeover; client_max_window_bits=10');
    expect(r).toMatchObject({ ok: true, acceptance: { clientNoContextTakeover: false, clientMaxWindowBits: 15, clientResets: true, clientWindowBits: 10 } });
    const smaller = checkPerMessageDeflateResponse('permessage-deflate; client_max_window_bits=9', 'permessage-deflate; client_max_window_bits=10');
    expect(smaller).toMatchObject({ ok: true, acceptance: { clientMaxWindowBits: 9, clientWindowBits: 9 } });
  });

  test('a response line list as Node gives repeated headers', () => {
    expect(checkPerMessageDeflateResponse(['permessage-deflate', 'permessage-deflate'], CHROME)).toMatchObject({ ok: false, message: expect.stringMatching(/2 times/) });
    expect(checkPerMessageDeflateResponse(['permessage-deflate; server_no_context_takeover'], CHROME)).toMatchObject({ ok: true });
  });

  const failures: Array<[string, string, RegExp]> = [
    ['', CHROME, /names no extension/],
    ['permessage-deflate;', CHROME, /not valid header syntax/],
    ['x-foo', CHROME, /"x-foo", which was not offered/],
    ['permessage-deflate, x-foo', 'permessage-deflate, x-foo', /"x-foo", which was not offered/],
    ['permessage-deflate; Server_No_Context_Takeover', CHROME, /does not define/],
    ['permessage-deflate; client_max_window_bits=10; client_max_window_bits=10', CHROME, /client_max_window_bits twice/],
    ['permessage-deflate; server_no_context_takeover="x"', CHROME, /has a value/],
    ['permessage-deflate; server_max_window_bits', CHROME, /server_max_window_bits has no value/],
    ['permessage-deflate; server_max_window_bits=+9', CHROME, /not an integer from 8 to 15/],
    ['permessage-deflate; server_max_window_bits=9.0', CHROME, /not an integer from 8 to 15/],
    ['permessage-deflate; server_max_window_bits=010', CHROME, /leading zeros/],
    ['permessage-deflate', 'permessage-deflate; server_no_context_takeover', /server_no_context_takeover was offered/],
    ['permessage-deflate; server_max_window_bits=12', 'permessage-deflate; server_max_window_bits=11', /larger than the 11 offered/],
    ['permessage-deflate; client_max_window_bits=15', 'permessage-deflate', /which was not offered \(RFC 7692 §7\.1\.2\.2\)/],
    ['permessage-deflate', 'x-foo', /no valid permessage-deflate offer/],
    ['permessage-deflate', 'permessage-deflate; client_max_window_bits=16', /no valid permessage-deflate offer/],
  ];
  for (const [response, offer, message] of failures) {
    test(`${JSON.stringify(response)} answering ${JSON.stringify(offer)} fails`, () => {
      expect(checkPerMessageDeflateResponse(response, offer)).toMatchObject({ ok: false, message: expect.stringMatching(message) });
    });
  }

  test('several offers: the first the response fits is the one used', () => {
    const offers = 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9, permessage-deflate; client_max_window_bits, permessage-deflate';
    expect(checkPerMessageDeflateResponse('permessage-deflate; server_no_context_takeover; server_max_window_bits=9', offers)).toMatchObject({ ok: true, acceptance: { offerIndex: 0 } });
    expect(checkPerMessageDeflateResponse('permessage-deflate; client_max_window_bits=12', offers)).toMatchObject({ ok: true, acceptance: { offerIndex: 1 } });
    expect(checkPerMessageDeflateResponse('permessage-deflate', offers)).toMatchObject({ ok: true, acceptance: { offerIndex: 1 } });
  });
});

describe('wsmount\'s server and client agree (negotiatePerMessageDeflate → checkPerMessageDeflateResponse)', () => {
  const windows: readonly WindowBits[] = [8, 9, 12, 15];
  const offers: PerMessageDeflateOfferParams[] = [];
  for (const serverNoContextTakeover of [false, true]) {
    for (const clientNoContextTakeover of [false, true]) {
      for (const serverMaxWindowBits of [undefined, ...windows]) {
        for (const clientMaxWindowBits of [undefined, true as const, ...windows]) {
          offers.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
        }
      }
    }
  }
  const configs: DeflateNegotiationConfig[] = [];
  for (const serverNoContextTakeover of [false, true]) {
    for (const clientNoContextTakeover of [false, true]) {
      for (const serverMaxWindowBits of windows) {
        for (const clientMaxWindowBits of windows) configs.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
      }
    }
  }

  test(`${offers.length} offers × ${configs.length} server settings`, () => {
    let accepted = 0;
    for (const offer of offers) {
      const header = formatPerMessageDeflateOffer(offer);
      const parsed = parseExtensionOffers(header).offers;
      for (const config of configs) {
        const agreement = negotiatePerMessageDeflate(parsed, config);
        if (agreement === null) continue;
        accepted++;
        const check = checkPerMessageDeflateResponse(agreement.responseHeader, header);
        if (!check.ok) throw new Error(`${header} with ${JSON.stringify(config)}: ${agreement.responseHeader} → ${check.message}`);
        const a = check.acceptance;
        expect(a.serverNoContextTakeover).toBe(agreement.serverNoContextTakeover);
        expect(a.clientResets).toBe(agreement.clientNoContextTakeover || offer.clientNoContextTakeover);
        // The client compresses within what the server inflates with; it inflates with at least what the server deflates with.
        expect(a.clientWindowBits).toBeLessThanOrEqual(agreement.clientMaxWindowBits);
        expect(a.serverMaxWindowBits).toBeGreaterThanOrEqual(agreement.serverMaxWindowBits);
      }
    }
    expect(accepted).toBeGreaterThan(1000);
  });
});
