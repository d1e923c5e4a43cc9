import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import OpenAI from 'openai';
import { BA_REVIEWS, REPO_ROOT, runCli, spawnServe, tempDir } from './support.js';

const SYSTEM = 'Classify the airline review. Answer in JSON.';
const PROMPT = '{{ReviewHeader}}\n{{ReviewBody}}';
const MAX_TOKENS = 40;
const BODY = {
  max_tokens: MAX_TOKENS,
  response_format: {
    type: 'json_schema',
    json_schema: {
      name: 'review',
      strict: true,
      schema: {
        type: 'object',
        properties: { sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] } },
        required: ['sentiment'],
        additionalProperties: false,
      },
    },
  },
};

/** The prepare flags of every run here: the BA reviews with a system prompt and a JSON-schema body. */
function prepareFlags(dir: string): string[] {
  const body = path.join(dir, 'body.json');
  writeFileSync(body, JSON.stringify(BODY));
  return [
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'ReviewID',
    '--system',
    SYSTEM,
    '--prompt',
    PROMPT,
    '--body',
    body,
  ];
}

/**
 * Each review's input tokens counted with gpt-tokenizer itself (not batchpipe's counter): OpenAI's
 * chat rule, 3 tokens a message plus its role and content, 3 priming the reply.
 */
function independentInputTokens(): number[] {
  const rows = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];
  const count = (text: string) =>
    countTokens(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
  return rows.map((row) => {
    const user = `${row.ReviewHeader}\n${row.ReviewBody}`;
    return 3 + (3 + count('system') + count(SYSTEM)) + (3 + count('user') + count(user));
  });
}

/** prices.json's gpt-4o-mini rates, by hand: tokens × USD per 1M, to the micro-dollar (halves up). */
function handCost(inputTokens: number, outputTokens: number, path: 'sync' | 'batch'): number {
  const table = JSON.parse(readFileSync(`${REPO_ROOT}/prices.json`, 'utf8'));
  const rates = table.models['gpt-4o-mini'][path] as { input: number; output: number };
  // Rates have at most 6 decimals: as integers of micro-dollars per 1M tokens the product is exact.
  const pico =
    BigInt(inputTokens) * BigInt(Math.round(rates.input * 1e6)) +
    BigInt(outputTokens) * BigInt(Math.round(rates.output * 1e6));
  return Number((pico + 500_000n) / 1_000_000n);
}

interface EstimateJson {
  requests: number;
  files: number;
  models: { input_tokens: number; output_tokens: number | null; output_from: string }[];
  total: { sync_micro_usd: number; batch_micro_usd: number; saving_usd: number };
}

async function estimate(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: Buffer } = {},
) {
  const result = await runCli(['estimate', ...args, '--json'], options);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as EstimateJson;
}

describe('estimate', () => {
  test('BA reviews: input tokens equal gpt-tokenizer counted per request; dollars equal prices.json by hand; nothing on disk', async () => {
    const dir = tempDir();
    const cwd = tempDir();
    const tmp = tempDir();
    const est = await estimate([BA_REVIEWS, ...prepareFlags(dir)], { cwd, env: { TMPDIR: tmp } });
    const perRequest = independentInputTokens();
    assert.equal(est.requests, perRequest.length);
    const input = perRequest.reduce((a, b) => a + b, 0);
    const [model] = est.models;
    assert.equal(model!.input_tokens, input);
    assert.equal(model!.output_tokens, perRequest.length * MAX_TOKENS);
    assert.match(model!.output_from, /max_tokens \(upper bound\)/);
    const output = perRequest.length * MAX_TOKENS;
    assert.equal(est.total.sync_micro_usd, handCost(input, output, 'sync'));
    assert.equal(est.total.batch_micro_usd, handCost(input, output, 'batch'));
    assert.ok(est.total.saving_usd > 0);
    // No ledger, no request files: neither where it ran nor in the temp dir it prepared in.
    assert.deepEqual(readdirSync(cwd), []);
    assert.deepEqual(readdirSync(tmp), []);
  });

  test('--expect-output-tokens replaces the limits; the table names both paths and the saving', async () => {
    const dir = tempDir();
    const est = await estimate([BA_REVIEWS, ...prepareFlags(dir), '--expect-output-tokens', '7']);
    assert.equal(est.models[0]!.output_tokens, est.requests * 7);
    const human = await runCli(['estimate', BA_REVIEWS, ...prepareFlags(dir), '--expect-output-tokens', '7']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /synchronous .*\n.*batch /);
    assert.match(human.stdout, /saving with batch: \$[\d.]+ \(50%\)/);
  });

  test('--ledger: a prepared run gives the same figures as its input; stdin as a file; not both', async () => {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const flags = [...prepareFlags(dir), '--max-lines', '1000'];
    const prepared = await runCli(['prepare', BA_REVIEWS, '--ledger', ledger, ...flags]);
    assert.equal(prepared.code, 0, prepared.stderr);
    const fromInput = await estimate([BA_REVIEWS, ...flags]);
    assert.equal(fromInput.files, 4);
    assert.deepEqual(await estimate(['--ledger', ledger]), fromInput);
    const fromStdin = await estimate(['-', ...flags], { stdin: readFileSync(BA_REVIEWS) });
    assert.deepEqual(fromStdin, fromInput);
    const both = await runCli(['estimate', BA_REVIEWS, '--ledger', ledger]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /BP_USAGE.*input or --ledger, not both/);
  });

  test('an unknown model is BP_UNPRICED naming --price-file; a price file prices it', async () => {
    const dir = tempDir();
    const stdin = 'id,text\n1,hello there\n2,good morning\n';
    const args = [
      '-',
      '--model',
      'acme-1',
      '--id-column',
      'id',
      '--prompt',
      '{{text}}',
      '--expect-output-tokens',
      '10',
    ];
    const refused = await runCli(['estimate', ...args], { stdin });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /BP_UNPRICED.*--price-file/);
    const prices = path.join(dir, 'prices.json');
    writeFileSync(
      prices,
      JSON.stringify({
        models: { 'acme-1': { sync: { input: 2, output: 4 }, batch: { input: 1, output: 2 } } },
      }),
    );
    const priced = await runCli(['estimate', ...args, '--price-file', prices, '--json'], { stdin });
    assert.equal(priced.code, 0, priced.stderr);
    const est = JSON.parse(priced.stdout) as EstimateJson;
    const input = est.models[0]!.input_tokens;
    // 1 and 2 USD per 1M tokens: micro-dollars are the token counts times the rates.
    assert.equal(est.total.batch_micro_usd, input * 1 + 20 * 2);
    assert.equal(est.total.sync_micro_usd, input * 2 + 20 * 4);
  });
});

interface StatusJson {
  requests: { succeeded: number; staged: number; total: number };
  cost: {
    spent: {
      input_tokens: number;
      output_tokens: number;
      batch_micro_usd: number;
      sync_micro_usd: number;
      requests: number;
    };
    projected: { batch_micro_usd: number };
  };
}

async function statusJson(ledger: string): Promise<StatusJson> {
  const status = await runCli(['status', '--ledger', ledger, '--json']);
  assert.equal(status.code, 0, status.stderr);
  return JSON.parse(status.stdout) as StatusJson;
}

test('run on the local backend: actual input tokens equal the estimate; results --cost rows sum to the status total', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'l.db');
  const flags = [...prepareFlags(dir), '--max-lines', '2000'];
  const est = await estimate([BA_REVIEWS, ...flags]);
  const run = await runCli(
    [
      'run',
      BA_REVIEWS,
      '--backend',
      'local',
      '--ledger',
      ledger,
      ...flags,
      '--poll-interval',
      '0.05',
      '--log-format',
      'json',
    ],
    {},
  );
  assert.equal(run.code, 0, run.stderr);
  const events = run.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; costUsd?: number; cost?: StatusJson['cost'] });
  const status = await statusJson(ledger);
  assert.deepEqual(
    events.find((e) => e.type === 'status')?.cost,
    status.cost,
    "the run's closing status has the cost",
  );
  // Each applied result file says what it cost: together, what status says was spent.
  const applied = events.filter((e) => e.type === 'results.applied');
  assert.equal(applied.length, 2);
  const eventsMicro = applied.reduce((sum, e) => sum + Math.round(e.costUsd! * 1e6), 0);
  assert.equal(eventsMicro, status.cost.spent.batch_micro_usd);
  assert.equal(status.requests.succeeded, est.requests);
  assert.equal(status.cost.spent.input_tokens, est.models[0]!.input_tokens);
  assert.ok(status.cost.spent.output_tokens <= est.models[0]!.output_tokens!, 'max_tokens bounds the output');
  assert.equal(status.cost.projected.batch_micro_usd, status.cost.spent.batch_micro_usd);

  const results = await runCli(['results', '--ledger', ledger, '--cost']);
  assert.equal(results.code, 0, results.stderr);
  const rows = parse(results.stdout, { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, est.requests);
  let sum = 0;
  for (const row of rows) {
    assert.match(row.result_cost_usd!, /^\d+\.\d{6}$/);
    sum += Math.round(Number(row.result_cost_usd) * 1e6);
  }
  assert.equal(sum, status.cost.spent.batch_micro_usd);

  // Each row priced by hand from its own usage (each rounded to the micro-dollar, as billed per row).
  const jsonl = await runCli(['results', '--ledger', ledger, '--cost', '--format', 'jsonl']);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  let byHand = 0;
  for (const line of jsonl.stdout.trim().split('\n')) {
    const row = JSON.parse(line) as {
      usage: { input_tokens: number; output_tokens: number };
      cost_usd: number;
    };
    const cost = handCost(row.usage.input_tokens, row.usage.output_tokens, 'batch');
    assert.equal(Math.round(row.cost_usd * 1e6), cost);
    byHand += cost;
  }
  assert.equal(byHand, status.cost.spent.batch_micro_usd);
});

describe('--max-usd', () => {
  test('below the estimate: exit 1 with BP_BUDGET naming the figures; nothing is created on the server', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const dir = tempDir();
      const flags = [...prepareFlags(dir), '--max-lines', '2000'];
      const est = await estimate([BA_REVIEWS, ...flags]);
      const below = ((est.total.batch_micro_usd - 1) / 1e6).toFixed(6);
      const run = await runCli(
        [
          'run',
          BA_REVIEWS,
          '--ledger',
          path.join(dir, 'l.db'),
          '--base-url',
          serve.url,
          ...flags,
          '--max-usd',
          below,
        ],
        { env: { OPENAI_API_KEY: 'local' } },
      );
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /BP_BUDGET/);
      assert.match(
        run.stderr,
        new RegExp(`estimated at \\$${(est.total.batch_micro_usd / 1e6).toFixed(6).replace(/0+$/, '')}`),
      );
      assert.match(run.stderr, new RegExp(`over --max-usd \\$${below.replace(/0+$/, '')}`));
      const client = new OpenAI({ apiKey: 'local', baseURL: serve.url });
      assert.equal((await client.batches.list()).data.length, 0);
      assert.equal((await client.files.list()).data.length, 0);
    } finally {
      await serve.stop();
    }
  });

  test('between two files: stops creating batches at the budget, leaving the run resumable', async () => {
    const data = tempDir();
    const serve = await spawnServe(['--data', data]);
    try {
      const dir = tempDir();
      const ledger = path.join(dir, 'l.db');
      // One output token a request assumed: the start fits; the answers bill more, so after the
      // first file's batch, spent + the second file's estimate is over the budget.
      const flags = [...prepareFlags(dir), '--max-lines', '2000', '--expect-output-tokens', '1'];
      const est = await estimate([BA_REVIEWS, ...flags]);
      assert.equal(est.files, 2);
      const budget = (est.total.batch_micro_usd / 1e6).toFixed(6);
      const args = [
        'run',
        BA_REVIEWS,
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        ...flags,
        '--max-batches',
        '1',
        '--poll-interval',
        '0.05',
      ];
      const env = { OPENAI_API_KEY: 'local' };
      const run = await runCli([...args, '--max-usd', budget], { env });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /BP_BUDGET.*stopped at the budget: spent \$[\d.]+, .*over --max-usd/);
      const client = new OpenAI({ apiKey: 'local', baseURL: serve.url });
      assert.equal((await client.batches.list()).data.length, 1, 'one batch, the second file held back');
      const status = await statusJson(ledger);
      assert.equal(status.requests.succeeded + status.requests.staged, est.requests);
      assert.ok(status.requests.staged > 0);
      assert.ok(status.cost.spent.batch_micro_usd > 0);

      // The budget stays with the run: collect (which sends what is ready too) stops at it as well.
      const collect = await runCli(
        ['collect', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.05'],
        { env },
      );
      assert.equal(collect.code, 1, collect.stderr);
      assert.match(collect.stderr, /BP_BUDGET.*stopped at the budget/);
      assert.equal((await client.batches.list()).data.length, 1);

      // Resumable: the same run with room for the rest finishes it.
      const rest = await runCli(
        ['run', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.05', '--max-usd', '100'],
        { env },
      );
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal((await client.batches.list()).data.length, 2);
      assert.equal((await statusJson(ledger)).requests.succeeded, est.requests);
    } finally {
      await serve.stop();
    }
  });
});

test("the enqueued-token limit is checked against each file's real token count, made before its batch", async () => {
  const texts = [
    'The flight was late and the crew was rude.',
    'Great seats, friendly staff; would fly again!',
    'ok',
  ];
  const stdin = `id,text\n${texts.map((t, i) => `${i},"${t}"`).join('\n')}\n`;
  const count = (text: string) => countTokens(text);
  // One file: each request a user message `Review: <text>`, with the chat framing.
  const real = texts.map((t) => 3 + 3 + count('user') + count(`Review: ${t}`)).reduce((a, b) => a + b, 0);
  const run = (dir: string, limit: number) =>
    runCli(
      [
        'run',
        '-',
        '--backend',
        'local',
        '--ledger',
        path.join(dir, 'l.db'),
        '--model',
        'gpt-4o-mini',
        '--id-column',
        'id',
        '--prompt',
        'Review: {{text}}',
        '--max-enqueued-tokens',
        String(limit),
        '--no-wait',
      ],
      { stdin },
    );
  const refused = await run(tempDir(), real - 1);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(`BP_TOKEN_LIMIT.* holds ~${real} tokens, more than --max-enqueued-tokens ${real - 1}`),
  );
  const fits = await run(tempDir(), real);
  assert.equal(fits.code, 0, fits.stderr);
  assert.match(fits.stderr, new RegExp(`~${real} tokens queued`));
});
