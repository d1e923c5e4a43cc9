/**
 * The Gemini provider against the local server's Gemini Files and Batch API, through the real
 * `@google/genai` SDK over HTTP: upload and find, create and find by intent, poll as an operation,
 * download, cancel, the API's clock, and the result dialect over the downloaded lines.
 */
import assert from 'node:assert/strict';
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { GEMINI_DIALECT } from '../src/dialects/gemini.js';
import { openGeminiProvider } from '../src/providers/gemini/open-gemini.js';
import type { BatchIntent, BatchProvider, RemoteFile } from '../src/providers/port.js';
import { ProviderError } from '../src/providers/port.js';
import { geminiLineOutcome } from '../src/results/gemini-line-outcome.js';
import { outputSchemaFromJsonSchema } from '../src/results/output-schema.js';
import { type RemoteBatch, TERMINAL_BATCH_STATUSES } from '../src/types.js';
import { type TestServer, withServer } from './server-support.js';

const MODEL = 'gemini-2.5-flash';

const REVIEW_JSON_SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
    topics: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
  },
  required: ['sentiment', 'topics'],
  additionalProperties: false,
};
const REVIEW_BODY = {
  generationConfig: {
    responseMimeType: 'application/json',
    responseSchema: {
      type: 'OBJECT',
      properties: {
        sentiment: { type: 'STRING', enum: ['positive', 'negative', 'mixed'] },
        topics: { type: 'ARRAY', items: { type: 'STRING' }, minItems: '1', maxItems: '3' },
      },
      required: ['sentiment', 'topics'],
    },
  },
};

function provider(server: TestServer): BatchProvider {
  return openGeminiProvider({ apiKey: 'test', baseUrl: server.origin, secret: true });
}

/**
 * A request file of `n` reviews as prepare writes it for Gemini: batchpipe's lines, each body a native
 * request with `--system` and `--prompt` placed by the Gemini dialect.
 */
function requestFile(
  dir: string,
  n: number,
  name = 'reviews-a1-00001.jsonl',
): { path: string; keys: string[] } {
  const keys: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `review ${String(i).padStart(3, '0')}.x`;
    keys.push(key);
    const body: Record<string, unknown> = { model: MODEL, ...REVIEW_BODY };
    GEMINI_DIALECT.placePrompt(
      '/v1beta/generateContent',
      body,
      `Review ${i}: the flight was ${i % 2 ? 'late' : 'fine'}.`,
      'Classify the review.',
    );
    lines.push(JSON.stringify({ custom_id: key, method: 'POST', url: '/v1beta/generateContent', body }));
  }
  const file = path.join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { path: file, keys };
}

async function upload(p: BatchProvider, file: string, name: string): Promise<RemoteFile> {
  return p.uploadFile!({
    name,
    bytes: statSync(file).size,
    path: file,
    open: () => createReadStream(file),
  });
}

async function waitEnded(p: BatchProvider, id: string): Promise<RemoteBatch> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const batch = await p.retrieveBatch(id);
    if (TERMINAL_BATCH_STATUSES.has(batch.status)) return batch;
    assert.ok(Date.now() < deadline, `batch ${id} still ${batch.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function readAll(p: BatchProvider, ref: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await p.openResultFile(ref)) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const INTENT: BatchIntent = { runId: 'run-1', intentId: '7', fileName: 'reviews-a1-00001.jsonl' };

test('gemini provider: upload, create, poll and download through the SDK; every line back under its key, JSON valid, usage counted', () =>
  withServer({}, async (server, dir) => {
    const p = provider(server);
    const { path: file, keys } = requestFile(dir, 25);
    const before = Math.floor(Date.now() / 1000);
    const now = await p.serverNow();
    assert.ok(now !== undefined && Math.abs(now - before) <= 2, `the API's clock: ${now} vs ${before}`);

    const uploaded = await upload(p, file, 'reviews-a1-00001.1a2b3c4d.jsonl');
    assert.match(uploaded.id, /^files\//);
    const wire = (await fetch(`${server.origin}/download/v1beta/${uploaded.id}:download?alt=media`, {
      headers: { 'x-goog-api-key': 'test' },
    }).then((r) => r.text())) as string;
    const sent = wire
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(uploaded.bytes, Buffer.byteLength(wire));
    assert.deepEqual(
      sent.map((l) => l.key),
      keys,
      'what went up: one { key, request } line per request, the custom_id as key',
    );
    assert.equal(sent[0].request.model, undefined, 'the model goes with the batch, not the line');
    assert.deepEqual(sent[0].request.systemInstruction, { parts: [{ text: 'Classify the review.' }] });
    const batch = await p.createBatch({
      intent: INTENT,
      endpoint: '/v1beta/generateContent',
      model: MODEL,
      input: { fileId: uploaded.id },
    });
    assert.equal(batch.provider, 'gemini');
    assert.match(batch.id, /^batches\//);
    assert.ok(['validating', 'in_progress'].includes(batch.status), batch.status);

    const ended = await waitEnded(p, batch.id);
    assert.equal(ended.status, 'completed');
    assert.equal(ended.rawStatus, 'BATCH_STATE_SUCCEEDED');
    assert.deepEqual(ended.counts, { total: keys.length, completed: keys.length, failed: 0 });
    assert.equal(ended.errorFile, null);
    assert.ok(ended.outputFile);
    assert.ok(ended.createdAt !== null && ended.endedAt !== null && ended.endedAt >= ended.createdAt);

    const text = await readAll(p, ended.outputFile);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.key),
      keys,
    );
    const schema = outputSchemaFromJsonSchema(REVIEW_JSON_SCHEMA);
    const ajv = new Ajv2020({ strict: false }).compile(REVIEW_JSON_SCHEMA);
    const expect = { kind: 'json', list: false } as const;
    for (const line of lines) {
      const outcome = geminiLineOutcome(line, {
        endpoint: '/v1beta/generateContent',
        expect,
        outputSchema: schema,
      });
      assert.ok('customId' in outcome);
      assert.equal(outcome.state, 'succeeded', outcome.errorMessage ?? '');
      assert.equal(outcome.customId, line.key);
      const result = JSON.parse(outcome.result!);
      assert.ok(ajv(result), JSON.stringify(ajv.errors));
      const meta = line.response.usageMetadata;
      assert.equal(outcome.usage?.inputTokens, meta.promptTokenCount);
      assert.equal(outcome.usage?.outputTokens, meta.candidatesTokenCount + (meta.thoughtsTokenCount ?? 0));
      assert.equal(outcome.usage?.cachedInputTokens, meta.cachedContentTokenCount ?? 0);
      assert.ok((outcome.usage?.inputTokens ?? 0) > 0);
    }
    await p.close();
  }));

test('gemini provider: an upload and a batch are found again by their intent tags, by the API clock; others are not', () =>
  withServer({ clockSkewSeconds: -600 }, async (server, dir) => {
    const p = provider(server);
    const { path: file } = requestFile(dir, 3);
    const bytes = statSync(file).size;
    const since = await p.serverNow();
    assert.ok(
      since !== undefined && since < Date.now() / 1000 - 500,
      'the API clock, 10 minutes behind ours',
    );
    const uploaded = await upload(p, file, 'reviews-a1-00001.aaaa0001.jsonl');
    await upload(p, file, 'reviews-a1-00001.bbbb0002.jsonl');

    const found = await p.findUpload!('reviews-a1-00001.aaaa0001.jsonl', bytes, { createdSince: since - 30 });
    assert.equal(found?.id, uploaded.id);
    assert.equal(
      await p.findUpload!('reviews-a1-00001.cccc0003.jsonl', bytes, { createdSince: undefined }),
      undefined,
    );
    assert.equal(
      await p.findUpload!('reviews-a1-00001.aaaa0001.jsonl', bytes, { createdSince: since + 3600 }),
      undefined,
      'nothing made after the cut-off',
    );

    const created = await p.createBatch({
      intent: INTENT,
      endpoint: '/v1beta/generateContent',
      model: MODEL,
      input: { fileId: uploaded.id },
    });
    const other = await p.createBatch({
      intent: { ...INTENT, intentId: '8' },
      endpoint: '/v1beta/generateContent',
      model: MODEL,
      input: { fileId: uploaded.id },
    });
    const byIntent = await p.findBatchByIntent(INTENT, { createdSince: since - 30 });
    assert.equal(byIntent?.id, created.id);
    assert.equal(
      (await p.findBatchByIntent({ ...INTENT, intentId: '8' }, { createdSince: undefined }))?.id,
      other.id,
    );
    assert.equal(
      await p.findBatchByIntent({ ...INTENT, runId: 'run-2' }, { createdSince: undefined }),
      undefined,
    );
    assert.equal(await p.findBatchByIntent(INTENT, { createdSince: since + 3600 }), undefined);
    await p.close();
  }));

test('gemini provider: an upload and a create whose responses are lost throw retryable errors; what they made is found by intent, once', () =>
  withServer({ loseCreateResponses: 2 }, async (server, dir) => {
    const p = provider(server);
    const { path: file } = requestFile(dir, 2);
    const since = await p.serverNow();
    const name = 'reviews-a1-00001.aaaa0001.jsonl';
    await assert.rejects(upload(p, file, name), (err) => err instanceof ProviderError && err.retryable);
    const uploaded = await p.findUpload!(name, statSync(file).size, { createdSince: since });
    assert.ok(uploaded, 'the file the lost upload made');
    await assert.rejects(
      p.createBatch({
        intent: INTENT,
        endpoint: '/v1beta/generateContent',
        model: MODEL,
        input: { fileId: uploaded.id },
      }),
      (err) => err instanceof ProviderError && err.retryable,
    );
    const found = await p.findBatchByIntent(INTENT, { createdSince: since });
    assert.ok(found, 'the batch the lost create made');
    assert.deepEqual(
      await listBatchNames(server),
      [found.id],
      'one create, one batch: the SDK did not retry it',
    );
    await p.close();
  }));

test('gemini provider: cancel ends the batch CANCELLED with what finished; cancelling an ended batch is not an error', () =>
  withServer({ latencyMs: 200, concurrency: 1 }, async (server, dir) => {
    const p = provider(server);
    const { path: file } = requestFile(dir, 40);
    const uploaded = await upload(p, file, 'reviews-a1-00001.aaaa0001.jsonl');
    const batch = await p.createBatch({
      intent: INTENT,
      endpoint: '/v1beta/generateContent',
      model: MODEL,
      input: { fileId: uploaded.id },
    });
    await p.cancelBatch(batch.id);
    const ended = await waitEnded(p, batch.id);
    assert.equal(ended.status, 'cancelled');
    const finished = (ended.counts?.completed ?? 0) + (ended.counts?.failed ?? 0);
    assert.ok(finished < 40, `cancelled before the end: ${finished} ran`);
    const lines = ended.outputFile ? (await readAll(p, ended.outputFile)).split('\n').filter(Boolean) : [];
    assert.equal(lines.length, finished, 'a line for each request that ran, none for the rest');
    await p.cancelBatch(batch.id);
    await p.close();
  }));

test('gemini provider: --fail-rate lines fail with their status, retryable as Google marks them; the API key never shows in errors', () =>
  withServer({ failRate: 0.5, seed: 3, apiKey: 'sekrit-key-123' }, async (server, dir) => {
    const wrong = openGeminiProvider({ apiKey: 'wrong-key-456', baseUrl: server.origin, secret: true });
    const { path: file, keys } = requestFile(dir, 30);
    const refused = await upload(wrong, file, 'x.jsonl').then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(
      refused instanceof ProviderError && !refused.retryable && refused.status === 400,
      String(refused),
    );
    assert.ok(!refused.message.includes('wrong-key-456'), refused.message);

    const p = openGeminiProvider({ apiKey: 'sekrit-key-123', baseUrl: server.origin, secret: true });
    const uploaded = await upload(p, file, 'reviews-a1-00001.aaaa0001.jsonl');
    const batch = await p.createBatch({
      intent: INTENT,
      endpoint: '/v1beta/generateContent',
      model: MODEL,
      input: { fileId: uploaded.id },
    });
    const ended = await waitEnded(p, batch.id);
    const lines = (await readAll(p, ended.outputFile!))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, keys.length);
    const expect = { kind: 'json', list: false } as const;
    const outcomes = lines.map((l) => geminiLineOutcome(l, { endpoint: '/v1beta/generateContent', expect }));
    const failed = outcomes.filter((o) => 'state' in o && o.state === 'failed');
    assert.equal(failed.length, ended.counts?.failed);
    assert.ok(failed.length > 0 && failed.length < keys.length, `${failed.length} failed`);
    for (const [i, o] of outcomes.entries()) {
      assert.ok('state' in o);
      const error = lines[i].error;
      if (!error) continue;
      assert.equal(o.errorMessage, error.message);
      assert.equal(o.retryable, [4, 8, 13, 14].includes(error.code), `${error.code} ${o.errorCode}`);
    }
    await p.close();
    await wrong.close();
  }));

/** The names of the server's Gemini batches, read over HTTP (the server's own list). */
async function listBatchNames(server: TestServer): Promise<string[]> {
  const response = await fetch(`${server.origin}/v1beta/batches?pageSize=1000`, {
    headers: { 'x-goog-api-key': 'test' },
  });
  const body = (await response.json()) as { operations?: Array<{ name: string }> };
  return (body.operations ?? []).map((o) => o.name);
}
