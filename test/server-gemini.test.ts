import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ApiError, type BatchJob, GoogleGenAI, type InlinedRequest, JobState } from '@google/genai';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { type JsonObject, type TestServer, withServer } from './server-support.js';

const MODEL = 'gemini-2.5-flash';
const DONE = new Set<string>([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_EXPIRED,
]);

function geminiClient(server: TestServer, options: { apiKey?: string; retries?: number } = {}): GoogleGenAI {
  return new GoogleGenAI({
    apiKey: options.apiKey ?? 'test',
    httpOptions: {
      baseUrl: server.origin,
      // The SDK retries nothing unless told to.
      ...(options.retries
        ? { retryOptions: { attempts: options.retries, initialDelay: 0.01, maxDelay: 0.05 } }
        : {}),
    },
  });
}

async function waitDone(ai: GoogleGenAI, name: string, timeoutMs = 20_000): Promise<BatchJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await ai.batches.get({ name });
    if (DONE.has(job.state ?? '')) return job;
    if (Date.now() > deadline) throw new Error(`batch ${name} still ${job.state}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The batch as the wire carries it (an Operation), which the SDK reshapes. */
async function rawOperation(server: TestServer, name: string): Promise<JsonObject> {
  const response = await fetch(`${server.origin}/v1beta/${name}`, { headers: { 'x-goog-api-key': 'test' } });
  assert.equal(response.status, 200);
  return response.json();
}

function jsonlLines(text: string): JsonObject[] {
  assert.ok(text === '' || text.endsWith('\n'), 'a JSONL file ends with a newline');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

function inlineRequest(key: string, text: string, config: InlinedRequest['config'] = {}): InlinedRequest {
  return { contents: [{ role: 'user', parts: [{ text }] }], metadata: { key }, config };
}

/** The body of an SDK ApiError (its message is the JSON the server sent). */
function errorBody(err: unknown): JsonObject {
  assert.ok(err instanceof ApiError, `an ApiError, got ${String(err)}`);
  return JSON.parse(err.message);
}

// Gemini's OpenAPI-subset schema, and the same schema written as JSON Schema for the check.
const REVIEW_SCHEMA = {
  type: 'OBJECT',
  properties: {
    sentiment: { type: 'STRING', enum: ['positive', 'negative', 'mixed'] },
    score: { type: 'INTEGER', minimum: 1, maximum: 5 },
    topics: { type: 'ARRAY', items: { type: 'STRING' }, minItems: '1', maxItems: '3' },
    note: { type: 'STRING', nullable: true },
  },
  required: ['sentiment', 'score', 'topics'],
  propertyOrdering: ['sentiment', 'score', 'topics', 'note'],
};
const REVIEW_JSON_SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { enum: ['positive', 'negative', 'mixed'] },
    score: { type: 'integer', minimum: 1, maximum: 5 },
    topics: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
    note: { type: ['string', 'null'] },
  },
  required: ['sentiment', 'score', 'topics'],
};
const SUMMARY_JSON_SCHEMA = {
  type: 'object',
  properties: { summary: { type: 'string', maxLength: 30 }, delayed: { type: 'boolean' } },
  required: ['summary', 'delayed'],
  additionalProperties: false,
};

test('gemini: upload a JSONL file (in chunks), batchGenerateContent from it, poll, download the results in input order', () =>
  withServer({}, async (server, dir) => {
    const ai = geminiClient(server);
    const ajv = new Ajv2020({ strict: false });
    const validReview = ajv.compile(REVIEW_JSON_SCHEMA);
    const validSummary = ajv.compile(SUMMARY_JSON_SCHEMA);
    const lines: Array<{ key: string; request: JsonObject }> = [];
    // Ten long prompts make the file larger than the SDK's 8 MiB upload chunk.
    for (let i = 0; i < 10; i++) {
      lines.push({
        key: `long-${i}`,
        request: { contents: [{ parts: [{ text: `Review ${i}: ${'late crew '.repeat(90_000)}` }] }] },
      });
    }
    for (let i = 0; i < 10; i++) {
      lines.push({
        key: `schema-${i}`,
        request: {
          contents: [{ role: 'user', parts: [{ text: `Classify review ${i}: delayed but kind crew.` }] }],
          generationConfig: { responseMimeType: 'application/json', responseSchema: REVIEW_SCHEMA },
        },
      });
      lines.push({
        key: `json-${i}`,
        request: {
          systemInstruction: { parts: [{ text: 'Summarise.' }] },
          contents: [{ role: 'user', parts: [{ text: `Review ${i}: the flight was delayed.` }] }],
          generationConfig: { responseMimeType: 'application/json', responseJsonSchema: SUMMARY_JSON_SCHEMA },
        },
      });
    }
    lines.push({
      key: 'json-0',
      request: { contents: [{ parts: [{ text: 'A second request under a key already used.' }] }] },
    });
    const input = path.join(dir, 'requests.jsonl');
    writeFileSync(input, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const bytes = readFileSync(input);
    assert.ok(bytes.length > 8 * 1024 * 1024, 'the upload takes more than one chunk');

    const file = await ai.files.upload({
      file: input,
      config: { mimeType: 'application/jsonl', displayName: 'reviews' },
    });
    assert.match(file.name ?? '', /^files\/[a-z0-9]+$/);
    assert.equal(file.state, 'ACTIVE');
    assert.equal(file.sizeBytes, String(bytes.length));
    assert.equal(file.sha256Hash, createHash('sha256').update(bytes).digest('base64'));
    assert.equal(file.displayName, 'reviews');
    assert.equal(file.mimeType, 'application/jsonl');
    assert.deepEqual(await ai.files.get({ name: file.name as string }), file);

    const created = await ai.batches.create({
      model: MODEL,
      src: file.name as string,
      config: { displayName: 'reviews run' },
    });
    assert.match(created.name ?? '', /^batches\/[0-9a-f]+$/);
    assert.ok([JobState.JOB_STATE_PENDING, JobState.JOB_STATE_RUNNING].includes(created.state as JobState));
    assert.equal(created.model, `models/${MODEL}`);
    assert.equal(created.displayName, 'reviews run');

    const job = await waitDone(ai, created.name as string);
    assert.equal(job.state, JobState.JOB_STATE_SUCCEEDED);
    assert.ok(job.endTime && job.createTime && Date.parse(job.endTime) >= Date.parse(job.createTime));
    const resultsName = job.dest?.fileName;
    assert.match(resultsName ?? '', /^files\//);

    const operation = await rawOperation(server, created.name as string);
    assert.equal(operation.done, true);
    assert.equal(
      operation.metadata['@type'],
      'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch',
    );
    assert.equal(operation.metadata.state, 'BATCH_STATE_SUCCEEDED');
    assert.deepEqual(operation.metadata.batchStats, {
      requestCount: String(lines.length),
      successfulRequestCount: String(lines.length),
      failedRequestCount: '0',
      pendingRequestCount: '0',
    });
    assert.deepEqual(operation.response.output, { responsesFile: resultsName });

    const downloaded = path.join(dir, 'results.jsonl');
    await ai.files.download({ file: resultsName as string, downloadPath: downloaded });
    const results = jsonlLines(readFileSync(downloaded, 'utf8'));
    assert.deepEqual(
      results.map((r) => r.key),
      lines.map((l) => l.key),
      'one result a request, in input order, keys as given (a repeated key included)',
    );
    for (const result of results) {
      assert.equal(result.error, undefined, result.key);
      const candidate = result.response.candidates[0];
      assert.equal(candidate.content.role, 'model');
      assert.equal(candidate.finishReason, 'STOP');
      assert.ok(result.response.usageMetadata.promptTokenCount > 0);
      const text: string = candidate.content.parts[0].text;
      if (result.key.startsWith('schema-'))
        assert.ok(validReview(JSON.parse(text)), JSON.stringify(validReview.errors));
      if (/^json-\d$/.test(result.key) && result !== results[results.length - 1]) {
        assert.ok(validSummary(JSON.parse(text)), JSON.stringify(validSummary.errors));
      }
    }
    const resultsFile = await ai.files.get({ name: resultsName as string });
    assert.equal(resultsFile.source, 'GENERATED');
    assert.equal(resultsFile.sizeBytes, String(readFileSync(downloaded).length));
  }));

test('gemini: inline requests come back as inlinedResponses in order, with their metadata, errors and function calls', () =>
  withServer({}, async (server) => {
    const ai = geminiClient(server);
    const ajv = new Ajv2020({ strict: false });
    const validArgs = ajv.compile(REVIEW_JSON_SCHEMA);
    const requests: InlinedRequest[] = [
      inlineRequest('plain', 'Tell me about the delayed flight.'),
      inlineRequest('short', 'Describe the friendly crew and the cramped seats at length.', {
        maxOutputTokens: 2,
      }),
      inlineRequest('schema', 'Classify: late but kind.', {
        systemInstruction: 'Answer in JSON.',
        responseMimeType: 'application/json',
        responseJsonSchema: REVIEW_JSON_SCHEMA,
      }),
      inlineRequest('call', 'Rate this review.', {
        tools: [{ functionDeclarations: [{ name: 'rate', parametersJsonSchema: REVIEW_JSON_SCHEMA }] }],
        toolConfig: { functionCallingConfig: { mode: 'ANY' as never } },
      }),
      { contents: [{ role: 'user', parts: [] }], metadata: { key: 'empty' } },
      inlineRequest('two', 'Two candidates please.', { candidateCount: 2 }),
    ];
    const created = await ai.batches.create({ model: MODEL, src: requests });
    const job = await waitDone(ai, created.name as string);
    assert.equal(job.state, JobState.JOB_STATE_SUCCEEDED);
    const responses = job.dest?.inlinedResponses ?? [];
    assert.deepEqual(
      responses.map((r) => r.metadata?.key),
      requests.map((r) => r.metadata?.key),
      'in the order of the requests, each with its metadata',
    );
    const byKey = new Map(responses.map((r) => [r.metadata?.key, r]));
    // Inlined responses are plain objects, not the SDK's GenerateContentResponse: no `text` getter.
    const partOf = (key: string) => byKey.get(key)?.response?.candidates?.[0]?.content?.parts?.[0];
    assert.ok(partOf('plain')?.text);
    assert.equal(byKey.get('short')?.response?.candidates?.[0]?.finishReason, 'MAX_TOKENS');
    assert.ok(validArgs(JSON.parse(partOf('schema')?.text ?? '')), JSON.stringify(validArgs.errors));
    const call = partOf('call')?.functionCall;
    assert.equal(call?.name, 'rate');
    assert.ok(validArgs(call?.args), JSON.stringify(validArgs.errors));
    const empty = byKey.get('empty');
    assert.equal(empty?.response, undefined);
    assert.equal(empty?.error?.code, 3, 'an invalid request is INVALID_ARGUMENT');
    assert.match(empty?.error?.message ?? '', /contents/);
    assert.equal(byKey.get('two')?.response?.candidates?.length, 2);

    const operation = await rawOperation(server, created.name as string);
    assert.equal(operation.metadata.batchStats.failedRequestCount, '1');
    assert.equal(operation.metadata.batchStats.successfulRequestCount, String(requests.length - 1));
  }));

test('gemini: embedding batches, inline (inlinedEmbedContentResponses) and from a file (a results file of embeddings)', () =>
  withServer({}, async (server, dir) => {
    const ai = geminiClient(server);
    const inline = await ai.batches.createEmbeddings({
      model: 'gemini-embedding-001',
      src: {
        inlinedRequests: {
          contents: ['the crew was kind', 'the seats were cramped', 'the crew was kind'],
          config: { outputDimensionality: 8 },
        },
      },
    });
    const inlineDone = await waitDone(ai, inline.name as string);
    assert.equal(inlineDone.state, JobState.JOB_STATE_SUCCEEDED);
    const vectors = (inlineDone.dest?.inlinedEmbedContentResponses ?? []).map(
      (r) => r.response?.embedding?.values ?? [],
    );
    assert.equal(vectors.length, 3);
    for (const v of vectors) {
      assert.equal(v.length, 8);
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'unit length');
    }
    assert.deepEqual(vectors[0], vectors[2], 'equal texts embed equally');
    assert.notDeepEqual(vectors[0], vectors[1]);

    const input = path.join(dir, 'embed.jsonl');
    const texts = ['delayed', 'kind crew', 'lost bags'];
    writeFileSync(
      input,
      `${texts.map((t, i) => JSON.stringify({ key: `e${i}`, request: { content: { parts: [{ text: t }] } } })).join('\n')}\n`,
    );
    const file = await ai.files.upload({ file: input, config: { mimeType: 'application/jsonl' } });
    const fromFile = await ai.batches.createEmbeddings({
      model: 'gemini-embedding-001',
      src: { fileName: file.name as string },
    });
    const fileDone = await waitDone(ai, fromFile.name as string);
    assert.equal(fileDone.state, JobState.JOB_STATE_SUCCEEDED);
    const downloaded = path.join(dir, 'embed-results.jsonl');
    await ai.files.download({ file: fileDone.dest?.fileName as string, downloadPath: downloaded });
    const results = jsonlLines(readFileSync(downloaded, 'utf8'));
    assert.deepEqual(
      results.map((r) => r.key),
      ['e0', 'e1', 'e2'],
    );
    for (const result of results)
      assert.equal(result.response.embedding.values.length, 3072, 'the model default size');
    const operation = await rawOperation(server, fromFile.name as string);
    assert.equal(
      operation.metadata['@type'],
      'type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch',
    );
  }));

test('gemini: cancel ends CANCELLED with the finished responses; an ended batch cannot be cancelled; delete removes it', () =>
  withServer({ latencyMs: 40, concurrency: 2 }, async (server) => {
    const ai = geminiClient(server);
    const requests = Array.from({ length: 30 }, (_, i) => inlineRequest(`r${i}`, `Review ${i}: delayed.`));
    const created = await ai.batches.create({ model: MODEL, src: requests });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const running = await ai.batches.delete({ name: created.name as string }).catch((e: unknown) => e);
    assert.equal(errorBody(running).error.status, 'FAILED_PRECONDITION', 'a running batch is not deleted');
    await ai.batches.cancel({ name: created.name as string });
    const job = await waitDone(ai, created.name as string);
    assert.equal(job.state, JobState.JOB_STATE_CANCELLED);
    const keys = (job.dest?.inlinedResponses ?? []).map((r) => r.metadata?.key as string);
    assert.ok(keys.length > 0 && keys.length < requests.length, `partial results: ${keys.length}`);
    assert.equal(new Set(keys).size, keys.length, 'each finished request once');
    const operation = await rawOperation(server, created.name as string);
    assert.equal(operation.error.code, 1, 'a cancelled operation carries CANCELLED');
    assert.equal(operation.metadata.batchStats.pendingRequestCount, String(requests.length - keys.length));

    const again = await ai.batches.cancel({ name: created.name as string }).catch((e: unknown) => e);
    assert.equal(errorBody(again).error.status, 'FAILED_PRECONDITION');
    await ai.batches.delete({ name: created.name as string });
    const gone = await ai.batches.get({ name: created.name as string }).catch((e: unknown) => e);
    assert.ok(gone instanceof ApiError && gone.status === 404);
    assert.deepEqual(errorBody(gone).error.status, 'NOT_FOUND');
  }));

test('gemini: past the completion window the batch is EXPIRED with the responses that finished', () =>
  withServer({ completionWindowSeconds: 1, latencyMs: 60, concurrency: 2 }, async (server) => {
    const ai = geminiClient(server);
    const requests = Array.from({ length: 40 }, (_, i) => inlineRequest(`r${i}`, `Review ${i}: delayed.`));
    const created = await ai.batches.create({ model: MODEL, src: requests });
    const job = await waitDone(ai, created.name as string);
    assert.equal(job.state, JobState.JOB_STATE_EXPIRED);
    const finished = job.dest?.inlinedResponses?.length ?? 0;
    assert.ok(finished > 0 && finished < requests.length, `partial results: ${finished}`);
    const stats = (await rawOperation(server, created.name as string)).metadata.batchStats;
    assert.equal(stats.successfulRequestCount, String(finished));
    assert.equal(stats.pendingRequestCount, String(requests.length - finished));
  }));

test('gemini: errors in Google shapes: keys, unknown names, a bad input file, the enqueued-token limit', () =>
  withServer({ apiKey: 'secret', enqueuedTokenLimit: 50 }, async (server, dir) => {
    const ai = geminiClient(server, { apiKey: 'secret' });
    const wrongKey = await geminiClient(server, { apiKey: 'nope' })
      .batches.list()
      .catch((e: unknown) => e);
    assert.equal((wrongKey as ApiError).status, 400);
    assert.match(errorBody(wrongKey).error.message, /API key not valid/);
    const noKey = await fetch(`${server.origin}/v1beta/batches`);
    assert.equal(noKey.status, 403);
    assert.equal(((await noKey.json()) as JsonObject).error.status, 'PERMISSION_DENIED');
    const viaQuery = await fetch(`${server.origin}/v1beta/batches?key=secret`);
    assert.equal(viaQuery.status, 200, 'the key may come as ?key=');

    const unknown = await ai.batches
      .get({ name: 'batches/0123456789abcdef0123456789abcdef' })
      .catch((e: unknown) => e);
    assert.equal((unknown as ApiError).status, 404);
    assert.deepEqual(Object.keys(errorBody(unknown).error).sort(), ['code', 'message', 'status']);
    const noFile = await ai.batches
      .create({ model: MODEL, src: 'files/abcdefghijklmnopqrstuv' })
      .catch((e: unknown) => e);
    assert.equal((noFile as ApiError).status, 404);

    const bad = path.join(dir, 'bad.jsonl');
    writeFileSync(
      bad,
      '{"key":"a","request":{"contents":[{"parts":[{"text":"hi"}]}]}}\nnot json\n{"key":"c"}\n',
    );
    const badFile = await ai.files.upload({ file: bad, config: { mimeType: 'application/jsonl' } });
    const failed = await waitDone(
      ai,
      (await ai.batches.create({ model: MODEL, src: badFile.name as string })).name as string,
    );
    assert.equal(failed.state, JobState.JOB_STATE_FAILED);
    assert.equal(failed.dest, undefined, 'a failed batch has no output');
    const failedOp = await fetch(`${server.origin}/v1beta/${failed.name}`, {
      headers: { 'x-goog-api-key': 'secret' },
    });
    const error = ((await failedOp.json()) as JsonObject).error;
    assert.match(error.message, /line 2: .*not a JSON object/);
    assert.match(error.message, /line 3: .*request/);

    const big = await ai.batches.create({
      model: MODEL,
      src: [inlineRequest('big', 'word '.repeat(100))],
    });
    const refused = await waitDone(ai, big.name as string);
    assert.equal(refused.state, JobState.JOB_STATE_FAILED);
    const refusedOp = await fetch(`${server.origin}/v1beta/${big.name}`, {
      headers: { 'x-goog-api-key': 'secret' },
    });
    assert.equal(((await refusedOp.json()) as JsonObject).error.code, 8, 'RESOURCE_EXHAUSTED');
  }));

test('gemini: --fail-rate gives error results; --http-fault-rate answers 429/500/503 that a retrying SDK absorbs', () =>
  withServer({ failRate: 0.4, httpFaultRate: 0.3, seed: 3 }, async (server) => {
    const ai = geminiClient(server, { retries: 10 });
    const requests = Array.from({ length: 30 }, (_, i) => inlineRequest(`r${i}`, `Review ${i}: delayed.`));
    const created = await ai.batches.create({ model: MODEL, src: requests });
    const job = await waitDone(ai, created.name as string);
    assert.equal(job.state, JobState.JOB_STATE_SUCCEEDED);
    const responses = job.dest?.inlinedResponses ?? [];
    assert.equal(responses.length, requests.length);
    const failed = responses.filter((r) => r.error);
    assert.ok(failed.length > 0 && failed.length < requests.length, `${failed.length} failed`);
    for (const r of failed)
      assert.ok(
        [8, 13].includes(r.error?.code as number),
        `RESOURCE_EXHAUSTED or INTERNAL: ${r.error?.code}`,
      );

    const statuses = new Set<number>();
    for (let i = 0; i < 200 && statuses.size < 3; i++) {
      const response = await fetch(`${server.origin}/v1beta/${created.name}`, {
        headers: { 'x-goog-api-key': 'test' },
      });
      if (response.ok) continue;
      statuses.add(response.status);
      const body = (await response.json()) as JsonObject;
      assert.equal(body.error.code, response.status);
      assert.equal(
        body.error.status,
        { 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' }[response.status],
      );
      assert.ok(response.headers.get('retry-after'));
    }
    assert.deepEqual([...statuses].sort(), [429, 500, 503]);
  }));

test('gemini: files and batches list in pages; each API sees only its own files', () =>
  withServer({}, async (server, dir) => {
    const ai = geminiClient(server);
    const input = path.join(dir, 'one.jsonl');
    writeFileSync(input, '{"key":"k","request":{"contents":[{"parts":[{"text":"hi"}]}]}}\n');
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      names.push(
        (await ai.files.upload({ file: input, config: { mimeType: 'application/jsonl' } })).name as string,
      );
    }
    const listed: string[] = [];
    for await (const file of await ai.files.list({ config: { pageSize: 2 } }))
      listed.push(file.name as string);
    assert.deepEqual(listed, [...names].reverse(), 'newest first, each once');
    const batches: string[] = [];
    for (let i = 0; i < 3; i++)
      batches.push((await ai.batches.create({ model: MODEL, src: names[i] as string })).name as string);
    const listedBatches: string[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } }))
      listedBatches.push(job.name as string);
    assert.deepEqual(listedBatches, [...batches].reverse());

    assert.equal((await server.client.files.list()).data.length, 0, 'OpenAI sees no Gemini file');
    const openAiFile = await server.client.files.create({
      file: new File(['{"a":1}\n'], 'x.jsonl'),
      purpose: 'batch',
    });
    const asGemini = await ai.files
      .get({ name: `files/${openAiFile.id.slice('file-'.length).toLowerCase()}` })
      .catch((e: unknown) => e);
    assert.equal((asGemini as ApiError).status, 404, 'Gemini sees no OpenAI file');

    await ai.files.delete({ name: names[0] as string });
    const gone = await ai.files.get({ name: names[0] as string }).catch((e: unknown) => e);
    assert.equal((gone as ApiError).status, 404);
  }));

test('gemini: the resumable upload protocol: offsets checked, query and cancel, the server names the file', () =>
  withServer({}, async (server) => {
    const headers = { 'x-goog-api-key': 'test' };
    const start = (file: Record<string, unknown>) =>
      fetch(`${server.origin}/upload/v1beta/files`, {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          'x-goog-upload-protocol': 'resumable',
          'x-goog-upload-command': 'start',
          'x-goog-upload-header-content-length': '10',
          'x-goog-upload-header-content-type': 'text/plain',
        },
        body: JSON.stringify({ file }),
      });
    const named = await start({ name: 'files/mine' });
    assert.equal(named.status, 400, 'the server names files itself');
    const started = await start({ displayName: 'ten bytes' });
    assert.equal(started.status, 200);
    assert.equal(started.headers.get('x-goog-upload-status'), 'active');
    const uploadUrl = started.headers.get('x-goog-upload-url') as string;
    assert.ok(uploadUrl.startsWith(`${server.origin}/upload/v1beta/files?upload_id=`));
    const send = (command: string, offset: number, body = '') =>
      fetch(uploadUrl, {
        method: 'POST',
        headers: { ...headers, 'x-goog-upload-command': command, 'x-goog-upload-offset': String(offset) },
        body,
      });

    const wrongOffset = await send('upload', 3, 'abc');
    assert.equal(wrongOffset.status, 400);
    assert.equal(((await wrongOffset.json()) as JsonObject).error.status, 'INVALID_ARGUMENT');
    const first = await send('upload', 0, 'hello');
    assert.equal(first.headers.get('x-goog-upload-status'), 'active');
    const query = await send('query', 0);
    assert.equal(query.headers.get('x-goog-upload-size-received'), '5');
    const early = await send('upload, finalize', 5, 'abc');
    assert.equal(early.status, 400, 'a finalize short of the declared size is refused');
    const last = await send('upload, finalize', 8, 'de');
    assert.equal(last.status, 200);
    assert.equal(last.headers.get('x-goog-upload-status'), 'final');
    const file = ((await last.json()) as JsonObject).file;
    assert.equal(file.sizeBytes, '10');
    assert.equal(file.displayName, 'ten bytes');
    const ai = geminiClient(server);
    const downloaded = await fetch(`${server.origin}/v1beta/${file.name}:download?alt=media`, { headers });
    assert.equal(await downloaded.text(), 'helloabcde');
    assert.equal(
      (await ai.files.get({ name: file.name })).sha256Hash,
      createHash('sha256').update('helloabcde').digest('base64'),
    );

    const other = (await start({})).headers.get('x-goog-upload-url') as string;
    const cancel = await fetch(other, {
      method: 'POST',
      headers: { ...headers, 'x-goog-upload-command': 'cancel' },
    });
    assert.equal(cancel.headers.get('x-goog-upload-status'), 'cancelled');
    const afterCancel = await fetch(other, {
      method: 'POST',
      headers: { ...headers, 'x-goog-upload-command': 'upload', 'x-goog-upload-offset': '0' },
      body: 'x',
    });
    assert.equal(afterCancel.status, 404);
  }));

test('gemini: --lose-create-responses creates the batch but loses the answer; --truncate-downloads cuts the first results download in half', () =>
  withServer({ loseCreateResponses: 2, truncateDownloads: 1 }, async (server, dir) => {
    const ai = geminiClient(server);
    const input = path.join(dir, 'in.jsonl');
    const keys = Array.from({ length: 9 }, (_, i) => `k${i}`);
    writeFileSync(
      input,
      `${keys.map((key) => JSON.stringify({ key, request: { contents: [{ parts: [{ text: key }] }] } })).join('\n')}\n`,
    );
    const lostUpload = await ai.files
      .upload({ file: input, config: { mimeType: 'application/jsonl' } })
      .catch((e: unknown) => e);
    assert.ok(lostUpload instanceof Error, 'the finishing upload loses its answer');
    const files: string[] = [];
    for await (const file of await ai.files.list()) files.push(file.name as string);
    assert.equal(files.length, 1, 'yet the file was kept: listing finds it');
    const lostBatch = await ai.batches
      .create({ model: MODEL, src: files[0] as string })
      .catch((e: unknown) => e);
    assert.ok(lostBatch instanceof Error, 'the creation loses its answer');
    const batches: string[] = [];
    for await (const job of await ai.batches.list()) batches.push(job.name as string);
    assert.equal(batches.length, 1, 'yet the batch was created');
    const job = await waitDone(ai, batches[0] as string);
    const first = path.join(dir, 'first.jsonl');
    const second = path.join(dir, 'second.jsonl');
    await ai.files.download({ file: job.dest?.fileName as string, downloadPath: first });
    await ai.files.download({ file: job.dest?.fileName as string, downloadPath: second });
    assert.equal(jsonlLines(readFileSync(first, 'utf8')).length, 4, 'cut after half its lines');
    assert.deepEqual(
      jsonlLines(readFileSync(second, 'utf8')).map((r) => r.key),
      keys,
    );
  }));
