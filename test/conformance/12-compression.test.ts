/**
 * Autobahn section 12 — permessage-deflate (RFC 7692) echo with the default offer
 * (`permessage-deflate; client_no_context_takeover; client_max_window_bits`): for each of five
 * corpora (12.1 JSON text, 12.2 bitmap, 12.3 German prose sent as binary, 12.4 HTML text, 12.5
 * PDF-like binary; cases/corpora.ts says how they stand in for Autobahn's files), Autobahn's 18
 * message sizes and fragmentations (case12_x_x.py MSG_SIZES): 1000 messages per case on one
 * connection, every echo checked byte for byte, then a clean close 1000. 90 cases.
 *
 * The server is wsmount with `perMessageDeflate: true` (the preset: server_no_context_takeover,
 * messages from 1 KiB compressed); its echoes may come compressed or not (RFC 7692 lets any
 * message go uncompressed), and every compressed echo must inflate with the window the answer
 * allows and use no LZ77 distance beyond it (deflate-audit.ts). The client compresses every
 * message, with context takeover unless the server's answer says client_no_context_takeover
 * (as Autobahn's client does). See compression.ts for the run mechanics and env switches.
 */
import { describe, expect, test } from 'vitest';
import { corpora } from './cases/corpora.js';
import { CASE_TIMEOUT, MSG_SIZES, runCase, sizeLabel, useCompressionServer } from './compression.js';
import { DEFAULT_OFFER } from './deflate-client.js';

const server = useCompressionServer(true);

for (const corpus of corpora()) {
  describe(`${corpus.section} ${corpus.title}, ${corpus.data.length} bytes, ${corpus.binary ? 'binary' : 'text'} messages`, () => {
    MSG_SIZES.forEach((size, i) => {
      test(
        `${corpus.section}.${i + 1} ${sizeLabel(size)}, default offer → every echo intact, clean close`,
        async () => {
          await runCase(server, {
            offers: [DEFAULT_OFFER],
            corpus,
            len: size.len,
            fragment: size.fragment,
            // The preset compresses text from 1 KiB (its threshold); binary corpora hardly shrink.
            expectCompressedEchoes: !corpus.binary && size.len >= 1024,
            // The preset resets the server's context per message and says so in its answer.
            checkAgreement: (c) => expect(c.agreement?.serverNoContextTakeover, c.agreement?.header).toBe(true),
          });
        },
        CASE_TIMEOUT,
      );
    });
  });
}
