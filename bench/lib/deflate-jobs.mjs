// The load generator's permessage-deflate jobs (issue 12), run by loadgen.mjs:
//
//   deflateEcho       pipelined echo of compressed JSON-like text (msg/s), clients offering
//                     permessage-deflate like a browser and sending compressed messages
//   deflateBroadcast  one client sends compressed messages to /broadcast, the server sends each
//                     to every client (deliveries/s counted at the clients, every one compressed)
//   deflateHold       N idle connections that negotiated permessage-deflate (memory scenario)
//   deflateActivate   each held connection sends one compressed message and gets its
//                     compressed echo, so both servers hold whatever zlib state they keep
//   deflateRelease    closes the held connections
//
// Corpus: lib/corpus.mjs (seeded, the same bytes for every target). Checks: lib/deflate-client.mjs.

import { jsonCorpus } from './corpus.mjs';
import { DeflateClient } from './deflate-client.mjs';
import { closeMany, openMany } from './wsclient.mjs';
import { sendCycle } from './pmd.mjs';

/** Distinct messages in a corpus: at least 32, and together more than twice a 32 KiB window. */
export function corpusCount(size) {
  return Math.max(32, Math.ceil((64 * 1024) / size));
}

/** All clients negotiated the same thing (they must: same offer, same server). */
function agreementOf(clients) {
  const a = clients[0].agreement;
  for (const c of clients) if (c.agreement.header !== a.header) throw new Error(`clients negotiated different parameters: ${a.header} vs ${c.agreement.header}`);
  return a;
}

function wireStats(clients, size) {
  let wire = 0;
  let msgs = 0;
  let inflated = 0;
  for (const c of clients) {
    wire += c.wireBytes;
    msgs += c.compressedMsgs;
    inflated += c.inflated;
  }
  return { serverRatio: msgs ? wire / (msgs * size) : NaN, compressedMsgs: msgs, inflated };
}

export function deflateJobs({ failureChannel, snapshot, windowOf, waitFor, sleep }) {
  // ---- echo -----------------------------------------------------------------------------------
  async function deflateEcho(o) {
    const { port, conns, size, window, warmupMs, measureMs, serverPid } = o;
    const corpus = jsonCorpus(size, corpusCount(size));
    if (window > corpus.length) throw new Error(`window ${window} > corpus ${corpus.length}`);
    const failure = failureChannel();
    let running = true;
    let received = 0;
    let cycle = null;
    const clients = await openMany(conns, port, '/echo', {
      make: () => new DeflateClient({ corpus, checkEvery: o.checkEvery ?? (size >= 65536 ? 4 : 16) }),
      setup(c) {
        c.onError = (_c, e) => failure.fail(e);
        c.onFrames = (cl, k) => {
          received += k;
          cl.inflight -= k;
          if (cl.inflight < 0) {
            failure.fail(new Error('more echoes than messages sent'));
            return;
          }
          if (running) {
            cl.write(cycle.slice(cl.sent, k));
            cl.sent += k;
            cl.inflight += k;
          }
        };
      },
    });
    try {
      const agreement = agreementOf(clients);
      cycle = sendCycle(corpus, agreement);
      for (const c of clients) {
        c.inflight = window;
        c.sent = window;
        c.write(cycle.slice(0, window));
      }
      await Promise.race([sleep(warmupMs), failure.failed]);
      // Steady state: every connection has had its zlib state created (a first window echoed).
      if (!(await waitFor(() => clients.every((c) => c.compressedMsgs >= window), 30_000, failure))) throw new Error('warm-up: some connections got no echo within 30 s');
      const a = snapshot(serverPid, received);
      await Promise.race([sleep(measureMs), failure.failed]);
      const b = snapshot(serverPid, received);
      running = false;
      const drained = await waitFor(() => clients.every((c) => c.inflight === 0), 30_000, failure);
      if (!drained) throw new Error(`${clients.reduce((s, c) => s + c.inflight, 0)} messages were never echoed back (within 30 s)`);
      for (const c of clients) if (c.compressedMsgs !== c.sent) throw new Error(`a client sent ${c.sent} messages and got ${c.compressedMsgs} compressed echoes`);
      const w = windowOf(a, b);
      if (w.count === 0) throw new Error('no message was echoed during the measurement window');
      await closeMany(clients);
      return { ...w, bytesPerSec: w.rate * size, msgs: received, agreement: agreement.header, clientRatio: cycle.ratio, ...wireStats(clients, size), corpus: corpus.length };
    } finally {
      running = false;
      for (const c of clients) {
        if (c.open && !c.closing) c.destroy();
        c.release();
      }
    }
  }

  // ---- broadcast ----------------------------------------------------------------------------------
  async function deflateBroadcast(o) {
    const { port, clients: n, size, window, warmupMs, measureMs, serverPid } = o;
    const corpus = jsonCorpus(size, corpusCount(size));
    if (window > corpus.length) throw new Error(`window ${window} > corpus ${corpus.length}`);
    const failure = failureChannel();
    let running = false;
    let sentB = 0;
    let deliveries = 0;
    let sender = null;
    let cycle = null;
    const pump = () => {
      if (!running) return;
      const room = window - (sentB - Math.floor(deliveries / n));
      if (room > 0) {
        sender.write(cycle.slice(sentB, room));
        sentB += room;
      }
    };
    const clients = await openMany(n, port, '/broadcast', {
      make: () => new DeflateClient({ corpus, checkEvery: o.checkEvery ?? 64 }),
      setup(c) {
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
      const agreement = agreementOf(clients);
      cycle = sendCycle(corpus, agreement);
      running = true;
      pump();
      await Promise.race([sleep(warmupMs), failure.failed]);
      // Steady state: every client has had two broadcasts, so a server that creates a
      // compressor per socket on first use (ws) has done so before the window opens.
      if (!(await waitFor(() => clients.every((c) => c.received >= 2), 60_000, failure))) throw new Error('warm-up: some clients got fewer than 2 broadcasts within 60 s');
      const a = snapshot(serverPid, deliveries);
      await Promise.race([sleep(measureMs), failure.failed]);
      const b = snapshot(serverPid, deliveries);
      running = false;
      const complete = await waitFor(() => deliveries === sentB * n, 60_000, failure);
      if (!complete) {
        const short = clients.filter((c) => c.received !== sentB).length;
        throw new Error(`${short} of ${n} clients did not receive all ${sentB} broadcasts (within 60 s)`);
      }
      const w = windowOf(a, b);
      if (w.count === 0) throw new Error('no broadcast was delivered during the measurement window');
      await closeMany(clients, 10_000);
      return { ...w, broadcastsPerSec: w.rate / n, broadcasts: sentB, agreement: agreement.header, clientRatio: cycle.ratio, ...wireStats(clients, size), corpus: corpus.length };
    } finally {
      running = false;
      for (const c of clients) {
        if (c.open && !c.closing) c.destroy();
        c.release();
      }
    }
  }

  // ---- hold / activate / release: memory per compressed connection ---------------------------------
  let held = [];
  let heldFailure = null;

  async function deflateHold(o) {
    const corpus = jsonCorpus(o.size, 1);
    heldFailure = failureChannel();
    const failure = heldFailure;
    const more = await openMany(o.conns, o.port, o.path ?? '/echo', {
      make: () => new DeflateClient({ corpus, checkEvery: 1, oneMessage: true }),
      setup(c) {
        c.onError = (_c, e) => failure.fail(e);
        c.onFrames = (cl, k) => {
          cl.received += k;
        };
      },
    });
    held.push(...more);
    await sleep(50);
    if (failure.error) throw failure.error;
    return { held: held.length, agreement: agreementOf(held).header };
  }

  /**
   * Each held connection sends one compressed message (the corpus' first, compressed on its own:
   * a first message never refers back) and must get it back compressed. The reply is the first
   * message on its connection, so it inflates on its own whatever the server's context mode, and
   * the generator keeps no zlib state for 10,000 connections.
   */
  async function deflateActivate(o) {
    const failure = heldFailure;
    const cycle = sendCycle(held[0].corpus, held[0].agreement);
    const frame = cycle.slice(0, 1);
    for (const c of held) {
      c.write(frame);
      c.sent = 1;
    }
    const ok = await waitFor(() => held.every((c) => c.received === 1), o.timeoutMs ?? 60_000, failure);
    if (!ok) throw new Error(`${held.filter((c) => c.received !== 1).length} of ${held.length} connections got no echo (within ${(o.timeoutMs ?? 60_000) / 1000} s)`);
    const stats = wireStats(held, held[0].corpus[0].length);
    if (stats.inflated !== held.length) throw new Error(`${stats.inflated} echoes inflated and checked, expected ${held.length}`);
    return { activated: held.length, clientRatio: frame.length / held[0].corpus[0].length, ...stats };
  }

  async function deflateRelease() {
    const clients = held;
    held = [];
    const acked = await closeMany(clients, 10_000);
    return { closed: clients.length, acked };
  }

  return { deflateEcho, deflateBroadcast, deflateHold, deflateActivate, deflateRelease };
}
