// Shared by the demo pages: open a socket to this page's server, show its state and a log.
export function connect(path, onMessage) {
  const state = document.getElementById('state');
  const log = document.getElementById('log');
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
  const ws = new WebSocket(url);
  const show = (text) => {
    const line = document.createElement('div');
    line.textContent = text;
    log.append(line);
    log.scrollTop = log.scrollHeight;
  };
  state.textContent = 'connecting…';
  ws.onopen = () => { state.textContent = 'open'; state.className = 'open'; };
  ws.onclose = (e) => { state.textContent = `closed (${e.code})`; state.className = 'closed'; };
  ws.onerror = () => show('connection error');
  ws.onmessage = (e) => (onMessage ? onMessage(e.data, show) : show(e.data));
  return { ws, show };
}

export function onSubmit(formId, send) {
  const form = document.getElementById(formId);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = form.querySelector('input');
    send(input.value);
    input.value = '';
  });
}
