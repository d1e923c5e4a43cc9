import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { answeredTwice, auditServer, csvRecords, runArgs } from './server-audit.js';
import { runCli, spawnServe, tempDir } from './support.js';

const SKEW_SECONDS = -120;

test('with the API clock 120 s behind and create responses lost, settling finds what landed: one upload per file, one batch per intent', async () => {
  const data = tempDir();
  // Both uploads and the first batch creation take effect, then lose their response.
  const serve = await spawnServe([
    '--data',
    data,
    `--clock-skew=${SKEW_SECONDS}`,
    '--lose-create-responses',
    '3',
  ]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const started = Math.floor(Date.now() / 1000);
    const run = await runCli(runArgs(ledger, serve.url, '--max-lines', '10'), {
      stdin: csvRecords(20),
      env: { OPENAI_API_KEY: 'local' },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(serve.stderr().match(/uploaded; dropping the response/g)?.length, 2, serve.stderr());
    assert.equal(serve.stderr().match(/created; dropping the response/g)?.length, 1, serve.stderr());

    const audit = await auditServer(serve.url, data);
    const db = new Database(ledger, { readonly: true });
    const files = db.prepare('SELECT name FROM files').pluck().all() as string[];
    const intents = db
      .prepare('SELECT id, remote_id, intent_server_after, created_at FROM batches')
      .all() as { id: number; remote_id: string; intent_server_after: number; created_at: number }[];
    const states = db.prepare('SELECT DISTINCT state FROM requests').pluck().all();
    db.close();

    // The server's clock is the one recorded and compared: 120 s behind ours.
    for (const i of intents) {
      assert.ok(
        Math.abs(i.intent_server_after - (started + SKEW_SECONDS)) < 30,
        'intent time by the server clock',
      );
      assert.ok(i.created_at >= i.intent_server_after, "created after the intent, by the server's clock");
    }
    assert.equal(audit.uploads.length, files.length, 'each file uploaded once');
    assert.equal(audit.batches.length, intents.length, 'one batch per intent');
    assert.deepEqual(new Set(audit.batches.map((b) => b.id)), new Set(intents.map((i) => i.remote_id)));
    const perIntent = new Set(
      audit.batches.map((b) => (b.metadata as Record<string, string>).batchpipe_intent),
    );
    assert.equal(perIntent.size, audit.batches.length);
    // Uploads carry their intent in their name: <file>.<tag>.jsonl.
    for (const u of audit.uploads) assert.match(u.filename, /^l-[0-9a-f]+-a1-\d{5}\.[0-9a-f]{8}\.jsonl$/);
    assert.deepEqual(states, ['succeeded']);
    assert.deepEqual(answeredTwice(audit), []);
    assert.equal(audit.succeeded.size, 20);
  } finally {
    await serve.stop();
  }
});
