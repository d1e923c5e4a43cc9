import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { openJournal } from '../src/server/engine/result-journal.js';
import { startLocalServer } from '../src/server/index.js';
import {
  chatLines,
  countIds,
  createChatBatch,
  downloadLines,
  REPO_ROOT,
  removeDir,
  startTestServer,
  tempDir,
  waitForBatch,
  withServer,
} from './server-support.js';
import { spawnServe } from './support.js';

test('a server closed mid-batch and started again on the same data dir finishes the batch, every custom_id once', async () => {
  const dataDir = tempDir();
  const dir = tempDir();
  const lines = chatLines(40);
  let batchId: string;
  const first = await startTestServer({ dataDir, latencyMs: 40, concurrency: 2 });
  try {
    const batch = await createChatBatch(first.client, dir, lines);
    batchId = batch.id;
    const partial = await waitForBatch(
      first.client,
      batch.id,
      (b) => (b.request_counts?.completed ?? 0) >= 5,
      { intervalMs: 10 },
    );
    assert.equal(partial.status, 'in_progress');
  } finally {
    await first.close();
  }
  const second = await startTestServer({ dataDir });
  try {
    const done = await waitForBatch(second.client, batchId);
    assert.equal(done.status, 'completed');
    const out = await downloadLines(second.client, done.output_file_id);
    const counts = countIds(out);
    assert.equal(out.length, 40);
    assert.deepEqual([...counts.keys()].sort(), lines.map((l) => l.custom_id).sort());
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'nothing lost, nothing duplicated',
    );
    assert.deepEqual(done.request_counts, { total: 40, completed: 40, failed: 0 });
    assert.equal((await second.client.batches.list()).data.length, 1, 'the batch list survives the restart');
  } finally {
    await second.close();
    await removeDir(dataDir);
    await removeDir(dir);
  }
});

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

test('SIGKILL of `batchpipe serve` mid-batch loses nothing: a restarted server completes it without duplicates', async () => {
  const dataDir = tempDir();
  const dir = tempDir();
  const lines = chatLines(80);
  const first = await spawnServe(['--data', dataDir, '--latency', '30', '--concurrency', '4']);
  let batchId: string;
  try {
    const client = new OpenAI({ apiKey: 'test', baseURL: first.url });
    const batch = await createChatBatch(client, dir, lines);
    batchId = batch.id;
    await waitForBatch(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= 12, { intervalMs: 10 });
  } finally {
    first.child.kill('SIGKILL');
  }
  assert.equal((await exited(first.child)).signal, 'SIGKILL');

  const second = await spawnServe(['--data', dataDir]);
  try {
    const client = new OpenAI({ apiKey: 'test', baseURL: second.url });
    const done = await waitForBatch(client, batchId);
    assert.equal(done.status, 'completed');
    const out = await downloadLines(client, done.output_file_id);
    const counts = countIds(out);
    assert.equal(out.length, 80);
    assert.deepEqual([...counts.keys()].sort(), lines.map((l) => l.custom_id).sort());
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'every custom_id exactly once',
    );
    assert.deepEqual(done.request_counts, { total: 80, completed: 80, failed: 0 });
  } finally {
    second.child.kill('SIGTERM');
    const { code } = await exited(second.child);
    assert.equal(code, 0, 'SIGTERM stops serve cleanly');
    assert.match(second.stderr(), /SIGTERM: stopping/);
    await removeDir(dataDir);
    await removeDir(dir);
  }
});

test('recovery cuts a line torn by a crash and keeps the whole ones', async () => {
  const dir = tempDir();
  try {
    const output = path.join(dir, 'output.jsonl');
    const errors = path.join(dir, 'errors.jsonl');
    const whole = (id: string) =>
      JSON.stringify({
        id: `batch_req_${id}`,
        custom_id: id,
        response: {
          status_code: 200,
          request_id: 'r',
          body: { usage: { prompt_tokens: 2, completion_tokens: 1 } },
        },
        error: null,
      });
    writeFileSync(output, `${whole('a')}\n${whole('b')}\n${whole('c').slice(0, 25)}`);
    writeFileSync(errors, '');
    const journal = await openJournal(output, errors);
    assert.equal(journal.tally.completed, 2);
    assert.equal(journal.tally.usage.input_tokens, 4);
    assert.ok(journal.isDone('a') && journal.isDone('b') && !journal.isDone('c'));
    journal.record(
      { id: 'batch_req_c', custom_id: 'c', response: null, error: { code: 'x', message: 'y' } },
      true,
    );
    await journal.close();
    const ids = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id);
    assert.deepEqual(ids, ['a', 'b', 'c']);
  } finally {
    await removeDir(dir);
  }
});

test('two live servers never share a data dir', () =>
  withServer({}, async (server) => {
    await assert.rejects(startLocalServer({ dataDir: server.dataDir, port: 0 }), /already in use/);
    const other = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/batchpipe.js'), 'serve', '--port', '0', '--data', server.dataDir],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    assert.equal(other.status, 1);
    assert.match(other.stderr, /in use by another batchpipe server/);
  }));
