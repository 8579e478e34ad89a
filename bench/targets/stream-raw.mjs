// The physical limit of the streaming scenario (issue 15): raw TCP with just enough HTTP to answer
// the upgrade (101 with the right Sec-WebSocket-Accept), and just enough WebSocket to move the
// same bytes as the other targets, none of the work:
//
//   /upload     reads the client's first frame header (one masked frame: 14 bytes), counts the
//               payload bytes as they arrive (no unmasking, no check) and, once the whole frame
//               is in, writes "<bytes> ok" as one unmasked text frame.
//   /download   on the client's first frame (masked text, JSON { bytes, chunk }), writes one
//               binary frame header and the same on-the-fly chunks as the other targets
//               (lib/stream-data.mjs), waiting for 'drain' whenever write() returns false.

import { downloadChunks } from '../lib/stream-data.mjs';
import { serve } from './common.mjs';
import { upgradeServer } from './raw-upgrade.mjs';

function textFrame(text) {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

function binaryHeader(len) {
  const h = Buffer.alloc(10);
  h[0] = 0x82;
  h[1] = 127;
  h.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
  h.writeUInt32BE(len >>> 0, 6);
  return h;
}

/** `{ hlen, len }` of the masked client frame that starts `b`, or null while its header is incomplete. */
function frameHeader(b) {
  if (b.length < 2) return null;
  const l = b[1] & 0x7f;
  const hlen = 2 + (l === 126 ? 2 : l === 127 ? 8 : 0) + 4;
  if (b.length < hlen) return null;
  const len = l === 126 ? b.readUInt16BE(2) : l === 127 ? b.readUInt32BE(2) * 2 ** 32 + b.readUInt32BE(6) : l;
  return { hlen, len };
}

function upload(socket, first) {
  let head = Buffer.alloc(0);
  let need = -1;
  let received = 0;
  const onData = (chunk) => {
    if (need < 0) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const h = frameHeader(head);
      if (h === null) return;
      need = h.len;
      received = head.length - h.hlen;
      head = null;
    } else {
      received += chunk.length;
    }
    if (received >= need) {
      socket.removeListener('data', onData);
      socket.write(textFrame(`${received} ok`));
    }
  };
  socket.on('data', onData);
  if (first.length > 0) onData(first);
}

async function send(socket, p) {
  socket.write(binaryHeader(p.bytes));
  for (const chunk of downloadChunks(p.bytes, p.chunk)) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
    if (socket.destroyed) return;
  }
}

function download(socket, first) {
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const h = frameHeader(head);
    if (h === null || head.length < h.hlen + h.len) return;
    socket.removeListener('data', onData);
    const key = head.subarray(h.hlen - 4, h.hlen);
    const text = Buffer.from(head.subarray(h.hlen, h.hlen + h.len).map((x, i) => x ^ key[i & 3])).toString();
    send(socket, JSON.parse(text)).catch(() => socket.destroy());
  };
  socket.on('data', onData);
  if (first.length > 0) onData(first);
}

const { server, clients } = upgradeServer((socket, target, rest) => {
  const path = target.split('?')[0];
  if (path === '/upload') upload(socket, rest);
  else if (path === '/download') download(socket, rest);
  else socket.destroy();
});

serve(server, { library: 'raw TCP', version: process.version }, clients);
