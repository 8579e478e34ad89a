// The load generator: a separate process (pinned to its own core by run.mjs) that takes jobs over
// IPC and answers with measurements. Raw net sockets, pre-built masked frames, pipelined windows,
// and every reply validated (see lib/wsclient.mjs).
//
// Jobs: echo (pipelined throughput), paced (fixed rate: latency and server CPU), broadcast
// (fan-out deliveries/s), handshakes (open+close cycles/s), hold/release (idle connections),
// fanout (topics over one or two processes: deliveries/s and publish→delivery latency), say (a
// message to every held connection), and the permessage-deflate jobs of lib/deflate-jobs.mjs
// (deflateEcho, deflateBroadcast, deflateHold/deflateActivate/deflateRelease), and the
// WebSockets-over-HTTP/2 jobs of lib/h2-jobs.mjs (h2Echo, h2Open/h2Release), and the streaming
// jobs of lib/stream-jobs.mjs (streamOpen/streamRun/streamClose: one 256 MiB message each way).

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { CLK_TCK, cpuTicks, systemTicks } from './lib/proc.mjs';
import { BROWSER_HEADERS, Client, OP, clientFrame, closeMany, maskPayload, openMany, payloadOf, repeatFrame } from './lib/wsclient.mjs';
import { deflateJobs } from './lib/deflate-jobs.mjs';
import { h2Jobs } from './lib/h2-jobs.mjs';
import { streamJobs } from './lib/stream-jobs.mjs';

if (typeof process.send !== 'function') {
  console.error('loadgen.mjs is started by bench/run.mjs (it needs an IPC channel)');
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A job's failure channel: the first client error rejects `failed`. */
function failureChannel() {
  let reject;
  const failed = new Promise((_, r) => {
    reject = r;
  });
  failed.catch(() => {});
  let error = null;
  return {
    failed,
    get error() {
      return error;
    },
    fail(e) {
      if (error !== null) return;
      error = e;
      reject(e);
    },
  };
}

/** Snapshot of counters for a measurement window. */
function snapshot(serverPid, count) {
  return {
    t: performance.now(),
    count,
    serverTicks: serverPid ? cpuTicks(serverPid) : 0,
    genTicks: cpuTicks(process.pid),
    system: systemTicks(),
    gen: process.cpuUsage(),
  };
}

function windowOf(a, b) {
  const seconds = (b.t - a.t) / 1000;
  const genCpu = (b.gen.user - a.gen.user + b.gen.system - a.gen.system) / 1e6;
  const serverCpu = (b.serverTicks - a.serverTicks) / CLK_TCK;
  // CPU used by everything else on the machine during the window (other processes: a shared box).
  const foreign = (b.system.busy - a.system.busy - (b.serverTicks - a.serverTicks) - (b.genTicks - a.genTicks)) / CLK_TCK;
  const steal = (b.system.steal - a.system.steal) / CLK_TCK;
  return {
    foreignCpuPct: Math.max(0, (100 * foreign) / seconds),
    stealPct: (100 * steal) / seconds,
    seconds,
    count: b.count - a.count,
    rate: (b.count - a.count) / seconds,
    serverCpuSec: serverCpu,
    serverCpuPct: (100 * serverCpu) / seconds,
    genCpuPct: (100 * genCpu) / seconds,
  };
}

/** Waits until `done()` is true, polling; false on timeout. Bounded. */
async function waitFor(done, timeoutMs, failure) {
  const end = performance.now() + timeoutMs;
  while (!done()) {
    if (failure?.error) throw failure.error;
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

function messageSetup(o, payload) {
  const expected = o.raw ? maskPayload(payload) : payload;
  return (c) => {
    c.expectOpcode = o.text ? OP.TEXT : OP.BINARY;
    c.expectLen = payload.length;
    c.expected = expected;
    c.checkEvery = payload.length >= 65536 ? 4 : 16;
  };
}

// ---- echo: pipelined throughput ------------------------------------------------------------------

async function echo(o) {
  if (o.cgen) {
    const w = await runC(o, 'echo', { path: '/echo', conns: o.conns, text: o.text });
    return { ...w, bytesPerSec: w.rate * o.size, msgs: w.sent };
  }
  const { port, conns, size, window, warmupMs, measureMs, serverPid } = o;
  const payload = payloadOf(size);
  const frame = clientFrame(o.text ? OP.TEXT : OP.BINARY, payload);
  const flen = frame.length;
  const batch = repeatFrame(frame, window);
  const failure = failureChannel();
  let running = true;
  let received = 0;
  const setup = messageSetup(o, payload);
  const clients = await openMany(conns, port, '/echo', {
    allowMasked: o.raw,
    setup(c) {
      setup(c);
      c.onError = (_c, e) => failure.fail(e);
      c.echoed = 0;
      c.onFrames = (cl, k) => {
        received += k;
        cl.echoed += k;
        cl.inflight -= k;
        if (cl.inflight < 0) {
          failure.fail(new Error('more echoes than messages sent'));
          return;
        }
        if (running) {
          cl.inflight += k;
          cl.write(k === window ? batch : batch.subarray(0, k * flen));
        }
      };
    },
  });
  try {
    for (const c of clients) {
      c.inflight = window;
      c.write(batch);
    }
    await Promise.race([sleep(warmupMs), failure.failed]);
    // The warm-up also lasts until every connection has had its window echoed twice (at most 15 s
    // more): with hundreds of connections and large messages the first rounds (fresh buffers,
    // page faults, code not yet optimised) are far slower than the steady state the row measures.
    await waitFor(() => clients.every((c) => c.echoed >= 2 * window), 15_000, failure);
    const a = snapshot(serverPid, received);
    await Promise.race([sleep(measureMs), failure.failed]);
    const b = snapshot(serverPid, received);
    running = false;
    const drained = await waitFor(() => clients.every((c) => c.inflight === 0), 15_000, failure);
    if (!drained) {
      const missing = clients.reduce((s, c) => s + c.inflight, 0);
      throw new Error(`${missing} messages were never echoed back (within 15 s)`);
    }
    const w = windowOf(a, b);
    if (w.count === 0) throw new Error('no message was echoed during the measurement window');
    await closeMany(clients);
    return { ...w, bytesPerSec: w.rate * size, msgs: received };
  } finally {
    for (const c of clients) if (c.open && !c.closing) c.destroy();
  }
}

/**
 * The echo, broadcast or handshakes job run by bench/cgen/loadgen.c (run.mjs's default), a child of this process
 * (so on its core): it prints "A <count>" and "B <count>" as the measurement window opens and
 * closes (count: frames received), "D <count> <sent>" once everything came back and every
 * connection closed cleanly, "E <reason>" on a failure. The generator's CPU is the child's (plus
 * this process's, idle meanwhile). The window's time and the server's CPU are read when a line
 * arrives here, a few ms after the child wrote it. Returns the window with `sent`: messages sent
 * (echo), broadcasts triggered (broadcast) or cycles (handshakes).
 */
async function runC(o, mode, { path, conns, text, size = o.size, window = o.window }) {
  const { port, warmupMs, measureMs, serverPid } = o;
  const child = spawn(o.cgen, [mode, port, path, conns, size, window, text ? 1 : 0, o.raw ? 1 : 0, warmupMs, measureMs].map(String), { stdio: ['ignore', 'pipe', 'inherit'] });
  const marks = {};
  let error = null;
  let pending = '';
  const take = (count) => {
    // In the stdout listener: a target gone (its /proc entry with it) fails the job, not the process.
    try {
      const s = snapshot(serverPid, count);
      return { ...s, genTicks: s.genTicks + cpuTicks(child.pid) };
    } catch (e) {
      error ??= e;
      child.kill('SIGKILL');
      return undefined;
    }
  };
  const done = new Promise((resolve) => {
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const [tag, ...rest] = line.split(' ');
        if (tag === 'E') error ??= new Error(rest.join(' '));
        else if (tag === 'L') marks.L = rest.map(Number);
        else marks[tag] = tag === 'D' ? Number(rest[1]) : take(Number(rest[0]));
      }
    });
    child.once('close', (code, signal) => resolve(code ?? signal));
    child.once('error', (e) => {
      error ??= e;
      resolve(-1);
    });
  });
  // Beyond the child's own bounds (5 s per handshake, 15 s more warm-up, 20 s to drain, 10 s to
  // close), and before run.mjs gives up on this job (120 s), so that a stuck child never overlaps
  // the next job on the generator's core.
  const timer = setTimeout(() => child.kill('SIGKILL'), Math.min(warmupMs + measureMs + 60_000 + conns * 100, 110_000));
  const code = await done;
  clearTimeout(timer);
  if (error !== null) throw error;
  if (code !== 0 || marks.A === undefined || marks.B === undefined || marks.D === undefined) throw new Error(`the C generator ended (${code}) before it finished`);
  const w = windowOf(marks.A, marks.B);
  // windowOf's generator CPU is this process's: the child's ticks are the generator here.
  w.genCpuPct = (100 * (marks.B.genTicks - marks.A.genTicks)) / CLK_TCK / w.seconds;
  if (w.count === 0) throw new Error(`no ${mode === 'handshakes' ? 'handshake cycle completed' : `message was ${mode === 'broadcast' ? 'delivered' : 'echoed'}`} during the measurement window`);
  if (mode === 'paced' && marks.L === undefined) throw new Error('the C generator gave no latency line');
  return { ...w, sent: marks.D, latency: marks.L };
}

// ---- paced: fixed total rate, latency and server CPU -------------------------------------------------

async function paced(o) {
  if (o.cgen) return pacedC(o);
  const { port, conns, size, rate, warmupMs, measureMs, serverPid } = o;
  const cap = 1024; // per-connection in-flight limit (a power of two: the timestamp ring)
  const payload = payloadOf(size);
  const frame = clientFrame(o.text ? OP.TEXT : OP.BINARY, payload);
  const flen = frame.length;
  const batch = repeatFrame(frame, 64);
  const failure = failureChannel();
  const samples = new Float64Array(Math.ceil((rate * (measureMs + 1000)) / 1000) + 1024);
  let nSamples = 0;
  let mStart = Infinity;
  let mEnd = Infinity;
  let received = 0;
  let running = true;
  let overflow = 0;
  const setup = messageSetup(o, payload);
  const clients = await openMany(conns, port, '/echo', {
    allowMasked: o.raw,
    setup(c) {
      setup(c);
      c.times = new Float64Array(cap);
      c.onError = (_c, e) => failure.fail(e);
      c.onFrames = (cl, k) => {
        const now = performance.now();
        received += k;
        cl.inflight -= k;
        if (cl.inflight < 0) {
          failure.fail(new Error('more echoes than messages sent'));
          return;
        }
        for (let j = 0; j < k; j++) {
          const t = cl.times[cl.tHead];
          cl.tHead = (cl.tHead + 1) & (cap - 1);
          if (t >= mStart && t < mEnd && nSamples < samples.length) samples[nSamples++] = now - t;
        }
      };
    },
  });
  const pend = new Int32Array(conns);
  const touched = [];
  let sent = 0;
  let rr = 0;
  const tStart = performance.now();
  // A setImmediate loop (the generator has its own core): messages leave evenly spread, not in
  // 1 ms bursts, and each connection's share of one turn goes out in one write.
  const tick = () => {
    if (!running) return;
    const now = performance.now();
    const due = Math.floor(((now - tStart) * rate) / 1000) - sent;
    for (let j = 0; j < due; j++) {
      const i = rr;
      rr = rr + 1 === conns ? 0 : rr + 1;
      sent++;
      const c = clients[i];
      if (c.inflight >= cap || pend[i] >= 64) {
        overflow++;
        continue;
      }
      if (pend[i] === 0) touched.push(i);
      pend[i]++;
      c.inflight++;
      c.times[c.tTail] = now;
      c.tTail = (c.tTail + 1) & (cap - 1);
    }
    for (const i of touched) {
      clients[i].write(batch.subarray(0, pend[i] * flen));
      pend[i] = 0;
    }
    touched.length = 0;
    setImmediate(tick);
  };
  try {
    setImmediate(tick);
    await Promise.race([sleep(warmupMs), failure.failed]);
    const a = snapshot(serverPid, received);
    mStart = a.t;
    const sentAtStart = sent;
    const overflowAtStart = overflow;
    await Promise.race([sleep(measureMs), failure.failed]);
    const b = snapshot(serverPid, received);
    mEnd = b.t;
    const offered = sent - sentAtStart;
    const skipped = overflow - overflowAtStart;
    running = false;
    const drained = await waitFor(() => clients.every((c) => c.inflight === 0), 15_000, failure);
    if (!drained) throw new Error('some messages were never echoed back (within 15 s)');
    await closeMany(clients);
    const w = windowOf(a, b);
    const lat = samples.subarray(0, nSamples).sort();
    const pct = (p) => (nSamples === 0 ? NaN : lat[Math.min(nSamples - 1, Math.floor((p / 100) * nSamples))]);
    return {
      ...w,
      targetRate: rate,
      offered,
      skipped, // messages not sent because a connection had `cap` in flight: the rate was not sustained
      samples: nSamples,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      p999: pct(99.9),
      max: nSamples ? lat[nSamples - 1] : NaN,
      cpuSecPerMillion: w.serverCpuSec / (w.count / 1e6),
    };
  } finally {
    running = false;
    for (const c of clients) if (c.open && !c.closing) c.destroy();
  }
}

/**
 * paced() with the C generator (bench/cgen/loadgen.c, mode `paced`): the same rate spread evenly
 * by a busy-polling loop, the same round-robin over the connections, each message timed from its
 * send() to the read that completes its echo, in C (no GC or event-loop turn of the generator's
 * own in the times). The same result as paced().
 */
async function pacedC(o) {
  const w = await runC(o, 'paced', { path: '/echo', conns: o.conns, text: o.text, window: o.rate });
  const [samples, p50, p90, p99, p999, max, offered, skipped] = w.latency;
  const { latency: _, sent: __, ...window } = w;
  return {
    ...window,
    targetRate: o.rate,
    offered,
    skipped,
    samples,
    p50,
    p90,
    p99,
    p999,
    max,
    cpuSecPerMillion: w.serverCpuSec / (w.count / 1e6),
  };
}

// ---- broadcast: one client triggers, the server fans out to every client ----------------------------

async function broadcast(o) {
  const { port, clients: n, size, window, warmupMs, measureMs, serverPid, path = '/broadcast' } = o;
  if (o.cgen) {
    const w = await runC(o, 'broadcast', { path, conns: n, text: true });
    return { ...w, broadcastsPerSec: w.rate / n, broadcasts: w.sent };
  }
  const payload = payloadOf(size);
  const frame = clientFrame(OP.TEXT, payload);
  const flen = frame.length;
  const batch = repeatFrame(frame, window);
  const failure = failureChannel();
  let running = false;
  let sentB = 0;
  let deliveries = 0;
  const setup = messageSetup({ ...o, text: true }, payload);
  let sender = null;
  const pump = () => {
    if (!running) return;
    const room = window - (sentB - Math.floor(deliveries / n));
    if (room > 0) {
      sender.write(room === window ? batch : batch.subarray(0, room * flen));
      sentB += room;
    }
  };
  const clients = await openMany(n, port, path, {
    allowMasked: o.raw,
    setup(c) {
      setup(c);
      c.checkEvery = 64;
      c.onError = (_c, e) => failure.fail(e);
      c.onFrames = (cl, k) => {
        deliveries += k;
        cl.received += k;
        if (cl.received > sentB) failure.fail(new Error('a client received more broadcasts than were triggered'));
        pump();
      };
    },
  });
  sender = clients[0];
  try {
    running = true;
    pump();
    await Promise.race([sleep(warmupMs), failure.failed]);
    const a = snapshot(serverPid, deliveries);
    await Promise.race([sleep(measureMs), failure.failed]);
    const b = snapshot(serverPid, deliveries);
    running = false;
    const complete = await waitFor(() => deliveries === sentB * n, 20_000, failure);
    if (!complete) {
      const short = clients.filter((c) => c.received !== sentB).length;
      throw new Error(`${short} of ${n} clients did not receive all ${sentB} broadcasts (within 20 s)`);
    }
    const w = windowOf(a, b);
    if (w.count === 0) throw new Error('no broadcast was delivered during the measurement window');
    // Raw TCP forwards every chunk to every socket, close frames too: 5,000 closing handshakes
    // would send 25M close frames through it (one run timed out on that). It speaks no
    // WebSocket: its clients just go.
    if (o.raw) for (const c of clients) c.destroy();
    else await closeMany(clients, 10_000);
    return { ...w, broadcastsPerSec: w.rate / n, broadcasts: sentB };
  } finally {
    running = false;
    for (const c of clients) if (c.open && !c.closing) c.destroy();
  }
}

// ---- handshakes: open + close cycles, several concurrent ---------------------------------------------

async function handshakes(o) {
  const { port, concurrency, warmupMs, measureMs, serverPid } = o;
  if (o.cgen) return runC(o, 'handshakes', { path: '/echo', conns: concurrency, text: false, size: 0, window: 1 });
  const failure = failureChannel();
  let running = true;
  let cycles = 0;
  let active = 0;
  const loop = async () => {
    active++;
    try {
      while (running && failure.error === null) {
        const c = new Client({ allowMasked: o.raw });
        c.onError = (_c, e) => failure.fail(e);
        await c.connect(port, '/echo');
        const acked = await c.close(5000);
        if (!acked) throw new Error('the server sent no close frame back');
        if (c.closeCode !== 1000) throw new Error(`the server answered close 1000 with ${c.closeCode}`);
        cycles++;
      }
    } catch (e) {
      failure.fail(e);
    } finally {
      active--;
    }
  };
  for (let i = 0; i < concurrency; i++) loop();
  try {
    await Promise.race([sleep(warmupMs), failure.failed]);
    const a = snapshot(serverPid, cycles);
    await Promise.race([sleep(measureMs), failure.failed]);
    const b = snapshot(serverPid, cycles);
    running = false;
    if (!(await waitFor(() => active === 0, 10_000, failure))) throw new Error('handshake cycles did not finish');
    const w = windowOf(a, b);
    if (w.count === 0) throw new Error('no handshake cycle completed during the measurement window');
    return w;
  } finally {
    running = false;
  }
}

// ---- hold / release: idle connections for the memory scenario ---------------------------------------

let held = [];

async function hold(o) {
  const failure = failureChannel();
  const more = await openMany(o.conns, o.port, o.path ?? '/echo', {
    allowMasked: o.raw,
    headers: o.browserHeaders === true ? BROWSER_HEADERS : '',
    setup(c) {
      c.onError = (_c, e) => failure.fail(e);
    },
  });
  held.push(...more);
  await sleep(50);
  if (failure.error) throw failure.error;
  return { held: held.length };
}

/**
 * After `hold`: each held client sends one small text message and a ping, and waits for the
 * echo. The connections are then idle after traffic, as most connections of a real app are
 * (heap-breakdown --active).
 */
async function touch() {
  const failure = failureChannel();
  const text = Buffer.from('hello, idle');
  const before = held.map((c) => c.dataFrames);
  for (const c of held) {
    c.expectOpcode = OP.TEXT;
    c.expectLen = text.length;
    c.onError = (_c, e) => failure.fail(e);
    c.write(Buffer.concat([clientFrame(OP.TEXT, text), clientFrame(OP.PING, Buffer.from('p'))]));
  }
  if (!(await waitFor(() => held.every((c, i) => c.dataFrames > before[i]), 30_000, failure))) throw new Error('touch: not every echo came back within 30 s');
  await sleep(50);
  if (failure.error) throw failure.error;
  return { touched: held.length };
}

async function release() {
  const clients = held;
  held = [];
  const acked = await closeMany(clients, 10_000);
  return { closed: clients.length, acked };
}

// ---- fanout: one publisher, subscribers on one or two server processes (topics, issue 11) ---------

const DIGITS = 10;

/**
 * Subscribers split over `ports` (split[g] on ports[g]), one publisher on ports[0] whose every
 * message the servers deliver to every subscriber, here or through Redis. Each message carries a
 * sequence number (10 ASCII digits, then filler): every subscriber must get every message, in
 * order, exactly once, and the payload is checked byte for byte on every 64th message.
 *
 * 1. Priming: single messages until one reaches every subscriber (the servers' Redis
 *    subscriptions are then in place); gaps are allowed only here.
 * 2. Saturation: a window of `window` messages in flight, where a message counts as delivered
 *    when the *slowest* process's subscribers have got it on average (deliveries of that
 *    process ÷ its subscribers), so that no process's backlog can grow without bound.
 *    Deliveries/s counted at the subscribers over `measureMs` after `warmupMs`.
 * 3. Drain: every subscriber has every message.
 * 4. Latency: `rate` messages/s sent by a timer (each its own write), timed from the write to its
 *    arrival at each subscriber (all subscribers, both processes), over `pacedMs` after
 *    `pacedWarmupMs`.
 */
async function fanout(o) {
  const { ports, split, size, windows, warmupMs, measureMs, rate, pacedWarmupMs, pacedMs } = o;
  let window = 0;
  const serverPids = o.serverPids ?? [];
  const redisPid = o.redisPid ?? 0;
  const groups = ports.length;
  const total = split.reduce((a, b) => a + b, 0);
  const filler = payloadOf(size);
  const template = clientFrame(OP.TEXT, filler);
  const flen = template.length;
  const hlen = flen - size;
  const key = template.subarray(hlen - 4, hlen);
  const writeFrame = (buf, off, seq) => {
    template.copy(buf, off);
    let v = seq;
    for (let d = DIGITS - 1; d >= 0; d--) {
      buf[off + hlen + d] = (48 + (v % 10)) ^ key[d & 3];
      v = Math.floor(v / 10);
    }
  };
  const failure = failureChannel();
  let sent = 0; // messages sent (the next sequence number)
  let priming = true;
  const deliv = new Float64Array(groups); // deliveries per process since the end of priming
  const delivBase = new Float64Array(groups); // … at the start of the current saturation window
  let delivered = 0;
  let running = false;
  let sentBase = 0;
  // latency phase
  let pacedBase = Infinity;
  let sendTimes = null;
  let mStart = Infinity;
  let mEnd = Infinity;
  const samplesOf = split.map((n) => new Float64Array(Math.ceil(rate * ((pacedMs + pacedWarmupMs) / 1000 + 1)) * n + 1024));
  const nSamples = new Int32Array(groups);

  const onPayload = (cl, p, now) => {
    let seq = 0;
    for (let d = 0; d < DIGITS; d++) {
      const c = p[d] - 48;
      if (c < 0 || c > 9) {
        failure.fail(new Error('a delivered message does not start with its sequence number'));
        return;
      }
      seq = seq * 10 + c;
    }
    if (seq !== cl.nextSeq) {
      if (!priming || seq < cl.nextSeq) {
        failure.fail(new Error(`subscriber on process ${cl.group + 1} got message ${seq} after ${cl.nextSeq - 1} (lost, duplicated or reordered)`));
        return;
      }
    }
    cl.nextSeq = seq + 1;
    if (seq >= sent) {
      failure.fail(new Error(`subscriber got message ${seq}, which was never sent`));
      return;
    }
    if ((cl.dataFrames & 63) === 0 && !p.subarray(DIGITS).equals(filler.subarray(DIGITS))) {
      failure.fail(new Error('the payload bytes of a delivered message differ from what was published'));
      return;
    }
    if (priming) return;
    deliv[cl.group]++;
    delivered++;
    if (seq >= pacedBase) {
      const t = sendTimes[seq - pacedBase];
      if (t >= mStart && t < mEnd) {
        const g = cl.group;
        if (nSamples[g] < samplesOf[g].length) samplesOf[g][nSamples[g]++] = now - t;
      }
    }
  };

  let publisher = null;
  const minDone = () => {
    let m = Infinity;
    for (let g = 0; g < groups; g++) {
      const d = Math.floor((deliv[g] - delivBase[g]) / split[g]);
      if (d < m) m = d;
    }
    return m;
  };
  const pump = () => {
    if (!running) return;
    const room = window - (sent - sentBase - minDone());
    if (room <= 0) return;
    const buf = Buffer.allocUnsafe(room * flen);
    for (let j = 0; j < room; j++) writeFrame(buf, j * flen, sent + j);
    sent += room;
    publisher.write(buf);
  };

  const all = [];
  try {
    for (let g = 0; g < groups; g++) {
      const clients = await openMany(split[g], ports[g], '/sub', {
        setup(c) {
          c.expectOpcode = OP.TEXT;
          c.expectLen = size;
          c.group = g;
          c.onPayload = onPayload;
          c.onError = (_c, e) => failure.fail(e);
          c.onFrames = pump;
        },
      });
      all.push(...clients);
    }
    publisher = new Client();
    publisher.onError = (_c, e) => failure.fail(e);
    await publisher.connect(ports[0], '/pub');
    all.push(publisher);
    const subs = all.slice(0, total);
    const everyoneHas = (n) => subs.every((c) => c.nextSeq === n);

    // 1. priming
    let primed = false;
    for (let attempt = 0; attempt < 50 && !primed; attempt++) {
      const buf = Buffer.allocUnsafe(flen);
      writeFrame(buf, 0, sent);
      sent++;
      publisher.write(buf);
      primed = await waitFor(() => everyoneHas(sent), 100, failure);
    }
    if (!primed) throw new Error('priming: no message reached every subscriber within 5 s (is every server subscribed?)');
    priming = false;

    // 2. saturation, for each window size in turn (same connections), 3. drained after each
    const chunksAt = (list) => list.reduce((sum, c) => sum + c.chunks, 0);
    const byGroup = split.map((_, g) => subs.filter((c) => c.group === g));
    const saturation = [];
    for (const w of windows) {
      window = w;
      sentBase = sent;
      delivBase.set(deliv);
      running = true;
      pump();
      await Promise.race([sleep(warmupMs), failure.failed]);
      const a = fanoutSnapshot(serverPids, redisPid, delivered);
      const chunksA = byGroup.map(chunksAt);
      const delivA = Array.from(deliv);
      await Promise.race([sleep(measureMs), failure.failed]);
      const b = fanoutSnapshot(serverPids, redisPid, delivered);
      running = false;
      // Messages per TCP chunk read by a subscriber, per process: about how many messages the
      // server wrote to a socket at once (the generator may also read two writes in one chunk).
      const messagesPerChunk = byGroup.map((list, g) => (deliv[g] - delivA[g]) / Math.max(1, chunksAt(list) - chunksA[g]));
      if (!(await waitFor(() => everyoneHas(sent), 20_000, failure))) {
        const short = subs.filter((c) => c.nextSeq !== sent).length;
        throw new Error(`${short} of ${total} subscribers did not get all ${sent} messages (within 20 s)`);
      }
      const sat = fanoutWindow(a, b);
      if (sat.count === 0) throw new Error(`no message was delivered during the measurement window (${w} in flight)`);
      saturation.push({ window: w, ...sat, publishesPerSec: sat.count / total / sat.seconds, messagesPerChunk });
    }

    // 4. latency at a fixed rate
    pacedBase = sent;
    const nPaced = Math.ceil((rate * (pacedWarmupMs + pacedMs)) / 1000) + 16;
    sendTimes = new Float64Array(nPaced);
    const tStart = performance.now();
    let pacing = true;
    let behind = 0;
    const tick = () => {
      if (!pacing) return;
      const now = performance.now();
      const due = Math.min(nPaced, Math.floor(((now - tStart) * rate) / 1000) + 1);
      if (due - (sent - pacedBase) > 1) behind++;
      while (sent - pacedBase < due) {
        const buf = Buffer.allocUnsafe(flen);
        writeFrame(buf, 0, sent);
        sendTimes[sent - pacedBase] = performance.now();
        sent++;
        publisher.write(buf);
      }
      const next = tStart + ((sent - pacedBase) * 1000) / rate;
      setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
    await Promise.race([sleep(pacedWarmupMs), failure.failed]);
    const pa = fanoutSnapshot(serverPids, redisPid, delivered);
    mStart = pa.t;
    await Promise.race([sleep(pacedMs), failure.failed]);
    const pb = fanoutSnapshot(serverPids, redisPid, delivered);
    mEnd = pb.t;
    pacing = false;
    if (!(await waitFor(() => everyoneHas(sent), 20_000, failure))) throw new Error('latency phase: some messages never reached every subscriber (within 20 s)');
    const paced = fanoutWindow(pa, pb);
    const pct = (arr, n, p) => (n === 0 ? NaN : arr[Math.min(n - 1, Math.floor((p / 100) * n))]);
    const sorted = samplesOf.map((s, g) => s.subarray(0, nSamples[g]).sort());
    const nAll = sorted.reduce((s, x) => s + x.length, 0);
    const merged = new Float64Array(nAll);
    let off = 0;
    for (const s of sorted) {
      merged.set(s, off);
      off += s.length;
    }
    merged.sort();
    await closeMany(all, 10_000);
    const first = saturation[0];
    return {
      // the first window's figures at the top level; every window in `saturation`
      ...first,
      saturation,
      // The noise guard judges the worst of the timed windows.
      foreignCpuPct: Math.max(paced.foreignCpuPct, ...saturation.map((x) => x.foreignCpuPct)),
      stealPct: Math.max(paced.stealPct, ...saturation.map((x) => x.stealPct)),
      messages: sent,
      // the latency window
      paced: {
        targetRate: rate,
        deliveriesPerSec: paced.rate,
        expectedDeliveriesPerSec: rate * total,
        serverCpuPct: paced.serverCpuPct,
        redisCpuPct: paced.redisCpuPct,
        genCpuPct: paced.genCpuPct,
        noisePct: paced.foreignCpuPct + paced.stealPct,
        timerLate: behind,
        samples: nAll,
        p50: pct(merged, nAll, 50),
        p90: pct(merged, nAll, 90),
        p99: pct(merged, nAll, 99),
        max: nAll ? merged[nAll - 1] : NaN,
        byProcess: sorted.map((s) => ({ samples: s.length, p50: pct(s, s.length, 50), p99: pct(s, s.length, 99) })),
      },
      p50: pct(merged, nAll, 50),
      p99: pct(merged, nAll, 99),
    };
  } finally {
    running = false;
    for (const c of all) if (c.open && !c.closing) c.destroy();
  }
}

function ticksOfPids(pids) {
  let sum = 0;
  for (const pid of pids) sum += cpuTicks(pid);
  return sum;
}

function fanoutSnapshot(serverPids, redisPid, count) {
  return {
    t: performance.now(),
    count,
    serverTicks: ticksOfPids(serverPids),
    eachServerTicks: serverPids.map((pid) => cpuTicks(pid)),
    redisTicks: redisPid ? cpuTicks(redisPid) : 0,
    genTicks: cpuTicks(process.pid),
    system: systemTicks(),
  };
}

function fanoutWindow(a, b) {
  const seconds = (b.t - a.t) / 1000;
  const ticks = (x) => x / CLK_TCK;
  const server = ticks(b.serverTicks - a.serverTicks);
  const redis = ticks(b.redisTicks - a.redisTicks);
  const gen = ticks(b.genTicks - a.genTicks);
  const foreign = ticks(b.system.busy - a.system.busy) - server - redis - gen;
  return {
    seconds,
    count: b.count - a.count,
    rate: (b.count - a.count) / seconds,
    serverCpuSec: server,
    serverCpuPct: (100 * server) / seconds,
    serverCpuPctEach: b.eachServerTicks.map((t, i) => (100 * (t - a.eachServerTicks[i])) / CLK_TCK / seconds),
    redisCpuPct: (100 * redis) / seconds,
    genCpuPct: (100 * gen) / seconds,
    foreignCpuPct: Math.max(0, (100 * foreign) / seconds),
    stealPct: (100 * ticks(b.system.steal - a.system.steal)) / seconds,
  };
}

/** Writes one text message to every held connection (the memory-per-subscription measurement). */
async function say(o) {
  const frame = clientFrame(OP.TEXT, Buffer.from(o.text));
  for (const c of held) c.write(frame);
  return { written: held.length };
}

// ---- IPC ---------------------------------------------------------------------------------------------

const jobs = { echo, paced, broadcast, handshakes, hold, touch, release, fanout, say, ...deflateJobs({ failureChannel, snapshot, windowOf, waitFor, sleep }), ...h2Jobs({ failureChannel, snapshot, windowOf, waitFor, sleep }), ...streamJobs({ failureChannel, snapshot, windowOf, sleep }) };

process.on('message', async (job) => {
  const run = jobs[job?.kind];
  if (run === undefined) {
    process.send({ id: job?.id, ok: false, error: `unknown job ${job?.kind}` });
    return;
  }
  try {
    const result = await run(job);
    process.send({ id: job.id, ok: true, result });
  } catch (e) {
    process.send({ id: job.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ kind: 'ready', pid: process.pid });
