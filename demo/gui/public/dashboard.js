// The live dashboard: one WebSocket to /live. The server sends JSON events; this page keeps a
// Map of jobs and redraws a job's row when an event about it arrives.
const $ = (id) => document.getElementById(id);
const jobs = new Map();
let ws;

function connect() {
  ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`);
  setState('connecting', 'connecting…');
  ws.onopen = () => setState('open', 'live');
  ws.onclose = () => {
    setState('closed', 'disconnected, retrying…');
    setTimeout(connect, 2000);
  };
  ws.onmessage = (e) => handle(JSON.parse(e.data));
}

function handle(msg) {
  switch (msg.type) {
    case 'snapshot':
      jobs.clear();
      $('jobs').replaceChildren();
      for (const job of msg.jobs) update(job);
      break;
    case 'job.created':
    case 'job.done':
    case 'job.cancelled':
      update(msg.job);
      break;
    case 'job.progress':
      if (jobs.has(msg.id)) update({ ...jobs.get(msg.id), progress: msg.progress });
      break;
    case 'viewers':
      $('viewers').textContent = `${msg.count} ${msg.count === 1 ? 'dashboard' : 'dashboards'} watching`;
      break;
    case 'error':
      notice(msg.message);
      break;
  }
}

function update(job) {
  jobs.set(job.id, job);
  let row = document.querySelector(`tr[data-id="${job.id}"]`);
  if (!row) {
    row = newRow(job.id);
    $('jobs').prepend(row);
  }
  row.dataset.state = job.state;
  row.querySelector('.id').textContent = job.id;
  row.querySelector('.name').textContent = job.name;
  row.querySelector('progress').value = job.progress;
  row.querySelector('.pct').textContent = `${job.progress}%`;
  row.querySelector('.state').textContent = job.state;
  row.querySelector('.cancel').hidden = job.state !== 'running';
  $('empty').hidden = jobs.size > 0;
}

/** An empty row for job `id`; update() fills it in (with textContent: job names are user input). */
function newRow(id) {
  const row = document.createElement('tr');
  row.dataset.id = id;
  const cell = (className, ...children) => {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.append(...children);
    return td;
  };
  const progress = document.createElement('progress');
  progress.max = 100;
  const pct = document.createElement('span');
  pct.className = 'pct';
  const cancel = document.createElement('button');
  cancel.className = 'cancel secondary small';
  cancel.textContent = 'Cancel';
  cancel.onclick = () => ws.send(JSON.stringify({ type: 'cancel', id }));
  row.append(cell('id'), cell('name'), cell('progress', progress, pct), cell('state'), cell('', cancel));
  return row;
}

function setState(cls, text) {
  $('state').className = cls;
  $('state').textContent = text;
}

function notice(text) {
  $('notice').textContent = text;
  setTimeout(() => { if ($('notice').textContent === text) $('notice').textContent = ''; }, 4000);
}

// New jobs go through the app's ordinary HTTP API; the socket only reports what happens.
$('new-job').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = e.target.elements.name;
  const res = await fetch('/api/jobs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: input.value }),
  });
  if (res.ok) input.value = '';
  else notice((await res.json()).error);
});

connect();
