// The load generator's WebSockets-over-HTTP/2 jobs (the `http2` scenario), run by loadgen.mjs:
//
//   h2Echo     pipelined echo over extended CONNECT streams (RFC 8441): `conns` WebSockets
//              spread round-robin over `sessions` HTTP/2 connections, `window` messages in
//              flight per WebSocket, the client's receive windows as asked (lib/h2client.mjs)
//   h2Open     opens `conns` WebSockets, timed (sockets/s, server CPU per socket), and keeps them
//              open: `transport: 'h2'` as streams of ONE HTTP/2 connection, `'h1'` as that many
//              TCP connections with an HTTP/1.1 upgrade (lib/wsclient.mjs); at most
//              `concurrency` handshakes in flight either way
//   h2Release  closes what h2Open holds (closing handshakes, then the HTTP/2 connection)
//
// The checks are the echo scenario's (opcode, FIN, RSV, no mask, exact length, the payload bytes
// of every 16th message, every 4th from 64 KiB, every message echoed, nothing closed), plus
// HTTP/2's own: the server must advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, answer :status 200,
// and never reset or end a stream, send GOAWAY or break flow control.

import { OP, closeMany, openMany, payloadOf } from './wsclient.mjs';
import { DEFAULT_WINDOW, H2Session, dataBatch, openStreams } from './h2client.mjs';

async function openSessions(count, port, o, failure) {
  const sessions = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = new H2Session({ streamWindow: o.streamWindow ?? DEFAULT_WINDOW, sessionWindow: o.sessionWindow ?? DEFAULT_WINDOW, onError: (e) => failure.fail(e) });
      sessions.push(s);
      await s.connect(port);
    }
  } catch (e) {
    for (const s of sessions) s.destroy();
    throw e;
  }
  return sessions;
}

const sum = (list, f) => list.reduce((a, x) => a + f(x), 0);

export function h2Jobs({ failureChannel, snapshot, windowOf, waitFor, sleep }) {
  // ---- echo ---------------------------------------------------------------------------------------
  async function h2Echo(o) {
    const { conns, size, window, warmupMs, measureMs, serverPid } = o;
    const port = o.server === 'raised' ? o.h2BigPort : o.h2Port;
    if (!port) throw new Error(`no HTTP/2 port for server ${o.server}`);
    const payload = payloadOf(size);
    const opcode = o.text ? OP.TEXT : OP.BINARY;
    const failure = failureChannel();
    let running = true;
    let received = 0;
    const sessions = await openSessions(o.sessions, port, o, failure);
    let streams = [];
    try {
      streams = await openStreams(conns, sessions, '/echo', {
        setup(c) {
          c.expectOpcode = opcode;
          c.expectLen = size;
          c.expected = payload;
          c.checkEvery = size >= 65536 ? 4 : 16;
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
              cl.writeData(k === window ? cl.batch : cl.batch.subarray(0, k * cl.unitLength));
            }
          };
        },
      });
      // One pre-built window of DATA-framed messages per stream (its stream id is in every frame).
      for (const c of streams) {
        const { buffer, unitLength } = dataBatch(c.id, opcode, payload, window);
        c.batch = buffer;
        c.unitLength = unitLength;
      }
      for (const c of streams) {
        c.inflight = window;
        c.writeData(c.batch);
      }
      await Promise.race([sleep(warmupMs), failure.failed]);
      const a = snapshot(serverPid, received);
      const statsA = { stalls: sum(sessions, (s) => s.stalls), chunks: sum(sessions, (s) => s.chunks), dataFrames: sum(sessions, (s) => s.dataFrames), windowUpdates: sum(sessions, (s) => s.windowUpdates) };
      await Promise.race([sleep(measureMs), failure.failed]);
      const b = snapshot(serverPid, received);
      const statsB = { stalls: sum(sessions, (s) => s.stalls), chunks: sum(sessions, (s) => s.chunks), dataFrames: sum(sessions, (s) => s.dataFrames), windowUpdates: sum(sessions, (s) => s.windowUpdates) };
      running = false;
      const drained = await waitFor(() => streams.every((c) => c.inflight === 0), 15_000, failure);
      if (!drained) {
        const missing = streams.reduce((s, c) => s + c.inflight, 0);
        throw new Error(`${missing} messages were never echoed back (within 15 s)`);
      }
      const w = windowOf(a, b);
      if (w.count === 0) throw new Error('no message was echoed during the measurement window');
      const acked = await closeMany(streams);
      if (acked !== streams.length) throw new Error(`${streams.length - acked} of ${streams.length} streams got no close frame back`);
      await Promise.all(sessions.map((s) => s.close()));
      const per = (k) => (statsB[k] - statsA[k]) / w.seconds;
      return {
        ...w,
        bytesPerSec: w.rate * size,
        msgs: received,
        // flow control and framing, over the timed window (all sessions)
        stallsPerSec: per('stalls'),
        windowUpdatesPerSec: per('windowUpdates'),
        dataFramesPerSec: per('dataFrames'),
        dataFramesPerChunk: (statsB.dataFrames - statsA.dataFrames) / Math.max(1, statsB.chunks - statsA.chunks),
        peerSettings: sessions[0].peerSettings,
      };
    } finally {
      running = false;
      for (const c of streams) if (c?.open && !c.closing) c.destroy();
      for (const s of sessions) if (!s.dead) s.destroy();
    }
  }

  // ---- open N and hold them ------------------------------------------------------------------------
  let held = { clients: [], sessions: [] };

  async function h2Open(o) {
    const { transport, conns, serverPid } = o;
    const concurrency = o.concurrency ?? 200;
    const failure = failureChannel();
    const onError = (_c, e) => failure.fail(e);
    const a = snapshot(serverPid, 0);
    let clients;
    let sessions = [];
    if (transport === 'h2') {
      sessions = await openSessions(1, o.port, o, failure);
      held.sessions.push(...sessions);
      clients = await openStreams(conns, sessions, o.path ?? '/echo', {
        concurrency,
        setup(c) {
          c.onError = onError;
        },
      });
    } else {
      clients = await openMany(conns, o.port, o.path ?? '/echo', {
        concurrency,
        setup(c) {
          c.onError = onError;
        },
      });
    }
    const b = snapshot(serverPid, conns);
    held.clients.push(...clients);
    await sleep(50);
    if (failure.error) throw failure.error;
    const w = windowOf(a, b);
    return { ...w, socketsPerSec: w.rate, serverCpuMicrosPerSocket: (w.serverCpuSec / conns) * 1e6, held: held.clients.length, tcpConnections: transport === 'h2' ? 1 : conns };
  }

  async function h2Release() {
    const { clients, sessions } = held;
    held = { clients: [], sessions: [] };
    const acked = await closeMany(clients, 10_000);
    await Promise.all(sessions.map((s) => s.close()));
    return { closed: clients.length, acked };
  }

  return { h2Echo, h2Open, h2Release };
}
