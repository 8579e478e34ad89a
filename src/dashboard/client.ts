// The dashboard page's own script, run in the browser: it reads the live feed (Server-Sent
// Events) and draws the charts as inline SVG. It is plain ES2020 in a string, so the server can
// hash it for the page's Content-Security-Policy (no 'unsafe-inline'); it has no template
// literals (this file's own would interpolate them) and never writes HTML: every piece of data
// (route patterns, addresses, codes) reaches the page as textContent or an SVG attribute value.
// The page's tests (test/dashboard/, test/browser/dashboard.test.ts) run it in Chromium.

/** The page script, exactly as inlined and hashed. */
export const CLIENT_SCRIPT: string = String.raw`
'use strict';
(function () {
  var SVG = 'http://www.w3.org/2000/svg';
  // The feed and the snapshot are beside the page, whether it was opened as /mount or /mount/.
  var here = location.pathname;
  var base = here.charAt(here.length - 1) === '/' ? here : here + '/';

  var integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  var fine = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  var compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  var CLOSE_NAMES = {
    1000: 'normal', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data',
    1005: 'no code', 1006: 'dropped', 1007: 'invalid data', 1008: 'policy', 1009: 'too big',
    1010: 'extension', 1011: 'server error', 1012: 'restart', 1013: 'try again', 1015: 'TLS',
    other: 'other codes'
  };
  var TOP_CLOSE_CODES = 10;

  /** The newest snapshot and the line charts' points. */
  var view = { snapshot: null, history: [] };

  function byId(id) { return document.getElementById(id); }
  function element(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgElement(tag, attributes, text) {
    var e = document.createElementNS(SVG, tag);
    for (var name in attributes) e.setAttribute(name, String(attributes[name]));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- numbers in words ------------------------------------------------------------------
  function missing(n) { return n === null || n === undefined || !isFinite(n); }
  function count(n) { return missing(n) ? '–' : integer.format(n); }
  function perSecond(n) {
    if (missing(n)) return '–';
    return n < 100 ? decimal.format(n) : n < 100000 ? integer.format(n) : compact.format(n);
  }
  function bytes(n) {
    if (missing(n)) return '–';
    var unit = 0;
    while (n >= 1024 && unit < UNITS.length - 1) { n /= 1024; unit++; }
    return (unit === 0 ? integer.format(n) : decimal.format(n)) + ' ' + UNITS[unit];
  }
  function seconds(s) {
    if (s < 0.001) return decimal.format(s * 1000) + ' ms';
    if (s < 1) return integer.format(s * 1000) + ' ms';
    return decimal.format(s) + ' s';
  }
  function shortSeconds(s) {
    return s < 1 ? decimal.format(s * 1000) + 'ms' : decimal.format(s) + 's';
  }
  function milliseconds(ms) {
    if (missing(ms)) return '–';
    return (ms < 10 ? decimal.format(ms) : integer.format(ms)) + ' ms';
  }
  function ago(ms) {
    if (ms === 0) return 'now';
    return ms % 60000 === 0 ? '−' + ms / 60000 + 'm' : '−' + ms / 1000 + 's';
  }

  /** The smallest of 1, 2, 2.5, 5 × 10^k at least raw (whole numbers only, for counts). */
  function roundStep(raw, whole) {
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i] * power;
      if (step >= raw * 0.999 && (!whole || step % 1 === 0)) return step;
    }
    return 10 * power;
  }
  /**
   * The y grid for values up to max: about four round steps and a little room above max. For
   * bytes the step is round in a power of 1024 (unit), at most 200 of it (so the top tick stays
   * under about 1,000): the ticks read 200 KiB, 400 KiB… or 0.25 MiB, 0.5 MiB…
   */
  function scale(max, whole, binary) {
    var raw = max > 0 ? max / 4 : 0.25;
    var unit = 1;
    if (binary) while (unit < Math.pow(1024, 5) && raw > unit * 200) unit *= 1024;
    var step = roundStep(raw / unit, whole && unit === 1) * unit;
    var n = max > 0 ? Math.max(1, Math.ceil((max * 1.04) / step)) : 4;
    return { step: step, n: n, unit: unit };
  }
  /** A tick label in the grid's unit (bytes) or as the chart's own numbers. */
  function tickText(kind, grid, v) {
    if (kind === 'bytes') return v === 0 ? '0' : fine.format(v / grid.unit) + ' ' + UNITS[Math.round(Math.log(grid.unit) / Math.log(1024))];
    return kind === 'rate' ? perSecond(v) : count(v);
  }

  /** The bucket holding the q-quantile of a histogram, or -1 when it is empty. */
  function quantileBucket(h, q) {
    if (h.count === 0) return -1;
    var target = q * h.count;
    var run = 0;
    for (var i = 0; i < h.counts.length; i++) {
      run += h.counts[i];
      if (run >= target) return i;
    }
    return h.counts.length - 1;
  }
  function bucketText(h, i) {
    if (i < 0) return '–';
    return i < h.bounds.length ? '≤ ' + seconds(h.bounds[i]) : '> ' + seconds(h.bounds[h.bounds.length - 1]);
  }

  function sizeOf(svg, height) {
    var width = Math.max(260, Math.floor(svg.parentNode.clientWidth));
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    return width;
  }
  function empty(svg, width, height, text) {
    svg.appendChild(svgElement('text', { 'class': 'empty', x: width / 2, y: height / 2, 'text-anchor': 'middle' }, text));
  }

  // ---- line charts -----------------------------------------------------------------------
  /**
   * Draws series ({ key, className }) of the history over the last span, on a y axis of kind
   * 'count', 'rate' or 'bytes'. A line breaks where points are missing (no page watched, so no
   * samples were taken).
   */
  function lineChart(svg, series, kind) {
    var snapshot = view.snapshot;
    var height = 180;
    var width = sizeOf(svg, height);
    var left = 64, right = 12, top = 10, bottom = 24;
    var end = snapshot.time, start = end - snapshot.span;
    var points = view.history.filter(function (p) { return p.time >= start && p.time <= end; });
    var max = 0;
    points.forEach(function (p) {
      series.forEach(function (s) { if (!missing(p[s.key]) && p[s.key] > max) max = p[s.key]; });
    });
    var grid = scale(max, kind !== 'rate', kind === 'bytes');
    var ceiling = grid.step * grid.n;
    function x(t) { return left + ((t - start) / (end - start)) * (width - left - right); }
    function y(v) { return top + (1 - v / ceiling) * (height - top - bottom); }

    for (var i = 0; i <= grid.n; i++) {
      var gy = y(grid.step * i);
      svg.appendChild(svgElement('line', { 'class': i === 0 ? 'axis' : 'grid', x1: left, x2: width - right, y1: gy, y2: gy }));
      svg.appendChild(svgElement('text', { 'class': 'tick', x: left - 6, y: gy + 4, 'text-anchor': 'end' }, tickText(kind, grid, grid.step * i)));
    }
    var tickSizes = [10000, 30000, 60000, 120000, 300000, 600000, 900000, 1800000, 3600000];
    var tick = tickSizes[tickSizes.length - 1];
    for (var t = 0; t < tickSizes.length; t++) if (snapshot.span / tickSizes[t] <= 6) { tick = tickSizes[t]; break; }
    for (var back = 0; back <= snapshot.span; back += tick) {
      var gx = x(end - back);
      svg.appendChild(svgElement('line', { 'class': 'grid', x1: gx, x2: gx, y1: top, y2: height - bottom }));
      var anchor = back === 0 ? 'end' : back === snapshot.span ? 'start' : 'middle';
      svg.appendChild(svgElement('text', { 'class': 'tick', x: gx, y: height - 6, 'text-anchor': anchor }, ago(back)));
    }

    series.forEach(function (s) {
      var runs = [];
      var run = null;
      var previous = null;
      points.forEach(function (p) {
        var v = p[s.key];
        if (missing(v)) { run = null; previous = null; return; }
        if (run === null || (previous !== null && p.time - previous.time > 2.5 * snapshot.interval)) { run = []; runs.push(run); }
        run.push([x(p.time), y(v)]);
        previous = p;
      });
      runs.forEach(function (r) {
        var line = r.map(function (xy, k) { return (k === 0 ? 'M' : 'L') + xy[0].toFixed(1) + ' ' + xy[1].toFixed(1); }).join('');
        var floor = y(0).toFixed(1);
        var area = line + 'L' + r[r.length - 1][0].toFixed(1) + ' ' + floor + 'L' + r[0][0].toFixed(1) + ' ' + floor + 'Z';
        svg.appendChild(svgElement('path', { 'class': 'area ' + s.className, d: area }));
        svg.appendChild(svgElement('path', { 'class': 'line ' + s.className, d: line }));
      });
      var last = runs.length > 0 ? runs[runs.length - 1] : null;
      if (last !== null) {
        var xy = last[last.length - 1];
        svg.appendChild(svgElement('circle', { 'class': 'dot ' + s.className, cx: xy[0].toFixed(1), cy: xy[1].toFixed(1), r: 3 }));
      }
    });
  }

  // ---- close codes: horizontal bars ------------------------------------------------------
  function closeChart(svg, closes) {
    var entries = Object.keys(closes).map(function (code) { return [code, closes[code]]; });
    entries.sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
    if (entries.length > TOP_CLOSE_CODES) {
      var rest = entries.slice(TOP_CLOSE_CODES - 1).reduce(function (n, e) { return n + e[1]; }, 0);
      entries = entries.slice(0, TOP_CLOSE_CODES - 1).concat([['other', rest]]);
    }
    var row = 24;
    var height = Math.max(72, entries.length * row + 12);
    var width = sizeOf(svg, height);
    if (entries.length === 0) return empty(svg, width, height, 'no connection has closed yet');
    var labelWidth = Math.min(170, Math.floor(width * 0.42));
    var room = width - labelWidth - 64;
    var max = entries[0][1];
    entries.forEach(function (e, i) {
      var code = e[0];
      var name = CLOSE_NAMES[code];
      var yy = 6 + i * row;
      var kind = code === '1000' || code === '1001' ? 'ok' : code === '1006' || code === '1011' || code === '1002' || code === '1007' ? 'bad' : 'warn';
      var w = Math.max(2, (e[1] / max) * room);
      var g = svgElement('g', { 'class': 'close-code', 'data-code': code });
      g.appendChild(svgElement('text', { 'class': 'label', x: labelWidth - 8, y: yy + 13, 'text-anchor': 'end' }, code === 'other' ? name : code + (name ? ' ' + name : '')));
      g.appendChild(svgElement('rect', { 'class': 'bar ' + kind, x: labelWidth, y: yy + 2, width: w.toFixed(1), height: row - 8, rx: 3 }));
      g.appendChild(svgElement('text', { 'class': 'value', x: labelWidth + w + 6, y: yy + 13 }, count(e[1])));
      svg.appendChild(g);
    });
  }

  // ---- heartbeat round trips: a histogram --------------------------------------------------
  function rttChart(svg, h) {
    var height = 180;
    var width = sizeOf(svg, height);
    if (h.count === 0) return empty(svg, width, height, 'no heartbeat round trip yet');
    var left = 44, right = 8, top = 10, bottom = 24;
    var n = h.counts.length;
    var max = Math.max.apply(null, h.counts);
    var grid = scale(max, true, false);
    var ceiling = grid.step * grid.n;
    var slot = (width - left - right) / n;
    function y(v) { return top + (1 - v / ceiling) * (height - top - bottom); }
    for (var i = 0; i <= grid.n; i++) {
      var gy = y(grid.step * i);
      svg.appendChild(svgElement('line', { 'class': i === 0 ? 'axis' : 'grid', x1: left, x2: width - right, y1: gy, y2: gy }));
      svg.appendChild(svgElement('text', { 'class': 'tick', x: left - 6, y: gy + 4, 'text-anchor': 'end' }, compact.format(grid.step * i)));
    }
    for (var b = 0; b < n; b++) {
      var bx = left + b * slot;
      var top0 = y(h.counts[b]);
      var label = b < h.bounds.length ? shortSeconds(h.bounds[b]) : '>' + shortSeconds(h.bounds[h.bounds.length - 1]);
      if (h.counts[b] > 0) {
        var bar = svgElement('rect', { 'class': 'bar rtt', x: (bx + 1).toFixed(1), y: top0.toFixed(1), width: Math.max(1, slot - 2).toFixed(1), height: (y(0) - top0).toFixed(1), rx: 2 });
        bar.appendChild(svgElement('title', {}, bucketText(h, b) + ': ' + count(h.counts[b])));
        svg.appendChild(bar);
      }
      if (slot >= 44 || b % 2 === 0) {
        svg.appendChild(svgElement('text', { 'class': 'tick', x: (bx + slot / 2).toFixed(1), y: height - 6, 'text-anchor': 'middle' }, label));
      }
    }
  }

  // ---- tables -----------------------------------------------------------------------------
  function cell(row, text, className) {
    var td = element('td', className, text);
    row.appendChild(td);
    return td;
  }
  function fillTable(id, rows, columns, none) {
    var body = byId(id).tBodies[0];
    var fresh = document.createDocumentFragment();
    if (rows.length === 0) {
      var tr = element('tr', 'none');
      var td = cell(tr, none);
      td.colSpan = columns.length;
      fresh.appendChild(tr);
    }
    rows.forEach(function (r) {
      var row = element('tr');
      columns.forEach(function (c) { cell(row, c[1](r), c[0]); });
      fresh.appendChild(row);
    });
    while (body.firstChild) body.removeChild(body.firstChild);
    body.appendChild(fresh);
  }

  // ---- the page ---------------------------------------------------------------------------
  function setText(id, text) {
    var e = byId(id);
    if (e.textContent !== text) e.textContent = text;
  }
  function card(name, value, sub) {
    setText('card-' + name, value);
    setText('card-' + name + '-sub', sub);
  }

  function render() {
    var s = view.snapshot;
    if (s === null) return;
    var p = s.point;
    var t = s.totals;
    var h = s.heartbeatRtt;
    var p50 = quantileBucket(h, 0.5);
    var p99 = quantileBucket(h, 0.99);
    card('connections', count(s.connections), count(s.pendingHandshakes) + ' in verify() · ' + count(t.handshakesAccepted) + ' accepted · ' + count(t.handshakesRejected) + ' refused');
    card('messages-in', perSecond(p.messagesInPerSecond), count(t.messagesIn) + ' received');
    card('messages-out', perSecond(p.messagesOutPerSecond), count(t.messagesOut) + ' sent');
    card('bytes-in', missing(p.bytesInPerSecond) ? '–' : bytes(p.bytesInPerSecond) + '/s', bytes(t.bytesIn) + ' read');
    card('bytes-out', missing(p.bytesOutPerSecond) ? '–' : bytes(p.bytesOutPerSecond) + '/s', bytes(t.bytesOut) + ' written');
    card('heartbeat', bucketText(h, p50), h.count === 0 ? 'no round trip yet' : 'p99 ' + bucketText(h, p99) + ' · ' + count(h.count) + ' round trips');

    lineChart(byId('chart-connections'), [{ key: 'connections', className: 's-conn' }], 'count');
    lineChart(byId('chart-messages'), [{ key: 'messagesInPerSecond', className: 's-in' }, { key: 'messagesOutPerSecond', className: 's-out' }], 'rate');
    lineChart(byId('chart-bytes'), [{ key: 'bytesInPerSecond', className: 's-in' }, { key: 'bytesOutPerSecond', className: 's-out' }], 'bytes');
    closeChart(byId('chart-closes'), s.closesByCode);
    rttChart(byId('chart-rtt'), h);
    setText('rtt-summary', h.count === 0
      ? 'The heartbeat pings every client; a round trip is counted at each pong.'
      : count(h.count) + ' round trips · mean ' + seconds(h.sum / h.count) + ' · p50 ' + bucketText(h, p50) + ' · p99 ' + bucketText(h, p99));

    var closes = 0;
    for (var code in s.closesByCode) closes += s.closesByCode[code];
    setText('closes-summary', count(closes) + ' closed · ' + count(t.backpressureCloses) + ' slow · ' + count(t.pongTimeouts) + ' pong timeouts · ' + count(t.idleCloses) + ' idle · ' + count(t.rateLimitCloses) + ' rate limit');

    fillTable('routes', s.routes, [
      ['name', function (r) { return r.pattern; }],
      ['n', function (r) { return count(r.connections); }],
      ['n', function (r) { return perSecond(r.messagesInPerSecond); }],
      ['n', function (r) { return perSecond(r.messagesOutPerSecond); }],
      ['n', function (r) { return missing(r.bytesInPerSecond) ? '–' : bytes(r.bytesInPerSecond) + '/s'; }],
      ['n', function (r) { return missing(r.bytesOutPerSecond) ? '–' : bytes(r.bytesOutPerSecond) + '/s'; }],
      ['n', function (r) { return count(r.closes); }]
    ], 'no routes');
    setText('routes-summary', s.routeCount > s.routes.length ? 'the ' + s.routes.length + ' busiest of ' + s.routeCount + ' routes' : count(s.routeCount) + (s.routeCount === 1 ? ' route' : ' routes'));

    fillTable('slow', s.slowConsumers, [
      ['n', function (c) { return String(c.id); }],
      ['name', function (c) { return c.route; }],
      ['name', function (c) { return c.remoteAddress === null ? '–' : c.remoteAddress; }],
      ['n', function (c) { return bytes(c.bufferedAmount); }],
      ['n', function (c) { return milliseconds(c.latency); }]
    ], 'no client has bytes waiting');
    setText('slow-summary', s.backloggedClients === 0 ? 'every client is keeping up' : count(s.backloggedClients) + (s.backloggedClients === 1 ? ' client has' : ' clients have') + ' bytes waiting · ' + count(t.backpressureDrops) + ' messages dropped');

    var updated = byId('updated');
    updated.textContent = 'updated ' + clock.format(new Date(s.time)) + ' · every ' + decimal.format(s.interval / 1000) + ' s';
    updated.setAttribute('data-time', String(s.time));
    document.body.setAttribute('data-samples', String(Number(document.body.getAttribute('data-samples') || '0') + 1));
  }

  var drawing = false;
  function redraw() {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(function () { drawing = false; render(); });
  }

  function status(kind, text) {
    var e = byId('state');
    e.className = 'state ' + kind;
    e.textContent = text;
  }

  // ---- the live feed ------------------------------------------------------------------------
  var feed = null;
  var retry = 0;
  function keep(snapshot) {
    var oldest = snapshot.time - snapshot.span;
    var h = view.history;
    var drop = 0;
    while (drop < h.length && h[drop].time < oldest) drop++;
    if (drop > 0) h.splice(0, drop);
  }
  function connect() {
    clearTimeout(retry);
    if (feed !== null) feed.close();
    status('wait', 'connecting…');
    var source = new EventSource(base + 'feed');
    feed = source;
    source.addEventListener('init', function (event) {
      var state = JSON.parse(event.data);
      view.history = state.history;
      view.snapshot = state.snapshot;
      status('live', 'live');
      render();
    });
    source.addEventListener('message', function (event) {
      var snapshot = JSON.parse(event.data);
      view.history.push(snapshot.point);
      view.snapshot = snapshot;
      keep(snapshot);
      status('live', 'live');
      render();
    });
    source.addEventListener('error', function () {
      if (source.readyState !== 2) { status('wait', 'reconnecting…'); return; }
      // Refused (503 past the viewer bound, or the dashboard closed): ask why, then try again.
      source.close();
      if (feed === source) feed = null;
      fetch(base + 'feed', { method: 'HEAD', cache: 'no-store' }).then(function (answer) {
        status('down', answer.status === 503 ? 'too many viewers: retrying' : 'feed unavailable (' + answer.status + '): retrying');
      }, function () {
        status('down', 'server unreachable: retrying');
      });
      retry = setTimeout(connect, 5000);
    });
  }

  // A hidden tab stops watching, so the server's timer can stop when nobody looks.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      clearTimeout(retry);
      if (feed !== null) { feed.close(); feed = null; }
      status('wait', 'paused while hidden');
    } else if (feed === null) {
      connect();
    }
  });
  window.addEventListener('resize', redraw);
  connect();
})();
`;
