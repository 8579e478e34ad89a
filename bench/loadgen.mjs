// The load generator: a separate process (pinned to its own core by run.mjs) that takes jobs over
// IPC and answers with measurements. Raw net sockets, pre-built masked frames, pipelined windows,
// and every reply validated (see lib/wsclient.mjs).
//
// Jobs: echo (pipelined throughput), paced (fixed rate: latency and server CPU), broadcast
// (fan-out deliveries/s), handshakes (open+close cycles/s), hold/release (idle connections).

import { performance } from 'node:perf_hooks';
import { CLK_TCK, cpuTicks, systemTicks } from './lib/proc.mjs';
import { Client, OP, clientFrame, closeMany, maskPayload, openMany, payloadOf, repeatFrame } from './lib/wsclient.mjs';

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
      c.onFrames = (cl, k) => {
        received += k;
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

// ---- paced: fixed total rate, latency and server CPU -------------------------------------------------

async function paced(o) {
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

// ---- broadcast: one client triggers, the server fans out to every client ----------------------------

async function broadcast(o) {
  const { port, clients: n, size, window, warmupMs, measureMs, serverPid } = o;
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
  const clients = await openMany(n, port, '/broadcast', {
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
    await closeMany(clients, 10_000);
    return { ...w, broadcastsPerSec: w.rate / n, broadcasts: sentB };
  } finally {
    running = false;
    for (const c of clients) if (c.open && !c.closing) c.destroy();
  }
}

// ---- handshakes: open + close cycles, several concurrent ---------------------------------------------

async function handshakes(o) {
  const { port, concurrency, warmupMs, measureMs, serverPid } = o;
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
    setup(c) {
      c.onError = (_c, e) => failure.fail(e);
    },
  });
  held.push(...more);
  await sleep(50);
  if (failure.error) throw failure.error;
  return { held: held.length };
}

async function release() {
  const clients = held;
  held = [];
  const acked = await closeMany(clients, 10_000);
  return { closed: clients.length, acked };
}

// ---- IPC ---------------------------------------------------------------------------------------------

const jobs = { echo, paced, broadcast, handshakes, hold, release };

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
