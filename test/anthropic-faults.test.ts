/**
 * `--provider anthropic` against a faulty `batchpipe serve`: errored results (500 api_error, 529
 * overloaded_error), expiry with partial results, and HTTP 429/500/529 on the API calls. Every request
 * ends final, the retryable failures are retried and counted.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { BA_REVIEWS, runCli, spawnServe, tempDir } from './support.js';

test('--provider anthropic against a faulty server (errored lines, expiry, HTTP faults): every request ends final, retries counted', async (t) => {
  const serve = await spawnServe([
    '--data',
    tempDir(),
    '--fail-rate',
    '0.1',
    '--http-fault-rate',
    '0.05',
    // Eight batches share eight request slots at ~10 ms a request: a batch gets through a fraction
    // of its 500 requests before its 1 s window closes, so expiry is certain, not a race.
    '--completion-window',
    '1s',
    '--latency',
    '10',
    '--concurrency',
    '8',
    '--seed',
    '3',
  ]);
  try {
    const ledger = path.join(tempDir('bp-anthropic-faults-'), 'faults.db');
    const run = await runCli(
      [
        'run',
        BA_REVIEWS,
        '--provider',
        'anthropic',
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        '--model',
        'claude-haiku-4-5',
        '--id-column',
        'ReviewID',
        '--prompt',
        'Classify: {{ReviewBody}}',
        '--max-lines',
        '500',
        '--max-attempts',
        '4',
        '--poll-interval',
        '0.1',
        '--format',
        'jsonl',
      ],
      { env: { ANTHROPIC_API_KEY: 'local' } },
    );
    assert.ok(run.code === 0 || run.code === 3, run.stderr);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; error: unknown });
    assert.equal(rows.length, 3701, 'every record is in the results');

    const db = new Database(ledger, { readonly: true });
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    const byState = Object.fromEntries(
      (
        db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all() as {
          state: string;
          n: number;
        }[]
      ).map((r) => [r.state, r.n]),
    );
    const retried = count('SELECT count(*) FROM requests WHERE attempt > 1');
    const expiredBatches = count("SELECT count(*) FROM batches WHERE status = 'expired'");
    const errorCodes = db
      .prepare('SELECT DISTINCT error_code FROM requests WHERE error_code IS NOT NULL')
      .pluck()
      .all();
    db.close();
    t.diagnostic(
      `final ${JSON.stringify(byState)}; ${retried} requests retried; ${expiredBatches} batches expired; final error codes ${errorCodes.join(', ')}`,
    );
    assert.equal((byState.staged ?? 0) + (byState.submitted ?? 0), 0, 'nothing left unfinished');
    const final = (byState.succeeded ?? 0) + (byState.failed ?? 0) + (byState.expired ?? 0);
    assert.equal(final + (byState.cancelled ?? 0), 3701);
    assert.equal(
      run.code,
      byState.succeeded === 3701 ? 0 : 3,
      'exit 3 exactly when some rows did not succeed',
    );
    assert.ok((byState.succeeded ?? 0) > 0);
    assert.ok(retried > 0, 'errored and expired requests were retried');
    assert.ok(expiredBatches > 0, 'some batches expired');
    // What is left failed only for good, or ran out of attempts on a retryable error.
    for (const code of errorCodes) {
      assert.ok(['api_error', 'overloaded_error', 'batch_expired'].includes(code as string), String(code));
    }
    for (const row of rows)
      if (row.status !== 'succeeded') assert.ok(row.error, 'a failed row carries its error');
  } finally {
    await serve.stop();
  }
});
