import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterForModel, requestInputTokens } from '../src/cost/tokens.js';
import {
  assertValid,
  chatLine,
  createChatBatch,
  specValidator,
  upload,
  waitForBatch,
  withServer,
  writeJsonl,
} from './server-support.js';

const validateBatch = specValidator('Batch', true);

test('validation failures name their code, param and 1-based line (blank lines still count)', () =>
  withServer({}, async (server, dir) => {
    const lines = [
      chatLine('a', 'fine'), // 1
      '{"custom_id": "b", "method": "POST", ', // 2: not JSON
      '', // 3: blank, skipped but counted
      { method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } }, // 4: no custom_id
      { ...chatLine('c', 'x'), url: '/v1/embeddings' }, // 5: wrong url
      chatLine('a', 'again'), // 6: duplicate
      chatLine('d', 'other model', { model: 'gpt-4o' }), // 7: second model
      { custom_id: 'e', method: 'GET', url: '/v1/chat/completions', body: {} }, // 8: not POST
      { custom_id: 'f', method: 'POST', url: '/v1/chat/completions' }, // 9: no body
      chatLine('g', 'fine too'), // 10
    ];
    const batch = await createChatBatch(server.client, dir, lines);
    const failed = await waitForBatch(server.client, batch.id);
    assertValid(validateBatch, failed, 'a failed Batch');
    assert.equal(failed.status, 'failed');
    assert.ok(Number.isInteger(failed.failed_at));
    assert.equal(failed.in_progress_at, null);
    assert.equal(failed.output_file_id, null);
    assert.equal(failed.error_file_id, null);
    assert.equal(failed.errors?.object, 'list');
    const got = failed.errors?.data?.map((e) => [e.line, e.code, e.param]);
    assert.deepEqual(got, [
      [2, 'invalid_json_line', null],
      [4, 'missing_required_parameter', 'custom_id'],
      [5, 'url_mismatch', 'url'],
      [6, 'duplicate_custom_id', 'custom_id'],
      [7, 'model_mismatch', 'body.model'],
      [8, 'invalid_method', 'method'],
      [9, 'missing_required_parameter', 'body'],
    ]);
    for (const e of failed.errors?.data ?? []) assert.ok((e.message ?? '').length > 10);
  }));

test('an empty file and a file over 50,000 requests fail validation', () =>
  withServer({}, async (server, dir) => {
    const { client } = server;
    const empty = await createChatBatch(client, dir, [''], 'empty.jsonl');
    const emptyDone = await waitForBatch(client, empty.id);
    assert.equal(emptyDone.status, 'failed');
    assert.equal(emptyDone.errors?.data?.[0]?.code, 'empty_file');

    const tooMany = Array.from({ length: 50_001 }, (_, i) => JSON.stringify(chatLine(`r${i}`, 'x')));
    const big = await createChatBatch(client, dir, tooMany, 'big.jsonl');
    const bigDone = await waitForBatch(client, big.id);
    assert.equal(bigDone.status, 'failed');
    assert.equal(bigDone.errors?.data?.[0]?.code, 'too_many_tasks');
    assert.equal(bigDone.errors?.data?.[0]?.line, 50_001);
  }));

/** Ten requests whose prompts are 400 characters each, and their input tokens as the server counts them. */
const TOKEN_LINES = Array.from({ length: 10 }, (_, i) => chatLine(`t${i}`, 'x'.repeat(400)));
const FILE_TOKENS = TOKEN_LINES.reduce(
  (sum, line) => sum + requestInputTokens(line.url, line.body, counterForModel(line.body.model)),
  0,
);

test('enqueued token limit: a batch that would push the queued tokens over the limit fails token_limit_exceeded', () =>
  withServer(
    { enqueuedTokenLimit: Math.round(FILE_TOKENS * 1.5), latencyMs: 60, concurrency: 2 },
    async ({ client }, dir) => {
      const file = await upload(client, writeJsonl(dir, 'tokens.jsonl', TOKEN_LINES));
      const create = () =>
        client.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        });

      const first = await create();
      const running = await waitForBatch(client, first.id, (b) => b.status !== 'validating');
      assert.equal(running.status, 'in_progress', 'the first batch fits under the limit');
      const second = await waitForBatch(client, (await create()).id);
      assert.equal(second.status, 'failed');
      assert.equal(second.errors?.data?.[0]?.code, 'token_limit_exceeded');
      assert.match(second.errors?.data?.[0]?.message ?? '', /gpt-4o-mini/);

      assert.equal((await waitForBatch(client, first.id)).status, 'completed');
      const third = await waitForBatch(client, (await create()).id);
      assert.equal(third.status, 'completed', 'once the queue drains, the same batch fits again');
    },
  ));

test('enqueued token limit: a batch bigger than the limit on its own fails too', () =>
  withServer({ enqueuedTokenLimit: FILE_TOKENS - 1 }, async ({ client }, dir) => {
    const done = await waitForBatch(client, (await createChatBatch(client, dir, TOKEN_LINES)).id);
    assert.equal(done.status, 'failed');
    assert.equal(done.errors?.data?.[0]?.code, 'token_limit_exceeded');
  }));
