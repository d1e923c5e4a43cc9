import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import {
  assertValid,
  chatLines,
  countIds,
  createChatBatch,
  downloadLines,
  specValidator,
  waitForBatch,
  withServer,
} from './server-support.js';

const validateBatch = specValidator('Batch', true);

test('cancel: cancelling → cancelled, keeping the requests that finished, each once', () =>
  withServer({ latencyMs: 40, concurrency: 2 }, async (server, dir) => {
    const { client } = server;
    const lines = chatLines(40);
    const batch = await createChatBatch(client, dir, lines);
    await waitForBatch(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= 4, { intervalMs: 10 });
    const cancelling = await client.batches.cancel(batch.id);
    assertValid(validateBatch, cancelling, 'the Batch returned by cancel');
    assert.ok(['cancelling', 'cancelled'].includes(cancelling.status));
    assert.ok(Number.isInteger(cancelling.cancelling_at));
    const again = await client.batches.cancel(batch.id);
    assert.ok(['cancelling', 'cancelled'].includes(again.status), 'cancelling twice is harmless');

    const done = await waitForBatch(client, batch.id);
    assertValid(validateBatch, done, 'the cancelled Batch');
    assert.equal(done.status, 'cancelled');
    assert.ok(Number.isInteger(done.cancelled_at));
    assert.equal(done.completed_at, null);
    const out = await downloadLines(client, done.output_file_id);
    const errors = await downloadLines(client, done.error_file_id);
    assert.ok(out.length >= 4 && out.length < 40, `partial results: ${out.length}`);
    assert.equal(errors.length, 0);
    assert.equal(done.request_counts?.completed, out.length);
    assert.equal(done.request_counts?.total, 40);
    assert.ok([...countIds(out).values()].every((n) => n === 1));
    assert.ok((done.usage?.total_tokens ?? 0) > 0, 'usage of the finished requests');

    const notCancellable = await client.batches.cancel(batch.id).then(
      (b) => b.status,
      (e: unknown) => e,
    );
    assert.equal(notCancellable, 'cancelled', 'a cancelled batch is returned as it is');
    const completed = await createChatBatch(client, dir, chatLines(1, 'quick'), 'quick.jsonl');
    await waitForBatch(client, completed.id);
    const refused = await client.batches.cancel(completed.id).catch((e: unknown) => e);
    assert.ok(refused instanceof OpenAI.BadRequestError, 'a completed batch cannot be cancelled');
  }));

test('cancel while validating ends cancelled with no files', () =>
  withServer({}, async (server, dir) => {
    const batch = await createChatBatch(server.client, dir, chatLines(20_000));
    const cancelling = await server.client.batches.cancel(batch.id);
    assert.equal(cancelling.status, 'cancelling');
    const done = await waitForBatch(server.client, batch.id);
    assert.equal(done.status, 'cancelled');
    assert.equal(done.request_counts?.completed ?? 0, 0);
    assert.equal(done.output_file_id, null);
  }));

test('expiry: past the completion window, finished requests are in the output file, the rest batch_expired', () =>
  withServer({ completionWindowSeconds: 1, latencyMs: 60, concurrency: 2 }, async (server, dir) => {
    const { client } = server;
    const lines = chatLines(60);
    const batch = await createChatBatch(client, dir, lines);
    assert.ok(
      (batch.expires_at as number) - batch.created_at <= 2,
      'expires_at follows the configured window',
    );
    const done = await waitForBatch(client, batch.id);
    assertValid(validateBatch, done, 'the expired Batch');
    assert.equal(done.status, 'expired');
    assert.ok(Number.isInteger(done.expired_at));
    assert.equal(done.completed_at, null);

    const out = await downloadLines(client, done.output_file_id);
    const errors = await downloadLines(client, done.error_file_id);
    assert.ok(out.length > 0 && out.length < 60, `some finished before expiry: ${out.length}`);
    assert.equal(out.length + errors.length, 60);
    const counts = countIds([...out, ...errors]);
    assert.deepEqual([...counts.keys()].sort(), lines.map((l) => l.custom_id).sort());
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'each custom_id exactly once across both files',
    );
    for (const line of errors) {
      assert.equal(line.response, null);
      assert.equal(line.error?.code, 'batch_expired');
    }
    for (const line of out) assert.equal(line.response?.status_code, 200);
    assert.deepEqual(done.request_counts, { total: 60, completed: out.length, failed: errors.length });
  }));
