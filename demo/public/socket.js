// Shared by the demo pages: a WebSocket to this page's server that reconnects by itself,
// a visible connection state, and a log. Everything shown goes through textContent: text that
// came over the socket is never parsed as HTML.

/**
 * Connects to `path` on the server that served this page (a string, or a function called before
 * each attempt, so a reconnect can carry new query parameters), and reconnects after it goes
 * away (backoff 0.5 s, 1 s, 2 s, 4 s, then every 5 s). Shows every incoming message in the log,
 * or hands it to `onMessage(text, show)`.
 *
 * Returns `send(text)` (sends, and shows "→ text" in the log), `trySend(text)` (sends without
 * showing anything; false when not connected) and `show(text, className)`.
 */
export function connect(path, { onOpen, onMessage, log = document.getElementById('log') } = {}) {
  const state = document.getElementById('state');
  let ws;
  let delay = 500;

  /** Adds a line to the log and keeps the newest in view (unless the reader scrolled up). */
  function append(node) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(node);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function show(text, className = '') {
    const line = document.createElement('div');
    line.textContent = text;
    line.className = className;
    append(line);
  }

  function setState(text, className) {
    state.textContent = text;
    state.className = className;
  }

  function open() {
    const target = typeof path === 'function' ? path() : path;
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${target}`);
    ws.onopen = () => {
      delay = 500;
      setState('open', 'open');
      onOpen?.(show);
    };
    ws.onmessage = (e) => (onMessage ? onMessage(e.data, show) : show(e.data));
    ws.onclose = (e) => {
      setState(`reconnecting in ${delay / 1000} s…`, 'closed');
      show(`connection closed (${e.code}); reconnecting…`, 'note');
      setTimeout(() => {
        setState('reconnecting…', 'closed');
        open();
      }, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  function trySend(text) {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(text);
    return true;
  }

  function send(text) {
    if (!trySend(text)) {
      show(`not connected: "${text}" was not sent`, 'note');
      return false;
    }
    show(`→ ${text}`, 'sent');
    return true;
  }

  setState('connecting…', '');
  open();
  return { send, trySend, show, append };
}

/**
 * Calls `send(text)` with the input's text when the form is submitted, then clears the input,
 * unless `send` returned false (nothing was sent: the text stays, to send again).
 */
export function onSubmit(formId, send) {
  const form = document.getElementById(formId);
  const input = form.querySelector('input');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (send(input.value) !== false) input.value = '';
    input.focus();
  });
}
