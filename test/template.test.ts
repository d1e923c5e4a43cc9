import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compileRequestBuilder,
  compileTailEncoder,
  type RequestTemplateOptions,
} from '../src/transforms/request-builder.js';
import { createRequestEncoder, joinRequestLine } from '../src/transforms/request-encoder.js';
import { templateNeedsPerRecordValidation, validateLine } from '../src/transforms/request-probe.js';
import { columnFieldResolver, compileTemplate, MissingFieldError } from '../src/transforms/template.js';

test('placeholders render fields as text; dotted paths reach nested objects; whole names win', () => {
  const t = compileTemplate('{{a}} / {{ user.name }} / {{x.y}} / {{n}} / {{obj}}');
  assert.equal(
    t.render({
      a: 'A "q"',
      user: { name: 'Zoë' },
      'x.y': 'whole',
      x: { y: 'nested' },
      n: 1.5,
      obj: { k: [1] },
    }),
    'A "q" / Zoë / whole / 1.5 / {"k":[1]}',
  );
  assert.deepEqual(t.fields, ['a', 'user.name', 'x.y', 'n', 'obj']);
});

test('a missing or null field throws MissingFieldError naming it', () => {
  const t = compileTemplate('Hi {{name}}');
  assert.throws(
    () => t.render({}),
    (err: Error) => err instanceof MissingFieldError && err.field === 'name',
  );
  assert.throws(() => t.render({ name: null }), /field "name" is null/);
  assert.equal(t.render({ name: '' }), 'Hi ');
});

test('an unclosed placeholder is a template error', () => {
  assert.throws(() => compileTemplate('Hi {{name'), /BP_TEMPLATE_INVALID|unclosed/);
});

test('CSV column accessors resolve by header position and fail early on unknown columns', () => {
  const resolve = columnFieldResolver(['id', 'Food&Beverages']);
  assert.equal(compileTemplate('{{Food&Beverages}}', 't', resolve).render(['1', '4']), '4');
  assert.throws(() => compileTemplate('{{food}}', 't', resolve), /not a column of the CSV header/);
});

test('body templates insert values as data, never as JSON text', () => {
  const schema = { type: 'object', properties: { a: { type: 'string' } } };
  const build = compileRequestBuilder({
    model: 'm',
    body: {
      input: ['{{t}}', 'const'],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
    },
  });
  const one = build({ t: '"},{"evil":1' }).body;
  assert.deepEqual(one.input, ['"},{"evil":1', 'const']);
  assert.deepEqual(one.response_format, { type: 'json_schema', json_schema: { name: 'x', schema } });
  assert.equal(JSON.parse(JSON.stringify(one)).input[0], '"},{"evil":1');
});

test('the request builder puts prompt and system where each endpoint wants them', () => {
  const record = { t: 'hello', s: 'be brief' };
  const chat = compileRequestBuilder({ model: 'm', prompt: '{{t}}', system: '{{s}}' })(record);
  assert.deepEqual(chat.body, {
    model: 'm',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello' },
    ],
  });
  const responses = compileRequestBuilder({
    endpoint: '/v1/responses',
    model: 'm',
    prompt: '{{t}}',
    system: '{{s}}',
  })(record);
  assert.deepEqual(responses.body, { model: 'm', input: 'hello', instructions: 'be brief' });
  const completions = compileRequestBuilder({ endpoint: '/v1/completions', model: 'm', prompt: '{{t}}' })(
    record,
  );
  assert.deepEqual(completions.body, { model: 'm', prompt: 'hello' });
  const moderation = compileRequestBuilder({ endpoint: '/v1/moderations', model: 'omni', prompt: '{{t}}' })(
    record,
  );
  assert.deepEqual(moderation.body, { model: 'omni', input: 'hello' });
  assert.throws(
    () => compileRequestBuilder({ endpoint: '/v1/embeddings', model: 'e', prompt: 'x', system: 'y' }),
    /--system applies/,
  );
  assert.throws(() => compileRequestBuilder({ prompt: 'x' }), /a model is required/);
  assert.throws(() => compileRequestBuilder({ model: 'm' }), /nothing to send/);
});

test('the encoder validates per record only when a probe shows a placeholder sits under a constraint', () => {
  const free = { model: 'm', prompt: '{{t}}' };
  assert.equal(templateNeedsPerRecordValidation(free), false, 'a free-text prompt cannot break the schema');
  const encodeFree = createRequestEncoder(free);
  const ok = encodeFree({ t: '' });
  assert.equal(ok.ok, true, 'any string is a valid user message');

  // A templated model must be non-empty: probes catch it, so every record is checked.
  const templatedModel = { body: { model: '{{m}}', messages: [{ role: 'user', content: 'x' }] } };
  assert.equal(templateNeedsPerRecordValidation(templatedModel), true);
  const encodeModel = createRequestEncoder(templatedModel, undefined, validateLine);
  const bad = encodeModel({ m: '' });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.field, 'body.model');
  const good = encodeModel({ m: 'gpt' });
  assert.equal(good.ok, true);
  if (good.ok) {
    assert.equal(good.model, 'gpt');
    const line = JSON.parse(joinRequestLine('id-1', good.tail));
    assert.deepEqual(line, {
      custom_id: 'id-1',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt', messages: [{ role: 'user', content: 'x' }] },
    });
  }
});

/**
 * The request a template makes of a record, by an independent reading: every string of the body
 * template with each `{{field}}` replaced by the field's text (objects as JSON).
 */
function referenceBody(node: unknown, record: Record<string, unknown>): unknown {
  if (typeof node === 'string') {
    return node.replace(/\{\{\s*([^{}]+?)\s*\}\}/g, (_, name: string) => {
      const value = record[name];
      return typeof value === 'string' ? value : JSON.stringify(value);
    });
  }
  if (Array.isArray(node)) return node.map((item) => referenceBody(item, record));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, referenceBody(v, record)]));
  }
  return node;
}

test('the JSON-text encoder writes exactly JSON.stringify of the built request', () => {
  const record = {
    t: 'quote " backslash \\ newline \n tab \t emoji 😀 lone \ud800 ctrl \u0001',
    n: 'x',
    id: 'k1',
  };
  const cases: RequestTemplateOptions[] = [
    { model: 'm', prompt: 'Classify: {{t}}', system: 'Be {{n}}', idColumn: 'id' },
    {
      endpoint: '/v1/responses',
      model: 'm',
      prompt: '{{t}}',
      system: 'sys',
      body: {
        temperature: 0.2,
        text: {
          format: {
            type: 'json_schema',
            name: 'x',
            schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
          },
        },
      },
    },
    {
      endpoint: '/v1/embeddings',
      body: {
        model: 'e-{{n}}',
        input: ['{{t}}', 'fixed', '{{n}}{{n}}'],
        dimensions: 3,
        flag: true,
        none: null,
      },
    },
    {
      model: 'm',
      id: 'row-{{id}}-{{n}}',
      body: {
        messages: [{ role: 'developer', content: [{ type: 'text', text: '{{t}}' }] }],
        metadata: { k: '{{n}}' },
      },
    },
  ];
  for (const options of cases) {
    const built = compileRequestBuilder(options)(record);
    const encoded = compileTailEncoder(options)(record);
    assert.equal(encoded.customId, built.customId);
    assert.equal(`{${encoded.tail}`, JSON.stringify({ method: 'POST', url: built.url, body: built.body }));
    assert.equal(encoded.model, built.body.model);
    // The body is the template with the record's fields in (prompt and system placed as the
    // request builder test shows), whatever the text held.
    if (options.prompt === undefined) {
      const model = options.model === undefined ? {} : { model: options.model };
      assert.deepEqual(built.body, { ...(referenceBody(options.body, record) as object), ...model });
    }
  }
});
