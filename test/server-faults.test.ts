import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import {
  chatLines,
  countIds,
  createChatBatch,
  downloadLines,
  waitForBatch,
  withServer,
} from './server-support.js';

test('--fail-rate answers that fraction of requests with 500 server_error or 429 inside the error file', () =>
  withServer({ failRate: 0.3, seed: 11 }, async (server, dir) => {
    const { client } = server;
    const batch = await createChatBatch(client, dir, chatLines(200));
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, 'completed', 'failed requests do not fail the batch');
    const out = await downloadLines(client, done.output_file_id);
    const errors = await downloadLines(client, done.error_file_id);
    assert.equal(out.length + errors.length, 200);
    assert.ok([...countIds([...out, ...errors]).values()].every((n) => n === 1));
    assert.ok(errors.length >= 30 && errors.length <= 90, `about 30% failed, got ${errors.length}`);
    assert.deepEqual(done.request_counts, { total: 200, completed: out.length, failed: errors.length });
    const statuses = new Set(errors.map((l) => l.response?.status_code));
    assert.deepEqual([...statuses].sort(), [429, 500], 'both kinds of failure occur');
    for (const line of errors) {
      assert.equal(line.error, null);
      const error = line.response?.body.error;
      assert.equal(typeof error.message, 'string');
      assert.equal(error.type, line.response?.status_code === 500 ? 'server_error' : 'requests');
    }
  }));

test('--http-fault-rate: API calls fail 500/429 with Retry-After, and the SDK retries absorb them', () =>
  withServer({ httpFaultRate: 0.3, seed: 5, client: { maxRetries: 12 } }, async (server, dir) => {
    const { client } = server;
    // Without retries the faults show: some of these calls fail with 500 or 429.
    const bare = new OpenAI({ apiKey: 'test', baseURL: server.url, maxRetries: 0 });
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, () =>
        bare.batches.list().then(
          (): number | undefined => 200,
          (e: unknown) => (e instanceof OpenAI.APIError ? e.status : undefined),
        ),
      ),
    );
    assert.ok(
      outcomes.some((s) => s === 500 || s === 429),
      `faults seen: ${outcomes.join(',')}`,
    );
    assert.ok(outcomes.includes(200));
    let sawRetryAfter = false;
    for (let i = 0; i < 30 && !sawRetryAfter; i++) {
      const err = await bare.files.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (err instanceof OpenAI.APIError) sawRetryAfter = err.headers?.get('retry-after') === '1';
    }
    assert.ok(sawRetryAfter, 'faults carry a Retry-After header');

    // With retries, a whole batch lifecycle goes through.
    const batch = await createChatBatch(client, dir, chatLines(20));
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, 'completed');
    const out = await downloadLines(client, done.output_file_id);
    assert.equal(out.length, 20);
    for (let i = 0; i < 10; i++) assert.equal((await client.batches.retrieve(batch.id)).id, batch.id);
  }));
