import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { readRequestFiles, runCli, spawnCli, tempDir, waitFor } from './support.js';

const ROWS = 12_000;
/** Requests are about 150 bytes; oversize records are far above the limit. */
const MAX_BYTES = 24_000;

interface Row {
  id: string;
  text: string;
  /** What the row must become: a request, or a reject with this code. */
  expect: 'request' | 'BP_DUPLICATE_ID' | 'BP_REQUEST_TOO_LARGE' | 'BP_PARSE';
}

/**
 * Rows with duplicate ids, oversize texts and wrong field counts mixed in, each row knowing what it
 * must become: the test's own account, independent of batchpipe's.
 */
function generateRows(): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < ROWS; i++) {
    const previousIsRequest = rows[i - 1]?.expect === 'request';
    if (i % 97 === 50 && previousIsRequest) {
      rows.push({ id: rows[i - 1]!.id, text: `again ${i}`, expect: 'BP_DUPLICATE_ID' });
    } else if (i % 401 === 200) {
      rows.push({ id: `id${i}`, text: 'y'.repeat(MAX_BYTES + 1000), expect: 'BP_REQUEST_TOO_LARGE' });
    } else if (i % 503 === 300) {
      rows.push({ id: `id${i}`, text: 'an extra field', expect: 'BP_PARSE' });
    } else {
      rows.push({ id: `id${i}`, text: `feedback ${i}, "quoted" ${'z'.repeat(i % 50)}`, expect: 'request' });
    }
  }
  return rows;
}

function csvOf(rows: Row[]): string {
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const lines = rows.map((r) =>
    r.expect === 'BP_PARSE' ? `${r.id},${quote(r.text)},surplus` : `${r.id},${quote(r.text)}`,
  );
  return `id,text\n${lines.join('\n')}\n`;
}

function prepareArgs(dir: string, input: string): string[] {
  return [
    'prepare',
    input,
    '--ledger',
    path.join(dir, 'l.db'),
    '--out',
    path.join(dir, 'out'),
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Classify: {{text}}',
    '--max-lines',
    '100',
    '--max-bytes',
    String(MAX_BYTES),
    '--rejects',
    path.join(dir, 'rejects.jsonl'),
  ];
}

function completeFiles(dir: string): number {
  const out = path.join(dir, 'out');
  return existsSync(out) ? readdirSync(out).filter((n) => n.endsWith('.jsonl')).length : 0;
}

/** Runs prepare and SIGKILLs it once `more` complete files have appeared; resolves with how it ended. */
async function killedAfterFiles(dir: string, input: string, more: number): Promise<string | null> {
  const before = completeFiles(dir);
  const child = spawnCli(prepareArgs(dir, input));
  await Promise.race([
    waitFor(`${more} more complete files`, () => completeFiles(dir) >= before + more),
    child.exited,
  ]);
  child.child.kill('SIGKILL');
  return (await child.exited).signal;
}

function ledgerRows(dir: string): { requests: string[]; rejects: string[] } {
  const db = new Database(path.join(dir, 'l.db'), { readonly: true });
  const requests = db
    .prepare(
      'SELECT seq, line, custom_id, hex(record) AS record FROM requests JOIN records USING (seq) ORDER BY seq',
    )
    .all()
    .map((r) => JSON.stringify(r));
  const rejects = db
    .prepare('SELECT * FROM rejects ORDER BY seq')
    .all()
    .map((r) => JSON.stringify(r));
  db.close();
  return { requests, rejects };
}

test('a prepare with rejects killed after its first file, resumed twice, ends as an uninterrupted run: every record a request or a reject, the rejects file intact', async (t) => {
  const rows = generateRows();
  const input = path.join(tempDir(), 'in.csv');
  writeFileSync(input, csvOf(rows));
  const expectedRejects = rows.flatMap((r, seq) => (r.expect === 'request' ? [] : [`${seq} ${r.expect}`]));
  const expectedRequests = rows.filter((r) => r.expect === 'request').length;

  const clean = tempDir();
  const full = await runCli(prepareArgs(clean, input));
  assert.equal(full.code, 0, full.stderr);
  const cleanRejects = readFileSync(path.join(clean, 'rejects.jsonl'), 'utf8');
  const rejectLines = cleanRejects.trim().split('\n');
  assert.deepEqual(
    rejectLines.map((l) => {
      const r = JSON.parse(l) as { seq: number; code: string };
      return `${r.seq} ${r.code}`;
    }),
    expectedRejects,
    'the rejects are the rows the test made bad, with their codes',
  );
  assert.equal(readRequestFiles(path.join(clean, 'out')).lines.length, expectedRequests);

  const dir = tempDir();
  const first = await killedAfterFiles(dir, input, 1);
  const second = await killedAfterFiles(dir, input, 5);
  const filesAtKill = completeFiles(dir);
  t.diagnostic(`killed with ${filesAtKill} of ${readdirSync(path.join(clean, 'out')).length} files complete`);
  assert.equal(first, 'SIGKILL', 'the first run was killed mid-run');
  assert.equal(second, 'SIGKILL', 'the second run was killed mid-run');
  assert.ok(filesAtKill < readdirSync(path.join(clean, 'out')).length, 'kills landed before the end');
  const rejectsAtKill = readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8');

  const resumed = await runCli(prepareArgs(dir, input));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(
    resumed.stderr,
    new RegExp(`read ${ROWS} = staged ${expectedRequests} \\+ rejected ${expectedRejects.length}`),
  );
  assert.equal(
    readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8'),
    cleanRejects,
    'the rejects file is whole',
  );
  assert.ok(cleanRejects.startsWith(rejectsAtKill.slice(0, rejectsAtKill.lastIndexOf('\n') + 1)));
  assert.deepEqual(
    readRequestFiles(path.join(dir, 'out')).lines,
    readRequestFiles(path.join(clean, 'out')).lines,
  );
  assert.deepEqual(ledgerRows(dir), ledgerRows(clean));

  // A finished run, run again with the same input and --rejects: the same, with the file untouched.
  const again = await runCli(prepareArgs(dir, input));
  assert.equal(again.code, 0, again.stderr);
  assert.match(
    again.stderr,
    new RegExp(`read ${ROWS} = staged ${expectedRequests} \\+ rejected ${expectedRejects.length}`),
  );
  assert.equal(readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8'), cleanRejects);
  assert.deepEqual(ledgerRows(dir), ledgerRows(clean));
});

test('a kept reject is checked like a request: a record rejected before that is valid now is a changed input', async () => {
  const rows = generateRows().slice(0, 600);
  const dir = tempDir();
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, csvOf(rows));
  assert.equal((await runCli(prepareArgs(dir, input))).code, 0);
  const rejects = readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8');
  // The oversize record at seq 200 becomes small: same line, same id, a valid request now.
  const changed = rows.map((r, seq) => (seq === 200 ? { ...r, text: 'short now' } : r));
  assert.equal(rows[200]!.expect, 'BP_REQUEST_TOO_LARGE');
  writeFileSync(input, csvOf(changed));
  const run = await runCli(prepareArgs(dir, input));
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /in\.csv:202: BP_INPUT_CHANGED the input differs from the run this ledger records: record 200 has a valid request now, the ledger has it rejected with BP_REQUEST_TOO_LARGE/,
  );
  assert.equal(readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8'), rejects, 'the rejects file is kept');
});

test('resuming with a truncated input is BP_INPUT_CHANGED naming the file and both counts', async () => {
  const rows = generateRows().slice(0, 1000);
  const dir = tempDir();
  const input = path.join(dir, 'in.csv');
  const text = csvOf(rows);
  writeFileSync(input, text);
  assert.equal((await runCli(prepareArgs(dir, input))).code, 0);
  const rejects = readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8');
  const before = ledgerRows(dir);

  // Records in a prefix of the file, counted here: one per line after the header (no quoted newlines).
  const wholeRecordsIn = (prefix: string) => prefix.split('\n').length - 2;
  const cutAt = (bytes: number) => {
    const cut = path.join(dir, `cut-${bytes}.csv`);
    writeFileSync(cut, text.slice(0, bytes));
    return cut;
  };
  // At a record boundary, inside a record's (unquoted) id, and inside an open quote.
  const boundary = text.indexOf('\n', 20_000) + 1;
  const inField = text.indexOf('\nid', 30_000) + 3;
  const inQuote = text.indexOf('"quoted"', 40_000) + 3;
  for (const [bytes, gave] of [
    [boundary, `${wholeRecordsIn(text.slice(0, boundary))} records;`],
    [inField, `${wholeRecordsIn(text.slice(0, inField))} records and a cut-off one on line`],
    [inQuote, 'breaks off at line'],
  ] as const) {
    const cut = cutAt(bytes);
    const run = await runCli(prepareArgs(dir, cut));
    assert.equal(run.code, 1, run.stderr);
    assert.ok(run.stderr.includes(`${cut}`), `names the file: ${run.stderr}`);
    assert.match(run.stderr, /BP_INPUT_CHANGED/);
    assert.ok(
      run.stderr.includes(`the ledger holds ${rows.length} records from it in complete files`),
      run.stderr,
    );
    assert.ok(run.stderr.includes(gave), `${gave}: ${run.stderr}`);
    assert.doesNotMatch(run.stderr, /internal error|\n\s+at /);
  }
  assert.deepEqual(ledgerRows(dir), before, 'the ledger is as it was');
  assert.equal(readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8'), rejects, 'the rejects file is kept');
  const whole = await runCli(prepareArgs(dir, input));
  assert.equal(whole.code, 0, whole.stderr);
});
