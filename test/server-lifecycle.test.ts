import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { toStreamingFile } from 'openai';
import {
  assertValid,
  chatLines,
  countIds,
  createChatBatch,
  downloadLines,
  specValidator,
  upload,
  waitForBatch,
  withServer,
  writeJsonl,
} from './server-support.js';

const validateFile = specValidator('OpenAIFile', true);
const validateBatch = specValidator('Batch', true);

test('a chat batch runs validating → in_progress → finalizing → completed, with every result once', () =>
  withServer({ concurrency: 4 }, async (server, dir) => {
    const { client } = server;
    const lines = chatLines(30);
    const input = writeJsonl(dir, 'input.jsonl', lines);
    const file = await upload(client, input);
    assertValid(validateFile, file, 'the uploaded File');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.bytes, readFileSync(input).length);
    assert.equal(file.filename, 'input.jsonl');

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { run: 'lifecycle', part: '1' },
    });
    assertValid(validateBatch, created, 'the created Batch');
    assert.equal(created.status, 'validating');
    assert.deepEqual(created.metadata, { run: 'lifecycle', part: '1' });
    assert.equal(created.output_file_id, null);

    const seen = [created];
    const done = await waitForBatch(client, created.id, undefined, { seen });
    for (const b of seen) assertValid(validateBatch, b, `the Batch while ${b.status}`);
    assert.equal(done.status, 'completed');
    assert.equal(done.model, 'gpt-4o-mini');
    assert.deepEqual(done.request_counts, { total: 30, completed: 30, failed: 0 });
    assert.equal(done.error_file_id, null, 'no error file when nothing failed');
    assert.equal(done.errors, null);
    const order = [done.created_at, done.in_progress_at, done.finalizing_at, done.completed_at];
    for (const t of order)
      assert.ok(Number.isInteger(t) && Math.abs((t as number) - Date.now() / 1000) < 60, 'unix seconds, now');
    assert.deepEqual([...order].sort(), order, 'timestamps in lifecycle order');
    assert.ok((done.expires_at as number) >= done.created_at + 86_400 - 1, 'the 24h window by default');

    const outFile = await client.files.retrieve(done.output_file_id as string);
    assertValid(validateFile, outFile, 'the output File');
    assert.equal(outFile.purpose, 'batch_output');
    const text = await (await client.files.content(outFile.id)).text();
    assert.equal(Buffer.byteLength(text), outFile.bytes);

    const out = await downloadLines(client, done.output_file_id);
    const counts = countIds(out);
    assert.equal(out.length, 30);
    assert.deepEqual([...counts.keys()].sort(), lines.map((l) => l.custom_id).sort());
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'each custom_id exactly once',
    );
    assert.notDeepEqual(
      out.map((l) => l.custom_id),
      lines.map((l) => l.custom_id),
      'output lines come in completion order, not input order',
    );
    let promptTokens = 0;
    let completionTokens = 0;
    for (const line of out) {
      assert.match(line.id, /^batch_req_/);
      assert.equal(line.error, null);
      assert.equal(line.response?.status_code, 200);
      assert.match(line.response?.request_id ?? '', /^req_/);
      const body = line.response?.body;
      assert.equal(body.object, 'chat.completion');
      assert.equal(body.choices[0].message.role, 'assistant');
      assert.ok(body.choices[0].message.content.length > 0);
      promptTokens += body.usage.prompt_tokens;
      completionTokens += body.usage.completion_tokens;
    }
    assert.ok(promptTokens > 0 && completionTokens > 0);
    assert.equal(done.usage?.input_tokens, promptTokens);
    assert.equal(done.usage?.output_tokens, completionTokens);
    assert.equal(done.usage?.total_tokens, promptTokens + completionTokens);
  }));

test('request_counts advance while the batch is in progress', () =>
  withServer({ latencyMs: 40, concurrency: 2 }, async (server, dir) => {
    const batch = await createChatBatch(server.client, dir, chatLines(16));
    const seen: Awaited<ReturnType<typeof waitForBatch>>[] = [];
    const done = await waitForBatch(server.client, batch.id, undefined, { seen, intervalMs: 15 });
    assert.equal(done.status, 'completed');
    const partial = seen.filter(
      (b) =>
        b.status === 'in_progress' &&
        (b.request_counts?.completed ?? 0) > 0 &&
        (b.request_counts?.completed ?? 0) < 16,
    );
    assert.ok(partial.length > 0, 'some poll saw an in-progress batch with part of its requests done');
    const progress = seen.map((b) => b.request_counts?.completed ?? 0);
    assert.deepEqual(
      [...progress].sort((a, b) => a - b),
      progress,
      'counts never go backwards',
    );
    assert.ok((partial[0]?.usage?.total_tokens ?? 0) > 0, 'usage fills in live too');
  }));

test('toStreamingFile uploads round-trip byte for byte, and a batch runs on them', () =>
  withServer({}, async (server) => {
    const { client } = server;
    const lines = chatLines(5).map((l) => JSON.stringify(l));
    lines[2] = JSON.stringify({ ...JSON.parse(lines[2] as string), note: 'naïve “quotes” 🚀' });
    const content = `${lines.join('\r\n')}\r\n`;
    const chunks = [content.slice(0, 100), content.slice(100, 101), content.slice(101)];
    const file = await client.files.create({
      file: toStreamingFile(Readable.from(chunks.map((c) => Buffer.from(c))), 'streamed.jsonl', {
        type: 'application/jsonl',
      }),
      purpose: 'batch',
    });
    assert.equal(file.filename, 'streamed.jsonl');
    assert.equal(file.bytes, Buffer.byteLength(content));
    const back = Buffer.from(await (await client.files.content(file.id)).arrayBuffer());
    assert.ok(back.equals(Buffer.from(content)), 'downloaded bytes equal uploaded bytes');

    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, 'completed', 'CRLF line ends are accepted');
    assert.equal(done.request_counts?.completed, 5);
  }));
