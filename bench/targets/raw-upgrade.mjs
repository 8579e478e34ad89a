// What the raw TCP targets (raw.mjs, stream-raw.mjs) share: a net.Server with just enough HTTP to
// answer the upgrade (101 with the right Sec-WebSocket-Accept, nothing checked) before handing
// the socket to the target, and the count of open connections that serve() reports.

import { createHash } from 'node:crypto';
import net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * @param {(socket: net.Socket, target: string, rest: Buffer) => void} onUpgrade called once the
 *   101 is written, with the request target (path and query) and the bytes after the request head
 * @param {(socket: net.Socket) => void} [onClose] called when a socket closes
 * @returns {{ server: net.Server, clients: () => number }}
 */
export function upgradeServer(onUpgrade, onClose) {
  let open = 0;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    open++;
    let head = null;
    const onHead = (chunk) => {
      head = head === null ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) socket.destroy();
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      const target = text.slice(text.indexOf(' ') + 1, text.indexOf(' ', text.indexOf(' ') + 1));
      const key = /\r\nsec-websocket-key:[ \t]*([^\r\n]*)/i.exec(text)?.[1].trim() ?? '';
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      socket.removeListener('data', onHead);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const rest = head.subarray(end + 4);
      head = null;
      onUpgrade(socket, target, rest);
    };
    socket.on('data', onHead);
    // The client ends with a close frame (or just its FIN): end too.
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    socket.on('close', () => {
      open--;
      onClose?.(socket);
    });
  });
  return { server, clients: () => open };
}
