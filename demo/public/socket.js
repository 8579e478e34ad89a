// Shared by the demo pages: a WebSocket to this page's server that reconnects by itself,
// a visible connection state, and a log.

/**
 * Connects to `path` on the server that served this page, and reconnects after it goes away
 * (backoff 0.5 s, 1 s, 2 s, 4 s, then every 5 s). Shows every incoming message in the log,
 * or hands it to `onMessage(text, show)`. Returns `send(text)` and `show(text, className)`.
 */
export function connect(path, { onOpen, onMessage } = {}) {
  const state = document.getElementById('state');
  const log = document.getElementById('log');
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
  let ws;
  let delay = 500;

  function show(text, className = '') {
    const line = document.createElement('div');
    line.textContent = text;
    line.className = className;
    log.append(line);
    log.scrollTop = log.scrollHeight;
  }

  function setState(text, className) {
    state.textContent = text;
    state.className = className;
  }

  function open() {
    ws = new WebSocket(url);
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

  function send(text) {
    if (ws.readyState !== WebSocket.OPEN) {
      show(`not connected: "${text}" was not sent`, 'note');
      return;
    }
    ws.send(text);
    show(`→ ${text}`, 'sent');
  }

  setState('connecting…', '');
  open();
  return { send, show };
}

/** Calls `send(text)` with the input's text when the form is submitted, then clears it. */
export function onSubmit(formId, send) {
  const form = document.getElementById(formId);
  const input = form.querySelector('input');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send(input.value);
    input.value = '';
    input.focus();
  });
}
