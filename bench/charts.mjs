#!/usr/bin/env node
// Charts from an existing bench result, without running the benchmark again:
//
//   node bench/charts.mjs <result.json> [outdir]
//
// outdir defaults to charts/<name>/ beside the JSON (bench/reference/full.json →
// bench/reference/charts/full/). One SVG per scenario group (lib/charts.mjs); prints the files.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { chartsDirFor, writeCharts } from './lib/charts.mjs';

const [input, outDir, ...extra] = process.argv.slice(2);
if (input === undefined || input.startsWith('-') || extra.length > 0) {
  console.error('usage: node bench/charts.mjs <result.json> [outdir]');
  process.exit(2);
}
const result = JSON.parse(readFileSync(input, 'utf8'));
const files = writeCharts(result, outDir ?? chartsDirFor(input));
if (files.length === 0) console.error(`${input}: no scenario with a chart in this result`);
for (const f of files) console.log(relative(process.cwd(), f));
