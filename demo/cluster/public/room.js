// The cluster demo's chat page, /rooms/<room>. It opens a WebSocket to the same path on the
// process that served it (demo/cluster/server.js), shows which process that is, and links to the
// other one. Events arrive as JSON; everything people type is shown with textContent, never as HTML.
import { connect, onSubmit } from '/socket.js';

const STORAGE_KEY = 'wsmount-demo:chat-name';
const log = document.getElementById('chat-log');
const nameInput = document.getElementById('name');
const room = decodeURIComponent(location.pathname.split('/').pop());
document.getElementById('room').textContent = `Room ${room}`;
document.title = `${room} · wsmount cluster demo`;

/** The name to join with: ?name=…, else the last one used on this page, else a guest name. */
let myName = new URLSearchParams(location.search).get('name') || remembered() || `guest-${Math.random().toString(16).slice(2, 6)}`;
nameInput.value = myName;
/** This page's id in the room, from the welcome. */
let myId;

const { trySend, show, append } = connect(() => `${location.pathname}?name=${encodeURIComponent(myName)}`, { log, onMessage });

function onMessage(data) {
  const event = JSON.parse(data);
  switch (event.type) {
    case 'welcome': {
      myId = event.id;
      setMyName(event.name);
      showProcess(event.process, event.peerPort);
      notice('You joined as ', who(event.name), ` on process ${event.process.pid} (port ${event.process.port}).`);
      break;
    }
    case 'joined':
      notice(who(event.name), ` joined on ${processOf(event)}`);
      break;
    case 'left':
      notice(who(event.name), ` left (${processOf(event)})`);
      break;
    case 'renamed':
      if (event.id === myId) setMyName(event.name);
      notice(who(event.was), ' is now ', who(event.name));
      break;
    case 'message':
      message(event);
      break;
  }
}

/** Which process this page is connected to, and the link to the other one. */
function showProcess({ pid, port, backplane }, peerPort) {
  document.getElementById('pid').textContent = pid;
  document.getElementById('port').textContent = port;
  document.getElementById('backplane').textContent = backplane;
  const here = document.getElementById('this-process');
  here.textContent = `This process :${port}`;
  here.href = location.pathname;
  const peer = document.getElementById('peer');
  peer.hidden = peerPort === null;
  peer.textContent = `Other process :${peerPort}`;
  peer.href = `${location.protocol}//${location.hostname}:${peerPort}${location.pathname}`;
}

function processOf({ from }) {
  return `process ${from.pid} :${from.port}`;
}

function notice(...parts) {
  const line = document.createElement('div');
  line.className = 'notice';
  line.append(...parts); // strings become text nodes
  append(line);
}

function who(name) {
  const span = document.createElement('span');
  span.className = 'who';
  span.textContent = name;
  span.style.setProperty('--who', colourOf(name));
  return span;
}

function message(event) {
  const mine = event.id === myId;
  const line = document.createElement('div');
  line.className = mine ? 'msg mine' : 'msg';
  const avatar = document.createElement('span');
  avatar.className = 'avatar';
  avatar.style.setProperty('--who', colourOf(event.name));
  avatar.textContent = [...event.name][0] ?? '?';
  const meta = document.createElement('div');
  const via = document.createElement('span');
  via.className = 'you';
  via.textContent = `${mine ? '(you) ' : ''}via ${processOf(event)}`;
  meta.append(who(event.name), via);
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = event.text;
  const body = document.createElement('div');
  body.className = 'body';
  body.append(meta, text);
  line.append(avatar, body);
  append(line);
}

/** The same colour for a name on every page: its hash picks the hue. */
function colourOf(name) {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return `oklch(0.5 0.15 ${h % 360})`;
}

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function setMyName(name) {
  myName = name; // also the name the next connection joins with
  if (document.activeElement !== nameInput) nameInput.value = name;
  try {
    localStorage.setItem(STORAGE_KEY, name);
  } catch {}
}

document.getElementById('name-form').addEventListener('submit', (e) => {
  e.preventDefault();
  nameInput.blur();
  const name = nameInput.value.trim();
  if (name !== '' && name !== myName) trySend(JSON.stringify({ type: 'rename', name }));
});

onSubmit('form', (text) => {
  if (text.trim() === '') return false;
  if (!trySend(JSON.stringify({ type: 'say', text }))) {
    show('Not connected: your message was not sent (it is still in the box).', 'note');
    return false;
  }
  return true; // shown when it comes back from the room
});
