// A deterministic corpus of JSON-like application messages for the permessage-deflate scenario:
// chat/event payloads (ids, user names, timestamps, prices, short sentences, a few non-ASCII
// characters) built from a seeded PRNG, so that every run and both servers see the same bytes,
// and so that they compress like real app messages (ratio ~0.2-0.4), not like zeros or noise.
//
// Every message is valid JSON, valid UTF-8 and exactly `size` bytes long (a trailing "pad"
// field of words takes up the rest).

/** mulberry32: a small, fast, seeded 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the be to of and a in that have it for not on with he as you do at this but his by from they we say her she or an will my one all would there ' +
  'their what so up out if about who get which go me when make can like time no just him know take people into year your good some could them see ' +
  'other than then now look only come its over think also back after use two how our work first well way even new want because any these give day ' +
  'most us is are was were been has had did said made meeting deploy release build test server client message update order invoice payment ' +
  'account status pending shipped delivered cancelled refund review comment thread channel notification reminder schedule project ticket issue ' +
  'priority urgent normal low high draft published archived session token expired renewed upload download image video document folder shared ' +
  'private public team member admin owner guest invite accepted declined today tomorrow yesterday morning evening weekend please thanks sorry ' +
  'great awesome done fixed broken slow fast ready waiting blocked merged approved rejected latency error warning info debug metric alert'
).split(' ');
const FIRST = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'zoë', 'josé', 'françois', 'søren', 'łukasz', 'yūki', 'mía'];
const LAST = ['smith', 'jones', 'garcía', 'müller', 'dubois', 'rossi', 'tanaka', 'kowalski', 'nguyen', 'silva', 'andersen', 'ivanova', 'o’brien', 'schmidt', 'martin', 'lópez'];
const TYPES = ['message', 'presence', 'typing', 'reaction', 'order.updated', 'invoice.paid', 'ticket.assigned', 'metric.sample', 'notification'];
const ROOMS = ['general', 'random', 'engineering', 'support', 'sales-emea', 'ops-alerts', 'design', 'release-2024'];
const STATUS = ['online', 'away', 'busy', 'offline'];
const EMOJI = ['👍', '🎉', '🚀', '👀', '✅', '❤️', '😂'];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'JPY', 'SEK'];

function maker(rand) {
  const int = (n) => Math.floor(rand() * n);
  const pick = (list) => list[int(list.length)];
  const hex = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[int(16)];
    return s;
  };
  const sentence = (min, max) => {
    const n = min + int(max - min + 1);
    const w = [];
    for (let i = 0; i < n; i++) w.push(pick(WORDS));
    if (rand() < 0.15) w.push(pick(EMOJI));
    const s = w.join(' ');
    return s[0].toUpperCase() + s.slice(1) + (rand() < 0.2 ? '?' : '.');
  };
  const user = () => ({ id: 1000 + int(90_000), name: `${pick(FIRST)}.${pick(LAST)}`, status: pick(STATUS) });
  let ts = 1_718_000_000_000 + int(1e9);
  const event = () => {
    ts += int(5000);
    const type = pick(TYPES);
    const e = { type, id: `${type.split('.')[0].slice(0, 3)}_${hex(12)}`, ts };
    if (type === 'message' || type === 'notification') {
      Object.assign(e, { room: pick(ROOMS), user: user(), text: sentence(4, 24), edited: rand() < 0.1 });
      if (rand() < 0.4) e.reactions = Array.from({ length: 1 + int(3) }, () => ({ emoji: pick(EMOJI), count: 1 + int(12) }));
    } else if (type === 'order.updated' || type === 'invoice.paid') {
      e.customer = user();
      e.currency = pick(CURRENCIES);
      e.items = Array.from({ length: 1 + int(4) }, () => ({ sku: `SKU-${hex(6).toUpperCase()}`, qty: 1 + int(9), price: Math.round(rand() * 50_000) / 100 }));
      e.total = Math.round(e.items.reduce((s, x) => s + x.qty * x.price, 0) * 100) / 100;
      e.status = pick(['pending', 'paid', 'shipped', 'delivered', 'refunded']);
    } else if (type === 'metric.sample') {
      Object.assign(e, { host: `web-${int(40)}.eu-west-${1 + int(3)}`, cpu: Math.round(rand() * 1000) / 10, mem: Math.round(rand() * 64_000), p99: Math.round(rand() * 250_000) / 1000 });
    } else {
      Object.assign(e, { room: pick(ROOMS), user: user(), note: sentence(2, 8) });
    }
    return e;
  };
  const pad = (n) => {
    let s = '';
    while (s.length < n) s += `${pick(WORDS)} `;
    return s.slice(0, n);
  };
  return { event, pad, int };
}

/**
 * `count` distinct messages of exactly `size` bytes each (UTF-8), deterministic for a given seed.
 * Each is `{"seq":i,"events":[…],"pad":"…"}`; sizes below ~40 bytes get just the pad.
 */
export function jsonCorpus(size, count, seed = 12) {
  const rand = prng(seed ^ Math.imul(size, 2654435761));
  const m = maker(rand);
  const out = [];
  for (let i = 0; i < count; i++) {
    const head = `{"seq":${i},"events":[`;
    const tail = (padLen) => `],"pad":"${m.pad(padLen)}"}`;
    const fixed = Buffer.byteLength(head) + Buffer.byteLength(tail(0));
    let events = '';
    let used = fixed;
    for (;;) {
      const e = JSON.stringify(m.event());
      const add = Buffer.byteLength(e) + (events ? 1 : 0);
      if (used + add > size) break;
      events += (events ? ',' : '') + e;
      used += add;
    }
    if (used > size) {
      // too small for the envelope: a bare string of words
      out.push(Buffer.from(JSON.stringify(m.pad(Math.max(0, size - 2)))));
      continue;
    }
    const text = head + events + tail(size - used);
    const b = Buffer.from(text);
    if (b.length !== size) throw new Error(`corpus: built ${b.length} bytes, wanted ${size}`);
    out.push(b);
  }
  return out;
}
