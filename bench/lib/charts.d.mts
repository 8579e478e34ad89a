// Types for charts.mjs, so the TypeScript tests can import it.

/** A chart goes to a log scale when max / min over its bars exceeds this. */
export const LOG_THRESHOLD: number;

export interface ChartBar {
  /** The series (target) key: picks the colour, and the label when `label` is absent. */
  series: string;
  /** The bar's own label (a variant of a target), instead of the series label. */
  label?: string;
  /** A key for ratios when several bars share a series. */
  key?: string;
  /** null: not measured ("—"). */
  value: number | null;
  /** Set when the measurement failed ("failed"). */
  error?: string;
}

export interface ChartGroup {
  label: string;
  bars: ChartBar[];
  ratios?: { label: string; value: number }[];
}

export interface ChartSpec {
  id: string;
  title: string;
  subtitle: string;
  unit: string;
  /** 'si': 1.89M, 149k; 'plain': 9.50, 1,273. */
  numbers: 'si' | 'plain';
  better: 'higher' | 'lower';
  note?: string;
  series: { key: string; label: string; color: string }[];
  groups: ChartGroup[];
}

export interface Scale {
  log: boolean;
  lo: number;
  hi: number;
  ticks: number[];
  /** 0 at the axis, 1 at the far end. */
  pos(value: number): number;
}

export function scaleFor(values: number[]): Scale;
export function escapeXml(text: string): string;
export function valueText(spec: Pick<ChartSpec, 'numbers' | 'unit'>, value: number): string;
export function ratioText(ratio: number): string;
export function renderChart(spec: ChartSpec): string;
/** Every chart a bench result (the JSON bench/run.mjs writes) has, in a fixed order. */
export function chartsOf(result: unknown): ChartSpec[];
export const CHART_IDS: string[];
export function isChartFile(name: string): boolean;
export function renderCharts(result: unknown): { id: string; file: string; svg: string }[];
/** bench/reference/full.json → bench/reference/charts/full */
export function chartsDirFor(jsonPath: string): string;
/** Writes the charts into dir and returns the paths; removes stale charts of ours there, nothing else. */
export function writeCharts(result: unknown, dir: string): string[];
