/**
 * `--provider anthropic` end to end on the built-in server (its Anthropic Message Batches API, through
 * the official SDK): the BA reviews with a JSON-schema tool against the same run on `--provider
 * openai`, ids Anthropic would refuse, and the provider recorded with the run.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { BatchpipeError } from '../src/errors.js';
import { openProvider } from '../src/providers/open-provider.js';
import { BA_REVIEWS, readRequestFiles, runCli, tempDir } from './support.js';

/** One schema, asked for in each provider's own way. */
const SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
    topics: { type: 'array', items: { type: 'string' } },
  },
  required: ['sentiment', 'topics'],
  additionalProperties: false,
};
const PROMPT = 'Classify this review: {{ReviewBody}}';

const BODIES = {
  openai: {
    messages: [{ role: 'user', content: PROMPT }],
    response_format: { type: 'json_schema', json_schema: { name: 'review', strict: true, schema: SCHEMA } },
  },
  anthropic: {
    messages: [{ role: 'user', content: PROMPT }],
    tools: [{ name: 'classify', input_schema: SCHEMA }],
    tool_choice: { type: 'tool', name: 'classify' },
  },
};

const MODELS = { openai: 'gpt-4o-mini', anthropic: 'claude-haiku-4-5' };

/** The key a run without `--backend local` would need is never set here. */
const NO_KEYS = { ANTHROPIC_API_KEY: '', OPENAI_API_KEY: '' };

async function runBa(dir: string, provider: 'openai' | 'anthropic') {
  const body = path.join(dir, `${provider}-body.json`);
  writeFileSync(body, JSON.stringify(BODIES[provider]));
  const results = path.join(dir, `${provider}.csv`);
  const run = await runCli(
    [
      'run',
      BA_REVIEWS,
      '--provider',
      provider,
      '--backend',
      'local',
      '--ledger',
      path.join(dir, `${provider}.db`),
      '--model',
      MODELS[provider],
      '--id-column',
      'ReviewID',
      '--body',
      body,
      '--output-schema',
      writeSchema(dir),
      '--expand',
      '--results',
      results,
    ],
    { env: NO_KEYS },
  );
  assert.equal(run.code, 0, run.stderr);
  return parse(readFileSync(results), { relax_column_count: false }) as string[][];
}

function writeSchema(dir: string): string {
  const file = path.join(dir, 'schema.json');
  writeFileSync(file, JSON.stringify(SCHEMA));
  return file;
}

test('the BA reviews with a JSON schema on --provider anthropic: 3,701 rows in input order, the same columns as --provider openai, the original cells unchanged', async () => {
  const dir = tempDir('bp-anthropic-ba-');
  const [anthropic, openai] = await Promise.all([runBa(dir, 'anthropic'), runBa(dir, 'openai')]);
  const input = parse(readFileSync(BA_REVIEWS), { bom: true }) as string[][];
  const header = input[0]!;
  assert.equal(input.length - 1, 3701);

  assert.deepEqual(anthropic[0], openai[0], 'the same result columns');
  assert.deepEqual(anthropic[0], [
    ...header,
    'result.sentiment',
    'result.topics',
    'result_status',
    'result_error',
  ]);
  assert.equal(anthropic.length, input.length, 'one row per record');
  const at = (name: string) => anthropic[0]!.indexOf(name);
  for (let i = 1; i < input.length; i++) {
    const row = anthropic[i]!;
    // The original cells, as an independent CSV parser reads them from the input.
    assert.deepEqual(row.slice(0, header.length), input[i], `row ${i}`);
    assert.equal(row[at('result_status')], 'succeeded', `row ${i}: ${row[at('result_error')]}`);
    assert.ok(['positive', 'negative', 'mixed'].includes(row[at('result.sentiment')]!), `row ${i}`);
    assert.ok(Array.isArray(JSON.parse(row[at('result.topics')]!)), `row ${i}`);
  }
});

describe('custom ids', () => {
  test('ids with spaces, dots, 65+ characters or a wire-id prefix are sent as valid ids and come back under the originals', async () => {
    const dir = tempDir('bp-anthropic-ids-');
    const ids = [
      'plain_id-1',
      '123456789012345678',
      'with space',
      'dot.ted.id',
      'x'.repeat(65),
      `long ${'y'.repeat(80)}`,
      'bp-looks-like-a-wire-id',
      'ümlaut',
      'ü'.repeat(40),
    ];
    const csv = ['id,text', ...ids.map((id, i) => `${JSON.stringify(id)},text number ${i}`)].join('\n');
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, `${csv}\n`);
    const out = path.join(dir, 'requests');
    const run = await runCli(
      [
        'run',
        input,
        '--provider',
        'anthropic',
        '--backend',
        'local',
        '--ledger',
        path.join(dir, 'l.db'),
        '--out',
        out,
        '--model',
        'claude-haiku-4-5',
        '--id-column',
        'id',
        '--prompt',
        'Echo {{text}}',
        '--format',
        'jsonl',
      ],
      { env: NO_KEYS },
    );
    assert.equal(run.code, 0, run.stderr);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; status: string; record: { id: string } });
    assert.deepEqual(
      rows.map((r) => r.custom_id),
      ids,
    );
    assert.deepEqual(
      rows.map((r) => r.record.id),
      ids,
    );
    assert.ok(rows.every((r) => r.status === 'succeeded'));

    const sent = readRequestFiles(out).lines.map((l) => JSON.parse(l) as { custom_id: string });
    assert.equal(sent.length, ids.length);
    for (const { custom_id } of sent) assert.match(custom_id, /^[A-Za-z0-9_-]{1,64}$/);
    assert.equal(new Set(sent.map((s) => s.custom_id)).size, ids.length, 'no two ids sent alike');
    // Ids Anthropic takes go as they are.
    assert.equal(sent[0]!.custom_id, ids[0]);
    assert.equal(sent[1]!.custom_id, ids[1]);
  });
});

describe('the provider of a run', () => {
  test('is recorded: --provider openai on an anthropic ledger is refused, and the requests speak Anthropic', async () => {
    const dir = tempDir('bp-anthropic-mismatch-');
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,hello\n2,world\n');
    const ledger = path.join(dir, 'l.db');
    const out = path.join(dir, 'requests');
    const prepare = await runCli([
      'prepare',
      input,
      '--provider',
      'anthropic',
      '--ledger',
      ledger,
      '--out',
      out,
      '--model',
      'claude-haiku-4-5',
      '--system',
      'Be brief.',
      '--prompt',
      'Say {{text}}',
    ]);
    assert.equal(prepare.code, 0, prepare.stderr);
    const line = JSON.parse(readRequestFiles(out).lines[0]!);
    assert.deepEqual(line, {
      custom_id: 'req-0',
      method: 'POST',
      url: '/v1/messages',
      body: {
        model: 'claude-haiku-4-5',
        messages: [{ role: 'user', content: 'Say hello' }],
        system: 'Be brief.',
        max_tokens: 1024,
      },
    });

    for (const args of [
      ['submit', '--ledger', ledger, '--provider', 'openai', '--backend', 'local'],
      ['run', '--ledger', ledger, '--provider', 'openai', '--backend', 'local'],
    ]) {
      const refused = await runCli(args, { env: NO_KEYS });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /BP_LEDGER_MISMATCH/);
      assert.match(refused.stderr, /--provider anthropic, not openai/);
    }
    // Without --provider the ledger's is used; without a key and a local backend, the key is named.
    const noKey = await runCli(['submit', '--ledger', ledger], { env: NO_KEYS });
    assert.equal(noKey.code, 1, noKey.stderr);
    assert.match(noKey.stderr, /BP_NO_API_KEY/);
    assert.match(noKey.stderr, /ANTHROPIC_API_KEY/);
  });

  test('--upstream, which forwards only OpenAI requests, is a usage error with --provider anthropic', async () => {
    const dir = tempDir('bp-anthropic-upstream-');
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,hello\n');
    const ledger = path.join(dir, 'l.db');
    const run = await runCli(
      [
        'run',
        input,
        '--provider',
        'anthropic',
        '--backend',
        'local',
        '--upstream',
        'http://127.0.0.1:9/v1',
        '--ledger',
        ledger,
        '--model',
        'claude-haiku-4-5',
        '--prompt',
        '{{text}}',
      ],
      { env: NO_KEYS },
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--upstream forwards OpenAI requests only/);
    assert.equal(existsSync(ledger), false, 'refused before any work');
  });

  test('an endpoint the provider does not have is a usage error', async () => {
    const dir = tempDir('bp-anthropic-endpoint-');
    const input = path.join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,hello\n');
    const run = await runCli([
      'prepare',
      input,
      '--provider',
      'anthropic',
      '--ledger',
      path.join(dir, 'l.db'),
      '--model',
      'claude-haiku-4-5',
      '--endpoint',
      '/v1/chat/completions',
      '--prompt',
      '{{text}}',
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /--provider anthropic has no endpoint \/v1\/chat\/completions; expected \/v1\/messages/,
    );
  });
});

describe('limits', () => {
  test('a request file over 100,000 requests is refused before anything is sent; one at the limit goes', async () => {
    const dir = tempDir('bp-anthropic-limits-');
    const line = (i: number) =>
      `${JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/messages', body: { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } })}\n`;
    const write = (name: string, count: number) => {
      const file = path.join(dir, name);
      writeFileSync(file, Array.from({ length: count }, (_, i) => line(i)).join(''));
      return file;
    };
    const over = write('over.jsonl', 100_001);
    const provider = await openProvider({
      provider: 'anthropic',
      backend: 'local',
      ledgerPath: path.join(dir, 'l.db'),
    });
    try {
      const create = (file: string, lines: number) =>
        provider.createBatch({
          intent: { runId: 'run', intentId: file, fileName: path.basename(file) },
          endpoint: '/v1/messages',
          model: 'claude-haiku-4-5',
          input: { path: file, lines, bytes: 0 },
        });
      await assert.rejects(create(over, 100_001), (err: unknown) => {
        assert.ok(err instanceof BatchpipeError);
        assert.equal(err.code, 'BP_BATCH_TOO_LARGE');
        return true;
      });
      assert.equal(
        await provider.findBatchByIntent(
          { runId: 'run', intentId: 'x', fileName: 'x' },
          { createdSince: undefined },
        ),
        undefined,
        'nothing was created',
      );
      const batch = await create(write('at.jsonl', 100_000), 100_000);
      assert.equal(batch.counts?.total, 100_000);
      await provider.cancelBatch(batch.id);
    } finally {
      await provider.close();
    }
  });
});
