/**
 * A record larger than --max-bytes is set aside while streaming, in bounded memory: a counted reject
 * keeping its first bytes with --rejects, else the end of the run, naming its line.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { prepareFileArgs } from './input-support.js';
import { pythonCsvRows } from './python-reference.js';
import { runCli, tempDir } from './support.js';

const MAX_BYTES = 1_000_000;

/** A few MB of text with quotes, commas and every line break, as a quoted CSV field. */
function bigField(bytes: number): string {
  const unit = 'lorem, "ipsum" dolor\r\nsit\ramet\n';
  return `"${unit.repeat(Math.ceil(bytes / unit.length)).replaceAll('"', '""')}"`;
}

test('a CSV record over --max-bytes is a counted reject with its first bytes, the others go on', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'big.csv');
  const records = [
    '1,short',
    `2,${bigField(3_000_000)}`,
    '3,"also\r\nshort"',
    `4,${bigField(1_500_000)}`,
    '5,last',
  ];
  writeFileSync(file, `id,text\r\n${records.join('\r\n')}\r\n`);
  const rejectsFile = path.join(dir, 'rejects.jsonl');
  const run = await runCli(prepareFileArgs(file, '--max-bytes', String(MAX_BYTES), '--rejects', rejectsFile));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 5 = staged 3 \+ rejected 2/);

  const [, ...rows] = pythonCsvRows(file);
  const lineOf = (id: string) => rows.find((r) => r.values[0] === id)!.line;
  const rejects = readFileSync(rejectsFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { line: number; code: string; message: string; record: string });
  assert.deepEqual(
    rejects.map((r) => [r.line, r.code]),
    [
      [lineOf('2'), 'BP_REQUEST_TOO_LARGE'],
      [lineOf('4'), 'BP_REQUEST_TOO_LARGE'],
    ],
  );
  for (const [i, id] of ['2', '4'].entries()) {
    const raw = records[Number(id) - 1]!;
    assert.match(
      rejects[i]!.message,
      new RegExp(
        `^record is ${Buffer.byteLength(raw)} bytes, more than --max-bytes \\(${MAX_BYTES}\\); the rejected record keeps only its first 1024 bytes$`,
      ),
    );
    assert.equal(rejects[i]!.record, raw.slice(0, 1024), "the reject keeps the record's first bytes");
  }

  const db = new Database(path.join(dir, 'l.db'), { readonly: true });
  const staged = db.prepare('SELECT line, custom_id FROM requests ORDER BY seq').all();
  const rejected = db.prepare('SELECT line, length(record) AS bytes FROM rejects ORDER BY seq').all() as {
    bytes: number;
  }[];
  db.close();
  assert.deepEqual(
    staged,
    ['1', '3', '5'].map((id) => ({ line: lineOf(id), custom_id: id })),
  );
  for (const r of rejected)
    assert.ok(r.bytes <= 1024, `a rejected record is stored as at most 1024 bytes, not ${r.bytes}`);

  // Without --rejects, the first one stops the run, naming its line.
  const stop = await runCli(
    prepareFileArgs(file, '--max-bytes', String(MAX_BYTES), '--ledger', path.join(dir, 'stop.db')),
  );
  assert.equal(stop.code, 1);
  assert.match(
    stop.stderr,
    new RegExp(
      `${file}:${lineOf('2')}: BP_REQUEST_TOO_LARGE record is more than ${MAX_BYTES} bytes \\(--max-bytes\\)`,
    ),
  );
});

test('a JSONL line over --max-bytes is a counted reject too', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'big.jsonl');
  const big = JSON.stringify({ id: 'b', text: 'x'.repeat(2_000_000) });
  writeFileSync(file, `{"id":"a","text":"one"}\n\n${big}\n{"id":"c","text":"three"}\n`);
  const run = await runCli(
    prepareFileArgs(file, '--max-bytes', String(MAX_BYTES), '--rejects', path.join(dir, 'r.jsonl')),
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 3 = staged 2 \+ rejected 1/);
  const reject = JSON.parse(readFileSync(path.join(dir, 'r.jsonl'), 'utf8')) as {
    line: number;
    code: string;
  };
  assert.deepEqual([reject.line, reject.code], [3, 'BP_REQUEST_TOO_LARGE']);
});
