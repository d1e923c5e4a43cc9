import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { answeredTwice, auditServer, csvRecords, runArgs } from './server-audit.js';
import { runCli, spawnServe, tempDir } from './support.js';

const env = { OPENAI_API_KEY: 'local' };

function ledgerStates(ledger: string): {
  states: Record<string, number>;
  maxAttempt: number;
  retryFiles: number;
} {
  const db = new Database(ledger, { readonly: true });
  try {
    const rows = db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all() as {
      state: string;
      n: number;
    }[];
    return {
      states: Object.fromEntries(rows.map((r) => [r.state, r.n])),
      maxAttempt: db.prepare('SELECT max(attempt) FROM requests').pluck().get() as number,
      retryFiles: db.prepare('SELECT count(*) FROM files WHERE attempt > 1').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

test('a completed batch shown without its output file is polled again and a download cut short is downloaded again: nothing is answered twice', async () => {
  const data = tempDir();
  // The first batch to complete meets both: no output file id, then a download cut in half.
  const serve = await spawnServe(['--data', data, '--null-output-files', '1', '--truncate-downloads', '1']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const run = await runCli(runArgs(ledger, serve.url, '--max-lines', '10'), { stdin: csvRecords(40), env });
    assert.equal(run.code, 0, run.stderr);
    // The faults happened: one batch shown without its output file, one download cut.
    assert.equal(serve.stderr().match(/\(--truncate-downloads\)/g)?.length, 1, serve.stderr());
    assert.equal(serve.stderr().match(/\(--null-output-files\)/g)?.length, 1, serve.stderr());
    assert.match(run.stderr, /its files hold 5 of 10 lines; downloading again/);
    assert.match(run.stderr, /its files hold 0 of 10 lines; downloading again/);

    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string });
    assert.equal(rows.length, 40);
    assert.ok(rows.every((r) => r.status === 'succeeded'));
    assert.deepEqual(ledgerStates(ledger), { states: { succeeded: 40 }, maxAttempt: 1, retryFiles: 0 });

    const audit = await auditServer(serve.url, data);
    assert.equal(audit.batches.length, 4, 'one batch per file, none sent again');
    assert.deepEqual(answeredTwice(audit), []);
    assert.equal(audit.succeeded.size, 40);
  } finally {
    await serve.stop();
  }
});

test('a download short three times in a row stops with BP_RESULT_INCOMPLETE, re-stages nothing, and a later collect finishes exactly', async () => {
  const data = tempDir();
  const serve = await spawnServe(['--data', data, '--truncate-downloads', '3']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const first = await runCli(runArgs(ledger, serve.url, '--max-lines', '10'), {
      stdin: csvRecords(10),
      env,
    });
    assert.equal(first.code, 1, first.stderr);
    const audit0 = await auditServer(serve.url, data);
    const batchId = audit0.batches[0]!.id;
    assert.match(
      first.stderr,
      new RegExp(
        `BP_RESULT_INCOMPLETE batch ${batchId} .* is completed and reports 10 completed and 0 failed of 10 requests, but its output and error files held 5 of the 10 lines expected, 3 downloads in a row; nothing was re-staged`,
      ),
    );
    // Half the answers applied, the rest still waiting in the open batch: nothing staged again.
    assert.deepEqual(ledgerStates(ledger), {
      states: { succeeded: 5, submitted: 5 },
      maxAttempt: 1,
      retryFiles: 0,
    });

    const collect = await runCli(
      ['collect', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.05'],
      { env },
    );
    assert.equal(collect.code, 0, collect.stderr);
    assert.deepEqual(ledgerStates(ledger), { states: { succeeded: 10 }, maxAttempt: 1, retryFiles: 0 });

    const audit = await auditServer(serve.url, data);
    assert.equal(audit.batches.length, 1);
    assert.deepEqual(answeredTwice(audit), []);
    // The partial apply and the whole one agree with the server's file, answer for answer.
    const output = readFileSync(path.join(data, 'files', audit.batches[0]!.output_file_id!), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            custom_id: string;
            response: { body: { choices: { message: { content: string } }[] } };
          },
      );
    const results = await runCli(['results', '--ledger', ledger, '--format', 'jsonl']);
    assert.equal(results.code, 0, results.stderr);
    const byId = new Map(
      results.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { custom_id: string; result: unknown; status: string })
        .map((r) => [r.custom_id, r]),
    );
    assert.equal(output.length, 10);
    for (const line of output) {
      const row = byId.get(line.custom_id);
      assert.equal(row?.status, 'succeeded');
      assert.equal(row?.result, line.response.body.choices[0]!.message.content);
    }
  } finally {
    await serve.stop();
  }
});
