import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { writeFeedbackCsv } from '../bench/generate.js';
import { readRequestFiles, runCli, runKilledAfter, tempDir } from './support.js';

const ROWS = 60_000;

function args(dir: string, input: string): string[] {
  return [
    'prepare',
    input,
    '--ledger',
    path.join(dir, 'ledger.db'),
    '--out',
    path.join(dir, 'out'),
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--system',
    'Classify.',
    '--prompt',
    'Feedback: {{text}}',
    '--max-lines',
    '4000',
  ];
}

function ledgerRows(dir: string): string[] {
  const db = new Database(path.join(dir, 'ledger.db'), { readonly: true });
  const rows = db
    .prepare(
      'SELECT seq, line, custom_id, hex(record) AS record, state FROM requests JOIN records USING (seq) ORDER BY seq',
    )
    .all()
    .map((r) => JSON.stringify(r));
  db.close();
  return rows;
}

test('prepare killed with SIGKILL twice, then run again, yields exactly the requests of an uninterrupted run', async (t) => {
  const input = path.join(tempDir(), 'feedback.csv');
  await writeFeedbackCsv(input, { rows: ROWS, seed: 7 });

  const clean = tempDir();
  const started = Date.now();
  const full = await runCli(args(clean, input));
  const duration = Date.now() - started;
  assert.equal(full.code, 0, full.stderr);
  const expected = readRequestFiles(path.join(clean, 'out'));
  assert.equal(expected.lines.length, ROWS);

  const dir = tempDir();
  const kills: number[] = [];
  let interrupted = 0;
  for (let i = 0; i < 2; i++) {
    // Somewhere inside the run: after start-up, before the end.
    const at = Math.round(duration * (0.15 + 0.7 * Math.random()));
    kills.push(at);
    const ended = await runKilledAfter(args(dir, input), at);
    if (ended.signal === 'SIGKILL') interrupted++;
  }
  t.diagnostic(
    `uninterrupted run ${duration} ms; killed at ${kills.join(', ')} ms (${interrupted} interrupted mid-run)`,
  );
  assert.ok(interrupted >= 1, 'at least one kill landed mid-run');
  // What a kill leaves behind is at most temporary files, never a half file under a final name.
  for (const name of readdirSync(path.join(dir, 'out'))) {
    if (name.endsWith('.jsonl')) {
      const text = readFileSync(path.join(dir, 'out', name), 'utf8');
      assert.ok(text.endsWith('\n'), `${name} is whole`);
    }
  }

  const resumed = await runCli(args(dir, input));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`read ${ROWS} = staged ${ROWS} \\+ rejected 0`));
  const got = readRequestFiles(path.join(dir, 'out'));
  assert.equal(got.files.length, expected.files.length);
  assert.deepEqual(got.lines, expected.lines, 'same requests, same order, same files');
  assert.equal(
    readdirSync(path.join(dir, 'out')).filter((n) => n.endsWith('.partial')).length,
    0,
    'no temporary files left',
  );
  assert.deepEqual(ledgerRows(dir), ledgerRows(clean));

  // Running it once more changes nothing.
  const again = await runCli(args(dir, input));
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readRequestFiles(path.join(dir, 'out')).lines, expected.lines);
});

test('resuming with an input that changed inside the kept files is refused', async () => {
  const input = path.join(tempDir(), 'a.csv');
  await writeFeedbackCsv(input, { rows: 9000, seed: 1 });
  const dir = tempDir();
  assert.equal((await runCli(args(dir, input))).code, 0);
  // Drop the last complete file's record so the resume point lies inside the input again.
  const db = new Database(path.join(dir, 'ledger.db'));
  const last = db.prepare('SELECT id, path FROM files ORDER BY id DESC LIMIT 1').get() as {
    id: number;
    path: string;
  };
  db.prepare('DELETE FROM requests WHERE file_id = ?').run(last.id);
  db.prepare('UPDATE files SET complete = 0 WHERE id = ?').run(last.id);
  db.close();
  const other = path.join(tempDir(), 'a.csv');
  await writeFeedbackCsv(other, { rows: 9000, seed: 2 });
  const run = await runCli(args(dir, other));
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /BP_INPUT_CHANGED the input differs from the run this ledger records: record 0 has different content/,
  );
});
