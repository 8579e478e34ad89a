// wsmount for the streaming scenario (issue 15: large messages as streams). Two routes:
//
//   /upload?bytes=N   a Behavior with `onStream`: every message arrives as a stream, read with
//                     `for await (const chunk of message)`; the route counts the bytes (and checks
//                     the first and last byte of every chunk against lib/stream-data.mjs's
//                     pattern, so unmasking is verified) and, once N bytes have been read to the end
//                     of a message, sends one text message back: "<bytes> ok" (or "<bytes> bad …").
//   /download         the client's first text message is JSON { bytes, chunk, source,
//                     fragmentSize? }; the route answers with ONE message of `bytes` bytes through
//                     `this.sendStream(source, { fragmentSize })`, the source being a generator of
//                     fresh `chunk`-byte Buffers made as they are pulled (`source: 'generator'`), or
//                     that generator behind `Readable.from()` (`source: 'readable'`).
//
// Handler defaults otherwise (heartbeat, maxPayload, maxStreamBytes: what users get).

import { Readable } from 'node:stream';
import { Behavior, createWebSocketHandler } from '../../dist/index.js';
import { downloadChunks, uploadChunkOk } from '../lib/stream-data.mjs';
import { serveHandler, version } from './wsmount-serve.mjs';

let messagesRead = 0;
let streamsSent = 0;

class Upload extends Behavior {
  received = 0;
  bad = '';
  async onStream(message) {
    const expected = Number(this.query.get('bytes'));
    for await (const chunk of message) {
      if (this.bad === '' && !uploadChunkOk(chunk, this.received)) this.bad = ` bad at offset ${this.received}`;
      this.received += chunk.length;
    }
    messagesRead++;
    if (this.received >= expected) this.sendText(`${this.received}${this.bad === '' ? ' ok' : this.bad}`);
  }
}

class Download extends Behavior {
  async onText(text) {
    const p = JSON.parse(text);
    const chunks = downloadChunks(p.bytes, p.chunk);
    const source = p.source === 'readable' ? Readable.from(chunks) : chunks;
    const sent = await this.sendStream(source, p.fragmentSize ? { fragmentSize: p.fragmentSize } : {});
    streamsSent++;
    if (sent !== p.bytes) this.close(1011, `sendStream resolved with ${sent}, expected ${p.bytes}`);
  }
}

const handler = createWebSocketHandler({ '/upload': Upload, '/download': Download });
const o = handler.options;
serveHandler(
  handler,
  {
    library: 'wsmount',
    version,
    options: { maxPayload: o.maxPayload, maxStreamBytes: String(o.maxStreamBytes), pingInterval: o.pingInterval, maxBackpressure: o.maxBackpressure },
  },
  () => ({ messagesRead, streamsSent }),
);
