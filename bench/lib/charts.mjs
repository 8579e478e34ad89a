// SVG charts of a bench result (bench/results/latest.json, bench/reference/<name>.json): one chart
// per scenario group, a horizontal bar per target in each configuration, the value written on
// every bar, the wsmount ratios beside each configuration. Our own code, no dependency.
//
// Two steps, both pure: chartsOf(result) turns the JSON into chart specs (what is drawn), and
// renderChart(spec) turns a spec into SVG text. The same JSON always gives the same bytes: no
// clock, no randomness, coordinates rounded to 0.1 px, numbers formatted by hand.
//
// Scale: linear from 0, unless the largest value in a chart is more than LOG_THRESHOLD times the
// smallest (positive) one; then log10, said in the subtitle and under the axis.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { bytes } from './report.mjs';

/** A chart goes to a log scale when max / min over its bars exceeds this. */
export const LOG_THRESHOLD = 20;

const KiB = 1024;
const MiB = 1024 * 1024;

// ---- targets: names and colours ------------------------------------------------------------------

/** Display names and colours of the usual targets; any other series takes the next palette colour. */
const KNOWN = {
  wsmount: { label: 'wsmount', color: '#2563eb' },
  ws: { label: 'ws', color: '#f97316' },
  'ws+native': { label: 'ws + bufferutil', color: '#9a3412' },
  raw: { label: 'raw TCP', color: '#6b7280' },
  http: { label: 'node:http, bare 101', color: '#a8a29e' },
  'wsmount-strings': { label: 'wsmount, strings', color: '#60a5fa' },
};
const PALETTE = ['#0d9488', '#7c3aed', '#db2777', '#65a30d', '#0891b2', '#ca8a04', '#4338ca', '#be123c'];

/**
 * Series in first-seen order, each with a label and a colour: a known target keeps its own (or
 * the one of the target named by `colorOf`), any other takes the next palette colour.
 */
function seriesList(entries) {
  let next = 0;
  const seen = new Map();
  for (const e of entries) {
    if (seen.has(e.key)) continue;
    const known = KNOWN[e.colorOf ?? e.key];
    const color = known?.color && ![...seen.values()].some((s) => s.color === known.color) ? known.color : PALETTE[next++ % PALETTE.length];
    seen.set(e.key, { key: e.key, label: e.label ?? KNOWN[e.key]?.label ?? e.key, color });
  }
  return [...seen.values()];
}

const labelOf = (key) => KNOWN[key]?.label ?? key;

// ---- numbers --------------------------------------------------------------------------------------

/** 1234567 → "1,234,567" (no locale: the same output everywhere). */
function thousands(n) {
  const s = String(Math.round(Math.abs(n)));
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (i > 0 && (s.length - i) % 3 === 0) out += ',';
    out += s[i];
  }
  return (n < 0 ? '-' : '') + out;
}

/** Three significant digits, k/M/G above a thousand: 1.89M, 149k, 0.184. */
function siText(x) {
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
}

/** Three significant digits, whole numbers with thousands separators above 1,000: 9.50, 202, 1,273. */
function plainText(x) {
  return Math.abs(x) >= 1000 ? thousands(x) : x.toPrecision(3);
}

/** The shortest exact text of an axis tick: 1, 2.5, 10, 100k, 1M, 0.01 (for "si") or 1,000 (for "plain"). */
function tickText(x, numbers) {
  const trim = (v) => String(Number(v.toPrecision(6)));
  if (numbers === 'si') {
    const a = Math.abs(x);
    if (a >= 1e9) return `${trim(x / 1e9)}G`;
    if (a >= 1e6) return `${trim(x / 1e6)}M`;
    if (a >= 1e3) return `${trim(x / 1e3)}k`;
    return trim(x);
  }
  return Math.abs(x) >= 1000 ? thousands(x) : trim(x);
}

/** A bar's label: the value with its unit. */
export function valueText(spec, v) {
  return `${spec.numbers === 'si' ? siText(v) : plainText(v)} ${spec.unit}`;
}

/** 12.7×, 1.61×, 46×. */
export function ratioText(x) {
  if (!Number.isFinite(x)) return '—';
  if (x >= 100) return `${x.toFixed(0)}×`;
  if (x >= 10) return `${x.toFixed(1)}×`;
  return `${x.toFixed(2)}×`;
}

const px = (x) => String(Math.round(x * 10) / 10 + 0); // + 0: no "-0"

// ---- text -----------------------------------------------------------------------------------------

/** Text and attribute values: every markup character escaped (and no control characters, which XML forbids). */
export function escapeXml(s) {
  let out = '';
  for (const ch of String(s)) {
    const c = ch.codePointAt(0);
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&apos;';
    else if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) out += ' ';
    else if (c === 0xfffe || c === 0xffff) out += ' ';
    else out += ch;
  }
  return out;
}

/** An estimate of a text's width in px in a sans-serif font (no font metrics here: generous on purpose). */
function textWidth(s, size) {
  let em = 0;
  for (const ch of String(s)) {
    if (" .,:;'|!ijlft()[]".includes(ch)) em += 0.32;
    else if ('mwMW@%'.includes(ch)) em += 0.86;
    else if (ch >= 'A' && ch <= 'Z') em += 0.68;
    else if (ch >= '0' && ch <= '9') em += 0.57;
    else if (ch.codePointAt(0) > 0x7f) em += 0.62;
    else em += 0.54;
  }
  return em * size;
}

/** At most `max` px wide, cut with an ellipsis (the full text stays in the row's <title> and the <desc>). */
function fit(s, size, max) {
  if (textWidth(s, size) <= max) return s;
  const chars = [...s];
  while (chars.length > 1 && textWidth(`${chars.join('')}…`, size) > max) chars.pop();
  return `${chars.join('').trimEnd()}…`;
}

// ---- scale ----------------------------------------------------------------------------------------

/** 1, 2, 5, 10, 20, 50… × 10^e for e in [from, to], ascending. */
function roundSteps(from, to) {
  const out = [];
  for (let e = from; e <= to; e++) for (const m of [1, 2, 5]) out.push(Number((m * 10 ** e).toPrecision(6)));
  return out;
}

/**
 * The scale for a chart's values: `{ log, lo, hi, ticks, pos(v) → 0..1 }`. Linear from 0 to a
 * round maximum unless max / min of the positive values exceeds LOG_THRESHOLD; then log10 between
 * round values (1, 2 or 5 × a power of ten) under the smallest value and over the largest, with a
 * gridline at each power of ten (and at 2× and 5× when the chart spans two decades or less).
 */
export function scaleFor(values) {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (v.length === 0) return { log: false, lo: 0, hi: 1, ticks: [0, 1], pos: () => 0 };
  const min = Math.min(...v);
  const max = Math.max(...v);
  if (max / min > LOG_THRESHOLD) {
    const steps = roundSteps(Math.floor(Math.log10(min)) - 1, Math.ceil(Math.log10(max)) + 1);
    // The smallest bar stays visible: the axis starts at least 15% under it.
    const lo = steps.filter((x) => x <= min / 1.15).at(-1) ?? steps[0];
    const hi = steps.find((x) => x >= max) ?? steps.at(-1);
    const l0 = Math.log10(lo);
    const span = Math.log10(hi) - l0;
    const inside = steps.filter((x) => x >= lo && x <= hi);
    const ticks = span <= 2 ? inside : inside.filter((x) => x === lo || x === hi || Number.isInteger(Math.log10(x)));
    return { log: true, lo, hi, ticks, pos: (x) => (x > 0 ? Math.max(0, (Math.log10(x) - l0) / span) : 0) };
  }
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw) + 1e-9);
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const hi = step * Math.ceil(max / step - 1e-9);
  const ticks = [];
  for (let i = 0; i * step <= hi * (1 + 1e-9); i++) ticks.push(Number((i * step).toPrecision(12)));
  return { log: false, lo: 0, hi, ticks, pos: (x) => Math.max(0, x / hi) };
}

// ---- rendering ------------------------------------------------------------------------------------

const FONT = '-apple-system, BlinkMacSystemFont, Segoe UI, Helvetica, Arial, sans-serif';
const INK = '#1f2328';
const MUTED = '#59636e';
const GRID = '#e5e7eb';
const FAILED = '#b91c1c';

const PAD = 16;
const BAR = 12;
const ROW = 17;
const HEAD = 22;
const GAP = 10;

/**
 * One chart as SVG text. `spec`: { id, title, subtitle, unit, numbers: 'si'|'plain',
 * better: 'higher'|'lower', note?, series: [{ key, label, color }], groups: [{ label,
 * ratios: [{ label, value }], bars: [{ series, label?, value: number|null, error?: string }] }] }.
 * A bar with an error is drawn as the word "failed", one without a value as "—": no rect for either.
 */
export function renderChart(spec) {
  const series = new Map(spec.series.map((s) => [s.key, s]));
  const bars = spec.groups.flatMap((g) => g.bars);
  const isValue = (b) => !b.error && typeof b.value === 'number' && Number.isFinite(b.value);
  const scale = scaleFor(bars.filter(isValue).map((b) => b.value));
  const barLabel = (b) => b.label ?? series.get(b.series)?.label ?? b.series;
  const barValue = (b) => (b.error ? 'failed' : isValue(b) ? valueText(spec, b.value) : '—');

  // Columns: bar labels | bars | value labels.
  const labelW = Math.min(300, Math.max(90, ...bars.map((b) => textWidth(barLabel(b), 11))));
  const valueW = Math.max(64, ...bars.map((b) => textWidth(barValue(b), 11))) + 8;
  const x0 = PAD + labelW + 8;
  const width = Math.max(800, Math.ceil(x0 + 320 + valueW + PAD));
  const plotW = width - PAD - valueW - x0;
  const xOf = (v) => x0 + scale.pos(v) * plotW;

  const out = [];
  const id = spec.id.replace(/[^A-Za-z0-9_-]/g, '-');
  const scaleWords = scale.log ? 'log scale' : 'linear scale';
  const line2 = `${spec.unit}, ${spec.better} is better · ${scaleWords}${spec.note ? ` · ${spec.note}` : ''}`;

  // Header and legend.
  let y = 0;
  const body = [];
  body.push(`<text x="${PAD}" y="26" font-size="16" font-weight="600" fill="${INK}">${escapeXml(spec.title)}</text>`);
  body.push(`<text x="${PAD}" y="44" font-size="11.5" fill="${MUTED}">${escapeXml(spec.subtitle)}</text>`);
  body.push(`<text x="${PAD}" y="60" font-size="11.5" fill="${MUTED}">${escapeXml(line2)}</text>`);
  y = 74;
  let lx = PAD;
  const legend = [];
  for (const s of spec.series) {
    const w = 10 + 5 + textWidth(s.label, 11) + 16;
    if (lx > PAD && lx + w > width - PAD) {
      lx = PAD;
      y += 18;
    }
    legend.push(
      `<g class="legend-item"><rect x="${px(lx)}" y="${y}" width="10" height="10" fill="${s.color}"/><text x="${px(lx + 15)}" y="${y + 9}" font-size="11" fill="${INK}">${escapeXml(s.label)}</text></g>`,
    );
    lx += w;
  }
  body.push(`<g class="legend">${legend.join('')}</g>`);
  y += 24;

  // Groups of bars (gridlines go first, under the bars: their height is known once the rows are laid out).
  const rows = [];
  const segments = []; // [top, bottom] of each group's bars: gridlines run there, not through the group titles
  for (const g of spec.groups) {
    const ratios = (g.ratios ?? []).filter((r) => Number.isFinite(r.value));
    const ratioLine = ratios.map((r) => `${r.label} ${ratioText(r.value)}`).join(' · ');
    rows.push(
      `<g class="group"><text x="${PAD}" y="${y + 14}" font-size="12" font-weight="600" fill="${INK}">${escapeXml(g.label)}</text>${
        ratioLine ? `<text class="ratio" x="${width - PAD}" y="${y + 14}" font-size="11.5" text-anchor="end" fill="${INK}">${escapeXml(ratioLine)}</text>` : ''
      }</g>`,
    );
    y += HEAD;
    segments.push([y - 3, y + g.bars.length * ROW - 2]);
    for (const b of g.bars) {
      const s = series.get(b.series);
      const label = barLabel(b);
      const text = barValue(b);
      const tip = `${g.label} · ${label}: ${text}${b.error ? ` (${b.error})` : ''}`;
      const parts = [`<title>${escapeXml(tip)}</title>`];
      parts.push(`<text x="${px(x0 - 6)}" y="${y + 10}" font-size="11" text-anchor="end" fill="${INK}">${escapeXml(fit(label, 11, labelW))}</text>`);
      if (isValue(b)) {
        const end = xOf(b.value);
        parts.push(`<rect class="bar" x="${px(x0)}" y="${y}" width="${px(end - x0)}" height="${BAR}" fill="${s?.color ?? MUTED}"/>`);
        parts.push(`<text class="value" x="${px(end + 4)}" y="${y + 10}" font-size="11" fill="${INK}">${escapeXml(text)}</text>`);
      } else {
        const color = b.error ? FAILED : MUTED;
        parts.push(`<text class="value" x="${px(x0 + 4)}" y="${y + 10}" font-size="11" fill="${color}">${escapeXml(text)}</text>`);
      }
      rows.push(`<g class="row" data-series="${escapeXml(b.series)}">${parts.join('')}</g>`);
      y += ROW;
    }
    y += GAP;
  }
  const plotBottom = y - GAP + 2;

  // Axis: gridlines, the zero (or lowest) line, tick labels, the scale note.
  const grid = [];
  for (const [top, bottom] of segments) {
    for (const t of scale.ticks) {
      const x = px(xOf(t));
      if (xOf(t) > x0 + 0.5) grid.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${GRID}" stroke-width="1"/>`);
    }
    grid.push(`<line x1="${px(x0)}" y1="${top}" x2="${px(x0)}" y2="${bottom}" stroke="#8c959f" stroke-width="1"/>`);
  }
  // A tick label too close to the previous one is left out (its gridline stays).
  const ticks = [];
  let lastEnd = -Infinity;
  for (const t of scale.ticks) {
    const text = tickText(t, spec.numbers);
    const x = xOf(t);
    const half = textWidth(text, 10) / 2;
    if (x - half < lastEnd + 6) continue;
    lastEnd = x + half;
    ticks.push(`<text x="${px(x)}" y="${px(plotBottom + 14)}" font-size="10" text-anchor="middle" fill="${MUTED}">${escapeXml(text)}</text>`);
  }
  const axisNote = scale.log ? `log scale, ${spec.unit}` : `${spec.unit}, linear from 0`;
  const note = `<text class="scale-note" x="${px(x0)}" y="${px(plotBottom + 30)}" font-size="10.5" ${scale.log ? 'font-weight="600" ' : ''}fill="${scale.log ? INK : MUTED}">${escapeXml(axisNote)}</text>`;
  const height = Math.ceil(plotBottom + 42);

  // <desc>: everything the chart shows, as text.
  const desc = [
    `${spec.subtitle}. ${line2}.`,
    ...spec.groups.map((g) => {
      const vals = g.bars.map((b) => `${barLabel(b)} ${b.error ? 'failed' : isValue(b) ? valueText(spec, b.value) : 'not measured'}`).join(', ');
      const ratios = (g.ratios ?? []).filter((r) => Number.isFinite(r.value)).map((r) => `${r.label} ${ratioText(r.value)}`);
      return `${g.label}: ${vals}${ratios.length ? ` (${ratios.join(', ')})` : ''}.`;
    }),
  ].join(' ');

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-title ${id}-desc" font-family="${escapeXml(FONT)}">`,
  );
  out.push(`<title id="${id}-title">${escapeXml(spec.title)}</title>`);
  out.push(`<desc id="${id}-desc">${escapeXml(desc)}</desc>`);
  // An explicit background: the chart reads the same on GitHub's light and dark themes.
  out.push(`<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(...body);
  out.push(`<g class="grid">${grid.join('')}</g>`);
  out.push(...rows);
  out.push(`<g class="axis">${ticks.join('')}</g>`);
  out.push(note);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---- from a bench result to chart specs ----------------------------------------------------------

/**
 * `{ value }`, `{ value: null, error }` or `{ value: null }` (not measured) for one figure as the
 * bench writes it: a number, null, or `{ error }`; `err` is the row's `errors[target]`, if any.
 */
function cellFrom(v, err) {
  if (v !== null && typeof v === 'object' && v.error !== undefined) return { value: null, error: String(v.error) };
  if (typeof err === 'string' && err !== '') return { value: null, error: err };
  return { value: typeof v === 'number' && Number.isFinite(v) ? v : null };
}

/** One target's figure in a row: `row[metric][target]`, or `metric(row, target)`. */
function cellOf(row, metric, target) {
  return cellFrom(typeof metric === 'function' ? metric(row, target) : row?.[metric]?.[target], row?.errors?.[target]);
}

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
const n = (x) => thousands(x);
const conns = (c) => `${n(c)} ${c === 1 ? 'conn' : 'conns'}`;

/** wsmount ÷ each of the given targets, where both have a value. */
function ratiosOf(bars, num, dens) {
  const by = new Map(bars.map((b) => [b.key ?? b.series, b]));
  const a = by.get(num);
  if (!a || a.error || !isNum(a.value)) return [];
  return dens
    .map(([key, label]) => {
      const b = by.get(key);
      return b && !b.error && isNum(b.value) && b.value > 0 ? { label, value: a.value / b.value } : null;
    })
    .filter((r) => r !== null);
}

/** Bars of one row for the given targets, a metric in display units (`scale` divides). */
function barsOf(row, metric, targets, scale = 1) {
  return targets.map((t) => {
    const c = cellOf(row, metric, t);
    return { series: t, value: c.value === null ? null : c.value / scale, ...(c.error ? { error: c.error } : {}) };
  });
}

/** The targets that appear in any of the rows' metric maps, in their JSON order. */
function targetsOf(rows, metric) {
  const seen = [];
  for (const r of rows) for (const k of Object.keys(r?.[metric] ?? {})) if (!seen.includes(k)) seen.push(k);
  return seen;
}

/** Rows by message size, sizes ascending, rows in their order. */
function bySize(rows) {
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  return sizes.map((size) => [size, rows.filter((r) => r.size === size)]);
}

/** 32 → "32b", 65536 → "64kib", 1048576 → "1mib": a file-name part. */
function sizeSlug(size) {
  return bytes(size).toLowerCase().replace(/ /g, '');
}

const VS_WS = [
  ['ws', 'wsmount / ws'],
  ['ws+native', 'wsmount / ws + bufferutil'],
];

function subtitleOf(result, rounds = result.rounds) {
  const date = typeof result.date === 'string' ? result.date.slice(0, 10) : '';
  const git = result.git?.commit ? `wsmount ${result.git.commit}${result.git.srcModified ? ' + uncommitted src' : ''}` : '';
  const median = isNum(rounds) ? `median of ${rounds} round${rounds === 1 ? '' : 's'}` : '';
  return [result.node ? `Node ${result.node}` : '', result.mode ? `${result.mode} run ${date}`.trim() : date, git, median].filter(Boolean).join(' · ');
}

/** A chart spec for rows of one metric per target (the shape of most scenarios). */
function simple({ id, title, unit, numbers = 'si', better = 'higher', note, groups, labels = {}, colors = {}, result, rounds, ratioOf = 'wsmount', ratioVs = VS_WS }) {
  const used = groups.flatMap((g) => g.bars.map((b) => b.series));
  const series = seriesList(used.map((key) => ({ key, label: labels[key] ?? labelOf(key), colorOf: colors[key] })));
  return {
    id,
    title,
    subtitle: subtitleOf(result, rounds ?? result.rounds),
    unit,
    numbers,
    better,
    ...(note ? { note } : {}),
    series,
    groups: groups.map((g) => ({ ...g, ratios: g.ratios ?? ratiosOf(g.bars, ratioOf, ratioVs) })),
  };
}

/**
 * Every chart a bench result has, in a fixed order: `[{ id, …spec }]`. A scenario missing from
 * the result (a partial run) or in an older shape gives no chart.
 */
export function chartsOf(result) {
  const s = result?.scenarios ?? {};
  const charts = [];
  const arr = (x) => (Array.isArray(x) ? x : []);

  // Echo: a chart per message size (a 32 B echo runs ~2,000 times as many messages as a 1 MiB one:
  // in one chart every size would need a log scale, and ratios would be hard to see).
  const echo = arr(s.echo).filter((r) => r?.medianRate && isNum(r.size));
  const echoTargets = targetsOf(echo, 'medianRate');
  for (const [size, rows] of bySize(echo)) {
    charts.push(
      simple({
        id: `echo-${sizeSlug(size)}`,
        title: `Echo, ${bytes(size)} messages: messages per second`,
        unit: 'msg/s',
        groups: rows.map((r) => ({ label: `${conns(r.conns)} · ${r.type}`, bars: barsOf(r, 'medianRate', echoTargets) })),
        result,
      }),
    );
  }

  // Broadcast and topic publish.
  const bc = arr(s.broadcast).filter((r) => r?.medianDeliveriesPerSec);
  if (bc.length) {
    const targets = targetsOf(bc, 'medianDeliveriesPerSec');
    charts.push(
      simple({
        id: 'broadcast',
        title: 'Broadcast and topic publish: deliveries per second',
        unit: 'deliveries/s',
        groups: bc.map((r) => ({
          label: `${r.sentWith === 'publish' ? `topic publish to ${n(r.clients)} subscribers` : `broadcast to ${n(r.clients)} clients`}, ${bytes(r.size)}`,
          bars: barsOf(r, 'medianDeliveriesPerSec', targets),
        })),
        result,
      }),
    );
  }

  // Handshakes: cycles per second, and the server's CPU per cycle.
  const hs = arr(s.handshakes).filter((r) => r?.medianCyclesPerSec);
  if (hs.length) {
    const label = (r) => (r.concurrency === 1 ? 'sequential' : `${n(r.concurrency)} in parallel`);
    const targets = targetsOf(hs, 'medianCyclesPerSec');
    charts.push(
      simple({ id: 'handshakes', title: 'Handshakes: open + close cycles per second', unit: 'cycles/s', groups: hs.map((r) => ({ label: label(r), bars: barsOf(r, 'medianCyclesPerSec', targets) })), result }),
    );
    const cpu = hs.filter((r) => r.medianServerUsPerCycle);
    if (cpu.length) {
      charts.push(
        simple({
          id: 'handshake-cpu',
          title: 'Handshakes: server CPU per open + close cycle',
          unit: 'µs',
          numbers: 'plain',
          better: 'lower',
          groups: cpu.map((r) => ({ label: label(r), bars: barsOf(r, 'medianServerUsPerCycle', targetsOf(cpu, 'medianServerUsPerCycle')) })),
          result,
        }),
      );
    }
  }

  // Latency and CPU at a fixed rate (the paced echo), CPU at saturation (the echo table).
  const paced = s.paced;
  if (paced?.medians && typeof paced.medians === 'object') {
    const targets = Object.keys(paced.medians);
    const what = [isNum(paced.conns) ? conns(paced.conns) : '', `${isNum(paced.size) ? bytes(paced.size) : ''} ${paced.text ? 'text' : 'binary'}`.trim()].filter(Boolean).join(', ');
    const rate = isNum(paced.rate) ? `${tickText(paced.rate, 'si')} msg/s` : 'a fixed rate';
    const pct = [
      ['p50', 'median (p50)'],
      ['p90', 'p90'],
      ['p99', 'p99'],
      ['p999', 'p99.9'],
    ].filter(([k]) => targets.some((t) => paced.medians[t]?.[k] !== undefined));
    if (pct.length) {
      charts.push(
        simple({
          id: 'latency',
          title: `Round-trip latency at ${rate}`,
          unit: 'ms',
          numbers: 'plain',
          better: 'lower',
          note: what,
          rounds: paced.rounds,
          groups: pct.map(([k, label]) => ({ label, bars: targets.map((t) => ({ series: t, ...cellFrom(paced.medians[t]?.[k]) })) })),
          result,
        }),
      );
    }
    const groups = [];
    const sat = arr(s.echo).find((r) => r.conns === paced.conns && r.size === paced.size && r.type === (paced.text ? 'text' : 'binary'));
    if (sat?.serverCpuMicrosPerMsg) groups.push({ label: `echo at saturation (${conns(sat.conns)}, ${bytes(sat.size)} ${sat.type})`, bars: barsOf(sat, 'serverCpuMicrosPerMsg', targets) });
    if (targets.some((t) => isNum(paced.medians[t]?.cpuSecPerMillion))) {
      groups.push({ label: `echo at a fixed ${rate} (${what})`, bars: targets.map((t) => ({ series: t, ...cellFrom(paced.medians[t]?.cpuSecPerMillion) })) });
    }
    if (groups.length) {
      charts.push(simple({ id: 'cpu', title: 'Server CPU per echoed message', unit: 'µs', numbers: 'plain', better: 'lower', note: 'µs per message = CPU seconds per million', groups, result }));
    }
  }

  // Idle memory per connection.
  const mem = arr(s.memory).filter((r) => r?.medianRssPerConn);
  if (mem.length) {
    const targets = targetsOf(mem, 'medianRssPerConn');
    charts.push(
      simple({
        id: 'memory',
        title: 'Memory per idle connection',
        unit: 'KiB',
        numbers: 'plain',
        better: 'lower',
        groups: [
          ...mem.map((r) => ({ label: `RSS, ${conns(r.conns)}${r.warm === true ? ', warm' : ''}`, bars: barsOf(r, 'medianRssPerConn', targets, KiB) })),
          ...mem.filter((r) => r.medianHeapUsedPerConn).map((r) => ({ label: `heap used, ${conns(r.conns)}${r.warm === true ? ', warm' : ''}`, bars: barsOf(r, 'medianHeapUsedPerConn', targets, KiB) })),
        ],
        result,
      }),
    );
  }

  // Topics across processes (fan-out) and memory per subscription.
  const fo = s.fanout;
  if (fo?.medians && Array.isArray(fo.windows)) {
    const targets = Object.keys(fo.medians);
    const labels = Object.fromEntries(targets.map((t) => [t, fo.targets?.[t]?.label ?? labelOf(t)]));
    const fanRatio = (bars) => ratiosOf(bars, 'wsmount+redis', [['ws+redis', 'wsmount + Redis / ws + Redis']]);
    const metricBars = (key) => targets.map((t) => ({ series: t, ...cellFrom(fo.medians[t]?.[key]) }));
    const subs = isNum(fo.subscribers) ? `${n(fo.subscribers)} subscribers` : 'subscribers';
    charts.push(
      simple({
        id: 'fanout',
        title: `Topics across processes: deliveries per second to ${subs}`,
        unit: 'deliveries/s',
        labels,
        groups: fo.windows.map((w) => {
          const bars = metricBars(`rate@${w}`);
          return { label: `${n(w)} messages in flight`, bars, ratios: fanRatio(bars) };
        }),
        result,
      }),
    );
    const lat = [
      ['p50', 'median (p50)'],
      ['p99', 'p99'],
    ].filter(([k]) => targets.some((t) => fo.medians[t]?.[k] !== undefined));
    if (lat.length) {
      charts.push(
        simple({
          id: 'fanout-latency',
          title: `Topics across processes: publish → delivery latency at ${isNum(fo.rate) ? n(fo.rate) : 'a fixed'} msg/s`,
          unit: 'ms',
          numbers: 'plain',
          better: 'lower',
          labels,
          groups: lat.map(([k, label]) => {
            const bars = metricBars(k);
            return { label, bars, ratios: fanRatio(bars) };
          }),
          result,
        }),
      );
    }
  }
  const sub = arr(s.subscriptions).filter((r) => r?.medianHeapUsedPerSubscription);
  if (sub.length) {
    const targets = targetsOf(sub, 'medianHeapUsedPerSubscription');
    charts.push(
      simple({
        id: 'subscriptions',
        title: 'Memory per topic subscription',
        unit: 'B',
        numbers: 'plain',
        better: 'lower',
        labels: { ws: 'ws + Map<topic, Set<ws>>' },
        groups: [
          ...sub.map((r) => ({ label: `heap used, ${conns(r.conns)} × ${n(r.topicsEach)} topics`, bars: barsOf(r, 'medianHeapUsedPerSubscription', targets) })),
          ...sub.filter((r) => r.medianRssPerSubscription).map((r) => ({ label: `RSS, ${conns(r.conns)} × ${n(r.topicsEach)} topics`, bars: barsOf(r, 'medianRssPerSubscription', targets) })),
        ],
        ratioVs: [['ws', 'wsmount / ws']],
        result,
      }),
    );
  }

  // permessage-deflate.
  const df = s.deflate;
  if (df && typeof df === 'object') {
    const echoRows = arr(df.echo).filter((r) => r?.medianRate);
    if (echoRows.length) {
      const targets = targetsOf(echoRows, 'medianRate');
      charts.push(
        simple({
          id: 'deflate-echo',
          title: 'Compressed echo (permessage-deflate): messages per second',
          unit: 'msg/s',
          groups: echoRows.map((r) => ({ label: `${conns(r.conns)} · ${bytes(r.size)}`, bars: barsOf(r, 'medianRate', targets) })),
          result,
        }),
      );
    }
    const bcRows = arr(df.broadcast).filter((r) => r?.medianDeliveriesPerSec);
    if (bcRows.length) {
      const targets = targetsOf(bcRows, 'medianDeliveriesPerSec');
      charts.push(
        simple({
          id: 'deflate-broadcast',
          title: 'Compressed broadcast (permessage-deflate): deliveries per second',
          unit: 'deliveries/s',
          groups: bcRows.map((r) => ({ label: `${bytes(r.size)} to ${n(r.clients)} clients`, bars: barsOf(r, 'medianDeliveriesPerSec', targets) })),
          result,
        }),
      );
    }
    const memRows = arr(df.memory).filter((r) => r?.medianRssIdlePerConn || r?.medianRssActivePerConn);
    if (memRows.length) {
      const targets = [...new Set([...targetsOf(memRows, 'medianRssIdlePerConn'), ...targetsOf(memRows, 'medianRssActivePerConn')])];
      const groups = [];
      for (const [key, what] of [
        ['medianRssIdlePerConn', 'idle'],
        ['medianRssActivePerConn', 'active'],
      ]) {
        for (const r of memRows) if (r[key]) groups.push({ label: `RSS, ${what}, ${conns(r.conns)}`, bars: barsOf(r, key, targets, KiB) });
      }
      charts.push(simple({ id: 'deflate-memory', title: 'Memory per compressed connection', unit: 'KiB', numbers: 'plain', better: 'lower', groups, result }));
    }
  }

  // The ws face (wsmount/ws) against the Behavior route and ws, a chart per message size as echo.
  const compat = arr(s.compat).filter((r) => r?.medianRate && isNum(r.size));
  const compatTargets = targetsOf(compat, 'medianRate');
  for (const [size, rows] of bySize(compat)) {
    charts.push(
      simple({
        id: `compat-${sizeSlug(size)}`,
        title: `The ws face (wsmount/ws): echo of ${bytes(size)} messages, messages per second`,
        unit: 'msg/s',
        labels: { 'wsmount/ws': 'wsmount/ws (the ws face)', wsmount: 'wsmount, Behavior route' },
        groups: rows.map((r) => ({ label: `${conns(r.conns)} · ${r.type}`, bars: barsOf(r, 'medianRate', compatTargets) })),
        ratioOf: 'wsmount/ws',
        ratioVs: [
          ['ws', 'ws face / ws'],
          ['wsmount', 'ws face / Behavior route'],
        ],
        result,
      }),
    );
  }

  // Observability (issue 17): each variant's rate as a fraction of wsmount with nothing watching.
  const obs = arr(s.observability?.rows).filter((r) => r?.medianRate && isNum(r.medianRate.wsmount));
  if (obs.length > 0) {
    const targets = targetsOf(obs, 'medianRate');
    charts.push(
      simple({
        id: 'observability',
        title: 'What watching costs: throughput relative to wsmount with nothing watching',
        unit: '×',
        numbers: 'plain',
        labels: {
          wsmount: 'wsmount, nothing watching',
          'wsmount+scrape': 'Prometheus scrape every second',
          'wsmount+diag': 'diagnostics_channel subscribers',
          'wsmount-base': 'the build before (--base)',
        },
        groups: obs.map((r) => ({
          label: r.label,
          bars: barsOf(r, (row, t) => (isNum(row.medianRate?.[t]) ? row.medianRate[t] / row.medianRate.wsmount : row.medianRate?.[t] ?? null), targets),
          ratios: [],
        })),
        result,
        rounds: result.scenarios?.observability?.rows?.[0]?.samples?.wsmount?.length,
      }),
    );
  }

  // WebSockets over HTTP/2.
  const h2 = s.http2;
  if (h2 && typeof h2 === 'object') {
    const variantLabel = (v) => {
      if (v.server === undefined && v.client === undefined) return v.label ?? v.name;
      const raised = [v.server === 'raised' ? 'server' : '', v.client === 'raised' ? 'client' : ''].filter(Boolean);
      return `${v.label ?? v.name}${raised.length === 2 ? ', raised windows' : raised.length === 1 ? `, raised ${raised[0]} window` : ''}`;
    };
    // ws over HTTP/1.1 in ws's colour, wsmount over HTTP/1.1 in wsmount's, the HTTP/2 variants in others.
    const colors = { 'ws h1': 'ws', h1: 'wsmount' };
    const charted = (variants, rows, get, id, title, unit) => {
      const vs = arr(variants).filter((v) => typeof v?.name === 'string');
      if (!vs.length || !rows.length) return;
      const labels = Object.fromEntries(vs.map((v) => [v.name, variantLabel(v)]));
      charts.push(
        simple({
          id,
          title,
          unit,
          labels,
          colors,
          groups: rows.map((r) => {
            const bars = vs.map((v) => ({ series: v.name, ...cellFrom(get(r, v.name)) }));
            return { label: r.size !== undefined ? `${conns(r.conns)} · ${bytes(r.size)} ${r.type}` : `${n(r.conns)} sockets`, bars };
          }),
          ratioOf: 'h2',
          ratioVs: [
            ['h1', 'wsmount h2c / wsmount HTTP/1.1'],
            ['ws h1', 'wsmount h2c / ws'],
          ],
          result,
        }),
      );
    };
    charted(h2.variants?.open, arr(h2.open).filter((r) => r?.medians), (r, t) => r.medians[t]?.socketsPerSec, 'http2-open', 'WebSockets over HTTP/2: sockets opened per second', 'sockets/s');
    charted(h2.variants?.echo, arr(h2.echo).filter((r) => r?.medianRate), (r, t) => r.medianRate?.[t], 'http2-echo', 'WebSockets over HTTP/2: echo messages per second', 'msg/s');
  }

  // Large messages as streams.
  const st = s.streaming;
  if (st && typeof st === 'object') {
    const size = isNum(st.plan?.bytes) ? bytes(st.plan.bytes) : 'one large';
    // A bar per variant (its own label), coloured by the target process it ran on.
    const streamBars = (rows, key, scale = 1) =>
      rows.map((r) => {
        const c = cellFrom(r[key]);
        return { key: r.name, series: r.target ?? r.name, label: r.label ?? r.name, value: c.value === null ? null : c.value / scale, ...(c.error ? { error: c.error } : {}) };
      });
    const goal = (direction) => arr(st.ratios).find((q) => q?.direction === direction && q.goalComparison);
    // The goal's comparison (issue 15): wsmount against ws with one message buffered whole.
    const streamRatio = (bars, direction) => {
      const q = goal(direction);
      return q ? ratiosOf(bars, q.wsmount, [[q.ws, `wsmount / ws (ws buffering the ${size} message)`]]) : [];
    };
    const dirs = [
      ['upload', arr(st.upload)],
      ['download', arr(st.download)],
    ].filter(([, rows]) => rows.length);
    if (dirs.length) {
      const mk = (id, title, key, unit, numbers, better, scale) =>
        charts.push(
          simple({
            id,
            title,
            unit,
            numbers,
            better,
            rounds: st.plan?.rounds,
            groups: dirs.map(([dir, rows]) => {
              const bars = streamBars(rows, key, scale);
              return { label: dir, bars, ratios: streamRatio(bars, dir) };
            }),
            result,
          }),
        );
      mk('streaming', `Large messages as streams: ${size} each way, MB/s`, 'medianMBps', 'MB/s', 'plain', 'higher', 1);
      mk('streaming-rss', `Large messages as streams: server RSS growth during a ${size} transfer`, 'medianRssGrowth', 'MiB', 'plain', 'lower', MiB);
    }
    const sweep = arr(st.fragmentSize);
    if (sweep.length) {
      charts.push(
        simple({
          id: 'streaming-fragment-size',
          title: `sendStream fragmentSize: ${size} download, MB/s`,
          unit: 'MB/s',
          numbers: 'plain',
          rounds: st.plan?.rounds,
          groups: [{ label: `wsmount sendStream, ${isNum(st.plan?.sweepChunk) ? bytes(st.plan.sweepChunk) : 'large'} source chunks`, bars: streamBars(sweep, 'medianMBps') }],
          result,
        }),
      );
    }
  }
  return charts;
}

/** Every chart id chartsOf can produce, besides echo-<size> and compat-<size>. */
export const CHART_IDS = [
  'broadcast',
  'handshakes',
  'handshake-cpu',
  'latency',
  'cpu',
  'memory',
  'fanout',
  'fanout-latency',
  'subscriptions',
  'deflate-echo',
  'deflate-broadcast',
  'deflate-memory',
  'http2-open',
  'http2-echo',
  'streaming',
  'streaming-rss',
  'streaming-fragment-size',
  'observability',
];

/** Whether a file name is one writeCharts may write (and so may remove when a run no longer has it). */
export function isChartFile(name) {
  if (!name.endsWith('.svg')) return false;
  const id = name.slice(0, -4);
  if (CHART_IDS.includes(id)) return true;
  for (const prefix of ['echo-', 'compat-']) {
    if (!id.startsWith(prefix)) continue;
    const rest = id.slice(prefix.length);
    for (const unit of ['b', 'kib', 'mib']) {
      const num = rest.slice(0, -unit.length);
      if (rest.endsWith(unit) && num !== '' && [...num].every((c) => (c >= '0' && c <= '9') || c === '.')) return true;
    }
  }
  return false;
}

/** `[{ id, file, svg }]` for a bench result: file is `<id>.svg`. */
export function renderCharts(result) {
  return chartsOf(result).map((spec) => ({ id: spec.id, file: `${spec.id}.svg`, svg: renderChart(spec) }));
}

/** Where the charts of a result file go: bench/reference/full.json → bench/reference/charts/full/. */
export function chartsDirFor(jsonPath) {
  return join(dirname(jsonPath), 'charts', basename(jsonPath).replace(/\.json$/, ''));
}

/**
 * Writes a result's charts into `dir` (created if needed) and returns the paths written. A chart
 * of ours that this result no longer has (a scenario not run this time) is removed, so the
 * folder never mixes runs; no other file is touched.
 */
export function writeCharts(result, dir) {
  const charts = renderCharts(result);
  mkdirSync(dir, { recursive: true });
  const made = new Set(charts.map((c) => c.file));
  for (const name of readdirSync(dir)) if (isChartFile(name) && !made.has(name)) rmSync(join(dir, name), { force: true });
  return charts.map((c) => {
    const path = join(dir, c.file);
    writeFileSync(path, c.svg);
    return path;
  });
}
