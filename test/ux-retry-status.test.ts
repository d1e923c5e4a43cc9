import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, spawnCli, spawnServe, tempDir } from './support.js';
import { FEEDBACK_CSV } from './ux-support.js';

const ENV = { OPENAI_API_KEY: 'sk-ux-test-key' };

function runArgs(ledger: string, url: string, ...extra: string[]): string[] {
  return [
    'run',
    FEEDBACK_CSV,
    '--ledger',
    ledger,
    '--base-url',
    url,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Classify: {{text}}',
    '--poll-interval',
    '0.2',
    ...extra,
  ];
}

async function statusOf(ledger: string) {
  const s = await runCli(['status', '--ledger', ledger, '--json']);
  assert.equal(s.code, 0, s.stderr);
  return JSON.parse(s.stdout);
}

test('a run with failures and --max-attempts 1 exits 3 with the counts; retry then run brings them to succeeded', async () => {
  const data = path.join(tempDir(), 'srv');
  const ledger = path.join(tempDir(), 'fb.db');
  let serve = await spawnServe(['--data', data, '--fail-rate', '0.5']);
  let failed: number;
  try {
    const first = await runCli(runArgs(ledger, serve.url, '--max-attempts', '1', '--format', 'jsonl'), {
      env: ENV,
    });
    assert.equal(first.code, 3, first.stderr);
    const s = await statusOf(ledger);
    failed = s.requests.failed;
    assert.ok(failed > 0 && failed < 12, `some of the 12 failed (${failed})`);
    assert.match(
      first.stderr,
      new RegExp(`finished with ${failed} failed, 0 expired, 0 cancelled, 0 rejected of 12 \\(exit 3\\)`),
    );
    // The results still come, the failed rows with their errors.
    const rows = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(rows.filter((r) => r.status === 'failed').length, failed);
    // Run again as it was: nothing to do, the same exit.
    const again = await runCli(runArgs(ledger, serve.url, '--max-attempts', '1'), { env: ENV });
    assert.equal(again.code, 3, again.stderr);
  } finally {
    await serve.stop();
  }
  // The transient failures have passed: the same server state, without the fault.
  serve = await spawnServe(['--data', data]);
  try {
    const retry = await runCli(['retry', '--ledger', ledger]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(
      retry.stderr,
      new RegExp(`staged ${failed} requests? again \\(failed, expired, cancelled; attempt \\+ 1\\)`),
    );
    const staged = await statusOf(ledger);
    assert.equal(staged.requests.staged, failed);
    assert.equal(staged.requests.failed, 0);
    const run = await runCli(['run', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.2'], {
      env: ENV,
    });
    assert.equal(run.code, 0, run.stderr);
    const done = await statusOf(ledger);
    assert.equal(done.requests.succeeded, 12);
    // The retried requests went in a retry file, on their second attempt.
    const db = new Database(ledger, { readonly: true });
    const attempts = db
      .prepare('SELECT attempt, count(*) AS n FROM requests GROUP BY attempt ORDER BY attempt')
      .all();
    db.close();
    assert.deepEqual(attempts, [
      { attempt: 1, n: 12 - failed },
      { attempt: 2, n: failed },
    ]);
    assert.ok(
      done.batches.some((b: { attempt: number; file: string }) => b.attempt === 2 && /-a2-/.test(b.file)),
    );
    const nothing = await runCli(['retry', '--ledger', ledger]);
    assert.match(nothing.stderr, /no failed, expired, cancelled requests to stage again/);
  } finally {
    await serve.stop();
  }
});

test('run --max-attempts raised on a finished run retries what may succeed', async () => {
  const data = path.join(tempDir(), 'srv');
  const ledger = path.join(tempDir(), 'fb.db');
  let serve = await spawnServe(['--data', data, '--fail-rate', '0.5']);
  try {
    const first = await runCli(runArgs(ledger, serve.url, '--max-attempts', '1'), { env: ENV });
    assert.equal(first.code, 3, first.stderr);
  } finally {
    await serve.stop();
  }
  const failed = (await statusOf(ledger)).requests.failed;
  serve = await spawnServe(['--data', data]);
  try {
    const raised = await runCli(
      ['run', '--ledger', ledger, '--base-url', serve.url, '--max-attempts', '2', '--poll-interval', '0.2'],
      { env: ENV },
    );
    assert.equal(raised.code, 0, raised.stderr);
    assert.match(
      raised.stderr,
      new RegExp(`--max-attempts 2: ${failed} failed requests? that may succeed go again`),
    );
    assert.equal((await statusOf(ledger)).requests.succeeded, 12);
  } finally {
    await serve.stop();
  }
});

test('status --watch flags a batch the server holds in finalizing, and ends when every request is final', async () => {
  const serve = await spawnServe(['--data', path.join(tempDir(), 'srv'), '--stall', 'finalizing=4']);
  try {
    const ledger = path.join(tempDir(), 'fb.db');
    const submitted = await runCli(runArgs(ledger, serve.url, '--no-wait'), { env: ENV });
    assert.equal(submitted.code, 0, submitted.stderr);
    const watch = spawnCli([
      'status',
      '--ledger',
      ledger,
      '--watch',
      '--interval',
      '0.2',
      '--stuck-after',
      'finalizing=2s',
    ]);
    // Polls at most a second apart: the time in finalizing is the ledger's, not the gap between polls.
    const run = await runCli(
      ['collect', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.1'],
      { env: ENV },
    );
    assert.equal(run.code, 0, run.stderr);
    const watched = await watch.exited;
    assert.equal(watched.code, 0, watched.stderr);
    // Piped, the table is written again at each change: finalizing, then flagged, then completed.
    assert.match(
      watched.stdout,
      /^batch_\w+ +fb-\w+-a1-00001\.jsonl +1 +finalizing +12\/12 +\d+s +\d+s +STUCK: finalizing longer than 2s$/m,
    );
    const tables = watched.stdout.split(/\n(?=run )/);
    assert.match(tables.at(-1)!, /requests: 12 total: 12 succeeded/);
    assert.doesNotMatch(tables.at(-1)!, /STUCK/);
    assert.doesNotMatch(watched.stdout, /[\x00-\x08\x0b-\x1f]/);
  } finally {
    await serve.stop();
  }
});

test('status --json keeps its shape and adds the run, times and stuck flags; bad --stuck-after is a usage error', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'fb.db');
  const run = await runCli([
    'run',
    FEEDBACK_CSV,
    '--backend',
    'local',
    '--ledger',
    ledger,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--poll-interval',
    '0.2',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const s = await statusOf(ledger);
  assert.deepEqual(Object.keys(s.requests).sort(), [
    'cancelled',
    'expired',
    'failed',
    'rejected',
    'staged',
    'submitted',
    'succeeded',
    'total',
  ]);
  assert.deepEqual(s.prepare, { state: 'complete', read: 12 });
  assert.deepEqual(
    { ...s.run, id: undefined, created_at: undefined },
    {
      id: undefined,
      model: 'gpt-4o-mini',
      endpoint: '/v1/chat/completions',
      input: FEEDBACK_CSV,
      created_at: undefined,
    },
  );
  const [b] = s.batches;
  for (const key of [
    'id',
    'file',
    'attempt',
    'status',
    'request_counts',
    'created_at',
    'status_since',
    'polled_at',
    'settled',
    'stuck',
  ]) {
    assert.ok(key in b, key);
  }
  assert.equal(b.stuck, false);
  assert.ok(Date.parse(b.status_since) >= Date.parse(b.created_at));
  assert.deepEqual(Object.keys(s.tokens).sort(), ['input', 'output', 'peak_queued']);
  const bad = await runCli(['status', '--ledger', ledger, '--stuck-after', 'done=5m']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--stuck-after takes STATUS=DURATION/);
});
