import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { answeredTwice, auditServer, csvRecords, runArgs } from './server-audit.js';
import { runCli, spawnServe, tempDir } from './support.js';

test('a batch failing validation on one line fails that request alone; the others go again in a new file, their attempt unspent', async (t) => {
  const data = tempDir();
  // Any input of 8 requests or more fails naming line 8: files of 10 fail until they shrink below 8.
  const serve = await spawnServe(['--data', data, '--fail-validation-line', '8']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const run = await runCli(runArgs(ledger, serve.url, '--max-lines', '10'), {
      stdin: csvRecords(20),
      env: { OPENAI_API_KEY: 'local' },
    });
    // The refused requests fail: the run finishes with failed rows, exit 3.
    assert.equal(run.code, 3, run.stderr);

    // What the server refused, from its own record: the request at the named line of each failed input.
    const audit = await auditServer(serve.url, data);
    const refused = new Map<string, { code: string; message: string }>();
    for (const b of audit.batches.filter((b) => b.status === 'failed')) {
      const lines = audit.inputLines(b.input_file_id);
      assert.ok(lines.length >= 8, 'only inputs of 8 or more requests fail');
      for (const e of b.errors?.data ?? []) {
        const customId = (JSON.parse(lines[e.line! - 1]!) as { custom_id: string }).custom_id;
        assert.ok(!refused.has(customId), `${customId} refused once, never sent again`);
        refused.set(customId, { code: e.code!, message: e.message! });
      }
    }
    t.diagnostic(`${refused.size} requests refused by validation; ${audit.batches.length} batches in all`);
    assert.ok(refused.size >= 2, `validation failed ${refused.size} times`);
    assert.ok(
      audit.batches.some((b) => b.status === 'completed'),
      'the other requests ran in smaller files',
    );
    assert.deepEqual(answeredTwice(audit), []);
    assert.equal(audit.succeeded.size + refused.size, 20, 'every request answered or refused');
    for (const id of refused.keys()) assert.ok(!audit.answers.has(id), `${id} never ran`);

    const db = new Database(ledger, { readonly: true });
    const requests = db
      .prepare('SELECT custom_id, state, attempt, error_code, error_message FROM requests')
      .all() as {
      custom_id: string;
      state: string;
      attempt: number;
      error_code: string;
      error_message: string;
    }[];
    db.close();
    for (const r of requests) {
      assert.equal(r.attempt, 1, `${r.custom_id} spent no attempt`);
      const refusal = refused.get(r.custom_id);
      if (refusal) {
        assert.equal(r.state, 'failed');
        assert.equal(r.error_code, refusal.code);
        assert.match(r.error_message, /^line 8: Line 8: the request was refused/);
      } else {
        assert.equal(r.state, 'succeeded', `${r.custom_id} ran`);
        assert.equal(audit.succeeded.get(r.custom_id), 1);
      }
    }
  } finally {
    await serve.stop();
  }
});
