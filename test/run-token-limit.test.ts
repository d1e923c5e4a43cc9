import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { counterForModel, requestInputTokens } from '../src/cost/tokens.js';
import { answeredTwice, auditServer, csvRecords, runArgs } from './server-audit.js';
import { runCli, spawnServe, tempDir } from './support.js';

const env = { OPENAI_API_KEY: 'local' };
/** Records of 400 characters (~100 tokens by the client's estimate, about half that as the server counts). */
const RECORD_CHARS = 400;

/** Input tokens the server counts for each file of 10 of `csvRecords(n, RECORD_CHARS)`, as `runArgs` sends them. */
function fileTokens(n: number): number[] {
  const texts = csvRecords(n, RECORD_CHARS)
    .trim()
    .split('\n')
    .slice(1)
    .map((row) => row.slice(row.indexOf(',') + 1));
  const files: number[] = [];
  texts.forEach((text, i) => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Echo ${text}` }] };
    files[Math.floor(i / 10)] =
      (files[Math.floor(i / 10)] ?? 0) +
      requestInputTokens('/v1/chat/completions', body, counterForModel(body.model));
  });
  return files;
}

function tokenRefusals(ledger: string): Record<string, number> {
  const db = new Database(ledger, { readonly: true });
  try {
    const rows = db
      .prepare(
        'SELECT token_refusal AS kind, count(*) AS n FROM batches WHERE token_refusal IS NOT NULL GROUP BY 1',
      )
      .all() as { kind: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  } finally {
    db.close();
  }
}

const refusedOnServer = (batches: { errors?: { data?: { code?: string }[] } | null }[]) =>
  batches.filter((b) => b.errors?.data?.some((e) => e.code === 'token_limit_exceeded')).length;

test('refusals for the token limit while other batches of the run are queued only wait: the run finishes', async () => {
  const data = tempDir();
  // One file fits the server's limit, two do not; each batch runs ~0.5 s, polls come every 0.05 s.
  const files = fileTokens(30);
  const limit = Math.max(...files) + Math.min(...files) - 1;
  const serve = await spawnServe([
    '--data',
    data,
    '--enqueued-token-limit',
    String(limit),
    '--latency',
    '50',
    '--concurrency',
    '1',
  ]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const run = await runCli(runArgs(ledger, serve.url, '--max-lines', '10'), {
      stdin: csvRecords(30, RECORD_CHARS),
      env,
    });
    assert.equal(run.code, 0, run.stderr);

    const audit = await auditServer(serve.url, data);
    const refused = refusedOnServer(audit.batches);
    assert.ok(refused >= 1, 'the server refused batches queued behind another');
    assert.deepEqual(tokenRefusals(ledger), { queued: refused }, 'every refusal came with others queued');
    // A refused file waits for the queue to move instead of being refused again at every poll.
    assert.ok(refused <= 3, `${refused} refusals for 3 files run one at a time`);
    assert.deepEqual(answeredTwice(audit), []);
    assert.equal(audit.succeeded.size, 30);
  } finally {
    await serve.stop();
  }
});

test('a file refused alone stops with BP_TOKEN_LIMIT; a rerun tries again, and a rerun with a smaller --max-lines finishes', async () => {
  const data = tempDir();
  const serve = await spawnServe(['--data', data, '--enqueued-token-limit', '500']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const input = csvRecords(10, RECORD_CHARS);
    const args = runArgs(ledger, serve.url, '--max-lines', '10');
    const first = await runCli(args, { stdin: input, env });
    assert.equal(first.code, 1, first.stderr);
    assert.match(
      first.stderr,
      /BP_TOKEN_LIMIT the API refused l-\w+-a1-00001\.jsonl \(~\d+ tokens\) for its enqueued-token limit 5 times with nothing else of this run queued; its requests stay staged: run the same command again once the limit is higher .*, or split the files not yet sent with `batchpipe run --ledger .*l\.db --max-lines 5`/,
    );
    assert.equal(refusedOnServer((await auditServer(serve.url, data)).batches), 5);
    assert.deepEqual(tokenRefusals(ledger), { reported: 5 });

    // The stop is not for ever: the same command tries again (the limit might be higher now).
    const again = await runCli(args, { stdin: input, env });
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /BP_TOKEN_LIMIT/);
    assert.equal(refusedOnServer((await auditServer(serve.url, data)).batches), 10);

    // Smaller files fit: the staged requests are written again, 4 to a file.
    const split = await runCli(
      ['run', '--ledger', ledger, '--base-url', serve.url, '--max-lines', '4', '--poll-interval', '0.05'],
      { env },
    );
    assert.equal(split.code, 0, split.stderr);
    assert.match(split.stderr, /files from now on hold at most 4 requests \(10 staged requests to rewrite\)/);
    const audit = await auditServer(serve.url, data);
    assert.deepEqual(answeredTwice(audit), []);
    assert.equal(audit.succeeded.size, 10);
    for (const b of audit.batches.filter((b) => b.status === 'completed'))
      assert.ok(b.request_counts!.total <= 4);
    const db = new Database(ledger, { readonly: true });
    assert.deepEqual(db.prepare('SELECT DISTINCT state, attempt FROM requests').all(), [
      { state: 'succeeded', attempt: 1 },
    ]);
    db.close();
  } finally {
    await serve.stop();
  }
});
