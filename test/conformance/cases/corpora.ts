/**
 * The five corpora of Autobahn sections 12 and 13, made up here instead of shipped: Autobahn's
 * files (autobahntestsuite/testdata: data1.json 194,056 B, lena512.bmp 263,222 B, Goethe's Faust
 * from Project Gutenberg 222,218 B, data1.html 263,647 B and a 1,042,328 B PDF) are too big for
 * this repository and some are not ours to copy. Each stand-in has the same kind of content, about
 * the same size, and so about the same compressibility, and is generated from a fixed seed: the
 * same bytes on every run (the PDF's Flate streams come from node:zlib and may differ between
 * zlib versions, which changes nothing for the tests).
 *
 * Text corpora are ASCII, so that any slice of them is valid UTF-8 — Autobahn sends slices at
 * arbitrary offsets (see compression.ts) and sends them as text. The prose corpus is German with
 * umlauts like Faust, so it is UTF-8 with multi-byte characters, and Autobahn sends it as binary
 * for that reason (a slice may cut a character): so do we.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { Rng } from '../../reliability/fixtures/prng.js';

export interface Corpus {
  /** Autobahn's subsection: 12.1 … 12.5 (the JSON corpus is also section 13's). */
  section: string;
  title: string;
  /** Sent as binary messages (else as text). */
  binary: boolean;
  data: Buffer;
}

const WORDS = (
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ' +
  'enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in ' +
  'reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa ' +
  'qui officia deserunt mollit anim id est laborum server socket message frame window buffer stream compress deflate echo'
).split(' ');
const FIRST = ['Ada', 'Grace', 'Alan', 'Linus', 'Barbara', 'Ken', 'Dennis', 'Margaret', 'Edsger', 'Donald', 'Frances', 'John', 'Radia', 'Tim'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Liskov', 'Thompson', 'Ritchie', 'Hamilton', 'Dijkstra', 'Knuth', 'Allen', 'Backus', 'Perlman'];

function sentence(rng: Rng, min: number, max: number): string {
  const n = rng.range(min, max);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(rng.pick(WORDS));
  const s = words.join(' ');
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}.`;
}

function ascii(text: string, what: string): Buffer {
  const b = Buffer.from(text, 'latin1');
  for (const byte of b) if (byte > 0x7e || (byte < 0x20 && byte !== 0x0a && byte !== 0x09)) throw new Error(`${what} corpus is not printable ASCII`);
  return b;
}

/** A pretty-printed JSON array of records, like the output of a JSON test-data generator. */
function json(target: number): Buffer {
  const rng = new Rng(0x12_01);
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[rng.int(16)]).join('');
  const records: string[] = [];
  let size = 2;
  for (let id = 0; size < target; id++) {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const company = rng.pick(WORDS).toUpperCase() + rng.pick(WORDS).toUpperCase();
    const friends = Array.from({ length: rng.range(1, 4) }, (_, i) => `      {\n        "id": ${i},\n        "name": "${rng.pick(FIRST)} ${rng.pick(LAST)}"\n      }`);
    const tags = Array.from({ length: rng.range(3, 7) }, () => `      "${rng.pick(WORDS)}"`);
    const r =
      `  {\n    "_id": "${hex(24)}",\n    "index": ${id},\n    "guid": "${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}",\n` +
      `    "isActive": ${rng.chance(0.5)},\n    "balance": "$${rng.range(1, 3)},${String(rng.range(0, 999)).padStart(3, '0')}.${String(rng.range(0, 99)).padStart(2, '0')}",\n` +
      `    "age": ${rng.range(20, 70)},\n    "eyeColor": "${rng.pick(['blue', 'brown', 'green'])}",\n    "name": "${first} ${last}",\n` +
      `    "company": "${company}",\n    "email": "${first.toLowerCase()}.${last.toLowerCase()}@${company.toLowerCase()}.com",\n` +
      `    "phone": "+1 (${rng.range(800, 999)}) ${rng.range(100, 999)}-${rng.range(1000, 9999)}",\n` +
      `    "address": "${rng.range(100, 999)} ${rng.pick(LAST)} Street, ${rng.pick(WORDS)}, ${rng.pick(['Ohio', 'Utah', 'Iowa', 'Maine'])}, ${rng.range(10000, 99999)}",\n` +
      `    "about": "${sentence(rng, 20, 60)}",\n` +
      `    "registered": "20${rng.range(10, 24)}-0${rng.range(1, 9)}-${rng.range(10, 28)}T0${rng.range(0, 9)}:${rng.range(10, 59)}:${rng.range(10, 59)} -0${rng.range(1, 9)}:00",\n` +
      `    "latitude": ${(rng.float() * 180 - 90).toFixed(6)},\n    "longitude": ${(rng.float() * 360 - 180).toFixed(6)},\n` +
      `    "tags": [\n${tags.join(',\n')}\n    ],\n    "friends": [\n${friends.join(',\n')}\n    ],\n` +
      `    "greeting": "Hello, ${first} ${last}! You have ${rng.range(1, 20)} unread messages.",\n    "favoriteFruit": "${rng.pick(['apple', 'banana', 'strawberry'])}"\n  }`;
    records.push(r);
    size += r.length + 2;
  }
  return ascii(`[\n${records.join(',\n')}\n]\n`, 'JSON');
}

/** A 512×512 8-bit grayscale BMP (the size of lena512.bmp): smooth shading, shapes, fine noise. */
function bitmap(): Buffer {
  const rng = new Rng(0x12_02);
  const W = 512;
  const H = 512;
  const header = Buffer.alloc(14 + 40 + 1024);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(header.length + W * H, 2);
  header.writeUInt32LE(header.length, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(W, 18);
  header.writeInt32LE(H, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(8, 28);
  header.writeUInt32LE(W * H, 34);
  header.writeInt32LE(2835, 38);
  header.writeInt32LE(2835, 42);
  header.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) header.writeUInt32LE((i << 16) | (i << 8) | i, 54 + i * 4);
  const waves = Array.from({ length: 6 }, () => ({ fx: rng.float() * 0.05, fy: rng.float() * 0.05, phase: rng.float() * 6.3, amp: 10 + rng.float() * 25 }));
  const blobs = Array.from({ length: 14 }, () => ({ x: rng.int(W), y: rng.int(H), r: 20 + rng.int(90), v: rng.range(-70, 70) }));
  const pixels = Buffer.alloc(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let v = 110 + (x + y) * 0.06;
      for (const w of waves) v += w.amp * Math.sin(w.fx * x + w.fy * y + w.phase);
      for (const b of blobs) {
        const d2 = (x - b.x) ** 2 + (y - b.y) ** 2;
        if (d2 < b.r * b.r) v += b.v * (1 - d2 / (b.r * b.r));
      }
      v += rng.range(-6, 6);
      pixels[y * W + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return Buffer.concat([header, pixels]);
}

const GERMAN = (
  'der die das und ist nicht ein eine ich du er sie wir ihr mich dich sich mir dir Geist Nacht Welt Himmel Hölle Erde ' +
  'Herz Seele Liebe Mädchen Gretchen Faust Mephisto Teufel Gott Herr Tag Leben Tod Glück Gefühl Träume Brüder Blüte ' +
  'schön süß heiß groß größer müde früh spät über für schwören küssen grüßen flüstern glühen fühlen hören sehen wissen ' +
  'Wissenschaft Weisheit Bücher Stube Kerker Straße Garten Brunnen Wald Höhle Schatten Flammen Tränen Lüfte Töne ' +
  'so doch noch schon wohl ach o wie wo was wer wenn dann denn nun hier dort immer nimmer Augenblick verweile'
).split(' ');
const SPEAKERS = ['FAUST', 'MEPHISTOPHELES', 'MARGARETE', 'WAGNER', 'MARTHE', 'CHOR DER ENGEL', 'DER HERR', 'SCHÜLER'];

/** German verse drama (UTF-8 with umlauts and ß), as Faust I from Project Gutenberg. */
function prose(target: number): Buffer {
  const rng = new Rng(0x12_03);
  const lines: string[] = [
    'The Project Gutenberg EBook of Faust: Der Tragödie erster Teil, by Johann Wolfgang von Goethe',
    '',
    'This eBook is for the use of anyone anywhere at no cost and with almost no restrictions whatsoever.',
    '',
    'Faust: Der Tragödie erster Teil',
    '',
  ];
  let size = 0;
  let scene = 1;
  while (size < target) {
    const block: string[] = [];
    if (rng.chance(0.04)) block.push('', `${scene++}. Szene — ${rng.pick(['Nacht', 'Studierzimmer', 'Straße', 'Garten', 'Kerker', 'Walpurgisnacht'])}`, '');
    block.push(`${rng.pick(SPEAKERS)}:`);
    if (rng.chance(0.2)) block.push(`(${sentenceOf(rng, GERMAN, 4, 10)})`);
    for (let i = rng.range(2, 9); i > 0; i--) block.push(`    ${sentenceOf(rng, GERMAN, 5, 9).replace(/\.$/, rng.pick([',', '!', '?', ';', '.']))}`);
    block.push('');
    const text = block.join('\n');
    lines.push(text);
    size += Buffer.byteLength(text, 'utf8') + 1;
  }
  return Buffer.from(lines.join('\n'), 'utf8');
}

function sentenceOf(rng: Rng, words: readonly string[], min: number, max: number): string {
  const n = rng.range(min, max);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(words));
  const s = out.join(' ');
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}.`;
}

/** A long HTML page: head with style and script, navigation, articles, tables, lists, forms. */
function html(target: number): Buffer {
  const rng = new Rng(0x12_04);
  const parts: string[] = [
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Archive &mdash; socket frames</title>\n',
    '<style>\nbody { font-family: Georgia, serif; margin: 0 auto; max-width: 60em; color: #222; }\n',
    '.nav a { padding: 0 .5em; text-decoration: none; }\ntable.data td, table.data th { border: 1px solid #ccc; padding: 2px 6px; }\n</style>\n',
    '<script>\nfunction toggle(id) { var e = document.getElementById(id); e.style.display = e.style.display === "none" ? "" : "none"; }\n</script>\n',
    '</head>\n<body>\n<div class="nav">\n',
  ];
  for (let i = 0; i < 30; i++) parts.push(`  <a href="/archive/${rng.pick(WORDS)}/${i}.html" title="${rng.pick(WORDS)}">${rng.pick(WORDS)}</a>\n`);
  parts.push('</div>\n');
  let size = parts.join('').length;
  let id = 0;
  while (size < target) {
    const p: string[] = [];
    const kind = rng.int(4);
    id++;
    if (kind === 0) {
      p.push(`<div class="article" id="a${id}">\n  <h2><a href="#a${id}">${sentence(rng, 3, 7)}</a></h2>\n`);
      for (let i = rng.range(2, 5); i > 0; i--) p.push(`  <p>${sentence(rng, 15, 50)} <em>${rng.pick(WORDS)}</em> &amp; <a href="https://example.org/${rng.pick(WORDS)}?id=${rng.int(99999)}">${rng.pick(WORDS)}</a>.</p>\n`);
      p.push('</div>\n');
    } else if (kind === 1) {
      p.push(`<table class="data" id="t${id}">\n  <tr><th>id</th><th>name</th><th>size</th><th>status</th></tr>\n`);
      for (let i = rng.range(5, 20); i > 0; i--) {
        p.push(`  <tr><td>${rng.int(100000)}</td><td>${rng.pick(WORDS)}_${rng.pick(WORDS)}</td><td align="right">${rng.int(1 << 20)}</td><td class="${rng.pick(['ok', 'warn', 'fail'])}">${rng.pick(['OK', 'pending', 'failed'])}</td></tr>\n`);
      }
      p.push('</table>\n');
    } else if (kind === 2) {
      p.push(`<ul class="list" id="l${id}">\n`);
      for (let i = rng.range(3, 12); i > 0; i--) p.push(`  <li><a href="#${rng.pick(WORDS)}">${sentence(rng, 2, 6)}</a>&nbsp;<span class="count">(${rng.int(500)})</span></li>\n`);
      p.push('</ul>\n<!-- list end -->\n');
    } else {
      p.push(`<form action="/search" method="get" id="f${id}">\n  <label for="q${id}">${rng.pick(WORDS)}</label>\n  <input type="text" name="q" id="q${id}" value="${rng.pick(WORDS)}">\n`);
      p.push(`  <select name="s">${Array.from({ length: 5 }, () => `<option>${rng.pick(WORDS)}</option>`).join('')}</select>\n  <button onclick="toggle('a${id}')">Go</button>\n</form>\n`);
    }
    const text = p.join('');
    parts.push(text);
    size += text.length;
  }
  parts.push('</body>\n</html>\n');
  return ascii(parts.join(''), 'HTML');
}

/** A PDF-like file: text objects, Flate-compressed page streams, binary font and image streams, an xref table. */
function pdf(target: number): Buffer {
  const rng = new Rng(0x12_05);
  const chunks: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let size = chunks[0]?.length ?? 0;
  const offsets: number[] = [];
  const add = (b: Buffer): void => {
    chunks.push(b);
    size += b.length;
  };
  const obj = (dict: string, stream?: Buffer): void => {
    offsets.push(size);
    const n = offsets.length;
    if (stream === undefined) add(Buffer.from(`${n} 0 obj\n${dict}\nendobj\n`, 'latin1'));
    else {
      add(Buffer.from(`${n} 0 obj\n<< ${dict} /Length ${stream.length} >>\nstream\n`, 'latin1'));
      add(stream);
      add(Buffer.from('\nendstream\nendobj\n', 'latin1'));
    }
  };
  obj('<< /Type /Catalog /Pages 2 0 R /Metadata 3 0 R >>');
  obj('<< /Type /Pages /Kids [] /Count 0 >>');
  obj('/Type /Metadata /Subtype /XML', Buffer.from(`<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">${sentence(rng, 40, 80)}</x:xmpmeta>\n<?xpacket end="w"?>`, 'latin1'));
  while (size < target) {
    const kind = rng.int(10);
    if (kind < 4) {
      // A page's content stream: text operators, Flate-compressed (incompressible on the wire).
      const ops: string[] = ['BT', `/F${rng.range(1, 4)} ${rng.range(8, 14)} Tf`];
      for (let y = 720; y > 72; y -= 14) ops.push(`72 ${y} Td (${sentence(rng, 6, 14)}) Tj`);
      ops.push('ET');
      for (let i = 0; i < 20; i++) ops.push(`${rng.int(600)} ${rng.int(800)} ${rng.int(200)} ${rng.int(200)} re S`);
      obj('/Filter /FlateDecode', zlib.deflateSync(Buffer.from(ops.join('\n'), 'latin1')));
      obj(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${offsets.length} 0 R /Resources << /Font << /F1 5 0 R >> >> >>`);
    } else if (kind < 6) {
      // An embedded image: high-entropy bytes, as DCT data is.
      const w = rng.range(40, 160);
      const h = rng.range(40, 160);
      obj(`/Type /XObject /Subtype /Image /Width ${w} /Height ${h} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode`, rng.bytes(rng.range(4000, 20000)));
    } else if (kind < 8) {
      // A font program: tables of small integers and glyph names, partly repetitive.
      const parts: Buffer[] = [];
      for (let i = rng.range(50, 200); i > 0; i--) {
        const row = Buffer.alloc(16);
        for (let j = 0; j < 16; j++) row[j] = rng.chance(0.6) ? j * 3 : rng.int(256);
        parts.push(row, Buffer.from(`/g${rng.int(600)} `, 'latin1'));
      }
      obj('/Subtype /Type1C', Buffer.concat(parts));
    } else {
      obj(`<< /Type /Annot /Subtype /Link /Rect [${rng.int(600)} ${rng.int(800)} ${rng.int(600)} ${rng.int(800)}] /A << /S /URI /URI (https://example.org/${rng.pick(WORDS)}) >> >>`);
    }
  }
  const xref = size;
  const lines = [`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n`];
  for (const o of offsets) lines.push(`${String(o).padStart(10, '0')} 00000 n \n`);
  lines.push(`trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  add(Buffer.from(lines.join(''), 'latin1'));
  return Buffer.concat(chunks);
}

let cache: Corpus[] | undefined;

/** The five corpora, in Autobahn's order (case12_x_x.py WS_COMPRESSION_TESTDATA_KEYS). Built once per process. */
export function corpora(): readonly Corpus[] {
  cache ??= [
    { section: '12.1', title: 'JSON text (stand-in for data1.json)', binary: false, data: json(194_056) },
    { section: '12.2', title: '8-bit grayscale bitmap (stand-in for lena512.bmp)', binary: true, data: bitmap() },
    { section: '12.3', title: 'German verse, UTF-8, sent as binary (stand-in for Faust I)', binary: true, data: prose(222_218) },
    { section: '12.4', title: 'HTML text (stand-in for data1.html)', binary: false, data: html(263_647) },
    { section: '12.5', title: 'PDF-like binary (stand-in for a 1 MB PDF)', binary: true, data: pdf(1_042_328) },
  ];
  return cache;
}

/** The JSON corpus: section 13's (case12_x_x.py TEST_DATA = json_data1). */
export function jsonCorpus(): Corpus {
  return corpora()[0] as Corpus;
}
