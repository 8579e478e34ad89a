/**
 * The Prometheus text exposition format, version 0.0.4, as pure functions: escaping, number
 * formatting and the name grammar. Nothing here knows wsmount's counters
 * (prometheus.ts maps those onto families).
 *
 * The format, in short: lines end with `\n`; `# HELP <name> <text>` and `# TYPE <name> <type>`
 * come once per family, before its samples, and a family's samples are contiguous;
 * a sample is `<name>{<label>="<value>",…} <value>`.
 */

/** The Content-Type of the text format, version 0.0.4. */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The metric types wsmount exposes. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric name without colons (`[a-zA-Z_][a-zA-Z0-9_]*`): Prometheus' grammar also allows `:`,
 * but reserves it for recording rules, which exporters must not use.
 */
const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** A label name (`[a-zA-Z_][a-zA-Z0-9_]*`); names starting with `__` are reserved to Prometheus. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Whether `name` is a metric name an exporter may use (no colon, not starting with `__`). */
export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name) && !name.startsWith('__');
}

/** Whether `name` is a label name a target may expose (not starting with `__`). */
export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith('__');
}

/**
 * `name` turned into something the grammar accepts, for error messages that suggest a fix:
 * every other character becomes `_`, and a leading digit gets a `_` before it.
 */
export function suggestName(name: string): string {
  let out = '';
  for (const ch of name) out += /[a-zA-Z0-9_]/.test(ch) ? ch : '_';
  if (out === '' || /^[0-9]/.test(out)) out = `_${out}`;
  while (out.startsWith('__')) out = out.slice(1);
  return out;
}

/** HELP text: a backslash becomes `\\` and a line feed `\n` (nothing else is escaped there). */
export function escapeHelp(text: string): string {
  if (!/[\\\n]/.test(text)) return text;
  return text.replace(/[\\\n]/g, (ch) => (ch === '\\' ? '\\\\' : '\\n'));
}

/** A label value, between its double quotes: `\` → `\\`, `"` → `\"`, line feed → `\n`. */
export function escapeLabelValue(value: string): string {
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/[\\"\n]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '"' ? '\\"' : '\\n'));
}

/**
 * A sample value as the format writes it: integers and decimals as JavaScript prints them (which
 * Go's ParseFloat reads back exactly: `1e+21`, `5e-7`), and `NaN`, `+Inf`, `-Inf`.
 */
export function formatValue(value: number): string {
  if (Number.isFinite(value)) return String(value);
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}

/** `name="value"` pairs joined with commas (no braces), values escaped, in the order given. */
export function labelPairs(labels: Iterable<readonly [string, string]>): string {
  let out = '';
  for (const [name, value] of labels) out += `${out === '' ? '' : ','}${name}="${escapeLabelValue(value)}"`;
  return out;
}

/** The `# HELP` and `# TYPE` lines that open a family. */
export function familyHeader(name: string, type: MetricType, help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/** One sample line: `name{labels} value\n` (no braces when there are no labels). */
export function sampleLine(name: string, labels: string, value: number): string {
  return labels === '' ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`;
}
