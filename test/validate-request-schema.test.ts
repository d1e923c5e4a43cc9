import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkRequestLine,
  embeddingInputCount,
  formatIssue,
  modelOf,
} from '../src/validate/request-schema.js';

/** A request line for `url` with `body`, valid in every other respect. */
function line(url: string, body: unknown): Record<string, unknown> {
  return { custom_id: 'req-1', method: 'POST', url, body };
}

const chat = (body: Record<string, unknown>) =>
  line('/v1/chat/completions', {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Hi' }],
    ...body,
  });

/** The `[code, path]` pairs of a line's issues. */
function codesAndPaths(value: unknown): [string, string][] {
  return checkRequestLine(value).map((i) => [i.code, i.path]);
}

describe('checkRequestLine: valid lines of every endpoint pass', () => {
  const valid: [string, unknown][] = [
    [
      'chat, the official example',
      line('/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are a helpful assistant.' },
          { role: 'user', content: 'What is 2+2?' },
        ],
      }),
    ],
    [
      'chat with parts, every role, structured output and sampling options',
      chat({
        messages: [
          { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }] },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
              { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
              { type: 'file', file: { file_id: 'file-1' } },
            ],
            name: 'ann',
          },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function' }] },
          { role: 'tool', content: '42', tool_call_id: 'c1' },
          { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
          { role: 'function', content: null, name: 'f' },
        ],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'sentiment_v-2', schema: { type: 'object' }, strict: true },
        },
        temperature: 0,
        top_p: 1,
        n: 128,
        max_tokens: 100,
        max_completion_tokens: 200,
        frequency_penalty: -2,
        presence_penalty: 2,
        stop: ['\n'],
        seed: 2 ** 62, // an int64 seed beyond the safe-integer range
        metadata: { run: 'r1' },
        some_field_added_next_year: { anything: true },
      }),
    ],
    [
      'chat with json_object and nulls',
      chat({ response_format: { type: 'json_object' }, temperature: null }),
    ],
    ['embeddings, one string', line('/v1/embeddings', { model: 'text-embedding-3-small', input: 'hello' })],
    [
      'embeddings, strings with options',
      line('/v1/embeddings', {
        model: 'text-embedding-3-small',
        input: ['a', 'b'],
        dimensions: 256,
        encoding_format: 'base64',
      }),
    ],
    ['embeddings, tokens', line('/v1/embeddings', { model: 'm', input: [1, 2, 3] })],
    ['embeddings, token arrays', line('/v1/embeddings', { model: 'm', input: [[1, 2], [3]] })],
    ['responses, string input', line('/v1/responses', { model: 'gpt-4o-mini', input: 'Hello' })],
    [
      'responses, items and a json_schema text format',
      line('/v1/responses', {
        model: 'gpt-4o-mini',
        instructions: 'Classify.',
        input: [{ role: 'user', content: 'Hello' }],
        text: { format: { type: 'json_schema', name: 'label', schema: { type: 'object' }, strict: true } },
        max_output_tokens: 16,
      }),
    ],
    [
      'responses, a stored prompt instead of input',
      line('/v1/responses', { model: 'm', prompt: { id: 'pmpt_1' } }),
    ],
    [
      'completions, string prompt',
      line('/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' }),
    ],
    [
      'completions, token arrays',
      line('/v1/completions', { model: 'm', prompt: [[1, 2]], max_tokens: 0, best_of: 2 }),
    ],
    ['moderations, string, default model', line('/v1/moderations', { input: 'some text' })],
    [
      'moderations, multimodal',
      line('/v1/moderations', {
        model: 'omni-moderation-latest',
        input: [
          { type: 'text', text: 'x' },
          { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
        ],
      }),
    ],
  ];
  for (const [name, value] of valid) {
    it(name, () => assert.deepEqual(checkRequestLine(value), []));
  }
});

describe('checkRequestLine: the envelope', () => {
  it('rejects a line that is not an object', () => {
    for (const value of [[], 'x', 3, null, true]) {
      assert.deepEqual(codesAndPaths(value), [['not_an_object', '']], JSON.stringify(value));
    }
  });

  it('reports every missing field of an empty object', () => {
    assert.deepEqual(codesAndPaths({}), [
      ['missing_field', 'custom_id'],
      ['missing_field', 'method'],
      ['missing_field', 'url'],
      ['missing_field', 'body'],
    ]);
  });

  it('gives custom_id, method and url their own codes', () => {
    const bad = { custom_id: '', method: 'GET', url: '/v1/images/generations', body: {} };
    assert.deepEqual(codesAndPaths(bad), [
      ['empty_custom_id', 'custom_id'],
      ['invalid_method', 'method'],
      ['unknown_endpoint', 'url'],
    ]);
  });

  it('reports a custom_id of the wrong type as invalid_type', () => {
    assert.deepEqual(codesAndPaths({ ...chat({}), custom_id: 7 }), [['invalid_type', 'custom_id']]);
  });

  it('reports a body that is not an object', () => {
    assert.deepEqual(codesAndPaths(line('/v1/chat/completions', ['x'])), [['invalid_type', 'body']]);
  });

  it('checks the body against the endpoint named by url', () => {
    const chatBody = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
    assert.deepEqual(checkRequestLine(line('/v1/chat/completions', chatBody)), []);
    assert.deepEqual(codesAndPaths(line('/v1/embeddings', chatBody)), [['missing_field', 'body.input']]);
  });

  it('keeps unknown top-level fields', () => {
    assert.deepEqual(checkRequestLine({ ...chat({}), extra: 1 }), []);
  });
});

describe('checkRequestLine: chat bodies', () => {
  const cases: [string, Record<string, unknown>, [string, string][]][] = [
    ['no model', { model: undefined }, [['missing_field', 'body.model']]],
    ['numeric model', { model: 4 }, [['invalid_type', 'body.model']]],
    ['empty model', { model: '' }, [['invalid_value', 'body.model']]],
    ['no messages', { messages: undefined }, [['missing_field', 'body.messages']]],
    ['empty messages', { messages: [] }, [['invalid_value', 'body.messages']]],
    ['messages not an array', { messages: 'hi' }, [['invalid_type', 'body.messages']]],
    [
      'unknown role',
      { messages: [{ role: 'robot', content: 'x' }] },
      [['invalid_value', 'body.messages[0].role']],
    ],
    ['no role', { messages: [{ content: 'x' }] }, [['missing_field', 'body.messages[0].role']]],
    [
      'no content on the second message',
      { messages: [{ role: 'system', content: 's' }, { role: 'user' }] },
      [['missing_field', 'body.messages[1].content']],
    ],
    [
      'numeric content',
      { messages: [{ role: 'user', content: 5 }] },
      [['invalid_type', 'body.messages[0].content']],
    ],
    [
      'empty parts',
      { messages: [{ role: 'user', content: [] }] },
      [['invalid_value', 'body.messages[0].content']],
    ],
    [
      'a text part without text',
      { messages: [{ role: 'user', content: [{ type: 'text' }] }] },
      [['missing_field', 'body.messages[0].content[0].text']],
    ],
    [
      'a part of an unknown type',
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'video' }] }] },
      [['invalid_value', 'body.messages[0].content[1].type']],
    ],
    [
      'an image part in a system message',
      { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'u' } }] }] },
      [['invalid_value', 'body.messages[0].content[0].type']],
    ],
    [
      'a tool message without tool_call_id',
      { messages: [{ role: 'tool', content: 'x' }] },
      [['missing_field', 'body.messages[0].tool_call_id']],
    ],
    ['temperature above 2', { temperature: 2.5 }, [['invalid_value', 'body.temperature']]],
    ['temperature below 0', { temperature: -0.1 }, [['invalid_value', 'body.temperature']]],
    ['temperature as a string', { temperature: '1' }, [['invalid_type', 'body.temperature']]],
    ['top_p above 1', { top_p: 1.01 }, [['invalid_value', 'body.top_p']]],
    ['n of 0', { n: 0 }, [['invalid_value', 'body.n']]],
    ['n of 129', { n: 129 }, [['invalid_value', 'body.n']]],
    ['fractional max_tokens', { max_tokens: 10.5 }, [['invalid_type', 'body.max_tokens']]],
    [
      'string max_completion_tokens',
      { max_completion_tokens: '10' },
      [['invalid_type', 'body.max_completion_tokens']],
    ],
    ['presence_penalty out of range', { presence_penalty: 3 }, [['invalid_value', 'body.presence_penalty']]],
    ['five stop sequences', { stop: ['a', 'b', 'c', 'd', 'e'] }, [['invalid_value', 'body.stop']]],
    [
      'unknown response_format',
      { response_format: { type: 'xml' } },
      [['invalid_value', 'body.response_format.type']],
    ],
    [
      'json_schema without json_schema',
      { response_format: { type: 'json_schema' } },
      [['missing_field', 'body.response_format.json_schema']],
    ],
    [
      'json_schema without a name',
      { response_format: { type: 'json_schema', json_schema: { schema: {} } } },
      [['missing_field', 'body.response_format.json_schema.name']],
    ],
    [
      'a json_schema name with a space',
      { response_format: { type: 'json_schema', json_schema: { name: 'my schema' } } },
      [['invalid_value', 'body.response_format.json_schema.name']],
    ],
    [
      'a json_schema name of 65 characters',
      { response_format: { type: 'json_schema', json_schema: { name: 'a'.repeat(65) } } },
      [['invalid_value', 'body.response_format.json_schema.name']],
    ],
    [
      'metadata of 17 pairs',
      { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      [['invalid_value', 'body.metadata']],
    ],
    [
      'several problems at once',
      { model: 1, temperature: 9 },
      [
        ['invalid_type', 'body.model'],
        ['invalid_value', 'body.temperature'],
      ],
    ],
  ];
  for (const [name, body, expected] of cases) {
    it(name, () => assert.deepEqual(codesAndPaths(chat(body)), expected));
  }

  it('messages say what was expected and what came; formatIssue adds the path', () => {
    const [first] = checkRequestLine(
      chat({
        messages: [
          { role: 'user', content: 'x' },
          { role: 'user', content: 5 },
        ],
      }),
    );
    assert.ok(first);
    assert.equal(first.path, 'body.messages[1].content');
    assert.doesNotMatch(first.message, /messages/, 'the message does not repeat the path');
    assert.match(first.message, /string/);
    assert.match(first.message, /number/);
    assert.equal(formatIssue(first), `body.messages[1].content: ${first.message}`);

    const [range] = checkRequestLine(chat({ temperature: 7 }));
    assert.match(range?.message ?? '', /2.*7/);
    assert.equal(formatIssue({ path: '', message: 'whole line' }), 'whole line');
  });
});

describe('checkRequestLine: other endpoints', () => {
  const cases: [string, string, Record<string, unknown>, [string, string][]][] = [
    ['embeddings without input', '/v1/embeddings', { model: 'm' }, [['missing_field', 'body.input']]],
    ['embeddings without model', '/v1/embeddings', { input: 'x' }, [['missing_field', 'body.model']]],
    [
      'embeddings, empty string',
      '/v1/embeddings',
      { model: 'm', input: '' },
      [['invalid_value', 'body.input']],
    ],
    [
      'embeddings, empty array',
      '/v1/embeddings',
      { model: 'm', input: [] },
      [['invalid_value', 'body.input']],
    ],
    [
      'embeddings, 2049 strings',
      '/v1/embeddings',
      { model: 'm', input: Array.from({ length: 2049 }, () => 'x') },
      [['invalid_value', 'body.input']],
    ],
    [
      'embeddings, a number among strings',
      '/v1/embeddings',
      { model: 'm', input: ['a', 2] },
      [['invalid_type', 'body.input[1]']],
    ],
    [
      'embeddings, numeric input',
      '/v1/embeddings',
      { model: 'm', input: 3 },
      [['invalid_type', 'body.input']],
    ],
    [
      'embeddings, dimensions 0',
      '/v1/embeddings',
      { model: 'm', input: 'x', dimensions: 0 },
      [['invalid_value', 'body.dimensions']],
    ],
    [
      'embeddings, fractional dimensions',
      '/v1/embeddings',
      { model: 'm', input: 'x', dimensions: 1.5 },
      [['invalid_type', 'body.dimensions']],
    ],
    [
      'embeddings, unknown encoding_format',
      '/v1/embeddings',
      { model: 'm', input: 'x', encoding_format: 'int8' },
      [['invalid_value', 'body.encoding_format']],
    ],
    ['responses without model', '/v1/responses', { input: 'x' }, [['missing_field', 'body.model']]],
    ['responses without input or prompt', '/v1/responses', { model: 'm' }, [['missing_field', 'body.input']]],
    ['responses, numeric input', '/v1/responses', { model: 'm', input: 1 }, [['invalid_type', 'body.input']]],
    [
      'responses, json_schema format without schema',
      '/v1/responses',
      { model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'n' } } },
      [['missing_field', 'body.text.format.schema']],
    ],
    [
      'responses, json_schema format without name',
      '/v1/responses',
      { model: 'm', input: 'x', text: { format: { type: 'json_schema', schema: {} } } },
      [['missing_field', 'body.text.format.name']],
    ],
    [
      'responses, max_output_tokens under 16',
      '/v1/responses',
      { model: 'm', input: 'x', max_output_tokens: 8 },
      [['invalid_value', 'body.max_output_tokens']],
    ],
    ['completions without prompt', '/v1/completions', { model: 'm' }, [['missing_field', 'body.prompt']]],
    [
      'completions, object prompt',
      '/v1/completions',
      { model: 'm', prompt: {} },
      [['invalid_type', 'body.prompt']],
    ],
    [
      'completions, logprobs 6',
      '/v1/completions',
      { model: 'm', prompt: 'p', logprobs: 6 },
      [['invalid_value', 'body.logprobs']],
    ],
    ['moderations without input', '/v1/moderations', {}, [['missing_field', 'body.input']]],
    ['moderations, numeric input', '/v1/moderations', { input: 1 }, [['invalid_type', 'body.input']]],
  ];
  for (const [name, url, body, expected] of cases) {
    it(name, () => assert.deepEqual(codesAndPaths(line(url, body)), expected));
  }
});

describe('modelOf and embeddingInputCount', () => {
  it('modelOf reads a string model only', () => {
    assert.equal(modelOf({ body: { model: 'gpt-4o-mini' } }), 'gpt-4o-mini');
    assert.equal(modelOf({ body: { model: 3 } }), undefined);
    assert.equal(modelOf({ body: 'x' }), undefined);
    assert.equal(modelOf({}), undefined);
  });

  it('counts the inputs of an embeddings request', () => {
    const count = (input: unknown) =>
      embeddingInputCount({ url: '/v1/embeddings', body: { model: 'm', input } });
    assert.equal(count('one text'), 1);
    assert.equal(count(['a', 'b', 'c']), 3);
    assert.equal(count([[1, 2], [3], [4]]), 3);
    assert.equal(count([5, 6, 7, 8]), 1, 'an array of tokens is a single input');
    assert.equal(count(undefined), 0);
  });

  it('counts no inputs for other endpoints', () => {
    assert.equal(embeddingInputCount({ url: '/v1/chat/completions', body: { input: ['a', 'b'] } }), 0);
    assert.equal(embeddingInputCount({ url: '/v1/moderations', body: { input: ['a', 'b'] } }), 0);
  });
});
