import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { counterForModel, requestInputTokens } from '../src/cost/tokens.js';
import { respond } from '../src/server/responder/builtin-responder.js';
import {
  createChatBatch,
  downloadLines,
  type JsonObject,
  waitForBatch,
  withServer,
} from './server-support.js';
import { BA_REVIEWS } from './support.js';

const SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
    topics: { type: 'array', items: { type: 'string' } },
  },
  required: ['sentiment', 'topics'],
  additionalProperties: false,
};

/** Requests of every endpoint the responder answers, with the fields usage depends on. */
const REQUESTS: [string, Record<string, unknown>][] = [
  [
    '/v1/chat/completions',
    {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Classify the sentiment of airline reviews.' },
        { role: 'user', name: 'ana', content: 'The crew was kind 👍 but the café ran out of food.' },
      ],
      n: 2,
    },
  ],
  [
    '/v1/chat/completions',
    {
      model: 'gpt-4.1-nano',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Baggage lost at Heathrow.' }] }],
      response_format: { type: 'json_schema', json_schema: { name: 'review', schema: SCHEMA } },
    },
  ],
  [
    '/v1/responses',
    { model: 'gpt-5-mini', instructions: 'Be brief.', input: 'Summarise: delayed, then cancelled.' },
  ],
  [
    '/v1/responses',
    {
      model: 'o4-mini',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Seat 12A was broken.' }] }],
    },
  ],
  ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: ['Once upon a time', 'In short'], n: 2 }],
  ['/v1/embeddings', { model: 'text-embedding-3-small', input: ['late flight', 'lost bag', 'kind crew'] }],
  [
    '/v1/embeddings',
    {
      model: 'text-embedding-3-large',
      input: [
        [1, 2, 3],
        [4, 5],
      ],
    },
  ],
];

/** The tokens of the text each choice or output holds, in the request model's encoding. */
function writtenTokens(url: string, model: string, body: JsonObject): number {
  const counter = counterForModel(model);
  if (url === '/v1/chat/completions') {
    return body.choices.reduce(
      (n: number, c: JsonObject) =>
        n + counter.count(c.message.content ?? c.message.tool_calls[0].function.arguments),
      0,
    );
  }
  if (url === '/v1/completions')
    return body.choices.reduce((n: number, c: JsonObject) => n + counter.count(c.text), 0);
  if (url === '/v1/responses') return counter.count(body.output[0].content[0].text);
  return 0;
}

test("the built-in responder's usage is the counting function's: input as billed, output as the tokens it wrote", () => {
  for (const [url, body] of REQUESTS) {
    const outcome = respond(7, url, body, 'a'.repeat(32), 0);
    assert.equal(outcome.kind, 'response');
    assert.equal(outcome.kind === 'response' && outcome.statusCode, 200, `${url} ${JSON.stringify(body)}`);
    const answer = (outcome as { body: JsonObject }).body;
    const model = body.model as string;
    const input = requestInputTokens(url, body, counterForModel(model));
    const usage = answer.usage;
    assert.equal(usage.prompt_tokens ?? usage.input_tokens, input, `${url} ${model}: input tokens`);
    if (url !== '/v1/embeddings') {
      const output = usage.completion_tokens ?? usage.output_tokens;
      assert.equal(output, writtenTokens(url, model, answer), `${url} ${model}: output tokens`);
      assert.equal(usage.total_tokens, input + output);
    }
  }
});

test('max_tokens and max_output_tokens cut the reply at a token boundary, and usage stays within them', () => {
  const counter = counterForModel('gpt-4o-mini');
  for (const max of [1, 2, 3, 5]) {
    const chat = respond(
      3,
      '/v1/chat/completions',
      {
        model: 'gpt-4o-mini',
        max_tokens: max,
        messages: [
          { role: 'user', content: 'Summarise turbulence complaints about the crew and the baggage please' },
        ],
      },
      'b'.repeat(32),
    ) as { body: JsonObject };
    const choice = chat.body.choices[0];
    assert.equal(choice.finish_reason, 'length');
    assert.equal(chat.body.usage.completion_tokens, counter.count(choice.message.content));
    assert.ok(chat.body.usage.completion_tokens <= max, `${chat.body.usage.completion_tokens} <= ${max}`);
    const response = respond(
      3,
      '/v1/responses',
      {
        model: 'gpt-4o-mini',
        max_output_tokens: max,
        input: 'Summarise turbulence complaints about the crew please',
      },
      'c'.repeat(32),
    ) as { body: JsonObject };
    assert.equal(response.body.status, 'incomplete');
    assert.ok(response.body.usage.output_tokens <= max);
  }
});

test('over HTTP, every output line of a batch reports the input tokens the counting function gives its request line', () =>
  withServer({ concurrency: 4 }, async ({ client }, dir) => {
    const reviews = (parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[]).slice(
      0,
      40,
    );
    const lines = reviews.map((review, i) => ({
      custom_id: `r${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Classify the sentiment of this airline review.' },
          { role: 'user', content: `${review.ReviewHeader}\n${review.ReviewBody}` },
        ],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'review', strict: true, schema: SCHEMA },
        },
      },
    }));
    const batch = await createChatBatch(client, dir, lines);
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, 'completed');
    const out = await downloadLines(client, done.output_file_id);
    assert.equal(out.length, lines.length);
    let input = 0;
    for (const line of out) {
      const request = lines[Number(line.custom_id.slice(1))]!;
      const expected = requestInputTokens(request.url, request.body, counterForModel('gpt-4o-mini'));
      assert.equal(line.response?.body.usage.prompt_tokens, expected, line.custom_id);
      input += expected;
    }
    assert.equal(done.usage?.input_tokens, input);
  }));
