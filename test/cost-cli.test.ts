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

/** A model's rates in prices.json: USD per 1M tokens. */
function tableRates(model: string, path: 'sync' | 'batch'): { input: number; output: number } {
  const table = JSON.parse(readFileSync(`${REPO_ROOT}/prices.json`, 'utf8'));
  return table.models[model][path];
}

/** Tokens × USD per 1M, exactly, in pico-dollars: rates have at most 6 decimals, so as integers of micro-dollars per 1M tokens the product is exact. */
function handPico(
  inputTokens: number,
  outputTokens: number,
  rates: { input: number; output: number },
): bigint {
  return (
    BigInt(inputTokens) * BigInt(Math.round(rates.input * 1e6)) +
    BigInt(outputTokens) * BigInt(Math.round(rates.output * 1e6))
  );
}

/** Pico-dollars to the micro-dollar, halves up. */
function roundPico(pico: bigint): number {
  return Number((pico + 500_000n) / 1_000_000n);
}

/** prices.json's gpt-4o-mini rates, by hand: tokens × USD per 1M, to the micro-dollar (halves up). */
function handCost(inputTokens: number, outputTokens: number, path: 'sync' | 'batch'): number {
  return roundPico(handPico(inputTokens, outputTokens, tableRates('gpt-4o-mini', path)));
}

/** A decimal of dollars (`0.00000007625`) as pico-dollars, from its text (no float arithmetic). */
function picoOfText(usd: string): bigint {
  const match = /^(\d+)\.(\d{6,12})$/.exec(usd);
  assert.ok(match, `${JSON.stringify(usd)} is dollars with 6 to 12 decimals`);
  return BigInt(match[1]!) * 1_000_000_000_000n + BigInt(match[2]!.padEnd(12, '0'));
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
  const eventsUsd = applied.reduce((sum, e) => sum + e.costUsd!, 0);
  assert.equal(Math.round(eventsUsd * 1e6), status.cost.spent.batch_micro_usd);
  assert.equal(status.requests.succeeded, est.requests);
  assert.equal(status.cost.spent.input_tokens, est.models[0]!.input_tokens);
  assert.ok(status.cost.spent.output_tokens <= est.models[0]!.output_tokens!, 'max_tokens bounds the output');
  assert.equal(status.cost.projected.batch_micro_usd, status.cost.spent.batch_micro_usd);
  // The run's tokens priced in one sum, rounded once.
  assert.equal(
    status.cost.spent.batch_micro_usd,
    handCost(status.cost.spent.input_tokens, status.cost.spent.output_tokens, 'batch'),
  );
  assert.equal(
    status.cost.spent.sync_micro_usd,
    handCost(status.cost.spent.input_tokens, status.cost.spent.output_tokens, 'sync'),
  );

  const results = await runCli(['results', '--ledger', ledger, '--cost']);
  assert.equal(results.code, 0, results.stderr);
  const rows = parse(results.stdout, { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, est.requests);
  const rowsPico = rows.reduce((sum, row) => sum + picoOfText(row.result_cost_usd!), 0n);
  assert.equal(roundPico(rowsPico), status.cost.spent.batch_micro_usd, 'the rows add up to the spent total');

  // Each row priced by hand from its own usage, exactly (the JSON number's text, not a float).
  const jsonl = await runCli(['results', '--ledger', ledger, '--cost', '--format', 'jsonl']);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  let byHand = 0n;
  for (const line of jsonl.stdout.trim().split('\n')) {
    const row = JSON.parse(line) as { usage: { input_tokens: number; output_tokens: number } };
    const pico = handPico(
      row.usage.input_tokens,
      row.usage.output_tokens,
      tableRates('gpt-4o-mini', 'batch'),
    );
    assert.equal(picoOfText(/"cost_usd":([\d.]+)\}$/.exec(line)![1]!), pico, line);
    byHand += pico;
  }
  assert.equal(byHand, rowsPico);
});

/** `run` of CSV `stdin` on the local backend, quietly, with `args` for the model, prompt and prices. */
function localRun(ledger: string, stdin: string, args: string[]) {
  return runCli(
    ['run', '-', '--backend', 'local', '--ledger', ledger, '--poll-interval', '0.05', '-q', ...args],
    {
      stdin,
    },
  );
}

test('requests cheaper than half a micro-dollar each: status prices their tokens, rows keep every digit', async () => {
  // text-embedding-3-small in batch: $0.01 per 1M tokens, so a request of a few tokens costs
  // hundredths of a micro-dollar. Rounding each request would make the run cost $0.
  const dir = tempDir();
  const ledger = path.join(dir, 'l.db');
  const words = ['late', 'rude', 'great seats', 'friendly staff', 'would fly again', 'lost bag'];
  const stdin = `id,text\n${Array.from({ length: 300 }, (_, i) => `${i},${words[i % 6]} ${words[(i * 7) % 6]}`).join('\n')}\n`;
  const body = path.join(dir, 'body.json');
  writeFileSync(body, JSON.stringify({ model: 'text-embedding-3-small', input: '{{text}}', dimensions: 4 }));
  const run = await localRun(ledger, stdin, [
    '--model',
    'text-embedding-3-small',
    '--endpoint',
    '/v1/embeddings',
    '--id-column',
    'id',
    '--body',
    body,
  ]);
  assert.equal(run.code, 0, run.stderr);
  const { cost } = await statusJson(ledger);
  assert.equal(cost.spent.requests, 300);
  const batchPico = handPico(cost.spent.input_tokens, 0, tableRates('text-embedding-3-small', 'batch'));
  assert.ok(
    batchPico / BigInt(cost.spent.requests) < 500_000n,
    'each request costs under half a micro-dollar',
  );
  assert.ok(cost.spent.batch_micro_usd > 0);
  assert.equal(cost.spent.batch_micro_usd, roundPico(batchPico));
  assert.equal(
    cost.spent.sync_micro_usd,
    roundPico(handPico(cost.spent.input_tokens, 0, tableRates('text-embedding-3-small', 'sync'))),
  );
  const results = await runCli(['results', '--ledger', ledger, '--cost']);
  assert.equal(results.code, 0, results.stderr);
  const rows = parse(results.stdout, { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, 300);
  assert.equal(
    rows.reduce((sum, row) => sum + picoOfText(row.result_cost_usd!), 0n),
    batchPico,
    'the rows add up to the exact cost',
  );
});

test('a long-context tier prices each request by its own input, in status and in each row', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'l.db');
  const base = { input: 1, output: 2 };
  const long = { input: 3, output: 7 };
  const prices = path.join(dir, 'prices.json');
  writeFileSync(
    prices,
    JSON.stringify({
      models: {
        'acme-long': {
          sync: { input: 2, output: 4 },
          batch: base,
          longContext: { aboveInputTokens: 14, sync: { input: 6, output: 14 }, batch: long },
        },
      },
    }),
  );
  const texts = ['ok', 'late', 'The flight was late, the crew was rude and my bag went to another city.'];
  const stdin = `id,text\n${Array.from({ length: 30 }, (_, i) => `${i},"${texts[i % 3]} ${'again '.repeat(i % 4)}"`).join('\n')}\n`;
  const run = await localRun(ledger, stdin, [
    '--model',
    'acme-long',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--price-file',
    prices,
  ]);
  assert.equal(run.code, 0, run.stderr);
  const jsonl = await runCli([
    'results',
    '--ledger',
    ledger,
    '--cost',
    '--format',
    'jsonl',
    '--price-file',
    prices,
  ]);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  let byHand = 0n;
  const tiers = new Set<string>();
  for (const line of jsonl.stdout.trim().split('\n')) {
    const { usage } = JSON.parse(line) as { usage: { input_tokens: number; output_tokens: number } };
    const tier = usage.input_tokens > 14 ? long : base;
    tiers.add(tier === long ? 'long' : 'base');
    const pico = handPico(usage.input_tokens, usage.output_tokens, tier);
    assert.equal(picoOfText(/"cost_usd":([\d.]+)\}$/.exec(line)![1]!), pico, line);
    byHand += pico;
  }
  assert.deepEqual([...tiers].sort(), ['base', 'long'], 'requests on both sides of the tier');
  const status = await runCli(['status', '--ledger', ledger, '--json', '--price-file', prices]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as StatusJson).cost.spent.batch_micro_usd, roundPico(byHand));
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
