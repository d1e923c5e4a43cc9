/**
 * The Anthropic dialect's pure parts: wire ids for ids Anthropic would refuse, and result lines read
 * into the ledger's outcomes (states, retryability, usage with cache tokens, structured output).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { anthropicUserId, anthropicWireId } from '../src/dialects/anthropic.js';
import { ResultLineProblem } from '../src/dialects/dialect.js';
import { anthropicLineOutcome } from '../src/results/anthropic-line-outcome.js';
import { outputSchemaFromJsonSchema } from '../src/results/output-schema.js';
import { resultDialectOf } from '../src/results/result-dialects.js';
import type { LineOutcome } from '../src/types.js';

const VALID = /^[A-Za-z0-9_-]{1,64}$/;

describe('wire ids', () => {
  test('every id maps to a valid, distinct custom_id that reads back as the id; valid ids go as they are', () => {
    const alphabet = 'ab-_Z9 .é€😀/"\\\n';
    const ids = new Set<string>([
      'a',
      'A-b_9',
      'x'.repeat(64),
      'x'.repeat(65),
      'bp-a',
      'bh-a',
      '123456789012345678',
    ]);
    for (let i = 0; i < 2000; i++) {
      const length = 1 + (randomBytes(1)[0]! % 90);
      const chars = [...randomBytes(length)].map((b) => [...alphabet][b % [...alphabet].length]);
      ids.add(chars.join(''));
    }
    const sent = new Map<string, string>();
    const hashed = new Map<string, string>();
    for (const id of ids) {
      const wire = anthropicWireId(id);
      const onWire = wire ?? id;
      assert.match(onWire, VALID, JSON.stringify(id));
      assert.equal(sent.has(onWire), false, `two ids sent as ${onWire}`);
      sent.set(onWire, id);
      if (wire === undefined) {
        assert.ok(VALID.test(id) && !/^b[ph]-/.test(id), `${JSON.stringify(id)} goes as it is`);
      }
      if (wire?.startsWith('bh-')) hashed.set(wire, id);
    }
    for (const [onWire, id] of sent)
      assert.equal(
        anthropicUserId(onWire, (w) => hashed.get(w)),
        id,
      );
    assert.ok(hashed.size > 0, 'some ids were long enough to be hashed');
  });
});

describe('result lines', () => {
  const schema = {
    type: 'object',
    properties: { sentiment: { type: 'string', enum: ['positive', 'negative'] } },
    required: ['sentiment'],
  };
  const body = {
    messages: [],
    tools: [{ name: 'classify', input_schema: schema }],
    tool_choice: { type: 'tool', name: 'classify' },
  };
  const dialect = resultDialectOf('anthropic');
  const ctx = {
    endpoint: '/v1/messages',
    expect: dialect.expectedOutput({ endpoint: '/v1/messages', body }),
    outputSchema: outputSchemaFromJsonSchema(schema),
  };
  const usage = {
    input_tokens: 21,
    cache_read_input_tokens: 1000,
    cache_creation_input_tokens: 300,
    output_tokens: 17,
  };
  const message = (content: unknown[], stop = 'tool_use') => ({
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-haiku-4-5',
    content,
    stop_reason: stop,
    usage,
  });
  const read = (result: unknown) => {
    const outcome = anthropicLineOutcome({ custom_id: 'r1', result }, ctx);
    assert.ok(!(outcome instanceof ResultLineProblem), String((outcome as ResultLineProblem).message));
    return outcome as LineOutcome;
  };

  test('the forced tool reads as its input, checked against the output schema, with every input token counted', () => {
    assert.equal(dialect.requestedSchema({ endpoint: '/v1/messages', body }), schema);
    const ok = read({
      type: 'succeeded',
      message: message([{ type: 'tool_use', id: 't', name: 'classify', input: { sentiment: 'negative' } }]),
    });
    assert.equal(ok.state, 'succeeded');
    assert.deepEqual(JSON.parse(ok.result!), { sentiment: 'negative' });
    assert.deepEqual(ok.usage, {
      inputTokens: usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
      cachedInputTokens: usage.cache_read_input_tokens,
      cacheWriteTokens: usage.cache_creation_input_tokens,
      outputTokens: usage.output_tokens,
      reasoningTokens: 0,
    });
    const bad = read({
      type: 'succeeded',
      message: message([{ type: 'tool_use', id: 't', name: 'classify', input: { sentiment: 'meh' } }]),
    });
    assert.equal(bad.state, 'failed');
    assert.equal(bad.errorCode, 'invalid_output');
    assert.equal(bad.retryable, true);
    assert.equal(bad.usage?.outputTokens, usage.output_tokens, 'tokens spent on a bad output are kept');
    const refused = read({ type: 'succeeded', message: message([{ type: 'text', text: 'No.' }], 'refusal') });
    assert.deepEqual([refused.state, refused.errorCode, refused.retryable], ['failed', 'refusal', false]);
  });

  test('errored results are retryable for Anthropic-side trouble and final for the request’s own', () => {
    const errored = (type: string) =>
      read({
        type: 'errored',
        error: { type: 'error', error: { type, message: `${type} happened` }, request_id: null },
      });
    for (const type of ['api_error', 'overloaded_error', 'rate_limit_error']) {
      const o = errored(type);
      assert.deepEqual(
        [o.state, o.errorCode, o.retryable, o.errorMessage],
        ['failed', type, true, `${type} happened`],
      );
    }
    for (const type of ['invalid_request_error', 'request_too_large', 'permission_error']) {
      const o = errored(type);
      assert.deepEqual([o.state, o.errorCode, o.retryable], ['failed', type, false]);
    }
  });

  test('canceled and expired requests end as the ledger’s cancelled and expired (expired retryable)', () => {
    const canceled = read({ type: 'canceled' });
    assert.deepEqual(
      [canceled.state, canceled.errorCode, canceled.retryable],
      ['cancelled', 'batch_cancelled', false],
    );
    const expired = read({ type: 'expired' });
    assert.deepEqual(
      [expired.state, expired.errorCode, expired.retryable],
      ['expired', 'batch_expired', true],
    );
  });

  test('a line that is not a result line is a problem, named', () => {
    assert.ok(anthropicLineOutcome({ custom_id: 'r1' }, ctx) instanceof ResultLineProblem);
    assert.ok(
      anthropicLineOutcome({ custom_id: 'r1', result: { type: 'weird' } }, ctx) instanceof ResultLineProblem,
    );
    assert.ok(anthropicLineOutcome({ result: { type: 'expired' } }, ctx) instanceof ResultLineProblem);
  });
});
