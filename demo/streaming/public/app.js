// The streaming demo's page: uploads the chosen file as one WebSocket message over the control
// socket (/files), shows progress from bufferedAmount and from the server's progress messages,
// then downloads it back over a second socket (/download/:name) and checks size and SHA-256.
// `window.streamingDemo` keeps every progress value the page showed (the browser test reads it).
'use strict';

const $ = (id) => document.getElementById(id);
const wsBase = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
/** Hashing reads the whole file into memory (crypto.subtle has no incremental digest): skipped above this. */
const MAX_HASH_BYTES = 1024 * 2 ** 20;

const demo = {
  shown: { upLocal: [], upServer: [], downServer: [] },
  token: null,
  maxBytes: 0,
  upload: null, // { file, name, size, localSha: Promise<string|null>, serverSha, chunks }
};
window.streamingDemo = demo;

function log(text) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').append(item);
  $('log').scrollTop = $('log').scrollHeight;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 2 ** 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** Shows `done` of `total` on a progress bar and remembers the value. */
function show(id, key, done, total, started) {
  const bar = $(id);
  bar.max = Math.max(total, 1);
  bar.value = done;
  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0.05 ? `, ${(done / 2 ** 20 / seconds).toFixed(0)} MiB/s` : '';
  $(`${id}-text`).textContent = `${size(done)} of ${size(total)}${rate}`;
  const seen = demo.shown[key];
  if (seen[seen.length - 1] !== done) seen.push(done);
}

async function sha256(blob) {
  if (globalThis.crypto?.subtle === undefined) return null; // not a secure context: open the page via localhost
  if (blob.size > MAX_HASH_BYTES) return null;
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function verdict(id, ok, text) {
  const el = $(id);
  el.textContent = text;
  el.className = ok === true ? 'ok' : ok === false ? 'bad' : '';
}

// ---- the control socket: uploads, and progress reports for both directions ----------------------
let control = null;
let retry = 500;

function connect() {
  const ws = new WebSocket(`${wsBase}/files`);
  control = ws;
  ws.onopen = () => {
    retry = 500;
    $('state').textContent = 'connected';
    $('state').className = 'open';
  };
  ws.onmessage = (event) => onControl(JSON.parse(event.data));
  ws.onclose = (event) => {
    $('state').textContent = `disconnected (${event.code}${event.reason ? ` ${event.reason}` : ''}), reconnecting…`;
    $('state').className = 'closed';
    $('file').disabled = true;
    if (demo.upload !== null && demo.upload.serverSha === undefined) {
      const why = event.code === 1009 ? `the file is over the server's limit of ${size(demo.maxBytes)}` : `the connection closed with ${event.code}`;
      verdict('upload-verdict', false, `upload failed: ${why}`);
      document.body.dataset.upload = 'failed';
    }
    log(`control socket closed: ${event.code} ${event.reason}`);
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

function onControl(message) {
  const upload = demo.upload;
  switch (message.type) {
    case 'hello':
      demo.token = message.token;
      demo.maxBytes = message.maxBytes;
      $('limit').textContent = `(takes files up to ${size(message.maxBytes)})`;
      $('file').disabled = false;
      break;
    case 'ready': // the server took our announcement: send the file itself, as one message
      if (upload === null) return;
      upload.name = message.name;
      upload.started = performance.now();
      control.send(upload.file);
      log(`sending ${upload.file.name} (${size(upload.size)}) as one message`);
      watchBuffered(control, upload);
      break;
    case 'progress':
      if (message.direction === 'up' && upload !== null) {
        show('up-server', 'upServer', message.received, message.total ?? upload.size, upload.started);
      } else if (message.direction === 'down' && upload?.download !== undefined) {
        show('down-server', 'downServer', message.sent, message.total, upload.download.started);
      }
      break;
    case 'stored':
      if (upload !== null) stored(upload, message);
      break;
    case 'sent':
      log(`server: sent ${message.name}, ${size(message.size)}`);
      break;
    case 'error':
      log(`server: ${message.message}`);
      verdict('upload-verdict', false, message.message);
      document.body.dataset.upload = 'failed';
      $('file').disabled = false;
      break;
  }
}

/** The browser's side of the upload: bytes no longer waiting in this socket's buffer. */
function watchBuffered(ws, upload) {
  const tick = () => {
    if (demo.upload !== upload) return;
    show('up-local', 'upLocal', upload.size - ws.bufferedAmount, upload.size, upload.started);
    if (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) setTimeout(tick, 40);
  };
  tick();
}

// ---- upload ----------------------------------------------------------------------------------------
$('file').addEventListener('change', () => {
  const file = $('file').files[0];
  if (file === undefined || control?.readyState !== WebSocket.OPEN) return;
  for (const id of ['up-local', 'up-server', 'down-server']) {
    $(id).value = 0;
    $(`${id}-text`).textContent = '';
  }
  for (const key of Object.keys(demo.shown)) demo.shown[key] = [];
  for (const id of ['local-sha', 'server-sha', 'down-sha']) $(id).textContent = '—';
  for (const id of ['upload-verdict', 'download-verdict', 'down-info']) verdict(id, undefined, '—');
  delete document.body.dataset.upload;
  delete document.body.dataset.download;
  $('download').disabled = true;
  $('save').hidden = true;
  $('file').disabled = true;

  const upload = { file, name: file.name, size: file.size, started: performance.now(), serverSha: undefined };
  demo.upload = upload;
  $('file-info').textContent = `${file.name}, ${size(file.size)} (${file.size} bytes)`;
  if (file.size > demo.maxBytes) {
    verdict('upload-verdict', false, `not sent: over the server's limit of ${size(demo.maxBytes)}`);
    document.body.dataset.upload = 'refused';
    $('file').disabled = false;
    return;
  }
  // Hash it here meanwhile, to compare with the server's digest and the download's.
  upload.localSha = sha256(file).then((hex) => {
    $('local-sha').textContent = hex ?? (globalThis.crypto?.subtle ? 'not computed: file too large to hash here' : 'not computed: crypto.subtle needs a secure context (open the page via localhost)');
    return hex;
  });
  // Announce it (name and size), then send the file once the server says it is ready.
  control.send(JSON.stringify({ type: 'file', name: file.name, size: file.size }));
});

async function stored(upload, message) {
  upload.serverSha = message.sha256;
  upload.stored = message;
  $('server-sha').textContent = message.sha256;
  const seconds = (performance.now() - upload.started) / 1000;
  log(`server: stored ${message.name}, ${message.size} bytes, read in ${message.chunks} chunks, ${seconds.toFixed(2)} s`);
  const local = await upload.localSha;
  if (message.size !== upload.size) {
    verdict('upload-verdict', false, `size differs: ${message.size} stored, ${upload.size} sent`);
    document.body.dataset.upload = 'mismatch';
  } else if (local === null) {
    verdict('upload-verdict', undefined, `stored as ${message.name}: ${message.size} bytes (digest not compared)`);
    document.body.dataset.upload = 'stored';
  } else if (local === message.sha256) {
    verdict('upload-verdict', true, `✓ stored as ${message.name}: same ${message.size} bytes, same SHA-256`);
    document.body.dataset.upload = 'ok';
  } else {
    verdict('upload-verdict', false, '✗ the SHA-256 differs');
    document.body.dataset.upload = 'mismatch';
  }
  $('download').disabled = false;
  $('file').disabled = false;
}

// ---- download ----------------------------------------------------------------------------------------
$('download').addEventListener('click', () => {
  const upload = demo.upload;
  if (upload?.stored === undefined) return;
  $('download').disabled = true;
  $('save').hidden = true;
  demo.shown.downServer = [];
  delete document.body.dataset.download;
  verdict('download-verdict', undefined, 'downloading…');
  upload.download = { started: performance.now() };
  const ws = new WebSocket(`${wsBase}/download/${encodeURIComponent(upload.stored.name)}?token=${encodeURIComponent(demo.token ?? '')}`);
  ws.binaryType = 'blob';
  let blob = null;
  ws.onmessage = async (event) => {
    blob = event.data;
    const seconds = (performance.now() - upload.download.started) / 1000;
    $('down-info').textContent = `${size(blob.size)} (${blob.size} bytes) as one Blob, ${seconds.toFixed(2)} s`;
    log(`received ${upload.stored.name}: ${blob.size} bytes`);
    const hex = await sha256(blob);
    $('down-sha').textContent = hex ?? 'not computed';
    const local = await upload.localSha;
    if (blob.size !== upload.size) {
      verdict('download-verdict', false, `✗ size differs: ${blob.size} received, ${upload.size} uploaded`);
      document.body.dataset.download = 'mismatch';
    } else if (hex === null) {
      verdict('download-verdict', undefined, `${blob.size} bytes, as uploaded (digest not compared)`);
      document.body.dataset.download = 'received';
    } else if (hex === local && hex === upload.serverSha) {
      verdict('download-verdict', true, '✓ the same bytes came back: same size, same SHA-256');
      document.body.dataset.download = 'ok';
    } else {
      verdict('download-verdict', false, '✗ the SHA-256 differs');
      document.body.dataset.download = 'mismatch';
    }
    const save = $('save');
    if (save.href) URL.revokeObjectURL(save.href);
    save.href = URL.createObjectURL(blob);
    save.download = upload.stored.name;
    save.hidden = false;
  };
  ws.onclose = (event) => {
    $('download').disabled = false;
    if (blob === null) {
      verdict('download-verdict', false, `download failed: closed with ${event.code} ${event.reason}`);
      document.body.dataset.download = 'failed';
    }
  };
  ws.onerror = () => log('download socket: error');
});

connect();
