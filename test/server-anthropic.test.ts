import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { Ajv2020 } from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import { type TestServer, withServer } from './server-support.js';

type MessageBatch = Anthropic.Messages.MessageBatch;
type ResultLine = Anthropic.Messages.MessageBatchIndividualResponse;
type BatchRequest = Anthropic.Messages.BatchCreateParams.Request;

/**
 * Every field of the SDK's types, `true` where the object must carry it. `satisfies` makes this list
 * fail to compile when the SDK adds or drops a field, so the runtime checks below follow the SDK.
 */
const MESSAGE_BATCH_FIELDS = {
  id: true,
  type: true,
  processing_status: true,
  request_counts: true,
  created_at: true,
  expires_at: true,
  ended_at: true,
  cancel_initiated_at: true,
  archived_at: true,
  results_url: true,
} satisfies Record<keyof MessageBatch, boolean>;
const MESSAGE_FIELDS = {
  id: true,
  type: true,
  role: true,
  model: true,
  content: true,
  stop_reason: true,
  stop_sequence: true,
  stop_details: true,
  container: true,
  diagnostics: true,
  usage: true,
} satisfies Record<keyof Anthropic.Message, boolean>;
const USAGE_FIELDS = {
  input_tokens: true,
  output_tokens: true,
  cache_creation_input_tokens: true,
  cache_read_input_tokens: true,
  cache_creation: true,
  inference_geo: true,
  output_tokens_details: true,
  server_tool_use: true,
  service_tier: true,
  speed: true,
} satisfies Record<keyof Anthropic.Usage, boolean>;
const TOOL_USE_FIELDS = {
  id: true,
  type: true,
  name: true,
  input: true,
  caller: true,
  toolset_name: false,
} satisfies Record<keyof Anthropic.ToolUseBlock, boolean>;

function assertFields(value: unknown, fields: Record<string, boolean>, what: string): void {
  assert.ok(typeof value === 'object' && value !== null, `${what} is an object`);
  for (const [field, required] of Object.entries(fields)) {
    if (required)
      assert.ok(
        field in value && (value as Record<string, unknown>)[field] !== undefined,
        `${what}.${field}`,
      );
  }
}

function anthropicClient(server: TestServer, options: { apiKey?: string; maxRetries?: number } = {}) {
  return new Anthropic({
    apiKey: options.apiKey ?? 'test',
    baseURL: server.origin,
    maxRetries: options.maxRetries ?? 2,
  });
}

function textRequest(customId: string, content: string, extra: Record<string, unknown> = {}): BatchRequest {
  return {
    custom_id: customId,
    params: { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content }], ...extra },
  };
}

function textRequests(n: number, prefix = 'req'): BatchRequest[] {
  return Array.from({ length: n }, (_, i) =>
    textRequest(`${prefix}-${i}`, `Review ${i}: the flight was delayed but the crew was kind.`),
  );
}

async function waitEnded(
  client: Anthropic,
  id: string,
  seen: MessageBatch[] = [],
  timeoutMs = 20_000,
): Promise<MessageBatch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.messages.batches.retrieve(id);
    seen.push(batch);
    if (batch.processing_status === 'ended') return batch;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${batch.processing_status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function resultsOf(client: Anthropic, id: string): Promise<ResultLine[]> {
  const lines: ResultLine[] = [];
  for await (const line of await client.messages.batches.results(id)) lines.push(line);
  return lines;
}

/** custom_id → result line, failing on a custom_id seen twice. */
function byCustomId(lines: ResultLine[]): Map<string, ResultLine> {
  const map = new Map<string, ResultLine>();
  for (const line of lines) {
    assert.ok(!map.has(line.custom_id), `${line.custom_id} has one result line`);
    map.set(line.custom_id, line);
  }
  return map;
}

/** The count of each result type, computed from the lines. */
function countTypes(lines: ResultLine[]): Record<string, number> {
  const counts: Record<string, number> = { succeeded: 0, errored: 0, canceled: 0, expired: 0 };
  for (const line of lines) counts[line.result.type] = (counts[line.result.type] ?? 0) + 1;
  return counts;
}

const RATING_TOOL = {
  name: 'rate_review',
  description: 'Rate a review',
  input_schema: {
    type: 'object' as const,
    properties: {
      sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
      score: { type: 'integer', minimum: 1, maximum: 5 },
      topics: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
      crew: {
        type: 'object',
        properties: { kind: { type: 'boolean' } },
        required: ['kind'],
        additionalProperties: false,
      },
    },
    required: ['sentiment', 'score', 'topics', 'crew'],
    additionalProperties: false,
  },
};
const SUMMARY_SCHEMA = {
  type: 'object',
  properties: { summary: { type: 'string', maxLength: 40 }, delayed: { type: 'boolean' } },
  required: ['summary', 'delayed'],
  additionalProperties: false,
};

test('anthropic: create → poll → results, every custom_id once, tool inputs and JSON valid against their schemas', () =>
  withServer({}, async (server) => {
    const client = anthropicClient(server);
    const ajv = new Ajv2020({ strict: false });
    const validTool = ajv.compile(RATING_TOOL.input_schema);
    const validSummary = ajv.compile(SUMMARY_SCHEMA);
    const requests: BatchRequest[] = [];
    for (let i = 0; i < 8; i++) {
      requests.push(textRequest(`text-${i}`, `Review ${i}: lost baggage, friendly crew, late departure.`));
      requests.push(
        textRequest(`tool-${i}`, `Rate review ${i}: the seats were cramped.`, {
          tools: [RATING_TOOL],
          tool_choice: i % 2 === 0 ? { type: 'tool', name: 'rate_review' } : { type: 'any' },
        }),
      );
      requests.push(
        textRequest(`json-${i}`, `Summarise review ${i}.`, {
          output_config: { format: { type: 'json_schema', schema: SUMMARY_SCHEMA } },
        }),
      );
    }
    // The same prompt, its system block cached (5 minutes or 1 hour) or not.
    const policy = 'A long policy text. '.repeat(40);
    const cachedTtl = new Map<string, '5m' | '1h'>();
    for (let i = 0; i < 16; i++) {
      const ttl = i % 2 === 0 ? '5m' : '1h';
      cachedTtl.set(`cached-${i}`, ttl);
      const cacheControl = ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
      requests.push(
        textRequest(`cached-${i}`, 'Use the policy.', {
          system: [{ type: 'text', text: policy, cache_control: cacheControl }],
        }),
      );
    }
    requests.push(textRequest('uncached', 'Use the policy.', { system: [{ type: 'text', text: policy }] }));

    const created = await client.messages.batches.create({ requests });
    assertFields(created, MESSAGE_BATCH_FIELDS, 'the created MessageBatch');
    assert.match(created.id, /^msgbatch_/);
    assert.equal(created.type, 'message_batch');
    assert.equal(created.processing_status, 'in_progress');
    assert.deepEqual(created.request_counts, {
      processing: requests.length,
      succeeded: 0,
      errored: 0,
      canceled: 0,
      expired: 0,
    });
    assert.equal(created.results_url, null);
    assert.equal(created.ended_at, null);
    const window = Date.parse(created.expires_at) - Date.parse(created.created_at);
    assert.ok(Math.abs(window - 24 * 3600 * 1000) <= 1000, `expires 24 h after creation (${window} ms)`);

    const seen: MessageBatch[] = [];
    const ended = await waitEnded(client, created.id, seen);
    for (const batch of seen) {
      assertFields(batch, MESSAGE_BATCH_FIELDS, 'a polled MessageBatch');
      if (batch.processing_status !== 'ended') {
        assert.equal(batch.request_counts.processing, requests.length, 'only processing moves until the end');
      }
    }
    assert.deepEqual(ended.request_counts, {
      processing: 0,
      succeeded: requests.length,
      errored: 0,
      canceled: 0,
      expired: 0,
    });
    assert.ok(ended.ended_at !== null && Date.parse(ended.ended_at) >= Date.parse(ended.created_at));
    assert.equal(ended.results_url, `${server.origin}/v1/messages/batches/${ended.id}/results`);

    const lines = await resultsOf(client, created.id);
    const results = byCustomId(lines);
    assert.deepEqual([...results.keys()].sort(), requests.map((r) => r.custom_id).sort());
    for (const request of requests) {
      const line = results.get(request.custom_id) as ResultLine;
      assert.equal(line.result.type, 'succeeded', request.custom_id);
      if (line.result.type !== 'succeeded') continue;
      const message = line.result.message;
      assertFields(message, MESSAGE_FIELDS, `${request.custom_id}'s message`);
      assertFields(message.usage, USAGE_FIELDS, `${request.custom_id}'s usage`);
      assert.equal(message.model, request.params.model);
      assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);
      const block = message.content[0];
      if (request.custom_id.startsWith('tool-')) {
        assert.equal(block?.type, 'tool_use');
        assertFields(block, TOOL_USE_FIELDS, `${request.custom_id}'s tool_use block`);
        if (block?.type !== 'tool_use') continue;
        assert.equal(block.name, 'rate_review');
        assert.equal(message.stop_reason, 'tool_use');
        assert.ok(validTool(block.input), `${request.custom_id}: ${JSON.stringify(validTool.errors)}`);
      } else {
        assert.equal(block?.type, 'text');
        if (block?.type !== 'text') continue;
        assert.equal(message.stop_reason, 'end_turn');
        if (request.custom_id.startsWith('json-')) {
          const value: unknown = JSON.parse(block.text);
          assert.ok(validSummary(value), `${request.custom_id}: ${JSON.stringify(validSummary.errors)}`);
        } else assert.ok(block.text.length > 0);
      }
    }
    const usageOf = (customId: string) => {
      const line = results.get(customId) as ResultLine;
      assert.equal(line.result.type, 'succeeded');
      return (line.result as Anthropic.Messages.MessageBatchSucceededResult).message.usage;
    };
    const uncached = usageOf('uncached');
    assert.equal(uncached.cache_read_input_tokens, 0);
    assert.equal(uncached.cache_creation_input_tokens, 0);
    let reads = 0;
    let writes = 0;
    for (const [customId, ttl] of cachedTtl) {
      const usage = usageOf(customId);
      const read = usage.cache_read_input_tokens ?? 0;
      const written = usage.cache_creation_input_tokens ?? 0;
      assert.ok(read > 0 !== written > 0, `${customId}: a cached prefix is either read or written`);
      assert.equal(
        usage.input_tokens + read + written,
        uncached.input_tokens,
        `${customId}: the prompt is split, not grown`,
      );
      const creation = usage.cache_creation;
      assert.equal(
        creation?.ephemeral_1h_input_tokens,
        ttl === '1h' ? written : 0,
        `${customId}: 1 h writes`,
      );
      assert.equal(
        creation?.ephemeral_5m_input_tokens,
        ttl === '5m' ? written : 0,
        `${customId}: 5 min writes`,
      );
      if (read > 0) reads++;
      else writes++;
    }
    assert.ok(
      reads > 0 && writes > 0,
      `both cache reads and writes occur (${reads} reads, ${writes} writes)`,
    );

    // The wire itself: JSONL, one result a line.
    const raw = await fetch(ended.results_url as string, {
      headers: { 'x-api-key': 'test', 'anthropic-version': '2023-06-01' },
    });
    assert.equal(raw.status, 200);
    const text = await raw.text();
    assert.ok(text.endsWith('\n'));
    assert.equal(text.trimEnd().split('\n').length, requests.length);
  }));

test('anthropic: list pages newest first with after_id, before_id and limit; the OpenAI API does not see these batches', () =>
  withServer({}, async (server) => {
    const client = anthropicClient(server);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.messages.batches.create({ requests: textRequests(1, `b${i}`) })).id);
    }
    const newestFirst = [...ids].reverse();
    const listed: string[] = [];
    for await (const batch of client.messages.batches.list({ limit: 2 })) {
      assertFields(batch, MESSAGE_BATCH_FIELDS, 'a listed MessageBatch');
      listed.push(batch.id);
    }
    assert.deepEqual(listed, newestFirst, 'auto-pagination over after_id visits each batch once');

    const first = await client.messages.batches.list({ limit: 2 });
    assert.deepEqual(
      first.data.map((b) => b.id),
      newestFirst.slice(0, 2),
    );
    assert.equal(first.has_more, true);
    assert.equal(first.first_id, newestFirst[0]);
    assert.equal(first.last_id, newestFirst[1]);
    const newer = await client.messages.batches.list({ before_id: ids[1] as string, limit: 2 });
    assert.deepEqual(
      newer.data.map((b) => b.id),
      [ids[3], ids[2]],
      'before_id: the batches just newer than the cursor, newest first',
    );
    assert.equal(newer.has_more, true);
    const last = await client.messages.batches.list({ after_id: ids[1] as string });
    assert.deepEqual(
      last.data.map((b) => b.id),
      [ids[0]],
    );
    assert.equal(last.has_more, false);

    assert.equal((await server.client.batches.list()).data.length, 0, 'OpenAI lists only its own batches');
    assert.equal((await server.client.files.list()).data.length, 0, 'nor does it see their internal files');
    const asOpenAi = await server.client.batches
      .retrieve(`batch_${(ids[0] as string).slice('msgbatch_'.length)}`)
      .catch((e: unknown) => e);
    assert.ok(asOpenAi instanceof OpenAI.NotFoundError);
  }));

test('anthropic: cancel ends the batch with the finished requests succeeded and the rest canceled; delete only once ended', () =>
  withServer({ latencyMs: 40, concurrency: 2 }, async (server) => {
    const client = anthropicClient(server);
    const requests = textRequests(30);
    const created = await client.messages.batches.create({ requests });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const notYet = await client.messages.batches.delete(created.id).catch((e: unknown) => e);
    assert.ok(notYet instanceof Anthropic.BadRequestError, 'a batch still processing cannot be deleted');
    const canceling = await client.messages.batches.cancel(created.id);
    assertFields(canceling, MESSAGE_BATCH_FIELDS, 'the canceling MessageBatch');
    assert.ok(['canceling', 'ended'].includes(canceling.processing_status));
    assert.ok(canceling.cancel_initiated_at !== null);

    const ended = await waitEnded(client, created.id);
    const lines = await resultsOf(client, created.id);
    const results = byCustomId(lines);
    assert.equal(results.size, requests.length, 'every request has a result');
    const counts = countTypes(lines);
    assert.deepEqual(ended.request_counts, { processing: 0, ...counts });
    assert.ok(
      counts.succeeded! > 0 && counts.canceled! > 0,
      `some finished, some canceled: ${JSON.stringify(counts)}`,
    );

    const again = await client.messages.batches.cancel(created.id).catch((e: unknown) => e);
    assert.ok(again instanceof Anthropic.BadRequestError, 'an ended batch cannot be canceled');
    const deleted = await client.messages.batches.delete(created.id);
    assert.deepEqual(deleted, { id: created.id, type: 'message_batch_deleted' });
    const gone = await client.messages.batches.retrieve(created.id).catch((e: unknown) => e);
    assert.ok(gone instanceof Anthropic.NotFoundError);
    assert.equal((gone.error as Anthropic.ErrorResponse).type, 'error');
    assert.equal((gone.error as Anthropic.ErrorResponse).error.type, 'not_found_error');
    assert.equal((await client.messages.batches.list()).data.length, 0, 'a deleted batch leaves the list');
  }));

test('anthropic: requests that break the custom_id rules or lack a field are refused with Anthropic errors; none creates a batch', () =>
  withServer({}, async (server) => {
    const client = anthropicClient(server);
    const ok = textRequest('ok', 'fine');
    const refusals: Array<[string, unknown[], RegExp]> = [
      ['a space', [ok, textRequest('has space', 'x')], /requests\.1\.custom_id/],
      ['a dot', [ok, textRequest('a.b', 'x')], /requests\.1\.custom_id/],
      ['65 characters', [textRequest('x'.repeat(65), 'x')], /requests\.0\.custom_id/],
      ['empty', [textRequest('', 'x')], /requests\.0\.custom_id/],
      [
        'a duplicate',
        [ok, textRequest('other', 'x'), textRequest('ok', 'y')],
        /requests\.2\.custom_id: Duplicate/,
      ],
      [
        'no max_tokens',
        [{ custom_id: 'm', params: { model: 'claude-sonnet-4-5', messages: [] } }],
        /requests\.0\.params\.max_tokens/,
      ],
      ['no requests', [], /requests: List should have at least 1 item/],
    ];
    for (const [what, requests, message] of refusals) {
      const err = await client.messages.batches
        .create({ requests: requests as BatchRequest[] })
        .catch((e: unknown) => e);
      assert.ok(err instanceof Anthropic.BadRequestError, `${what} is refused`);
      const body = err.error as Anthropic.ErrorResponse;
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, message, what);
      assert.ok(err.requestID, `${what}: the request-id header`);
    }
    const tooLarge = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      // A body declared past 256 MB is refused before it is read.
      const req = request(`${server.origin}/v1/messages/batches`, {
        method: 'POST',
        headers: {
          'x-api-key': 'test',
          'anthropic-version': '2023-06-01',
          'content-length': String(257 * 1024 * 1024),
        },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => {
          resolve({ status: res.statusCode, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('{"requests": [');
    });
    assert.equal(tooLarge.status, 413);
    assert.equal((JSON.parse(tooLarge.body) as Anthropic.ErrorResponse).error.type, 'request_too_large');
    assert.equal((await client.messages.batches.list()).data.length, 0, 'no refused request created a batch');

    const edge = await client.messages.batches.create({
      requests: [
        textRequest('123456789012345678', 'an 18-digit id'),
        textRequest('a'.repeat(64), 'x'),
        textRequest('A_b-9', 'x'),
      ],
    });
    await waitEnded(client, edge.id);
    const ids = (await resultsOf(client, edge.id)).map((l) => l.custom_id).sort();
    assert.deepEqual(ids, ['123456789012345678', 'A_b-9', 'a'.repeat(64)].sort());
  }));

test('anthropic: past the completion window, the requests that had not run come back expired', () =>
  withServer({ completionWindowSeconds: 1, latencyMs: 60, concurrency: 2 }, async (server) => {
    const client = anthropicClient(server);
    const requests = textRequests(40);
    const created = await client.messages.batches.create({ requests });
    const window = Date.parse(created.expires_at) - Date.parse(created.created_at);
    assert.ok(window <= 2000, `expires_at follows the configured window (${window} ms)`);
    const ended = await waitEnded(client, created.id);
    const lines = await resultsOf(client, created.id);
    assert.equal(byCustomId(lines).size, requests.length);
    const counts = countTypes(lines);
    assert.deepEqual(ended.request_counts, { processing: 0, ...counts });
    assert.ok(
      counts.expired! > 0 && counts.succeeded! > 0,
      `some ran, the rest expired: ${JSON.stringify(counts)}`,
    );
    for (const line of lines) assert.ok(['succeeded', 'expired'].includes(line.result.type));
  }));

test('anthropic: --fail-rate errors requests with api_error or overloaded_error; --http-fault-rate answers 429/500/529 the SDK retries', () =>
  withServer({ failRate: 0.4, httpFaultRate: 0.3, seed: 7 }, async (server) => {
    const client = anthropicClient(server, { maxRetries: 10 });
    const requests = textRequests(40);
    const created = await client.messages.batches.create({ requests });
    const ended = await waitEnded(client, created.id);
    const lines = await resultsOf(client, created.id);
    assert.equal(byCustomId(lines).size, requests.length);
    const counts = countTypes(lines);
    assert.deepEqual(ended.request_counts, { processing: 0, ...counts });
    assert.ok(counts.errored! > 0 && counts.succeeded! > 0, JSON.stringify(counts));
    for (const line of lines) {
      if (line.result.type !== 'errored') continue;
      assert.equal(line.result.error.type, 'error');
      assert.ok(
        ['api_error', 'overloaded_error'].includes(line.result.error.error.type),
        line.result.error.error.type,
      );
    }

    // Without retries, the faults reach the caller in Anthropic's shapes, 529 as OverloadedError.
    const bare = anthropicClient(server, { maxRetries: 0 });
    const statuses = new Set<number>();
    for (let i = 0; i < 200 && statuses.size < 3; i++) {
      const err = await bare.messages.batches.retrieve(created.id).catch((e: unknown) => e);
      if (!(err instanceof Anthropic.APIError)) continue;
      statuses.add(err.status as number);
      assert.equal((err.error as Anthropic.ErrorResponse).type, 'error');
      assert.ok(err.headers?.get('retry-after-ms'), 'the fault says when to retry');
      if (err.status === 529) {
        assert.ok(err instanceof Anthropic.OverloadedError);
        assert.equal((err.error as Anthropic.ErrorResponse).error.type, 'overloaded_error');
      }
      if (err.status === 429) assert.ok(err instanceof Anthropic.RateLimitError);
    }
    assert.deepEqual([...statuses].sort(), [429, 500, 529]);
  }));

test('anthropic: the key is checked as Anthropic checks it (x-api-key or bearer), and anthropic-version is required', () =>
  withServer({ apiKey: 'secret' }, async (server) => {
    const wrong = await anthropicClient(server, { apiKey: 'nope', maxRetries: 0 })
      .messages.batches.list()
      .catch((e: unknown) => e);
    assert.ok(wrong instanceof Anthropic.AuthenticationError);
    assert.equal((wrong.error as Anthropic.ErrorResponse).error.type, 'authentication_error');
    assert.equal(
      (await anthropicClient(server, { apiKey: 'secret' }).messages.batches.list()).data.length,
      0,
    );

    const url = `${server.origin}/v1/messages/batches`;
    const viaHeader = await fetch(url, {
      headers: { 'x-api-key': 'secret', 'anthropic-version': '2023-06-01' },
    });
    assert.equal(viaHeader.status, 200, 'x-api-key is accepted');
    const noVersion = await fetch(url, { headers: { 'x-api-key': 'secret' } });
    assert.equal(noVersion.status, 400);
    const body = (await noVersion.json()) as Anthropic.ErrorResponse;
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /anthropic-version/);
    const noKey = await fetch(url, { headers: { 'anthropic-version': '2023-06-01' } });
    assert.equal(noKey.status, 401);
    assert.ok(!(await noKey.text()).includes('secret'), 'the key is never echoed');
  }));

test('anthropic: --lose-create-responses creates the batch but loses the answer; --truncate-downloads cuts the first results in half', () =>
  withServer({ loseCreateResponses: 1, truncateDownloads: 1 }, async (server) => {
    const client = anthropicClient(server, { maxRetries: 0 });
    const requests = textRequests(9);
    const lost = await client.messages.batches.create({ requests }).catch((e: unknown) => e);
    assert.ok(lost instanceof Anthropic.APIConnectionError, 'the client sees a network error');
    const listed = (await client.messages.batches.list()).data;
    assert.equal(listed.length, 1, 'yet the batch was created: listing finds it');
    const id = (listed[0] as MessageBatch).id;
    await waitEnded(client, id);
    assert.equal(
      (await resultsOf(client, id)).length,
      4,
      'the first download ends cleanly after half its lines',
    );
    assert.equal(byCustomId(await resultsOf(client, id)).size, requests.length, 'the next one is whole');
  }));
