/**
 * Every ```ts block in README.md compiles as a module of a user's strict TypeScript project
 * (strict, noImplicitOverride, module/moduleResolution NodeNext, "type": "module"), where
 * 'wsmount', 'wsmount/testing', 'wsmount/ws' and 'wsmount/dashboard' are this repository's src/.
 *
 * How: each block is written to <tmp>/readme/L<line>.ts, next to a symlink to our node_modules
 * (so `express`, `vitest` and `@types/node` resolve as in a user's project) and the user modules
 * the README's examples import (`../src/sockets.js`, below). One tsc run checks them all; an
 * error is reported at its README line.
 *
 * Markers, an HTML comment on the last non-blank line before a block's fence (invisible on
 * GitHub and npm):
 * - `<!-- not-compiled: why -->` leaves the block out. Use it sparingly, and say why.
 * - `<!-- compile-with: declare const sockets: WebSocketHandler; -->` is TypeScript put before
 *   the block, for a fragment whose surroundings the prose describes (the handler, the server).
 *
 * The same run also checks a small made-up README (`SELF_CHECK`) with a broken block, so this
 * test is seen to fail when a block does not compile, at the right line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runNode } from '../helpers/run-node.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Block {
  /** README line of the opening fence (1-based). */
  fence: number;
  code: string;
  /** TypeScript from a compile-with marker, put before the code. */
  prelude: string;
  /** The reason given in a not-compiled marker. */
  skip: string | undefined;
}

/** The ```ts / ```typescript blocks of a Markdown text, with their markers. */
function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let open: { fence: string; lang: string; start: number; body: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (open !== null) {
      if (line.trimStart().startsWith(open.fence) && line.trim() === line.trim()[0]?.repeat(line.trim().length)) {
        if (open.lang === 'ts' || open.lang === 'typescript') {
          const marker = markerBefore(lines, open.start);
          blocks.push({ fence: open.start + 1, code: open.body.join('\n'), prelude: marker.prelude, skip: marker.skip });
        }
        open = null;
      } else {
        open.body.push(line);
      }
      continue;
    }
    const fence = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (fence !== null) open = { fence: fence[1] ?? '```', lang: (fence[2] ?? '').toLowerCase(), start: i, body: [] };
  }
  if (open !== null) throw new Error(`README.md:${open.start + 1}: a code block is never closed`);
  return blocks;
}

function markerBefore(lines: string[], fenceIndex: number): { prelude: string; skip: string | undefined } {
  let j = fenceIndex - 1;
  while (j >= 0 && (lines[j] ?? '').trim() === '') j--;
  const previous = (lines[j] ?? '').trim();
  const skip = /^<!--\s*not-compiled:\s*(.*?)\s*-->$/.exec(previous);
  if (skip !== null) {
    if ((skip[1] ?? '') === '') throw new Error(`README.md:${j + 1}: a not-compiled marker must say why`);
    return { prelude: '', skip: skip[1] };
  }
  const prelude = /^<!--\s*compile-with:\s*(.*?)\s*-->$/.exec(previous);
  if (prelude !== null) return { prelude: prelude[1] ?? '', skip: undefined };
  if (/^<!--\s*(not-compiled|compile-with)/.test(previous)) throw new Error(`README.md:${j + 1}: a malformed marker: ${previous}`);
  return { prelude: '', skip: undefined };
}

/**
 * The user's own module that the README's testing examples import (`../src/sockets.js`): a
 * handler with the routes those examples use.
 */
const USER_SOCKETS = `
import type { IncomingMessage } from 'node:http';
import { Behavior, HandshakeRejection, createWebSocketHandler } from 'wsmount';

class Reverse extends Behavior {
  override onText(text: string) { this.sendText([...text].reverse().join('.')); }
}
class Admin extends Behavior {
  override verify(req: IncomingMessage) {
    if (req.headers.authorization !== 'Bearer secret') throw new HandshakeRejection(401, 'log in first');
  }
}
class Room extends Behavior<{ room: string }> {
  static override protocols = ['chat.v2'];
}
export const sockets = createWebSocketHandler({ '/reverse': Reverse, '/admin': Admin, '/rooms/:room': Room });
`;

/** A made-up README whose second block is broken: the check must report it at its line. */
const SELF_CHECK = [
  '# self check', // 1
  '```ts', // 2
  "import { Behavior } from 'wsmount';", // 3
  'export class Fine extends Behavior { override onText(t: string) { this.sendText(t); } }', // 4
  '```', // 5
  '```ts', // 6
  "import { Behavior } from 'wsmount';", // 7
  'class NoOverride extends Behavior {', // 8
  '  onText(t: string) { this.sendText(t); }', // 9: noImplicitOverride
  '}', // 10
  "const n: number = 'one';", // 11
  'userFromCookie();', // 12
  '```', // 13
  '<!-- not-compiled: not TypeScript at all -->', // 14
  '```ts', // 15
  'this is not TypeScript', // 16
  '```', // 17
  "<!-- compile-with: import type { WebSocketHandler } from 'wsmount'; declare const sockets: WebSocketHandler; -->", // 18
  '```ts', // 19
  'await sockets.close();', // 20
  '```', // 21
  '```js', // 22
  'not checked: only ts blocks are', // 23
  '```', // 24
].join('\n');

interface Diagnostic {
  file: string;
  line: number;
  text: string;
}

/** Runs tsc once over every block; returns its diagnostics by file. */
async function typeCheck(dir: string): Promise<{ diagnostics: Diagnostic[]; output: string }> {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const run = await runNode([tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir, timeout: 120_000 });
  // Exit codes 1 and 2 mean "errors found": those are the result, not a failure to run.
  if (run.code !== 0 && run.code !== 1 && run.code !== 2) throw new Error(`tsc failed to run: it exited with ${String(run.code ?? run.signal)}\n${run.stdout}${run.stderr}`);
  const output = run.stdout + run.stderr;
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const m = /^(.+?)\((\d+),\d+\): (error TS\d+: .*)$/.exec(line);
    if (m !== null) diagnostics.push({ file: join(dir, m[1] ?? ''), line: Number(m[2]), text: m[3] ?? '' });
    else if (line.startsWith(' ') && diagnostics.length > 0) diagnostics[diagnostics.length - 1]!.text += `\n    ${line.trim()}`;
    else if (line.trim() !== '') diagnostics.push({ file: '', line: 0, text: line });
  }
  return { diagnostics, output };
}

/** Writes the blocks of one Markdown text as modules; returns file → block. */
function writeBlocks(dir: string, folder: string, blocks: Block[]): Map<string, Block> {
  const files = new Map<string, Block>();
  mkdirSync(join(dir, folder), { recursive: true });
  for (const block of blocks) {
    if (block.skip !== undefined) continue;
    const file = join(dir, folder, `L${block.fence}.ts`);
    // The prelude takes the first line, so the block's line k is file line k + 1.
    writeFileSync(file, `${block.prelude}\n${block.code}\n`);
    files.set(file, block);
  }
  return files;
}

/** "README.md:123: error TS…" for each diagnostic in a block's file. */
function report(name: string, files: Map<string, Block>, diagnostics: Diagnostic[]): string[] {
  const out: Array<{ line: number; text: string }> = [];
  for (const d of diagnostics) {
    const block = files.get(d.file);
    if (block === undefined) continue;
    const line = d.line <= 1 ? block.fence - 1 : block.fence + d.line - 1;
    const where = d.line <= 1 ? `${line} (its compile-with marker)` : `${line}`;
    out.push({ line, text: `${name}:${where} (block at line ${block.fence}): ${d.text}` });
  }
  return out.sort((a, b) => a.line - b.line).map((e) => e.text);
}

let dir = '';
let readmeFiles = new Map<string, Block>();
let selfFiles = new Map<string, Block>();
let result: { diagnostics: Diagnostic[]; output: string } = { diagnostics: [], output: '' };
const readmeBlocks = extractBlocks(readFileSync(join(root, 'README.md'), 'utf8'));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsmount-readme-'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-examples', private: true, type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        moduleDetection: 'force',
        strict: true,
        noImplicitOverride: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        paths: {
          wsmount: [join(root, 'src/index.ts')],
          'wsmount/testing': [join(root, 'src/testing/index.ts')],
          'wsmount/ws': [join(root, 'src/compat/index.ts')],
          'wsmount/dashboard': [join(root, 'src/dashboard/index.ts')],
        },
      },
      include: ['readme/*.ts', 'self-check/*.ts', 'src/*.ts'],
    }),
  );
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/sockets.ts'), USER_SOCKETS);
  readmeFiles = writeBlocks(dir, 'readme', readmeBlocks);
  selfFiles = writeBlocks(dir, 'self-check', extractBlocks(SELF_CHECK));
  result = await typeCheck(dir);
}, 150_000);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('README.md TypeScript examples', () => {
  test('the README has TypeScript blocks, and few are left out (each with a reason)', () => {
    expect(readmeBlocks.length).toBeGreaterThanOrEqual(10);
    const skipped = readmeBlocks.filter((b) => b.skip !== undefined);
    expect(skipped.length).toBeLessThanOrEqual(2);
  });

  test('every block compiles (strict, noImplicitOverride, NodeNext)', () => {
    const errors = report('README.md', readmeFiles, result.diagnostics);
    // Errors outside the blocks (our src/ under these settings, the user module) count too.
    const known = new Set([...readmeFiles.keys(), ...selfFiles.keys()]);
    const elsewhere = result.diagnostics.filter((d) => !known.has(d.file)).map((d) => `${d.file || '(tsc)'}:${d.line}: ${d.text}`);
    expect([...errors, ...elsewhere]).toEqual([]);
  });

  test('self-check: a broken block fails at its README line; markers work', () => {
    const errors = report('SELF_CHECK', selfFiles, result.diagnostics);
    expect(errors).toEqual([
      expect.stringMatching(/^SELF_CHECK:9 \(block at line 6\): error TS4114: .*override/),
      expect.stringMatching(/^SELF_CHECK:11 \(block at line 6\): error TS2322: /),
      expect.stringMatching(/^SELF_CHECK:12 \(block at line 6\): error TS2304: Cannot find name 'userFromCookie'/),
    ]);
    // The not-compiled block was never written; the compile-with block and the fine one pass.
    expect([...selfFiles.values()].map((b) => b.fence)).toEqual([2, 6, 19]);
  });
});
