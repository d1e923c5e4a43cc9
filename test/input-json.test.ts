/**
 * JSON array input through the real bin: each element stored as its compact text (strings and numbers
 * byte for byte) with the line it starts on, checked against Python's json module; elements that are
 * not objects, not JSON or not UTF-8 are rejects naming their line.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { createRng } from '../bench/generate.js';
import { prepareFileArgs } from './input-support.js';
import { pythonFirstInvalidUtf8, pythonJsonElements } from './python-reference.js';
import { readRequestFiles, runCli, tempDir } from './support.js';

interface Stored {
  line: number;
  record: string;
  custom_id: string | null;
  code: string | null;
}

/** Requests and rejects of a ledger, in input order. */
function stored(ledger: string): Stored[] {
  const db = new Database(ledger, { readonly: true });
  const rows = db
    .prepare(
      `SELECT seq, line, CAST(record AS TEXT) AS record, custom_id, NULL AS code FROM requests JOIN records USING (seq)
       UNION ALL SELECT seq, line, CAST(record AS TEXT), NULL, code FROM rejects ORDER BY seq`,
    )
    .all() as (Stored & { seq: number })[];
  db.close();
  return rows.map(({ seq: _, ...row }) => row);
}

/** A messy JSON array: every kind of whitespace between tokens, long numbers, escapes, nesting. */
function messyArray(seed: number, count: number): string {
  const random = createRng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const ws = () => pick(['', ' ', '\n', '\r\n', '\t', '  \n  ']);
  const strings = [
    'plain',
    'say \\"hi there\\" , now',
    'trailing backslash \\\\',
    'back\\\\slash \\\\\\"q uote',
    'brackets ] } [ {, commas',
    'é 😀 \\u00e9',
    'tab\\t',
  ];
  const numbers = ['1', '-0', '1.50', '123456789012345678', '1e3', '2.0E-5', '98765432109876543210'];
  const elements: string[] = [];
  for (let i = 0; i < count; i++) {
    const members = [
      `"id"${ws()}:${ws()}"e${i}"`,
      `"text"${ws()}:${ws()}"${pick(strings)}"`,
      `"n"${ws()}:${ws()}${pick(numbers)}`,
      `"nested"${ws()}:${ws()}{${ws()}"list"${ws()}:${ws()}[${ws()}${pick(numbers)}${ws()},${ws()}null${ws()},${ws()}{}${ws()},${ws()}[]${ws()}]${ws()}}`,
    ];
    elements.push(`{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}`);
  }
  return `${ws()}[${ws()}${elements.join(`${ws()},${ws()}`)}${ws()}]${ws()}`;
}

test('a JSON array: each element stored as Python finds it (compact text, start line), long numbers exact', async () => {
  for (const [count, flags] of [
    [40, []],
    [2000, ['--threads', '1']], // past the 256 KB chunk size, on a worker too
  ] as const) {
    const dir = tempDir();
    const file = path.join(dir, 'records.json');
    writeFileSync(file, messyArray(count, count));
    const run = await runCli(prepareFileArgs(file, ...flags));
    assert.equal(run.code, 0, run.stderr);
    const expected = pythonJsonElements(file);
    assert.equal(expected.length, count);
    const rows = stored(path.join(dir, 'l.db'));
    assert.deepEqual(
      rows.map((r) => [r.line, r.record]),
      expected.map((e) => [e.line, e.text]),
    );
    const requests = readRequestFiles(path.join(dir, 'out')).lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      requests.map((r) => [r.custom_id, r.body.messages[0].content]),
      expected.map((e) => {
        const element = JSON.parse(e.text) as { id: string; text: string };
        return [element.id, element.text];
      }),
    );
    const results = await runCli(['results', '--ledger', path.join(dir, 'l.db')]);
    assert.equal(results.code, 0, results.stderr);
    const lines = results.stdout.trim().split('\n');
    expected.forEach((e, i) => {
      assert.ok(
        lines[i]!.includes(`"record":${e.text},`),
        `results line ${i + 1} carries the element's text`,
      );
    });
  }
});

test('--json-path reads the array inside objects; other keys are skipped whatever they hold', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'wrapped.json');
  const elements = [
    '{"id":"x","text":"X","n":1.10}',
    '{ "id" : "y" ,\n "text" : "Y" }',
    '{"id":"z","text":"Z ]}"}',
  ];
  const head =
    '{"meta": {"items": [{"id": "decoy"}], "s": "data: ]}", "n": 7\n},\n "data": {"count": 3\n, "items": [\n';
  let text = head;
  const lines: number[] = [];
  for (const [i, element] of elements.entries()) {
    lines.push(text.split('\n').length);
    text += element + (i < elements.length - 1 ? ',\n\n' : '\n');
  }
  text += '], "after": [1, 2]}}\n';
  writeFileSync(file, text);
  const run = await runCli(prepareFileArgs(file, '--json-path', 'data.items'));
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(
    stored(path.join(dir, 'l.db')).map((r) => [r.line, r.record]),
    [
      [lines[0], '{"id":"x","text":"X","n":1.10}'],
      [lines[1], '{"id":"y","text":"Y"}'],
      [lines[2], '{"id":"z","text":"Z ]}"}'],
    ],
  );

  const missing = await runCli(
    prepareFileArgs(file, '--ledger', path.join(dir, 'm.db'), '--json-path', 'data.nope'),
  );
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /wrapped\.json:\d+: BP_PARSE no --json-path data\.nope in the JSON input/);
});

test('elements that are not objects, not JSON or not UTF-8 are rejects naming their line', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.json');
  const bytes = Buffer.concat([
    Buffer.from(
      '[\n{"id":"1","text":"ok"},\n42,\n{"id":"2","text":"raw\nbreak"},\n{"id":"3","text":}\n,{"id":"4","text":"caf',
    ),
    Buffer.from([0xe9]),
    Buffer.from('"},\n"s", {"id":"5","text":"last"}]\n'),
  ]);
  writeFileSync(file, bytes);
  const rejects = path.join(dir, 'r.jsonl');
  const run = await runCli(prepareFileArgs(file, '--rejects', rejects));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 7 = staged 2 \+ rejected 5/);
  const got = readFileSync(rejects, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { line: number; code: string; message: string });
  assert.deepEqual(
    got.map((r) => [r.line, r.code]),
    [
      [3, 'BP_PARSE'],
      [4, 'BP_PARSE'],
      [6, 'BP_PARSE'],
      [7, 'BP_ENCODING'],
      [8, 'BP_PARSE'],
    ],
  );
  assert.match(got[3]!.message, new RegExp(`^invalid UTF-8 at byte offset ${pythonFirstInvalidUtf8(file)};`));
  assert.deepEqual(
    stored(path.join(dir, 'l.db'))
      .filter((r) => r.custom_id)
      .map((r) => [r.line, r.custom_id]),
    [
      [2, '1'],
      [8, '5'],
    ],
  );

  const stop = await runCli(prepareFileArgs(file, '--ledger', path.join(dir, 's.db')));
  assert.equal(stop.code, 1);
  assert.match(stop.stderr, /bad\.json:3: BP_PARSE expected a JSON object/);
});

test('a JSON input that is not an array, is cut short or runs on stops with BP_PARSE naming the line', async () => {
  const cases: [string, RegExp][] = [
    ['{"id": 1}\n{"id": 2}\n', /x\.json:\d+: BP_PARSE/], // a .json starting with `{` is JSONL: two fine lines
    ['\n\n[{"id":"1","text":"a"},\n{"id":"2"', /x\.json:4: BP_PARSE the input ends inside the JSON array/],
    ['[{"id":"1","text":"a"}]\n]', /x\.json:2: BP_PARSE unexpected '\]' after the JSON array/],
    ['[{"id":"1","text":"a"},,{}]', /x\.json:1: BP_PARSE expected an element, found ','/],
  ];
  for (const [text, error] of cases) {
    const dir = tempDir();
    const file = path.join(dir, 'x.json');
    writeFileSync(file, text);
    const run = await runCli(prepareFileArgs(file, '--input-format', 'json'));
    assert.equal(run.code, 1, text);
    assert.match(run.stderr, error);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  }
  const dir = tempDir();
  const jsonl = path.join(dir, 'lines.json');
  writeFileSync(jsonl, '{"id":"1","text":"a"}\n{"id":"2","text":"b"}\n');
  const asJsonl = await runCli(prepareFileArgs(jsonl));
  assert.equal(asJsonl.code, 0, asJsonl.stderr);
  assert.match(asJsonl.stderr, /read 2 = staged 2/);
  const csv = path.join(dir, 'x.csv');
  writeFileSync(csv, 'id,text\n1,a\n');
  const usage = await runCli(prepareFileArgs(csv, '--json-path', 'data'));
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /BP_USAGE --json-path is for JSON input; this input is read as csv/);
});

test('the scanner finds the same elements whatever the pieces the input arrives in', async () => {
  const { jsonArrayLines } = await import('../src/sources/json-array.js');
  const dir = tempDir();
  const file = path.join(dir, 'records.json');
  writeFileSync(file, messyArray(7, 30));
  const expected = pythonJsonElements(file);
  const bytes = readFileSync(file);
  for (const size of [1, 2, 3, 7, 64]) {
    const pieces = async function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    };
    const { lines, log } = jsonArrayLines(pieces(), {
      name: 'x',
      path: [],
      encoding: 'utf-8',
      startOffset: 0,
    });
    const out: Buffer[] = [];
    for await (const piece of lines) out.push(piece);
    const texts = Buffer.concat(out).toString().split('\n').slice(0, -1);
    assert.deepEqual(
      texts.map((text, i) => ({ line: log.lineOf(i), text })),
      expected,
      `pieces of ${size}`,
    );
  }
});
