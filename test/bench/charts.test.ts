/**
 * The benchmark charts (bench/lib/charts.mjs): SVG that is well-formed XML, bars whose length is
 * proportional to the value (linear) or to its log10 (log), a log scale exactly when max / min
 * passes LOG_THRESHOLD, text escaped, failed and unmeasured figures drawn without a bar, the
 * same bytes for the same result, and the committed reference charts up to date.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import {
  CHART_IDS,
  type ChartSpec,
  chartsDirFor,
  chartsOf,
  isChartFile,
  LOG_THRESHOLD,
  renderChart,
  renderCharts,
  scaleFor,
  writeCharts,
} from '../../bench/lib/charts.mjs';
import { descendants, elements, parseXml, textOf, type XmlElement } from './xml.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const reference = (name: string): unknown => JSON.parse(readFileSync(join(root, 'bench', 'reference', `${name}.json`), 'utf8'));
const full = reference('full');

const temps: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'wsmount-charts-'));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

type Figure = number | null | { error: string };

/** One group, one bar per figure, series s0, s1…: what renderChart is given. */
function synthetic(figures: Figure[], over: Partial<ChartSpec> = {}): ChartSpec {
  return {
    id: 'test',
    title: 'Test chart',
    subtitle: 'a subtitle',
    unit: 'msg/s',
    numbers: 'si',
    better: 'higher',
    series: figures.map((_, i) => ({ key: `s${i}`, label: `series ${i}`, color: '#123456' })),
    groups: [
      {
        label: 'group',
        bars: figures.map((f, i) => (f !== null && typeof f === 'object' ? { series: `s${i}`, value: null, error: f.error } : { series: `s${i}`, value: f })),
      },
    ],
    ...over,
  };
}

interface Row {
  series: string;
  /** The rect's width, or null when the row has no bar. */
  width: number | null;
  label: string;
  value: string;
}

/** The bar rows of a parsed chart, in order. */
function rowsOf(svg: XmlElement): Row[] {
  return descendants(svg)
    .filter((e) => e.name === 'g' && e.attrs.get('class') === 'row')
    .map((g) => {
      const kids = elements(g);
      const rect = kids.find((e) => e.name === 'rect');
      const texts = kids.filter((e) => e.name === 'text');
      return {
        series: g.attrs.get('data-series') ?? '',
        width: rect === undefined ? null : Number(rect.attrs.get('width')),
        label: textOf(texts.find((t) => t.attrs.get('class') !== 'value') ?? { name: '', attrs: new Map(), children: [] }),
        value: textOf(texts.find((t) => t.attrs.get('class') === 'value') ?? { name: '', attrs: new Map(), children: [] }),
      };
    });
}

/** The text of every visible <text> element (not <title>/<desc>). */
const visibleTexts = (svg: XmlElement): string[] => descendants(svg).filter((e) => e.name === 'text').map(textOf);
const usesLogScale = (svg: XmlElement): boolean => visibleTexts(svg).some((t) => t.includes('log scale'));

describe('the XML reader the other tests rely on', () => {
  test('accepts well-formed XML and decodes references', () => {
    const doc = parseXml('<a x="1 &amp; 2"><b y=\'&lt;&#x41;&#66;\'/>t&gt;<!-- c --></a>\n');
    expect(doc.attrs.get('x')).toBe('1 & 2');
    expect(elements(doc)[0]?.attrs.get('y')).toBe('<AB');
    expect(textOf(doc)).toBe('t>');
  });
  test.each([
    ['an unclosed element', '<a><b></a>'],
    ['crossed elements', '<a><b></a></b>'],
    ['a bare ampersand', '<a>x & y</a>'],
    ['an unknown entity', '<a>&nbsp;</a>'],
    ['an unquoted attribute', '<a x=1/>'],
    ['a repeated attribute', '<a x="1" x="2"/>'],
    ['< in an attribute', '<a x="<"/>'],
    ['two roots', '<a/><b/>'],
    ['text after the root', '<a/>x'],
    ['attributes without space between', '<a x="1"y="2"/>'],
  ])('refuses %s', (_, xml) => {
    expect(() => parseXml(xml)).toThrow();
  });
});

describe('scale', () => {
  test(`log exactly when max / min > ${LOG_THRESHOLD}`, () => {
    expect(LOG_THRESHOLD).toBe(20);
    expect(scaleFor([1, 20]).log).toBe(false);
    expect(scaleFor([5, 100]).log).toBe(false);
    expect(scaleFor([1, 20.01]).log).toBe(true);
    expect(scaleFor([5, 100.5]).log).toBe(true);
    // Zero, negative, NaN and infinite figures are not part of the spread.
    expect(scaleFor([0, -3, Number.NaN, Number.POSITIVE_INFINITY, 1, 10]).log).toBe(false);
  });
  test('a linear scale starts at 0 and ends on a round value at or over the maximum', () => {
    const s = scaleFor([130, 870]);
    expect(s.ticks[0]).toBe(0);
    expect(s.hi).toBeGreaterThanOrEqual(870);
    expect(s.hi).toBe(1000);
    expect(s.pos(870)).toBeCloseTo(0.87, 12);
  });
  test('a log scale spans round values around the data, with a gridline at each power of ten', () => {
    const s = scaleFor([99_556, 9_905_785]);
    expect(s.lo).toBeLessThan(99_556 / 1.1);
    expect(s.hi).toBeGreaterThanOrEqual(9_905_785);
    for (const t of [1e5, 1e6, 1e7]) expect(s.ticks).toContain(t);
    expect(s.pos(s.lo)).toBe(0);
    expect(s.pos(s.hi)).toBeCloseTo(1, 12);
  });
});

describe('bars', () => {
  test('on a linear chart, bar length is proportional to the value', () => {
    const values = [100, 250, 400, 800, 55];
    const svg = parseXml(renderChart(synthetic(values)));
    expect(usesLogScale(svg)).toBe(false);
    const rows = rowsOf(svg);
    expect(rows.map((r) => r.series)).toEqual(values.map((_, i) => `s${i}`));
    const k = (rows[3]?.width ?? 0) / 800;
    expect(k).toBeGreaterThan(0.3); // a real plot, some hundreds of px wide
    values.forEach((v, i) => expect(Math.abs((rows[i]?.width ?? Number.NaN) - k * v)).toBeLessThanOrEqual(0.15));
  });

  test('on a log chart, bar length is an affine function of log10(value), and says so', () => {
    const values = [10, 1000, 50_000, 2_000_000, 333];
    const svg = parseXml(renderChart(synthetic(values)));
    expect(usesLogScale(svg)).toBe(true);
    const w = rowsOf(svg).map((r) => r.width ?? Number.NaN);
    const l = values.map(Math.log10);
    const b = ((w[3] ?? 0) - (w[0] ?? 0)) / ((l[3] ?? 0) - (l[0] ?? 0));
    const a = (w[0] ?? 0) - b * (l[0] ?? 0);
    expect(b).toBeGreaterThan(50);
    values.forEach((_, i) => expect(Math.abs((w[i] ?? Number.NaN) - (a + b * (l[i] ?? 0)))).toBeLessThanOrEqual(0.15));
    // Not proportional to the value itself.
    expect((w[1] ?? 0) / 1000).toBeGreaterThan(((w[3] ?? 0) / 2_000_000) * 10);
    // Every bar is visible, the smallest too.
    expect(Math.min(...w)).toBeGreaterThan(5);
    // Tick labels at the powers of ten.
    const ticks = descendants(svg)
      .filter((e) => e.name === 'g' && e.attrs.get('class') === 'axis')
      .flatMap((g) => elements(g).map(textOf));
    for (const t of ['10', '100', '1k', '10k', '100k', '1M']) expect(ticks).toContain(t);
  });

  test('the scale switches exactly at the threshold', () => {
    const at = parseXml(renderChart(synthetic([5, 100])));
    const over = parseXml(renderChart(synthetic([5, 100.5])));
    expect(usesLogScale(at)).toBe(false);
    expect(usesLogScale(over)).toBe(true);
    const [a0, a1] = rowsOf(at).map((r) => r.width ?? Number.NaN);
    expect(Math.abs((a0 ?? 0) * 20 - (a1 ?? 0))).toBeLessThanOrEqual(0.15 * 21);
  });

  test('every bar carries its value with the unit', () => {
    const svg = parseXml(renderChart(synthetic([1_890_000, 149_000, 950])));
    expect(rowsOf(svg).map((r) => r.value)).toEqual(['1.89M msg/s', '149k msg/s', '950 msg/s']);
  });

  test('a failed figure is the word "failed", an unmeasured one "—", neither with a bar', () => {
    const svg = parseXml(renderChart(synthetic([300, { error: 'timed out' }, null, 100])));
    const rows = rowsOf(svg);
    expect(rows.map((r) => r.width === null)).toEqual([false, true, true, false]);
    expect(rows[1]?.value).toBe('failed');
    expect(rows[2]?.value).toBe('—');
    expect(descendants(svg).filter((e) => e.name === 'rect' && e.attrs.get('class') === 'bar')).toHaveLength(2);
    const desc = textOf(descendants(svg).find((e) => e.name === 'desc') ?? parseXml('<x/>'));
    expect(desc).toContain('series 1 failed');
    expect(desc).toContain('series 2 not measured');
    // The remaining bars keep their own scale.
    expect(Math.abs((rows[0]?.width ?? 0) - 3 * (rows[3]?.width ?? 0))).toBeLessThanOrEqual(0.3);
  });
});

describe('the document', () => {
  test('is an accessible SVG on its own white background', () => {
    const svg = parseXml(renderChart(synthetic([1, 2, 3])));
    expect(svg.name).toBe('svg');
    expect(svg.attrs.get('xmlns')).toBe('http://www.w3.org/2000/svg');
    expect(svg.attrs.get('role')).toBe('img');
    const [first, second, third] = elements(svg);
    expect(first?.name).toBe('title');
    expect(second?.name).toBe('desc');
    expect(svg.attrs.get('aria-labelledby')).toBe(`${first?.attrs.get('id')} ${second?.attrs.get('id')}`);
    expect(textOf(first ?? svg)).toBe('Test chart');
    // The background: the whole canvas, white, before anything else is drawn.
    expect(third?.name).toBe('rect');
    expect(third?.attrs.get('fill')).toBe('#ffffff');
    expect(third?.attrs.get('width')).toBe(svg.attrs.get('width'));
    expect(third?.attrs.get('height')).toBe(svg.attrs.get('height'));
    expect(svg.attrs.get('viewBox')).toBe(`0 0 ${svg.attrs.get('width')} ${svg.attrs.get('height')}`);
  });

  test('escapes every piece of text, in the chart and in the result it comes from', () => {
    const nasty = `<b>&"it's"</b>`;
    const spec = synthetic([10, 20], { title: `a </title><script>alert(1)</script>`, subtitle: nasty });
    spec.groups[0] = { label: `x & <y>`, bars: [{ series: 's0', value: 10, label: nasty }, { series: 's1', value: 20 }] };
    const text = renderChart(spec);
    const svg = parseXml(text);
    expect(descendants(svg).some((e) => e.name === 'script' || e.name === 'b')).toBe(false);
    expect(textOf(elements(svg)[0] ?? svg)).toBe(spec.title);
    expect(visibleTexts(svg)).toContain(nasty);
    expect(visibleTexts(svg)).toContain('x & <y>');
    expect(text).not.toContain('<b>');

    // A target named with markup characters, all the way from a bench result.
    const odd = '<&>"\'';
    const result = {
      node: 'v20.0.0',
      scenarios: { echo: [{ conns: 16, size: 32, type: 'binary', medianRate: { wsmount: 1000, ws: 400, [odd]: 700 }, errors: {} }] },
    };
    const [chart] = renderCharts(result);
    const parsed = parseXml(chart?.svg ?? '');
    const row = rowsOf(parsed).find((r) => r.series === odd);
    expect(row?.label).toBe(odd);
    expect(row?.value).toBe('700 msg/s');
    expect(descendants(parsed).filter((e) => e.name === 'text' && e.attrs.has('x')).map(textOf)).toContain(odd);
  });

  test('the same result gives the same bytes', () => {
    const a = renderCharts(full);
    const b = renderCharts(JSON.parse(JSON.stringify(full)));
    expect(a.length).toBeGreaterThan(10);
    expect(b).toEqual(a);
    const d1 = tempDir();
    const d2 = tempDir();
    writeCharts(full, d1);
    writeCharts(full, d2);
    const files = readdirSync(d1).sort();
    expect(readdirSync(d2).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(d2, f))).toEqual(readFileSync(join(d1, f)));
  });
});

describe('from bench results', () => {
  const charts = chartsOf(full);
  const byId = new Map(charts.map((c) => [c.id, c]));
  const parsed = new Map(renderCharts(full).map((c) => [c.id, parseXml(c.svg)]));

  test('bench/reference/full.json: a chart per scenario group, each well-formed', () => {
    expect(charts.map((c) => c.id)).toEqual([
      'echo-32b',
      'echo-1kib',
      'echo-64kib',
      'echo-1mib',
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
      'compat-32b',
      'compat-1kib',
      'compat-64kib',
      'compat-1mib',
      'observability',
      'http2-open',
      'http2-echo',
      'streaming',
      'streaming-rss',
      'streaming-fragment-size',
    ]);
    for (const c of charts) {
      const svg = parsed.get(c.id);
      expect(svg?.name, c.id).toBe('svg');
      // One row per bar, a rect for each measured figure.
      const bars = c.groups.flatMap((g) => g.bars);
      const rows = rowsOf(svg ?? parseXml('<x/>'));
      expect(rows, c.id).toHaveLength(bars.length);
      bars.forEach((b, i) => expect(rows[i]?.width === null, `${c.id} bar ${i}`).toBe(b.error !== undefined || b.value === null));
      // Log exactly where the spread of this chart's figures needs it.
      const values = bars.flatMap((b) => (b.value !== null && b.value > 0 && b.error === undefined ? [b.value] : []));
      expect(usesLogScale(svg ?? parseXml('<x/>')), c.id).toBe(Math.max(...values) / Math.min(...values) > LOG_THRESHOLD);
      expect(CHART_IDS.includes(c.id) || isChartFile(`${c.id}.svg`), c.id).toBe(true);
    }
  });

  test('the figures and ratios of the README table', () => {
    // Expected figures come from the run's raw JSON and the README, formatted here on their own,
    // so a re-recorded run is checked the same way.
    const scenarios = (full as { scenarios: Record<string, Array<Record<string, unknown>>> }).scenarios;
    const sig3 = (x: number): string => {
      const [d, suffix] = x >= 1e6 ? [x / 1e6, 'M'] : x >= 1e3 ? [x / 1e3, 'k'] : [x, ''];
      return `${d >= 100 ? d.toFixed(0) : d >= 10 ? d.toFixed(1) : d.toFixed(2)}${suffix}`;
    };
    const e32 = scenarios.echo?.find((e) => e.conns === 16 && e.size === 32 && e.type === 'binary') as
      | { medianRate: Record<string, number | null>; ratios: Record<string, number> }
      | undefined;
    const ratio = e32?.ratios['wsmount/ws'] ?? Number.NaN;
    const ratioNative = e32?.ratios['wsmount/ws+native'] ?? Number.NaN;
    expect(ratio).toBeGreaterThan(1);
    const echo = rowsOf(parsed.get('echo-32b') ?? parseXml('<x/>'));
    // 16 conns · binary: wsmount, ws, ws + bufferutil, raw TCP.
    const group = byId.get('echo-32b')?.groups.find((g) => g.label === '16 conns · binary');
    expect(group?.ratios?.map((r) => r.label)).toEqual(['wsmount / ws', 'wsmount / ws + bufferutil']);
    expect(group?.ratios?.[0]?.value).toBeCloseTo(ratio, 6);
    const wsmountRate = e32?.medianRate.wsmount ?? Number.NaN;
    expect(echo.filter((r) => r.series === 'wsmount' && r.value === `${sig3(wsmountRate)} msg/s`)).toHaveLength(1);
    const ratioTexts = descendants(parsed.get('echo-32b') ?? parseXml('<x/>'))
      .filter((e) => e.attrs.get('class') === 'ratio')
      .map(textOf);
    // Charts give ratios three significant figures (8.84×, 12.6×), the README table one decimal.
    const ratio3 = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
    expect(ratioTexts).toContain(`wsmount / ws ${ratio3(ratio)}× · wsmount / ws + bufferutil ${ratio3(ratioNative)}×`);
    // The README's table row for this figure shows the same rate and ratios.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const row = readme.split('\n').find((l) => l.startsWith('| echo 32 B binary, 16 conns (msg/s) |'));
    expect(row?.split('|').map((c) => c.trim())).toEqual(
      expect.arrayContaining([sig3(wsmountRate), `${ratio.toFixed(1)}×`, `${ratioNative.toFixed(1)}×`]),
    );
    // A target that failed has a 'failed' row without a bar; the others show their median.
    const broadcast = scenarios.broadcast as Array<{ medianDeliveriesPerSec: Record<string, number | null>; errors: Record<string, string> }>;
    const bRows = rowsOf(parsed.get('broadcast') ?? parseXml('<x/>'));
    expect(bRows.filter((r) => r.series === 'raw').map((r) => r.value)).toEqual(
      broadcast.map((b) => (b.errors.raw !== undefined ? 'failed' : `${sig3(b.medianDeliveriesPerSec.raw ?? Number.NaN)} deliveries/s`)),
    );
    expect(bRows.filter((r) => r.series === 'raw').map((r) => r.width === null)).toEqual(broadcast.map((b) => b.errors.raw !== undefined));
    expect(usesLogScale(parsed.get('broadcast') ?? parseXml('<x/>'))).toBe(true);
    expect(usesLogScale(parsed.get('memory') ?? parseXml('<x/>'))).toBe(false);
    const memory = scenarios.memory?.[0] as { medianRssPerConn: Record<string, number> } | undefined;
    expect(rowsOf(parsed.get('memory') ?? parseXml('<x/>'))[0]?.value).toBe(`${((memory?.medianRssPerConn.wsmount ?? Number.NaN) / 1024).toFixed(2)} KiB`);
  });

  test('every committed reference run has its charts, up to date', () => {
    const names = readdirSync(join(root, 'bench', 'reference'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length));
    expect(names).toEqual(expect.arrayContaining(['full', 'full-node24']));
    for (const name of names) {
      const dir = chartsDirFor(join(root, 'bench', 'reference', `${name}.json`));
      expect(dir).toBe(join(root, 'bench', 'reference', 'charts', name));
      const want = renderCharts(reference(name));
      expect(readdirSync(dir).filter((f) => f.endsWith('.svg')).sort(), `${name}: run node bench/charts.mjs bench/reference/${name}.json`).toEqual(
        want.map((c) => c.file).sort(),
      );
      for (const c of want) expect(readFileSync(join(dir, c.file), 'utf8'), `${name}/${c.file}: run node bench/charts.mjs bench/reference/${name}.json`).toBe(c.svg);
    }
  });

  test('every chart the README shows is a committed reference chart', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const shown: string[] = [];
    for (const line of readme.split('\n')) {
      const start = line.indexOf('](bench/reference/charts/');
      if (!line.startsWith('![') || start < 0) continue;
      shown.push(line.slice(start + 2, line.indexOf(')', start)));
    }
    expect(shown).toContain('bench/reference/charts/full/echo-32b.svg');
    for (const path of shown) {
      const [, , , run, file] = path.split('/');
      expect(renderCharts(reference(run ?? '')).map((c) => c.file), path).toContain(file);
    }
  });

  test('an older or partial result gives the charts it can, and nothing for what it lacks', () => {
    expect(renderCharts({})).toEqual([]);
    expect(renderCharts({ scenarios: { handshakes: { concurrency: [1, 32] } } })).toEqual([]);
    expect(chartsOf(reference('fanout')).map((c) => c.id)).toEqual(['fanout', 'fanout-latency', 'subscriptions']);
    for (const name of ['quick', 'deflate', 'compat', 'http2', 'streaming']) {
      const out = renderCharts(reference(name));
      expect(out.length, name).toBeGreaterThan(0);
      for (const c of out) parseXml(c.svg);
    }
  });

  test('writing removes the stale charts of ours in the folder, and nothing else', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'echo-2kib.svg'), 'old');
    writeFileSync(join(dir, 'broadcast.svg'), 'old');
    writeFileSync(join(dir, 'notes.svg'), 'mine');
    writeFileSync(join(dir, 'echo-notes.svg'), 'mine');
    const written = writeCharts(reference('fanout'), dir);
    expect(written.map((p) => p.slice(dir.length + 1))).toEqual(['fanout.svg', 'fanout-latency.svg', 'subscriptions.svg']);
    expect(readdirSync(dir).sort()).toEqual(['echo-notes.svg', 'fanout-latency.svg', 'fanout.svg', 'notes.svg', 'subscriptions.svg']);
  });
});
