/**
 * A JSONL input's values keep their exact text in the results, at every depth: CSV cells (a nested
 * object or array as its text in the line, a top-level number as its digits) and the JSONL `record`
 * (the line itself, rejects included). Through the real bin; the expected cells come from Python's
 * json module, which finds each value's text with its own decoder (`raw_decode`, numbers as text).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { runCli, tempDir } from './support.js';

/** Nested values whose numbers JSON.parse → JSON.stringify would change (or lossless parsing quote). */
const NESTED = [
  '{"x":1.0,"y":123456789012345678901}',
  '[1e5, 1E+5, -0, -0.0, 0.10, 2.500e-3]',
  '{ "deep" : [ {"n": 123456789012345678}, 9007199254740993, -12345678901234567890 ] }',
  '{"s":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/","t":"\\u0000","1.0":1.0}',
  '[]',
  '{}',
  '[true,false,null,"a,b",{"z":[[1.10]]}]',
  '{"a":{"b":{"c":[1.50,2.500e-3,100000000000000000000000]}}}',
  '[ 1 ,\t2 ]',
  '["}", "]", "\\"{", {"k]":"v}"}, -1.0e-0]',
];
/** Top-level scalars: numbers as written, strings with escapes, literals. */
const SCALARS = [
  '123456789012345678',
  '123456789012345678901',
  '1.0',
  '1e5',
  '-0',
  '-0.0',
  '0.1',
  '2.500',
  '"\\u00e9\\ud83d\\ude00 ok"',
  '"=x, \\"quoted\\""',
  'true',
  'false',
  'null',
  '"a\\nb\\r\\nc"',
];

/**
 * Python's reading of each line: a JSON object → { key: cell } where a string is its value, null
 * is empty and anything else is the value's exact text (raw_decode's span); otherwise `null`.
 */
const PYTHON_CELLS = `
import json, re, sys
dec = json.JSONDecoder(parse_float=str, parse_int=str)
ws = re.compile(r'[ \\t\\n\\r]*')
def cells(s):
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    out = {}
    i = ws.match(s, s.index('{') + 1).end()
    while s[i] != '}':
        key, i = dec.raw_decode(s, i)
        i = ws.match(s, ws.match(s, i).end() + 1).end()
        value, j = dec.raw_decode(s, i)
        raw = s[i:j]
        out[key] = value if raw.startswith('"') else ('' if raw == 'null' else raw)
        i = ws.match(s, j).end()
        if s[i] == ',':
            i = ws.match(s, i + 1).end()
    return out
lines = open(sys.argv[1], encoding='utf-8').read().split('\\n')
print(json.dumps([cells(l) for l in lines if l != ''], ensure_ascii=False))
`;

/** Python's json reading of JSON texts with numbers kept as their text, for comparing records. */
const PYTHON_READ = `
import json, sys
texts = json.loads(sys.stdin.read())
print(json.dumps([json.loads(t, parse_float=str, parse_int=str) for t in texts], ensure_ascii=False))
`;

function python(script: string, args: string[], input = ''): unknown {
  const run = spawnSync('python3', ['-c', script, ...args], { input, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('JSONL input: nested values and top-level numbers keep their exact text in CSV cells and JSONL records', async () => {
  const dir = tempDir('bp-jsonl-values-');
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    const id = i % 3 === 0 ? `${123456789012345600 + i}` : `"r${i}"`;
    const members = [`"id": ${id}`];
    if (i % 5 !== 4) members.push(`"n":${NESTED[i % NESTED.length]}`);
    members.push(`"t" : ${SCALARS[i % SCALARS.length]}`);
    if (i % 4 === 0) members.push(`"m":\t${NESTED[(i + 3) % NESTED.length]} `);
    lines.push(`{${members.join(i % 2 === 0 ? ',' : ', ')}}`);
  }
  lines.push('{"id":"dup-key","t":1.0,"n":[1],"t":2.50}'); // the last "t" counts, as in JSON.parse
  // Rejected: a duplicate id holding nested numbers, and a line that is not JSON.
  lines.push('{"id":"r1","n":{"x":1.0,"y":123456789012345678901},"t":-0}');
  lines.push('{"id":"bad","n":[1.0,}');
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(input, `${lines.join('\n')}\n`);
  const ledger = path.join(dir, 'l.db');

  const run = await runCli([
    'run',
    input,
    '--backend',
    'local',
    '--ledger',
    ledger,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Row {{id}}',
    '--rejects',
    path.join(dir, 'rejects.jsonl'),
    '--format',
    'jsonl',
  ]);
  // Rejected records (set aside with --rejects): the run finishes with rows that did not succeed.
  assert.equal(run.code, 3, run.stderr);

  // JSONL: every record is its line, exactly (requests and rejects that are JSON objects), and
  // reads in Python as the input line does, numbers as their text.
  const out = run.stdout.split('\n').filter((l) => l !== '');
  assert.equal(out.length, lines.length);
  const objects = lines.slice(0, -1);
  for (const [i, line] of objects.entries()) assert.ok(out[i]!.includes(`"record":${line},"result"`), out[i]);
  assert.equal(JSON.parse(out.at(-1)!).record, lines.at(-1), 'a line that is not JSON comes as its text');
  const outputs = python(PYTHON_READ, [], JSON.stringify(out.slice(0, -1))) as { record: unknown }[];
  assert.deepEqual(
    outputs.map((o) => o.record),
    python(PYTHON_READ, [], JSON.stringify(objects)),
  );

  // CSV: each input column's cell is Python's reading of the value's text.
  const expected = python(PYTHON_CELLS, [input]) as (Record<string, string> | null)[];
  const csv = await runCli(['results', '--ledger', ledger, '--format', 'csv']);
  assert.equal(csv.code, 0, csv.stderr);
  const [header, ...rows] = parse(csv.stdout) as string[][];
  const columns = ['id', 'n', 't', 'm'];
  assert.deepEqual(header!.slice(0, columns.length), columns);
  assert.equal(rows.length, lines.length);
  rows.forEach((row, i) => {
    const cells = expected[i] ?? {};
    assert.deepEqual(
      row.slice(0, columns.length),
      columns.map((c) => cells[c] ?? ''),
      lines[i],
    );
  });
  // The issue's own example, spelled out.
  assert.equal(rows.at(-2)![1], '{"x":1.0,"y":123456789012345678901}');
  assert.equal(rows[0]![0], '123456789012345600');
});
