// The chat page. The server (demo/app.js, class Chat) speaks JSON: this page sends
// {type:'say', text} and {type:'rename', name}, and shows the events it gets back. A message
// is shown when the server sends it back to everyone, the sender included, so each person
// sees each message once, in the order the server saw them. Every name and message is put in
// the page with textContent: whatever people type is shown as text, never run as HTML.
import { connect, onSubmit } from './socket.js';

const MAX_NAME = 24; // the server cuts names to this too; it has the final say
const STORAGE_KEY = 'wsmount-demo:chat-name';

const log = document.getElementById('chat-log');
const nameInput = document.getElementById('name');
const peopleList = document.getElementById('people');

/** id → name of everyone in the room, as the server last told us. */
const people = new Map();
/** This page's own id and name, once the server has welcomed it. */
let me;
/** The name to join with: from ?name=…, else the last one used here, else a guest name. */
let myName = clip(new URLSearchParams(location.search).get('name') ?? remembered() ?? '') || guestName();
nameInput.value = myName;

const { trySend, show, append } = connect(() => `/chat?name=${encodeURIComponent(myName)}`, { log, onMessage });

function onMessage(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    show(data);
    return;
  }
  switch (event.type) {
    case 'welcome': {
      me = event.you;
      setMyName(me.name);
      people.clear();
      for (const p of event.people) people.set(p.id, p.name);
      const others = event.people.filter((p) => p.id !== me.id);
      if (others.length === 0) notice('You joined as ', who(me.name), '. Nobody else is here yet: open this page in another tab.');
      else notice('You joined as ', who(me.name), '. Also here: ', ...list(others.map((p) => who(p.name))), '.');
      break;
    }
    case 'joined':
      people.set(event.id, event.name);
      notice(who(event.name), ' joined');
      break;
    case 'left':
      people.delete(event.id);
      notice(who(event.name), ' left');
      break;
    case 'renamed':
      people.set(event.id, event.name);
      if (event.id === me?.id) {
        me.name = event.name;
        setMyName(event.name);
        notice('You are now ', who(event.name));
      } else {
        notice(who(event.from), ' is now ', who(event.name));
      }
      break;
    case 'message':
      message(event);
      break;
    case 'error':
      if (me) setMyName(me.name, { remember: false });
      show(event.message, 'notice error');
      break;
  }
  renderPeople();
}

// ---- what the page shows -------------------------------------------------------------------

/** A person's name, in their colour. */
function who(name) {
  const span = document.createElement('span');
  span.className = 'who';
  span.textContent = name;
  span.style.setProperty('--who', colourOf(name));
  return span;
}

/** A line about the room: its parts are strings or elements made here. */
function notice(...parts) {
  const line = document.createElement('div');
  line.className = 'notice';
  line.append(...parts); // strings become text nodes
  append(line);
}

function message({ id, name, text }) {
  const line = document.createElement('div');
  line.className = id === me?.id ? 'msg mine' : 'msg';
  line.dataset.id = id;
  line.style.setProperty('--who', colourOf(name));

  const body = document.createElement('div');
  body.className = 'body';
  const meta = document.createElement('div');
  meta.append(who(name));
  if (id === me?.id) {
    const you = document.createElement('span');
    you.className = 'you';
    you.textContent = '(you)';
    meta.append(you);
  }
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  meta.append(time);
  const p = document.createElement('p');
  p.className = 'text';
  p.textContent = text;
  body.append(meta, p);

  line.append(avatar(name), body);
  append(line);
}

/** A round badge with the name's first letter (or emoji) in the name's colour. */
function avatar(name) {
  const span = document.createElement('span');
  span.className = 'avatar';
  span.setAttribute('aria-hidden', 'true');
  span.style.setProperty('--who', colourOf(name));
  const first = new Intl.Segmenter().segment(name)[Symbol.iterator]().next().value;
  span.textContent = first?.segment ?? '?';
  return span;
}

function renderPeople() {
  if (!me) return;
  const items = [];
  const count = document.createElement('li');
  count.className = 'count';
  count.textContent = people.size === 1 ? 'Only you here' : `${people.size} here:`;
  items.push(count);
  if (people.size > 1) {
    // This page first, then the others in the order they joined.
    const ordered = [...people].sort(([a], [b]) => (a === me?.id ? -1 : b === me?.id ? 1 : 0));
    for (const [id, name] of ordered) {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = id === me?.id ? `${name} (you)` : name;
      li.append(avatar(name), label);
      items.push(li);
    }
  }
  peopleList.replaceChildren(...items);
}

/** [a, b, c] → [a, ', ', b, ' and ', c] */
function list(items) {
  return items.flatMap((item, i) => (i === 0 ? [item] : [i === items.length - 1 ? ' and ' : ', ', item]));
}

/**
 * A colour of one's own, the same for a name on every screen: a hash of the name picks the hue;
 * lightness and chroma are fixed, dark enough for white letters on it and for text on white.
 */
function colourOf(name) {
  let h = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return `oklch(0.5 0.15 ${h % 360})`;
}

// ---- names -----------------------------------------------------------------------------------

function clip(name) {
  return [...name.replace(/\s+/g, ' ').trim()].slice(0, MAX_NAME).join('').trim();
}

function guestName() {
  const [a, b] = crypto.getRandomValues(new Uint8Array(2));
  return `guest-${((a << 8) | b).toString(16).padStart(4, '0')}`;
}

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage off: a new guest name each visit
  }
}

function setMyName(name, { remember = true } = {}) {
  myName = name;
  if (document.activeElement !== nameInput) nameInput.value = name;
  if (!remember) return;
  try {
    localStorage.setItem(STORAGE_KEY, name);
  } catch {}
}

document.getElementById('name-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = clip(nameInput.value);
  nameInput.blur();
  if (name === '') {
    nameInput.value = myName;
    return;
  }
  if (name === myName) return;
  setMyName(name); // used for the next connection too
  nameInput.value = name;
  if (!trySend(JSON.stringify({ type: 'rename', name }))) {
    notice('Not connected: you will join as ', who(name), ' when the connection is back.');
  }
});

// ---- sending ---------------------------------------------------------------------------------

onSubmit('form', (text) => {
  if (text.trim() === '') return false;
  if (!trySend(JSON.stringify({ type: 'say', text }))) {
    show('Not connected: your message was not sent (it is still in the box).', 'note');
    return false;
  }
  return true; // shown when the server sends it back
});
