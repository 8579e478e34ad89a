/** Counting the writes Node's stream makes on a server-side socket (for write-batching tests). */
import type { Duplex } from 'node:stream';

/** Counts the write calls Node's stream makes on `socket` from now on. */
export function countWrites(socket: Duplex): { calls: number } {
  const counter = { calls: 0 };
  const s = socket as Duplex & { _write: Duplex['_write']; _writev?: Duplex['_writev'] };
  const write = s._write.bind(s);
  s._write = (chunk, encoding, callback) => {
    counter.calls++;
    write(chunk, encoding, callback);
  };
  const writev = s._writev?.bind(s);
  if (writev !== undefined) {
    s._writev = (chunks, callback) => {
      counter.calls++;
      writev(chunks, callback);
    };
  }
  return counter;
}
