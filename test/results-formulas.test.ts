/**
 * `results --escape-formulas` against csv-stringify's own `escape_formulas`, through the real bin,
 * over generated cells: quoted and unquoted, multiline, empty, every formula lead (fullwidth forms,
 * tab, CR included), leading spaces, non-ASCII; in input cells, headers, result and error cells,
 * expanded result columns and rejected rows. The expected bytes are csv-stringify's, built from
 * csv-parse's reading of the input and from the outcomes the test wrote itself, never from our output.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { sqlCsvRange } from '../src/ledger/csv-pages.js';
import { Ledger } from '../src/ledger/ledger.js';
import { outcomeRanges } from '../src/results/ledger-rows.js';
import { chatOutputLine, httpErrorLine, jsonLines, writeJson } from './results-support.js';
import { type CliResult, runCli, tempDir } from './support.js';

/** csv-stringify's `escape_formulas` leads, copied from its source (lib/api/index.js). */
const LEADS = ['=', '+', '-', '@', '\t', '\r', '\uFF1D', '\uFF0B', '\uFF0D', '\uFF20'];
/** What else a cell may start with: lookalikes that are not leads, quotes, spaces before a lead… */
const OTHER_FIRSTS = [
  ' ',
  '  =',
  'a',
  '"',
  ',',
  '\n',
  '\r\n',
  "'",
  'é',
  '👍🏽',
  '1',
  '\uFF10',
  '\u00A0=',
  '＂',
];
const REST = ['a', ' ', ',', '"', '\n', '\r\n', '\r', 'é', '👍🏽', '=', '-', "'", '\t', 'x y'];

/** A seeded PRNG (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(next: () => number, list: readonly T[]): T {
  return list[Math.floor(next() * list.length)]!;
}

/** A cell: empty, or a lead (half the time) or another first character, then a few pieces. */
function cellValue(next: () => number): string {
  if (next() < 0.1) return '';
  let s = next() < 0.5 ? pick(next, LEADS) : pick(next, OTHER_FIRSTS);
  const length = Math.floor(next() * 4);
  for (let i = 0; i < length; i++) s += pick(next, REST);
  return s;
}

/** A CSV field as csv-stringify writes it, or (`quoteAll`) always quoted, which is not canonical. */
function field(value: string, quoteAll: boolean): string {
  return quoteAll ? `"${value.replaceAll('"', '""')}"` : stringify([[value]]).replace(/\n$/, '');
}

/** The outcome the test gives a request: a result text, an API error, or none yet. */
type Outcome = { result: string } | { code: string; message: string } | undefined;

function outcomeFor(next: () => number): Outcome {
  const r = next();
  if (r < 0.55) return { result: cellValue(next) };
  // (An empty message is replaced by the response body: never empty here.)
  if (r < 0.8)
    return { code: pick(next, ['=bad', 'invalid_request', '@x', '－code']), message: `${cellValue(next)}.` };
  return undefined;
}

function ok(run: CliResult, what: string): string {
  assert.equal(run.code, 0, `${what}\n${run.stderr}`);
  return run.stdout;
}

const ROWS = 400;
const HEADER = ['id', '=sum', '@who, where', '\uFF0Bplus', ' lead', '\tq'];

test('--escape-formulas on CSV input: the SQL-built pages and the JavaScript formatter both write what csv-stringify does', async () => {
  const next = rng(7);
  const dir = tempDir('bp-formulas-');
  // Rows: a unique id (some formula-like), generated cells; a few reuse an id (rejected).
  const rows: string[][] = [];
  for (let i = 0; i < ROWS; i++) {
    const id = i > 10 && i % 37 === 0 ? rows[i - 5]![0]! : `${pick(next, ['', '-', '=', '@', '+'])}${i}`;
    rows.push([id, ...HEADER.slice(1).map(() => cellValue(next))]);
  }
  const lines = [HEADER, ...rows].map((row) => {
    const quoteAll = next() < 0.3; // most rows canonical (byte-copied), some written otherwise
    return row.map((v) => field(v, quoteAll && next() < 0.7)).join(',');
  });
  const inputText = `${lines.join('\n')}\n`;
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, inputText);
  const [header, ...parsedRows] = parse(inputText) as string[][];
  assert.deepEqual([header, ...parsedRows], [HEADER, ...rows], 'csv-parse reads the input as generated');

  const ledger = path.join(dir, 'l.db');
  const rejectsPath = path.join(dir, 'rejects.jsonl');
  ok(
    await runCli([
      'prepare',
      input,
      '--ledger',
      ledger,
      '--out',
      path.join(dir, 'out'),
      '--model',
      'gpt-4o-mini',
      '--id-column',
      'id',
      '--prompt',
      'Row {{id}}',
      '--rejects',
      rejectsPath,
    ]),
    'prepare',
  );
  const rejects = new Map(jsonLines(readFileSync(rejectsPath, 'utf8')).map((r) => [r.seq as number, r]));
  assert.ok(rejects.size >= 5, `duplicate ids were rejected (${rejects.size})`);

  // Outcomes, written as output and error files and ingested.
  const outcomes = parsedRows.map((_, seq) => (rejects.has(seq) ? undefined : outcomeFor(next)));
  const outputLines: string[] = [];
  const errorLines: string[] = [];
  outcomes.forEach((o, seq) => {
    const id = parsedRows[seq]![0]!;
    if (o && 'result' in o) outputLines.push(chatOutputLine(id, o.result));
    else if (o) errorLines.push(httpErrorLine(id, 400, { code: o.code, message: o.message }));
  });
  writeFileSync(path.join(dir, 'output.jsonl'), `${outputLines.join('\n')}\n`);
  writeFileSync(path.join(dir, 'errors.jsonl'), `${errorLines.join('\n')}\n`);
  ok(
    await runCli([
      'ingest',
      '--ledger',
      ledger,
      path.join(dir, 'output.jsonl'),
      path.join(dir, 'errors.jsonl'),
    ]),
    'ingest',
  );

  /** The results as csv-stringify writes them, from the input's values and the outcomes given. */
  const expected = (options: { prefix: string; escape: boolean; withRejects: boolean }) => {
    const out: string[][] = [
      [...header!, ...['result', 'result_status', 'result_error'].map((c) => `${options.prefix}${c}`)],
    ];
    parsedRows.forEach((row, seq) => {
      const reject = rejects.get(seq);
      if (reject) {
        if (options.withRejects)
          out.push([...row, '', 'rejected', `${reject.code}: line ${reject.line}: ${reject.message}`]);
        return;
      }
      const o = outcomes[seq];
      if (o === undefined) out.push([...row, '', 'pending', '']);
      else if ('result' in o) out.push([...row, o.result, 'succeeded', '']);
      else out.push([...row, '', 'failed', `${o.code}: ${o.message}`]);
    });
    return stringify(out, { escape_formulas: options.escape });
  };

  // Which path each run takes: with rejects among the rows, the JavaScript formatter; without
  // them (the status filter), SQLite's pages, which this ledger's pages all can be.
  const db = Ledger.open(ledger, { readonly: true });
  const live = ['succeeded', 'failed', 'pending'] as const;
  try {
    assert.equal(outcomeRanges(db, {}), undefined, 'all rows: the JavaScript formatter');
    const selected = outcomeRanges(db, { status: live });
    assert.ok(selected, 'no rejects asked for: seq ranges');
    for (const range of selected.ranges) {
      const built = sqlCsvRange(db, range, selected.states, {
        fields: HEADER.length,
        escapeFormulas: true,
        inputCells: () => '',
      });
      assert.notEqual(built, undefined, `range ${range.after}..${range.last} is built by SQLite`);
    }
  } finally {
    db.close();
  }

  const results = async (...flags: string[]) =>
    ok(await runCli(['results', '--ledger', ledger, '--format', 'csv', ...flags]), flags.join(' '));
  const status = ['--status', live.join(',')];
  // SQL-built pages (the byte-copy fast path and SQL result cells).
  assert.equal(
    await results('--escape-formulas', ...status),
    expected({ prefix: '', escape: true, withRejects: false }),
  );
  assert.equal(await results(...status), expected({ prefix: '', escape: false, withRejects: false }));
  // The JavaScript formatter: every row, rejects included; a prefix that starts like a formula.
  assert.equal(
    await results('--escape-formulas', '--result-prefix', '=r_'),
    expected({ prefix: '=r_', escape: true, withRejects: true }),
  );
  // --expand: the JavaScript formatter too (text results keep one `result` column).
  assert.equal(
    await results('--escape-formulas', '--expand', ...status),
    expected({ prefix: '', escape: true, withRejects: false }),
  );
});

test('--escape-formulas on JSONL input with --expand: input cells and result.<field> columns as csv-stringify writes them', async () => {
  const next = rng(11);
  const dir = tempDir('bp-formulas-jsonl-');
  const keys = ['id', '=k', '@k, 2', '\uFF20k'];
  const records = Array.from({ length: 150 }, (_, i) => {
    const record: Record<string, string> = { id: `${pick(next, ['-', '=', '', '\uFF0D'])}${i}` };
    for (const key of keys.slice(1)) if (next() < 0.85) record[key] = cellValue(next);
    return record;
  });
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(input, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const ledger = path.join(dir, 'l.db');
  const body = writeJson(dir, 'body.json', { response_format: { type: 'json_object' } });
  ok(
    await runCli([
      'prepare',
      input,
      '--ledger',
      ledger,
      '--out',
      path.join(dir, 'out'),
      '--model',
      'gpt-4o-mini',
      '--id-column',
      'id',
      '--prompt',
      'Row {{id}}',
      '--body',
      body,
    ]),
    'prepare',
  );
  // Object results (fields named like formulas too), and now and then a JSON string result.
  const fields = ['=f', 'g'];
  const results = records.map(() => {
    if (next() < 0.15) return cellValue(next);
    const result: Record<string, string> = {};
    for (const f of fields) if (next() < 0.8) result[f] = cellValue(next);
    return result;
  });
  const output = records.map((r, i) => chatOutputLine(r.id!, JSON.stringify(results[i])));
  writeFileSync(path.join(dir, 'output.jsonl'), `${output.join('\n')}\n`);
  ok(await runCli(['ingest', '--ledger', ledger, path.join(dir, 'output.jsonl')]), 'ingest');

  const expectedRows = [
    [...keys, 'result', ...fields.map((f) => `result.${f}`), 'result_status', 'result_error'],
    ...records.map((r, i) => {
      const result = results[i]!;
      const object = typeof result === 'object' ? result : undefined;
      return [
        ...keys.map((k) => r[k] ?? ''),
        object ? '' : (result as string),
        ...fields.map((f) => object?.[f] ?? ''),
        'succeeded',
        '',
      ];
    }),
  ];
  const out = ok(
    await runCli(['results', '--ledger', ledger, '--format', 'csv', '--expand', '--escape-formulas']),
    'results',
  );
  assert.equal(out, stringify(expectedRows, { escape_formulas: true }));
});
