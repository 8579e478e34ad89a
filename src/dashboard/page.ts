import { CLIENT_SCRIPT } from './client.js';
// Not an ES module import (src/builtins.ts says why).
const crypto = process.getBuiltinModule('node:crypto');

// The dashboard page: one HTML document with its style and script inline, allowed by their
// SHA-256 hashes in the page's Content-Security-Policy (no 'unsafe-inline', no other origin). The
// document itself holds no data: the script fills it in from the live feed, as text.

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --panel: #fff; --text: #1d2330; --muted: #5f6b7d; --line: #e3e6eb; --grid: #eceef2;
  --in: #2563eb; --out: #d9480f; --conn: #0f9d76; --ok: #37b24d; --warn: #f59f00; --bad: #e03131; --rtt: #7048e8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171c; --panel: #1c2028; --text: #e6e9ef; --muted: #9aa4b2; --line: #2c323d; --grid: #262b35;
    --in: #5b8def; --out: #ff8a4c; --conn: #38d9a9; --ok: #69db7c; --warn: #ffc078; --bad: #ff6b6b; --rtt: #9775fa;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 14px; padding: 16px 24px 4px; max-width: 1280px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0; font-weight: 650; }
h1 span { color: var(--muted); font-weight: 450; }
.state { font-size: 12px; font-weight: 600; padding: 2px 9px; border-radius: 999px; background: var(--line); color: var(--muted); }
.state.live { background: color-mix(in srgb, var(--ok) 18%, transparent); color: var(--ok); }
.state.down { background: color-mix(in srgb, var(--bad) 16%, transparent); color: var(--bad); }
#updated { color: var(--muted); font-size: 12px; margin-left: auto; font-variant-numeric: tabular-nums; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 24px 24px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 8px 0 14px; }
.card, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; min-width: 0; }
.card { padding: 12px 14px; }
.card h2, .panel h2 { margin: 0; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 650; margin: 4px 0 2px; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card .sub { font-size: 12px; color: var(--muted); margin: 0; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 380px), 1fr)); gap: 12px; margin-bottom: 12px; }
.panel { padding: 12px 14px 10px; }
.panel-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 6px; }
.legend { display: flex; gap: 12px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.legend .s-in, .legend .s-out, .legend .s-conn { background: currentColor; }
.legend .s-in { color: var(--in); } .legend .s-out { color: var(--out); } .legend .s-conn { color: var(--conn); }
.summary { margin: 4px 0 0; font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
.chart-box { width: 100%; min-width: 0; }
svg.chart { display: block; overflow: visible; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .axis { stroke: var(--line); stroke-width: 1; }
svg text { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
svg text.label { fill: var(--text); }
svg text.empty { font-size: 13px; }
svg .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg .area { stroke: none; opacity: .12; }
svg .s-in { stroke: var(--in); } svg .area.s-in, svg .dot.s-in { fill: var(--in); }
svg .s-out { stroke: var(--out); } svg .area.s-out, svg .dot.s-out { fill: var(--out); }
svg .s-conn { stroke: var(--conn); } svg .area.s-conn, svg .dot.s-conn { fill: var(--conn); }
svg .dot { stroke: var(--panel); stroke-width: 1.5; }
svg .bar.ok { fill: var(--ok); } svg .bar.warn { fill: var(--warn); } svg .bar.bad { fill: var(--bad); } svg .bar.rtt { fill: var(--rtt); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; font-size: 12px; font-weight: 600; color: var(--muted); padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 5px 8px; border-bottom: 1px solid var(--grid); }
th.n, td.n { text-align: right; white-space: nowrap; }
td.name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
tr.none td { color: var(--muted); text-align: center; font-family: inherit; }
.scroll { overflow-x: auto; }
footer { color: var(--muted); font-size: 12px; margin-top: 4px; }
`;

/** A CSP source for `text`: its SHA-256, base64. */
function hashSource(text: string): string {
  return `'sha256-${crypto.createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page's Content-Security-Policy: its own inline script and style by hash, requests to its
 * own origin only (the feed and the snapshot), nothing else; no framing, no `<base>`, no forms.
 */
export const PAGE_CSP: string = [
  "default-src 'none'",
  `script-src ${hashSource(CLIENT_SCRIPT)}`,
  `style-src ${hashSource(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The policy of every other answer (the feed, JSON, errors): nothing may load from them. */
export const DATA_CSP = "default-src 'none'; frame-ancestors 'none'";

/** `text` safe inside HTML text and double-quoted attributes. */
export function escapeHtml(text: string): string {
  let out = '';
  for (const ch of text) {
    switch (ch) {
      case '&':
        out += '&amp;';
        break;
      case '<':
        out += '&lt;';
        break;
      case '>':
        out += '&gt;';
        break;
      case '"':
        out += '&quot;';
        break;
      case "'":
        out += '&#39;';
        break;
      default:
        out += ch;
    }
  }
  return out;
}

function panel(id: string, title: string, legend: string, extra = ''): string {
  return `<section class="panel">
  <div class="panel-head"><h2>${title}</h2>${legend}</div>
  <div class="chart-box"><svg class="chart" id="${id}" role="img" aria-label="${title}" width="380" height="180"></svg></div>${extra}
</section>`;
}

const IN_OUT = '<div class="legend"><span><i class="s-in"></i>in</span><span><i class="s-out"></i>out</span></div>';

function card(name: string, title: string): string {
  return `<div class="card"><h2>${title}</h2><p class="value" id="card-${name}">–</p><p class="sub" id="card-${name}-sub">&nbsp;</p></div>`;
}

/** The whole page for a dashboard titled `title` (escaped here). */
export function renderPage(title: string): string {
  const name = escapeHtml(title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${name} · WebSocket dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>${name} <span>WebSockets</span></h1>
  <span id="state" class="state wait">connecting…</span>
  <span id="updated"></span>
</header>
<main>
<noscript><p>This dashboard draws its charts with JavaScript; <a href="snapshot.json">snapshot.json</a> has the same numbers.</p></noscript>
<div class="cards">
${card('connections', 'Connections')}
${card('messages-in', 'Messages in /s')}
${card('messages-out', 'Messages out /s')}
${card('bytes-in', 'Bytes in /s')}
${card('bytes-out', 'Bytes out /s')}
${card('heartbeat', 'Heartbeat p50')}
</div>
<div class="grid">
${panel('chart-connections', 'Connections', '<div class="legend"><span><i class="s-conn"></i>open</span></div>')}
${panel('chart-messages', 'Messages per second', IN_OUT)}
${panel('chart-bytes', 'Bytes per second', IN_OUT)}
</div>
<div class="grid">
${panel('chart-closes', 'Close codes', '<div class="legend">since start</div>', '\n  <p class="summary" id="closes-summary"></p>')}
${panel('chart-rtt', 'Heartbeat round trip', '<div class="legend">since start</div>', '\n  <p class="summary" id="rtt-summary"></p>')}
</div>
<div class="grid">
<section class="panel">
  <div class="panel-head"><h2>Top routes</h2><div class="legend" id="routes-summary"></div></div>
  <div class="scroll"><table id="routes">
    <thead><tr><th>Route</th><th class="n">Open</th><th class="n">Msg in/s</th><th class="n">Msg out/s</th><th class="n">In</th><th class="n">Out</th><th class="n">Closed</th></tr></thead>
    <tbody></tbody>
  </table></div>
</section>
<section class="panel">
  <div class="panel-head"><h2>Slow consumers</h2><div class="legend" id="slow-summary"></div></div>
  <div class="scroll"><table id="slow">
    <thead><tr><th class="n">Id</th><th>Route</th><th>Address</th><th class="n">Waiting</th><th class="n">Latency</th></tr></thead>
    <tbody></tbody>
  </table></div>
</section>
</div>
<footer>From <code>handler.stats()</code> and the open clients, sampled once per tick for every viewer of this page. Totals count since the handler started.</footer>
</main>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
