import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { BatchpipeError } from '../src/errors.js';
import { expectedOutput, extractResult, requestedSchema } from '../src/results/extract.js';
import { formatZodPath, outputSchemaFromJsonSchema } from '../src/results/output-schema.js';
import { SENTIMENT_BODY, SENTIMENT_SCHEMA } from './results-support.js';

const JSON_OUT = { kind: 'json', list: false } as const;
const usage = { prompt_tokens: 31, completion_tokens: 12, total_tokens: 43 };

interface Choice {
  index: number;
  message: Record<string, unknown>;
  finish_reason: string;
}

function chat(message: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const choice: Choice = {
    index: 0,
    message: { role: 'assistant', refusal: null, ...message },
    finish_reason: 'stop',
    ...extra,
  };
  return { id: 'chatcmpl-1', object: 'chat.completion', choices: [choice], usage };
}

describe('chat completions', () => {
  test('text: the message content, with token usage', () => {
    const got = extractResult('/v1/chat/completions', chat({ content: 'negative' }));
    assert.deepEqual(got, { ok: true, result: 'negative', usage: { input_tokens: 31, output_tokens: 12 } });
  });

  test('JSON asked for: the parsed object', () => {
    const got = extractResult(
      '/v1/chat/completions',
      chat({ content: '{"sentiment":"mixed","topics":["food"]}' }),
      {
        expect: JSON_OUT,
      },
    );
    assert.deepEqual(got, {
      ok: true,
      result: { sentiment: 'mixed', topics: ['food'] },
      usage: { input_tokens: 31, output_tokens: 12 },
    });
  });

  test('JSON that is not JSON: invalid_json, retryable, saying when the token limit cut it', () => {
    const body = chat({ content: '{"sentiment":"mix' }, { finish_reason: 'length' });
    const got = extractResult('/v1/chat/completions', body, { expect: JSON_OUT });
    assert.equal(got.ok, false);
    if (got.ok) return;
    assert.equal(got.code, 'invalid_json');
    assert.equal(got.retryable, true);
    assert.match(got.message, /cut off by max_tokens/);
  });

  test('a refusal is a failure of its own, not retried, tokens kept', () => {
    const got = extractResult(
      '/v1/chat/completions',
      chat({ content: null, refusal: "I can't help with that." }),
      {
        expect: JSON_OUT,
      },
    );
    assert.deepEqual(got, {
      ok: false,
      code: 'refusal',
      message: "I can't help with that.",
      retryable: false,
      usage: { input_tokens: 31, output_tokens: 12 },
    });
  });

  test('content filter: content_filter, not retried', () => {
    const got = extractResult(
      '/v1/chat/completions',
      chat({ content: null }, { finish_reason: 'content_filter' }),
    );
    assert.equal(got.ok || got.code, 'content_filter');
    assert.equal(got.ok || got.retryable, false);
  });

  test('n > 1: one result per choice', () => {
    const body = chat({ content: 'a' });
    body.choices.push({
      ...body.choices[0]!,
      index: 1,
      message: { ...body.choices[0]!.message, content: 'b' },
    });
    const got = extractResult('/v1/chat/completions', body);
    assert.deepEqual(got.ok && got.result, ['a', 'b']);
  });

  test('a forced tool call: its parsed arguments; tools chosen freely: every call', () => {
    const call = { id: 'c', type: 'function', function: { name: 'rate', arguments: '{"score":4}' } };
    const body = chat({ content: null, tool_calls: [call] }, { finish_reason: 'tool_calls' });
    const forced = extractResult('/v1/chat/completions', body, {
      expect: { kind: 'tool_call', list: false },
    });
    assert.deepEqual(forced.ok && forced.result, { score: 4 });
    const free = extractResult('/v1/chat/completions', body);
    assert.deepEqual(free.ok && free.result, [{ name: 'rate', arguments: { score: 4 } }]);
  });

  test('no choices: empty_response, retryable', () => {
    const got = extractResult('/v1/chat/completions', { object: 'chat.completion', choices: [] });
    assert.equal(got.ok || got.code, 'empty_response');
    assert.equal(got.ok || got.retryable, true);
  });
});

describe('responses', () => {
  const response = (content: unknown[], extra: Record<string, unknown> = {}) => ({
    object: 'response',
    status: 'completed',
    output: [
      { type: 'reasoning', summary: [] },
      { type: 'message', role: 'assistant', content },
    ],
    usage: { input_tokens: 20, output_tokens: 5, total_tokens: 25 },
    ...extra,
  });

  test('the output text, or the parsed object for text.format json_schema', () => {
    const text = extractResult('/v1/responses', response([{ type: 'output_text', text: '{"a":1}' }]));
    assert.deepEqual(text, { ok: true, result: '{"a":1}', usage: { input_tokens: 20, output_tokens: 5 } });
    const json = extractResult('/v1/responses', response([{ type: 'output_text', text: '{"a":1}' }]), {
      expect: JSON_OUT,
    });
    assert.deepEqual(json.ok && json.result, { a: 1 });
  });

  test('a refusal part is a refusal; a failed response keeps its error code', () => {
    const refused = extractResult('/v1/responses', response([{ type: 'refusal', refusal: 'No.' }]));
    assert.equal(refused.ok || refused.code, 'refusal');
    const failed = extractResult(
      '/v1/responses',
      response([], { status: 'failed', error: { code: 'server_error', message: 'boom' } }),
    );
    assert.deepEqual(failed.ok ? undefined : [failed.code, failed.message, failed.retryable], [
      'server_error',
      'boom',
      true,
    ]);
  });
});

describe('embeddings, moderations, completions', () => {
  test('embeddings: the vector, or the vectors (by index) for a list input', () => {
    const body = {
      object: 'list',
      data: [
        { object: 'embedding', index: 1, embedding: [0.3, 0.4] },
        { object: 'embedding', index: 0, embedding: [0.1, 0.2] },
      ],
      usage: { prompt_tokens: 8, total_tokens: 8 },
    };
    const list = extractResult('/v1/embeddings', body, { expect: { kind: 'text', list: true } });
    assert.deepEqual(list, {
      ok: true,
      result: [
        [0.1, 0.2],
        [0.3, 0.4],
      ],
      usage: { input_tokens: 8, output_tokens: 0 },
    });
    const one = extractResult('/v1/embeddings', { ...body, data: [body.data[1]] });
    assert.deepEqual(one.ok && one.result, [0.1, 0.2]);
  });

  test('moderations: the result (results for a list input), no token usage', () => {
    const result = { flagged: false, categories: { hate: false }, category_scores: { hate: 0.001 } };
    const one = extractResult('/v1/moderations', { id: 'modr-1', model: 'omni', results: [result] });
    assert.deepEqual(one, { ok: true, result, usage: { input_tokens: null, output_tokens: null } });
    const list = extractResult(
      '/v1/moderations',
      { id: 'modr-1', results: [result, result] },
      { expect: { kind: 'text', list: true } },
    );
    assert.deepEqual(list.ok && list.result, [result, result]);
  });

  test('completions: the text', () => {
    const got = extractResult('/v1/completions', {
      object: 'text_completion',
      choices: [{ text: ' Paris.', index: 0, finish_reason: 'stop' }],
      usage,
    });
    assert.deepEqual(got, { ok: true, result: ' Paris.', usage: { input_tokens: 31, output_tokens: 12 } });
  });
});

describe('output schemas', () => {
  const schema = outputSchemaFromJsonSchema(SENTIMENT_SCHEMA);

  test('a matching result passes; a mismatch is invalid_output naming the zod issue path, retryable', () => {
    const ok = extractResult(
      '/v1/chat/completions',
      chat({ content: '{"sentiment":"negative","topics":["seat"]}' }),
      {
        expect: JSON_OUT,
        outputSchema: schema,
      },
    );
    assert.equal(ok.ok, true);
    const bad = extractResult(
      '/v1/chat/completions',
      chat({ content: '{"sentiment":"negative","topics":["seat",7]}' }),
      {
        expect: JSON_OUT,
        outputSchema: schema,
      },
    );
    assert.equal(bad.ok, false);
    if (bad.ok) return;
    assert.equal(bad.code, 'invalid_output');
    assert.equal(bad.path, 'topics[1]');
    assert.equal(bad.retryable, true);
    assert.match(bad.message, /^the output does not match the output schema: topics\[1\]: .*expected string/);
  });

  test('a zod schema in code validates and transforms; n > 1 paths start with the choice', () => {
    const upper = z.object({ sentiment: z.string().transform((s) => s.toUpperCase()) });
    const got = extractResult('/v1/chat/completions', chat({ content: '{"sentiment":"mixed"}' }), {
      expect: JSON_OUT,
      outputSchema: upper,
    });
    assert.deepEqual(got.ok && got.result, { sentiment: 'MIXED' });
    const body = chat({ content: '{"sentiment":"mixed"}' });
    body.choices.push({ ...body.choices[0]!, message: { ...body.choices[0]!.message, content: '{}' } });
    const two = extractResult('/v1/chat/completions', body, { expect: JSON_OUT, outputSchema: upper });
    assert.equal(two.ok || two.path, '[1].sentiment');
  });

  test('a text result is validated too (e.g. a label enum)', () => {
    const label = outputSchemaFromJsonSchema({ type: 'string', enum: ['positive', 'negative'] });
    const got = extractResult('/v1/chat/completions', chat({ content: 'meh' }), { outputSchema: label });
    assert.equal(got.ok || got.code, 'invalid_output');
  });

  test('what zod cannot express is refused up front with BP_OUTPUT_SCHEMA', () => {
    assert.throws(
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, which zod cannot express.
      () => outputSchemaFromJsonSchema({ if: { type: 'string' }, then: { minLength: 1 } }),
      (err: unknown) => err instanceof BatchpipeError && err.code === 'BP_OUTPUT_SCHEMA',
    );
    assert.throws(() => outputSchemaFromJsonSchema('nope'), /must be a JSON Schema object/);
  });

  test('zod paths print as batchpipe paths', () => {
    assert.equal(formatZodPath(['topics', 0, 'name']), 'topics[0].name');
    assert.equal(formatZodPath([]), '');
    assert.equal(formatZodPath([2]), '[2]');
  });
});

describe('what the run asked for comes from its body template', () => {
  test('chat response_format json_schema or json_object, responses text.format, forced tools, list inputs', () => {
    assert.deepEqual(expectedOutput({ endpoint: '/v1/chat/completions', body: SENTIMENT_BODY }), JSON_OUT);
    assert.deepEqual(
      expectedOutput({
        endpoint: '/v1/chat/completions',
        body: { response_format: { type: 'json_object' } },
      }),
      JSON_OUT,
    );
    assert.deepEqual(expectedOutput({ endpoint: '/v1/chat/completions', body: null }), {
      kind: 'text',
      list: false,
    });
    assert.deepEqual(
      expectedOutput({
        endpoint: '/v1/responses',
        body: { text: { format: { type: 'json_schema', name: 'x', schema: {} } } },
      }),
      JSON_OUT,
    );
    // response_format means nothing to /v1/responses
    assert.equal(
      expectedOutput({ endpoint: '/v1/responses', body: { response_format: { type: 'json_object' } } }).kind,
      'text',
    );
    const tools = [{ type: 'function', function: { name: 'rate', parameters: {} } }];
    assert.equal(
      expectedOutput({ endpoint: '/v1/chat/completions', body: { tools, tool_choice: 'required' } }).kind,
      'tool_call',
    );
    assert.equal(
      expectedOutput({ endpoint: '/v1/chat/completions', body: { tools, tool_choice: 'auto' } }).kind,
      'text',
    );
    assert.deepEqual(expectedOutput({ endpoint: '/v1/embeddings', body: { input: ['{{a}}', '{{b}}'] } }), {
      kind: 'text',
      list: true,
    });
  });

  test('the schema the body asks the model to follow', () => {
    assert.deepEqual(
      requestedSchema({ endpoint: '/v1/chat/completions', body: SENTIMENT_BODY }),
      SENTIMENT_SCHEMA,
    );
    assert.equal(requestedSchema({ endpoint: '/v1/chat/completions', body: {} }), undefined);
  });
});
