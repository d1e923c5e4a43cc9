/**
 * The Gemini request and result dialects and the batch mapping, as pure functions: what a request
 * template becomes, what the API would refuse, how each kind of results line ends in the ledger.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResultLineProblem } from '../src/dialects/dialect.js';
import { GEMINI_DIALECT, geminiExpectedOutput, geminiRequestedSchema } from '../src/dialects/gemini.js';
import { geminiInputLine } from '../src/providers/gemini/batch-input.js';
import { remoteBatchOfOperation, statusOfState } from '../src/providers/gemini/remote-batch.js';
import { geminiLineOutcome } from '../src/results/gemini-line-outcome.js';
import { outputSchemaFromJsonSchema } from '../src/results/output-schema.js';
import type { LineOutcome } from '../src/types.js';
import { checkRequestLine } from '../src/validate/request-schema.js';

const TEXT = { endpoint: 'generateContent', expect: { kind: 'text', list: false } } as const;
const JSON_OUT = { endpoint: 'generateContent', expect: { kind: 'json', list: false } } as const;

function outcomeOf(line: unknown, ctx: Parameters<typeof geminiLineOutcome>[1] = TEXT): LineOutcome {
  const outcome = geminiLineOutcome(line, ctx);
  assert.ok(!(outcome instanceof ResultLineProblem), (outcome as ResultLineProblem).message);
  return outcome;
}

function response(parts: object[], extra: object = {}, finishReason = 'STOP') {
  return {
    candidates: [{ content: { role: 'model', parts }, finishReason, index: 0 }],
    usageMetadata: {
      promptTokenCount: 40,
      cachedContentTokenCount: 32,
      candidatesTokenCount: 7,
      thoughtsTokenCount: 5,
    },
    ...extra,
  };
}

test('gemini request dialect: --system and --prompt placed in a native body; the line goes up as { key, request } without the model', () => {
  const body: Record<string, unknown> = {
    model: 'gemini-2.5-flash',
    contents: [{ role: 'user', parts: [{ text: 'Example.' }] }],
    generationConfig: { temperature: 0 },
  };
  GEMINI_DIALECT.placePrompt('/v1beta/generateContent', body, '{{text}}', 'Classify {{lang}} reviews.');
  assert.deepEqual(body, {
    model: 'gemini-2.5-flash',
    contents: [
      { role: 'user', parts: [{ text: 'Example.' }] },
      { role: 'user', parts: [{ text: '{{text}}' }] },
    ],
    generationConfig: { temperature: 0 },
    systemInstruction: { parts: [{ text: 'Classify {{lang}} reviews.' }] },
  });
  const line = { custom_id: 'r 1', method: 'POST', url: '/v1beta/generateContent', body };
  assert.deepEqual(checkRequestLine(line), []);
  const { model: _model, ...request } = body;
  assert.deepEqual(geminiInputLine(line), { key: 'r 1', request });
  assert.equal(GEMINI_DIALECT.wireId('any id, even with spaces.'), undefined);

  const embed: Record<string, unknown> = { model: 'gemini-embedding-001' };
  GEMINI_DIALECT.placePrompt('/v1beta/embedContent', embed, '{{text}}');
  assert.deepEqual(embed, { model: 'gemini-embedding-001', content: { parts: [{ text: '{{text}}' }] } });
  assert.deepEqual(
    checkRequestLine({ custom_id: 'e', method: 'POST', url: '/v1beta/embedContent', body: embed }),
    [],
  );
});

test('gemini request dialect: what the Batch API would refuse is an issue with its path', () => {
  const issues = (body: object) =>
    checkRequestLine({ custom_id: 'a', method: 'POST', url: '/v1beta/generateContent', body }).map(
      (i) => i.path,
    );
  assert.deepEqual(issues({ model: 'm' }), ['body.contents']);
  assert.deepEqual(issues({ model: 'm', contents: [{ parts: [] }] }), ['body.contents[0].parts']);
  assert.deepEqual(issues({ model: 'm', contents: ['text'] }), ['body.contents[0]']);
  assert.deepEqual(
    issues({
      model: 'm',
      contents: [{ parts: [{ text: 'x' }] }],
      generationConfig: { responseSchema: { type: 'OBJECT' } },
    }),
    ['body.generationConfig.responseMimeType'],
  );
});

test('gemini result dialect: the schema a body asks for, read as JSON Schema', () => {
  assert.deepEqual(
    geminiRequestedSchema({
      endpoint: '/v1beta/generateContent',
      body: {
        generationConfig: {
          responseMimeType: 'application/json',
          responseSchema: {
            type: 'OBJECT',
            properties: {
              topics: { type: 'ARRAY', items: { type: 'STRING' }, minItems: '1' },
              note: { type: 'STRING', nullable: true },
            },
            required: ['topics'],
            propertyOrdering: ['topics', 'note'],
          },
        },
      },
    }),
    {
      type: 'object',
      properties: {
        topics: { type: 'array', items: { type: 'string' }, minItems: 1 },
        note: { type: ['string', 'null'] },
      },
      required: ['topics'],
    },
  );
  const json = { type: 'object', properties: { a: { type: 'string' } } };
  assert.equal(
    geminiRequestedSchema({ endpoint: '', body: { generationConfig: { responseJsonSchema: json } } }),
    json,
  );
  assert.equal(geminiRequestedSchema({ endpoint: '', body: {} }), undefined);
});

test('gemini result dialect: what a body template asks for decides the result kind', () => {
  const of = (body: unknown) => geminiExpectedOutput({ endpoint: '/v1beta/generateContent', body });
  assert.deepEqual(of({ generationConfig: { responseMimeType: 'application/json' } }), {
    kind: 'json',
    list: false,
  });
  assert.equal(of({ toolConfig: { functionCallingConfig: { mode: 'ANY' } } }).kind, 'tool_call');
  assert.equal(of({ generationConfig: { responseMimeType: 'text/plain' } }).kind, 'text');
  assert.equal(of(undefined).kind, 'text');
});

test('gemini result dialect: text without thoughts, usage with cached and thinking tokens', () => {
  const line = {
    key: 'a',
    response: response([{ text: 'hidden', thought: true }, { text: 'Hel' }, { text: 'lo' }]),
  };
  const outcome = outcomeOf(line);
  assert.equal(outcome.state, 'succeeded');
  assert.equal(outcome.customId, 'a');
  assert.equal(JSON.parse(outcome.result!), 'Hello');
  assert.deepEqual(outcome.usage, {
    inputTokens: 40,
    cachedInputTokens: 32,
    cacheWriteTokens: 0,
    outputTokens: 12,
    reasoningTokens: 5,
  });
});

test('gemini result dialect: JSON parsed and checked against the output schema; cut off or invalid output is retried', () => {
  const schema = outputSchemaFromJsonSchema({
    type: 'object',
    properties: { sentiment: { enum: ['positive', 'negative'] } },
    required: ['sentiment'],
  });
  const ok = outcomeOf(
    { key: 'a', response: response([{ text: '{"sentiment":"negative"}' }]) },
    { ...JSON_OUT, outputSchema: schema },
  );
  assert.deepEqual(JSON.parse(ok.result!), { sentiment: 'negative' });
  const bad = outcomeOf(
    { key: 'b', response: response([{ text: '{"sentiment":"meh"}' }]) },
    { ...JSON_OUT, outputSchema: schema },
  );
  assert.equal(bad.state, 'failed');
  assert.equal(bad.errorCode, 'invalid_output');
  assert.equal(bad.retryable, true);
  assert.equal(bad.usage?.inputTokens, 40, 'tokens spent on a bad output are still counted');
  const cut = outcomeOf({ key: 'c', response: response([{ text: '{"sentim' }], {}, 'MAX_TOKENS') }, JSON_OUT);
  assert.equal(cut.errorCode, 'invalid_json');
  assert.match(cut.errorMessage!, /cut off by max_tokens/);
  assert.equal(cut.retryable, true);
});

test('gemini result dialect: blocked prompts and withheld candidates are content_filter, not retried', () => {
  const blocked = outcomeOf({
    key: 'a',
    response: { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9 } },
  });
  assert.equal(blocked.errorCode, 'content_filter');
  assert.equal(blocked.retryable, false);
  assert.equal(blocked.usage?.outputTokens, 0);
  const withheld = outcomeOf({ key: 'b', response: response([], {}, 'SAFETY') });
  assert.equal(withheld.errorCode, 'content_filter');
  const empty = outcomeOf({ key: 'c', response: { candidates: [] } });
  assert.equal(empty.errorCode, 'empty_response');
  assert.equal(empty.retryable, true);
  assert.equal(empty.usage, null);
});

test('gemini result dialect: forced function calls give their args; several candidates an array; embeddings the vector', () => {
  const call = outcomeOf(
    { key: 'a', response: response([{ functionCall: { name: 'classify', args: { sentiment: 'mixed' } } }]) },
    { endpoint: 'generateContent', expect: { kind: 'tool_call', list: false } },
  );
  assert.deepEqual(JSON.parse(call.result!), { sentiment: 'mixed' });
  const two = outcomeOf({
    key: 'b',
    response: {
      candidates: [
        { content: { parts: [{ text: 'one' }] }, finishReason: 'STOP' },
        { content: { parts: [{ text: 'two' }] }, finishReason: 'STOP' },
      ],
    },
  });
  assert.deepEqual(JSON.parse(two.result!), ['one', 'two']);
  const vector = outcomeOf(
    { key: 'c', response: { embedding: { values: [0.6, 0.8] } } },
    { endpoint: 'embedContent', expect: { kind: 'text', list: false } },
  );
  assert.deepEqual(JSON.parse(vector.result!), [0.6, 0.8]);
});

test('gemini result dialect: error lines fail under their status, retried for quota, deadline, internal and unavailable', () => {
  const cases: Array<[object, string, boolean]> = [
    [{ code: 8, message: 'quota' }, 'RESOURCE_EXHAUSTED', true],
    [{ code: 13, message: 'oops' }, 'INTERNAL', true],
    [{ code: 14, message: 'later' }, 'UNAVAILABLE', true],
    [{ code: 3, message: 'bad' }, 'INVALID_ARGUMENT', false],
    [{ code: 3, message: 'bad', status: 'INVALID_ARGUMENT' }, 'INVALID_ARGUMENT', false],
    [{ code: 429, message: 'slow down' }, 'http_429', true],
    [{ code: 400, message: 'no' }, 'http_400', false],
  ];
  for (const [error, code, retryable] of cases) {
    const outcome = outcomeOf({ key: 'k', error });
    assert.equal(outcome.state, 'failed');
    assert.equal(outcome.errorCode, code, JSON.stringify(error));
    assert.equal(outcome.retryable, retryable, JSON.stringify(error));
    assert.equal(outcome.errorMessage, (error as { message: string }).message);
    assert.equal(outcome.result, null);
  }
  assert.ok(geminiLineOutcome({ response: {} }, TEXT) instanceof ResultLineProblem);
  assert.ok(geminiLineOutcome({ key: 'x' }, TEXT) instanceof ResultLineProblem);
  assert.ok(geminiLineOutcome([], TEXT) instanceof ResultLineProblem);
});

test('gemini batches: states, counts and a refusal for the token quota in the ledger terms', () => {
  const pairs: Array<[string, string]> = [
    ['BATCH_STATE_PENDING', 'validating'],
    ['JOB_STATE_QUEUED', 'validating'],
    ['BATCH_STATE_RUNNING', 'in_progress'],
    ['JOB_STATE_CANCELLING', 'cancelling'],
    ['BATCH_STATE_SUCCEEDED', 'completed'],
    ['JOB_STATE_PARTIALLY_SUCCEEDED', 'completed'],
    ['BATCH_STATE_FAILED', 'failed'],
    ['BATCH_STATE_CANCELLED', 'cancelled'],
    ['JOB_STATE_EXPIRED', 'expired'],
  ];
  for (const [state, status] of pairs) assert.equal(statusOfState(state), status, state);
  const batch = remoteBatchOfOperation({
    name: 'batches/abc',
    metadata: {
      state: 'BATCH_STATE_EXPIRED',
      createTime: '2026-12-01T00:00:00Z',
      endTime: '2026-12-02T00:00:01.5Z',
      batchStats: {
        requestCount: '10',
        successfulRequestCount: '6',
        failedRequestCount: '1',
        pendingRequestCount: '3',
      },
      output: { responsesFile: 'files/res' },
    },
    done: true,
    error: { code: 4, message: 'expired' },
  });
  assert.equal(batch.status, 'expired');
  assert.deepEqual(batch.counts, { total: 10, completed: 6, failed: 1 });
  assert.equal(batch.outputFile, 'files/res');
  assert.equal(batch.createdAt, Date.UTC(2026, 11, 1) / 1000);
  assert.equal(batch.endedAt, Date.UTC(2026, 11, 2) / 1000 + 1);
  assert.equal(batch.refusedForTokenLimit, false);
  const refused = remoteBatchOfOperation({
    name: 'batches/x',
    metadata: { state: 'BATCH_STATE_FAILED' },
    error: { code: 8, message: 'enqueued tokens' },
  });
  assert.equal(refused.refusedForTokenLimit, true);
  assert.deepEqual(refused.errors, [{ code: 'RESOURCE_EXHAUSTED', message: 'enqueued tokens', line: null }]);
});
