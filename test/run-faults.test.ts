import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { baReviewsRunArgs, runCli, spawnServe, tempDir } from './support.js';

test('against a faulty server (failed lines, expiry, a token limit, HTTP faults) every request ends final and limits hold', async (t) => {
  const data = tempDir();
  const serve = await spawnServe([
    '--data',
    data,
    '--fail-rate',
    '0.1',
    '--http-fault-rate',
    '0.05',
    // Eight batches share eight request slots at ~10 ms a request: a batch gets through about a
    // fifth of its 500 requests before its 1 s window closes, so expiry is certain, not a race.
    '--completion-window',
    '1s',
    '--latency',
    '10',
    '--concurrency',
    '8',
    // Both sides count the same real tokens: the client may queue 900,000 and the server takes half
    // that, so it refuses some batches, while one file of 500 (~100,000) always fits.
    '--enqueued-token-limit',
    '450000',
    '--seed',
    '3',
  ]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'faults.db');
    const maxQueued = 900_000;
    const run = await runCli(
      baReviewsRunArgs(
        ledger,
        serve.url,
        '--max-lines',
        '500',
        '--max-attempts',
        '4',
        '--max-enqueued-tokens',
        String(maxQueued),
        '--poll-interval',
        '0.1',
      ),
      { env: { OPENAI_API_KEY: 'local' } },
    );
    // Exit 3 when the run finished with rows that did not succeed (checked against the ledger below).
    assert.ok(run.code === 0 || run.code === 3, run.stderr);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; error: unknown });
    assert.equal(rows.length, 3701, 'every record is in the results');

    const status = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
    const r = status.requests;
    t.diagnostic(
      `final: ${JSON.stringify(r)}; peak queued ${JSON.stringify(status.tokens.peak_queued)} (limit ${maxQueued})`,
    );
    assert.equal(r.staged + r.submitted, 0, 'nothing left unfinished');
    assert.equal(r.succeeded + r.failed + r.expired + r.cancelled, 3701);
    assert.equal(run.code, r.succeeded === 3701 ? 0 : 3, 'exit 3 exactly when some rows did not succeed');
    assert.ok(r.succeeded > 0, 'requests succeed, some only after retries');
    assert.ok(
      status.tokens.peak_queued['gpt-4o-mini'] <= maxQueued,
      'the enqueued-token limit was never exceeded',
    );

    const db = new Database(ledger, { readonly: true });
    const retried = (
      db.prepare('SELECT count(*) AS n FROM requests WHERE attempt > 1').get() as { n: number }
    ).n;
    const statuses = db
      .prepare('SELECT DISTINCT status FROM batches')
      .all()
      .map((b) => (b as { status: string }).status);
    const tokenLimited = (
      db.prepare("SELECT count(*) AS n FROM batches WHERE errors LIKE '%token_limit_exceeded%'").get() as {
        n: number;
      }
    ).n;
    const retriedFiles = (
      db.prepare('SELECT count(*) AS n FROM files WHERE attempt > 1').get() as { n: number }
    ).n;
    db.close();
    t.diagnostic(
      `retried requests ${retried} in ${retriedFiles} retry files; batch statuses ${statuses.join(', ')}; ${tokenLimited} batches refused for the token limit and put back`,
    );
    assert.ok(retried > 0, 'failed lines were retried');
    assert.ok(retriedFiles > 0);
    assert.ok(statuses.includes('expired'), 'some batches expired');
    assert.ok(tokenLimited > 0, 'the server refused some batches for its token limit');
    for (const row of rows) {
      if (row.status !== 'succeeded') assert.ok(row.error, 'a failed row carries its error');
    }
  } finally {
    await serve.stop();
  }
});
