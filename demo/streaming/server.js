// wsmount demo: file upload and download as streamed WebSocket messages (issue 15).
// `npm run demo:streaming`, then open http://127.0.0.1:9004/ (PORT and HOST to change).
//
// A browser cannot fragment what it sends: `ws.send(blob)` sends the whole file as ONE message.
// The server still never holds that message whole: the route overrides `onStream`, so the
// message arrives as a stream of chunks (each fragment's payload, as the TCP segments bring it)
// and is piped to a file as it comes, with backpressure down to TCP when the disk is slower.
// The way back is the same: `this.sendStream(file)` sends a file as one fragmented message,
// a chunk at a time, never reading ahead of the socket.
//
// Two routes:
//   /files             the page's control socket. On open the server sends
//                        {type:'hello', token, maxBytes}
//                      Then, per upload, the page sends {type:'file', name, size} (text), the
//                      server answers {type:'ready', name} (the cleaned name) or {type:'error'},
//                      and the page sends the file as one binary message. While it arrives the
//                      server sends {type:'progress', direction:'up', name, received, total};
//                      once it is on disk, {type:'stored', name, size, chunks, sha256}.
//                      Downloads made with this socket's token report on it too:
//                        {type:'progress', direction:'down', name, sent, total}, {type:'sent', …}
//   /download/:name    ?token=… (optional). Sends the stored file as one binary message, then
//                      closes with 1000. Progress goes to the /files socket with that token,
//                      because nothing can go between the fragments of a message on its own
//                      socket (RFC 6455 §5.4): a sendText made meanwhile waits until the end.
//
// Files go to UPLOAD_DIR (default: a fresh directory under the system's temp dir, removed when
// the demo stops). MAX_UPLOAD_BYTES caps one upload (default 1 GiB): over it, close 1009.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Behavior, HandshakeRejection, createWebSocketHandler } from 'wsmount';

const MiB = 2 ** 20;
const publicDir = new URL('./public/', import.meta.url);
const assets = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/**
 * A file name safe to join to the upload directory: letters, digits, `.`, `-` and `_` only
 * (anything else becomes `_`), no leading dots (so never `..` nor a hidden file), at most 100
 * characters. Returns '' when nothing usable is left.
 */
export function cleanFileName(raw) {
  const name = String(raw ?? '')
    .normalize('NFKC')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 100);
  return /[A-Za-z0-9]/.test(name) ? name : '';
}

/** The file's path inside `dir`, or undefined when the name is not one cleanFileName() would give. */
function pathIn(dir, name) {
  if (name === '' || cleanFileName(name) !== name) return undefined;
  const path = resolve(dir, name);
  return path.startsWith(dir + sep) ? path : undefined; // belt and braces: never outside dir
}

/** Reports `done` of `total` bytes at most ~64 times per transfer (and always at the end). */
function progressReporter(total, report) {
  const step = total > 0 ? Math.max(64 * 1024, Math.ceil(total / 64)) : MiB;
  let next = step;
  return (done, final = false) => {
    if (done >= next || final) {
      report(done);
      next = done + step;
    }
  };
}

/** Yields the source's chunks, counting them: a progress tap that pulls only when pulled. */
async function* counted(source, onBytes) {
  let bytes = 0;
  for await (const chunk of source) {
    bytes += chunk.length;
    yield chunk;
    onBytes(bytes); // after the consumer took the chunk: bytes handed to the socket
  }
}

/**
 * Starts the demo. Resolves once it listens.
 * @param {{ port?: number, host?: string, uploadDir?: string, maxBytes?: number, log?: (line: string) => void }} [options]
 */
export async function startStreamingDemo({ port = 0, host = '127.0.0.1', uploadDir, maxBytes = 1024 * MiB, log = () => {} } = {}) {
  const ownDir = uploadDir === undefined;
  const dir = resolve(ownDir ? await mkdtemp(join(tmpdir(), 'wsmount-uploads-')) : uploadDir);
  await mkdir(dir, { recursive: true });
  /** token → the /files socket that asked, for download progress. */
  const controls = new Map();
  let partSeq = 0;

  class Files extends Behavior {
    // One streamed message may be this large (after inflating); over it the connection closes
    // with 1009 as soon as the limit is crossed, whatever size the page announced.
    static maxStreamBytes = maxBytes;
    data = { token: randomBytes(12).toString('base64url'), pending: undefined };

    onOpen() {
      controls.set(this.data.token, this);
      this.sendText(JSON.stringify({ type: 'hello', token: this.data.token, maxBytes }));
    }

    onClose() {
      controls.delete(this.data.token);
    }

    /** Every data message of this route comes here, text and binary, as a stream. */
    async onStream(message) {
      if (message.isText) {
        // A small command: collect it whole (bounded by maxPayload, 1 MiB by default).
        this.command(await message.text());
        return;
      }
      const pending = this.data.pending;
      this.data.pending = undefined;
      if (pending === undefined) {
        this.close(1008, 'announce the file first: {"type":"file","name":…,"size":…}');
        return;
      }
      await this.store(message, pending);
    }

    command(json) {
      let command;
      try {
        command = JSON.parse(json);
      } catch {
        command = undefined;
      }
      if (command?.type !== 'file') {
        this.sendText(JSON.stringify({ type: 'error', message: 'unknown command' }));
        return;
      }
      const name = cleanFileName(command.name) || 'upload.bin';
      const size = Number.isSafeInteger(command.size) && command.size >= 0 ? command.size : undefined;
      if (size !== undefined && size > maxBytes) {
        this.sendText(JSON.stringify({ type: 'error', name, message: `${size} bytes is over this server's limit of ${maxBytes}` }));
        return;
      }
      this.data.pending = { name, size };
      this.sendText(JSON.stringify({ type: 'ready', name }));
    }

    /** Pipes one binary message to `<dir>/<name>`, via a part file, hashing it on the way. */
    async store(message, { name, size }) {
      const path = pathIn(dir, name);
      const part = join(dir, `.${name}.${process.pid}.${++partSeq}.part`); // hidden: never downloadable
      const hash = createHash('sha256');
      const progress = progressReporter(size ?? 0, (received) => {
        // Sending while the message is still arriving is fine: the two directions are independent.
        this.sendText(JSON.stringify({ type: 'progress', direction: 'up', name, received, total: size ?? null }));
      });
      const started = performance.now();
      let stored = 0;
      let chunks = 0;
      try {
        await pipeline(
          message.readable(),
          async function* (source) {
            for await (const chunk of source) {
              hash.update(chunk);
              yield chunk;
              chunks++;
              stored += chunk.length;
              progress(stored);
            }
          },
          createWriteStream(part),
        );
        await rename(part, path);
      } catch (error) {
        await rm(part, { force: true });
        // The connection failing mid-message (peer gone, over maxStreamBytes: 1009) is already
        // handled by wsmount; anything else (a full disk…) is ours to report: closes with 1011.
        if (error?.code === 'WS_STREAM_INTERRUPTED' || this.readyState !== Behavior.OPEN) {
          log(`upload of ${name} interrupted after ${message.bytesReceived} bytes: ${error?.message ?? error}`);
          return;
        }
        throw error;
      }
      const bytes = stored;
      progress(bytes, true);
      const sha256 = hash.digest('hex');
      const seconds = (performance.now() - started) / 1000;
      log(`stored ${name}: ${bytes} bytes in ${chunks} chunks, ${seconds.toFixed(2)} s, sha256 ${sha256}`);
      this.sendText(JSON.stringify({ type: 'stored', name, size: bytes, chunks, sha256 }));
    }
  }

  class Download extends Behavior {
    data = { path: '', size: 0 };

    // Runs before the 101: a name that is not a clean file name, or no such file, is a 404.
    async verify() {
      const path = pathIn(dir, this.params.name);
      const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
      if (info === undefined || !info.isFile()) throw new HandshakeRejection(404, 'no such file');
      this.data = { path, size: info.size };
    }

    async onOpen() {
      const { name } = this.params;
      const { path, size } = this.data;
      const control = controls.get(this.query.get('token') ?? '');
      const tell = (update) => {
        if (control?.readyState === Behavior.OPEN) control.sendText(JSON.stringify(update));
      };
      const progress = progressReporter(size, (sent) => tell({ type: 'progress', direction: 'down', name, sent, total: size }));
      const file = createReadStream(path, { highWaterMark: 256 * 1024 });
      // One binary message, a fragment per chunk; waits for the socket to drain between chunks.
      // (A bare `this.sendStream(file)` does the same; `counted` only adds the progress reports.)
      let sent;
      try {
        sent = await this.sendStream(counted(file, progress));
      } catch (error) {
        if (error?.code !== 'WS_STREAM_INTERRUPTED') throw error;
        log(`download of ${name} interrupted: ${error.message}`);
        return;
      }
      progress(sent, true);
      tell({ type: 'sent', name, size: sent });
      log(`sent ${name}: ${sent} bytes`);
      this.close(1000, 'done');
    }
  }

  const sockets = createWebSocketHandler({ '/files': Files, '/download/:name': Download });
  const server = http.createServer(async (req, res) => {
    const asset = req.method === 'GET' ? assets[new URL(req.url ?? '/', 'http://x').pathname] : undefined;
    if (asset === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const body = await readFile(new URL(asset.file, publicDir));
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-store' }).end(body);
  });
  sockets.attach(server);
  server.listen(port, host);
  await once(server, 'listening');
  const actual = server.address().port;
  return {
    server,
    sockets,
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/`,
    uploadDir: dir,
    async close() {
      await sockets.close(); // 1001 to every WebSocket, and waits for them
      await new Promise((done) => server.close(() => done()));
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const demo = await startStreamingDemo({
    port: Number(process.env.PORT ?? 9004),
    host: process.env.HOST ?? '127.0.0.1',
    ...(process.env.UPLOAD_DIR ? { uploadDir: process.env.UPLOAD_DIR } : {}),
    ...(process.env.MAX_UPLOAD_BYTES ? { maxBytes: Number(process.env.MAX_UPLOAD_BYTES) } : {}),
    log: (line) => console.log(line),
  });
  console.log(`wsmount streaming demo on ${demo.url}  (uploads go to ${demo.uploadDir}; Ctrl+C to stop)`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      await demo.close();
      console.log('closed');
    });
  }
}
