import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type OpenAI from 'openai';
import { instanceForSchema } from '../src/server/responder/schema-instance.js';
import { createRng } from '../src/server/util/prng.js';
import {
  assertValid,
  downloadLines,
  type ResultLine,
  removeDir,
  specValidator,
  startTestServer,
  tempDir,
  upload,
  waitForBatch,
  withServer,
  writeJsonl,
} from './server-support.js';

/** Schemas a structured-output request may carry, from flat to recursive. */
const SCHEMAS: Record<string, object> = {
  sentiment: {
    type: 'object',
    properties: {
      sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
      confidence: { type: 'number', minimum: 0, maximum: 1 },
      topics: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
      urgent: { type: 'boolean' },
      stars: { type: 'integer', minimum: 1, maximum: 5 },
    },
    required: ['sentiment', 'confidence', 'topics', 'urgent', 'stars'],
    additionalProperties: false,
  },
  nullableAndAnyOf: {
    type: 'object',
    properties: {
      note: { type: ['string', 'null'] },
      legacy: { type: 'string', nullable: true },
      value: { anyOf: [{ type: 'integer', exclusiveMinimum: 10, exclusiveMaximum: 13 }, { type: 'null' }] },
      kind: { const: 'review' },
      when: { type: 'string', format: 'date-time' },
      code: { type: 'string', minLength: 5, maxLength: 8 },
      tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, uniqueItems: true, minItems: 2 },
      step: { type: 'number', multipleOf: 5, minimum: 1, maximum: 21 },
    },
    required: ['note', 'legacy', 'value', 'kind', 'when', 'code', 'tags', 'step'],
    additionalProperties: false,
  },
  refsAndRecursion: {
    $defs: {
      node: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          children: { type: 'array', items: { $ref: '#/$defs/node' } },
        },
        required: ['name', 'children'],
        additionalProperties: false,
      },
    },
    type: 'object',
    properties: {
      root: { $ref: '#/$defs/node' },
      extra: {
        allOf: [
          { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
          { properties: { b: { type: 'integer' } }, required: ['b'] },
        ],
      },
    },
    required: ['root', 'extra'],
    additionalProperties: false,
  },
  topLevelArray: {
    type: 'array',
    items: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
    minItems: 2,
  },
  oneOfShapes: {
    oneOf: [
      {
        type: 'object',
        properties: { kind: { const: 'circle' }, r: { type: 'number', minimum: 0 } },
        required: ['kind', 'r'],
        additionalProperties: false,
      },
      {
        type: 'object',
        properties: { kind: { const: 'square' }, side: { type: 'number' } },
        required: ['kind', 'side'],
        additionalProperties: false,
      },
    ],
  },
};

test('instanceForSchema: instances are valid against each schema, across many seeds', () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const validate = ajv.compile(schema);
    for (let seed = 0; seed < 200; seed++) {
      const value = instanceForSchema(schema, {
        rng: createRng(seed, name),
        words: ['delayed', 'crew', 'baggage'],
      });
      assert.ok(
        validate(value),
        `${name} seed ${seed}: ${JSON.stringify(value)} → ${JSON.stringify(validate.errors)}`,
      );
    }
  }
});

test('instanceForSchema: the same seed gives the same instance, other seeds vary', () => {
  const schema = SCHEMAS.sentiment as object;
  const a = instanceForSchema(schema, { rng: createRng(7) });
  const b = instanceForSchema(schema, { rng: createRng(7) });
  assert.deepEqual(a, b);
  const distinct = new Set(
    Array.from({ length: 20 }, (_, s) => JSON.stringify(instanceForSchema(schema, { rng: createRng(s) }))),
  );
  assert.ok(distinct.size > 1);
});

/** Runs one batch of `lines` against `endpoint` and returns its output and error lines. */
async function runBatch(
  client: OpenAI,
  dir: string,
  endpoint: OpenAI.Batches.BatchCreateParams['endpoint'],
  lines: object[],
) {
  const file = await upload(
    client,
    writeJsonl(dir, `${endpoint.replace(/\W/g, '_')}-${Date.now()}.jsonl`, lines),
  );
  const batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: '24h' });
  const done = await waitForBatch(client, batch.id);
  assert.equal(done.status, 'completed');
  const out = await downloadLines(client, done.output_file_id);
  const errors = await downloadLines(client, done.error_file_id);
  const byId = (id: string): ResultLine => {
    const line = [...out, ...errors].find((l) => l.custom_id === id);
    assert.ok(line, `a line for ${id}`);
    return line;
  };
  return { done, out, errors, byId };
}

const req = (custom_id: string, url: string, body: object) => ({ custom_id, method: 'POST', url, body });

test('chat completions: json_schema content validates, plain text derives from the prompt, 400s land in the error file', () =>
  withServer({ seed: 3 }, async (server, dir) => {
    const validateBody = specValidator('CreateChatCompletionResponse');
    const lines = Object.entries(SCHEMAS).map(([name, schema]) =>
      req(name, '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Classify: the baggage was delayed' }],
        response_format: { type: 'json_schema', json_schema: { name, strict: true, schema } },
      }),
    );
    lines.push(
      req('plain', '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Summarise turbulence complaints' },
        ],
      }),
    );
    lines.push(
      req('two-choices', '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        n: 2,
        messages: [{ role: 'user', content: 'hello there friend' }],
      }),
    );
    lines.push(
      req('short', '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        max_tokens: 2,
        messages: [{ role: 'user', content: 'Summarise turbulence complaints please' }],
      }),
    );
    lines.push(
      req('tool', '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Look up flight BA123' }],
        tools: [
          {
            type: 'function',
            function: {
              name: 'lookup',
              parameters: {
                type: 'object',
                properties: { flight: { type: 'string' } },
                required: ['flight'],
              },
            },
          },
        ],
        tool_choice: 'required',
      }),
    );
    lines.push(req('no-messages', '/v1/chat/completions', { model: 'gpt-4o-mini' }));
    const { done, out, errors, byId } = await runBatch(server.client, dir, '/v1/chat/completions', lines);

    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      const body = byId(name).response?.body;
      assertValid(validateBody, body, `the ${name} chat.completion`);
      const content = JSON.parse(body.choices[0].message.content);
      assert.ok(
        ajv.validate(schema, content),
        `${name}: ${JSON.stringify(content)} → ${JSON.stringify(ajv.errors)}`,
      );
    }
    const plain = byId('plain').response?.body;
    assertValid(validateBody, plain, 'a plain chat.completion');
    assert.match(plain.choices[0].message.content, /turbulence|complaints|summarise/);
    assert.equal(byId('two-choices').response?.body.choices.length, 2);
    assert.equal(byId('short').response?.body.choices[0].finish_reason, 'length');
    const call = byId('tool').response?.body.choices[0];
    assert.equal(call.finish_reason, 'tool_calls');
    assert.equal(call.message.tool_calls[0].function.name, 'lookup');
    assert.equal(typeof JSON.parse(call.message.tool_calls[0].function.arguments).flight, 'string');

    const bad = byId('no-messages');
    assert.equal(bad.response?.status_code, 400);
    assert.equal(bad.response?.body.error.code, 'missing_required_parameter');
    assert.equal(bad.response?.body.error.param, 'messages');
    assert.ok(errors.includes(bad) && !out.includes(bad), 'a 400 goes to the error file');
    assert.deepEqual(done.request_counts, { total: lines.length, completed: lines.length - 1, failed: 1 });
  }));

test('the responder is deterministic for a request and seed, and the seed changes it', async () => {
  const dir = tempDir();
  const contents = async (seed: number) => {
    const server = await startTestServer({ seed });
    try {
      const lines = Array.from({ length: 8 }, (_, i) =>
        req(`r${i}`, '/v1/chat/completions', {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `Rate the legroom, the meal and the crew, take ${i}` }],
        }),
      );
      const { out } = await runBatch(server.client, dir, '/v1/chat/completions', lines);
      return Object.fromEntries(out.map((l) => [l.custom_id, l.response?.body.choices[0].message.content]));
    } finally {
      await server.close();
      await removeDir(server.dataDir);
    }
  };
  try {
    const first = await contents(1);
    assert.deepEqual(await contents(1), first);
    assert.notDeepEqual(await contents(2), first);
  } finally {
    await removeDir(dir);
  }
});

test('embeddings honour dimensions and give unit vectors, one per input; equal texts embed equally', () =>
  withServer({}, async (server, dir) => {
    const validateBody = specValidator('CreateEmbeddingResponse');
    const lines = [
      req('small', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'the crew was kind' }),
      req('dims', '/v1/embeddings', {
        model: 'text-embedding-3-small',
        input: ['a', 'the crew was kind', 'c'],
        dimensions: 8,
      }),
      req('b64', '/v1/embeddings', {
        model: 'text-embedding-3-small',
        input: 'x',
        dimensions: 4,
        encoding_format: 'base64',
      }),
      req('empty', '/v1/embeddings', { model: 'text-embedding-3-small', input: '' }),
      req('same', '/v1/embeddings', {
        model: 'text-embedding-3-small',
        input: ['the crew was kind'],
        dimensions: 8,
      }),
    ];
    const { byId } = await runBatch(server.client, dir, '/v1/embeddings', lines);
    const small = byId('small').response?.body;
    assertValid(validateBody, small, 'an embeddings list');
    assert.equal(small.data[0].embedding.length, 1536);
    const dims = byId('dims').response?.body;
    assertValid(validateBody, dims, 'an embeddings list');
    assert.equal(dims.data.length, 3);
    assert.deepEqual(
      dims.data.map((d: { index: number }) => d.index),
      [0, 1, 2],
    );
    for (const d of dims.data) {
      assert.equal(d.embedding.length, 8);
      const norm = Math.hypot(...d.embedding);
      assert.ok(Math.abs(norm - 1) < 1e-4, `unit length, got ${norm}`);
    }
    assert.ok(dims.usage.prompt_tokens > 0);
    assert.equal(Buffer.from(byId('b64').response?.body.data[0].embedding, 'base64').length, 4 * 4);
    assert.equal(byId('empty').response?.status_code, 400);
    assert.deepEqual(byId('same').response?.body.data[0].embedding, dims.data[1].embedding);
    assert.notDeepEqual(dims.data[0].embedding, dims.data[1].embedding);
  }));

test('responses (with text.format json_schema), completions and moderations answer in their own shapes', () =>
  withServer({}, async (server, dir) => {
    const schema = SCHEMAS.sentiment as object;
    const responses = await runBatch(server.client, dir, '/v1/responses', [
      req('json', '/v1/responses', {
        model: 'gpt-4o-mini',
        instructions: 'Classify.',
        input: 'the meal was cold',
        text: { format: { type: 'json_schema', name: 'sentiment', schema, strict: true } },
      }),
      req('text', '/v1/responses', {
        model: 'gpt-4o-mini',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'describe the lounge' }] }],
      }),
    ]);
    const validateResponse = specValidator('Response');
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const id of ['json', 'text']) {
      const body = responses.byId(id).response?.body;
      assertValid(validateResponse, body, `the ${id} response`);
      assert.equal(body.object, 'response');
      assert.equal(body.output[0].content[0].type, 'output_text');
      assert.ok(body.usage.input_tokens > 0 && body.usage.output_tokens > 0);
    }
    const structured = JSON.parse(responses.byId('json').response?.body.output[0].content[0].text);
    assert.ok(ajv.validate(schema, structured), JSON.stringify(ajv.errors));
    assert.equal(
      responses.done.usage?.input_tokens,
      responses.out.reduce((n, l) => n + l.response?.body.usage.input_tokens, 0),
    );

    const completions = await runBatch(server.client, dir, '/v1/completions', [
      req('c', '/v1/completions', {
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Once upon a time in a lounge',
      }),
    ]);
    const completion = completions.byId('c').response?.body;
    assertValid(specValidator('CreateCompletionResponse'), completion, 'a text_completion');
    assert.equal(completion.object, 'text_completion');

    const moderations = await runBatch(server.client, dir, '/v1/moderations', [
      req('m', '/v1/moderations', { model: 'omni-moderation-latest', input: ['one', 'two'] }),
    ]);
    const moderation = moderations.byId('m').response?.body;
    assertValid(specValidator('CreateModerationResponse'), moderation, 'a moderation');
    assert.equal(moderation.results.length, 2);
  }));

test('image and video batches complete with placeholder outputs in the published shapes', () =>
  withServer({}, async (server, dir) => {
    const validateImages = specValidator('ImagesResponse');
    const images = await runBatch(server.client, dir, '/v1/images/generations', [
      req('one', '/v1/images/generations', { model: 'gpt-image-1', prompt: 'a quiet airport lounge' }),
      req('three', '/v1/images/generations', { model: 'gpt-image-1', prompt: 'a runway at dawn', n: 3 }),
      req('no-prompt', '/v1/images/generations', { model: 'gpt-image-1' }),
    ]);
    assert.deepEqual(images.done.request_counts, { total: 3, completed: 2, failed: 1 });
    assert.equal(images.byId('no-prompt').response?.status_code, 400);
    for (const [id, n] of [
      ['one', 1],
      ['three', 3],
    ] as const) {
      const body = images.byId(id).response?.body;
      assertValid(validateImages, body, `the ${id} images response`);
      assert.equal(body.data.length, n);
      for (const image of body.data) {
        const png = Buffer.from(image.b64_json, 'base64');
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
        assert.equal(png.toString('latin1', 12, 16), 'IHDR');
      }
      assert.ok(body.usage.input_tokens > 0);
      assert.equal(body.usage.total_tokens, body.usage.input_tokens + body.usage.output_tokens);
    }

    const edits = await runBatch(server.client, dir, '/v1/images/edits', [
      req('edit', '/v1/images/edits', {
        model: 'gpt-image-1',
        prompt: 'add a rainbow',
        image: 'https://example.com/plane.png',
      }),
    ]);
    assertValid(validateImages, edits.byId('edit').response?.body, 'an images edit response');

    const videos = await runBatch(server.client, dir, '/v1/videos', [
      req('clip', '/v1/videos', { model: 'sora-2', prompt: 'a plane taking off', seconds: '8' }),
    ]);
    const video = videos.byId('clip').response?.body;
    assertValid(specValidator('VideoResource'), video, 'a video job');
    assert.equal(video.object, 'video');
    assert.equal(video.seconds, '8');
    assert.equal(video.prompt, 'a plane taking off');
  }));
