import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  actualCost,
  billedTokens,
  estimateCost,
  loadPriceTable,
  lookupPrice,
  type PriceTable,
} from '../src/cost/prices.js';
import { REPO_ROOT, tempDir } from './support.js';

interface RatesJson {
  input: number;
  cachedInput?: number;
  cacheWrite?: number;
  output: number;
}
interface EntryJson {
  sync: RatesJson;
  batch?: RatesJson;
  flex?: RatesJson;
  longContext?: { aboveInputTokens: number; sync: RatesJson; batch?: RatesJson; flex?: RatesJson };
  pricesAsOf?: string;
  source?: string;
  batchSource?: string;
  flexSource?: string;
  aliases?: string[];
}
const PRICES = JSON.parse(readFileSync(path.join(REPO_ROOT, 'prices.json'), 'utf8')) as {
  sources: Record<string, { title: string; url: string }>;
  models: Record<string, EntryJson>;
};

/** A rate as an integer of micro-dollars per 1M tokens, read from its decimal text (no float arithmetic). */
function micro(rate: number): bigint {
  const [whole, fraction = ''] = String(rate).split('.');
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
}

function halves(sync: RatesJson, other: RatesJson | undefined, what: string): void {
  assert.ok(other, `${what} rates are given`);
  for (const key of ['input', 'cachedInput', 'cacheWrite', 'output'] as const) {
    assert.equal(
      sync[key] === undefined,
      other[key] === undefined,
      `${what}.${key} is given with sync.${key}`,
    );
    if (sync[key] !== undefined)
      assert.equal(micro(other[key]!) * 2n, micro(sync[key]), `${what}.${key} is half`);
  }
}

test('every built-in entry cites its sources and the date its prices were checked; batch (and flex) rates are half the synchronous ones', () => {
  const entries = Object.entries(PRICES.models);
  assert.ok(entries.length >= 30);
  for (const [model, entry] of entries) {
    assert.match(entry.pricesAsOf ?? '', /^20\d\d-\d\d-\d\d$/, `${model}: pricesAsOf`);
    for (const key of ['source', 'batchSource'] as const) {
      const source = PRICES.sources[entry[key] ?? ''];
      assert.ok(source, `${model}: ${key} ${entry[key]} is one of the table's sources`);
      assert.match(source.url, /^https:\/\//);
    }
    halves(entry.sync, entry.batch, `${model} batch`);
    if (entry.flex) {
      assert.ok(PRICES.sources[entry.flexSource ?? ''], `${model}: flexSource`);
      halves(entry.sync, entry.flex, `${model} flex`);
    }
    if (entry.longContext) {
      halves(entry.longContext.sync, entry.longContext.batch, `${model} longContext.batch`);
      if (entry.flex) halves(entry.longContext.sync, entry.longContext.flex, `${model} longContext.flex`);
    }
  }
});

test('the models this project documents and tests with are priced', () => {
  const table = loadPriceTable();
  for (const model of [
    'gpt-4o-mini',
    'gpt-4o-mini-2024-07-18',
    'gpt-4o',
    'gpt-4.1',
    'gpt-4.1-mini',
    'gpt-4.1-nano',
    'gpt-5',
    'gpt-5-mini',
    'gpt-5-nano',
    'o1',
    'o3',
    'o3-mini',
    'o4-mini',
    'text-embedding-3-small',
    'text-embedding-3-large',
    'omni-moderation-latest',
    'claude-haiku-4-5',
    'gemini-2.5-flash',
  ]) {
    assert.ok(lookupPrice(table, model).price, model);
  }
  assert.equal(lookupPrice(table, 'gpt-4o-mini-2024-07-18').price?.model, 'gpt-4o-mini');
});

test('an unknown model is BP_UNPRICED naming --price-file, or a warning with allowUnpriced', () => {
  const table = loadPriceTable();
  assert.throws(
    () => lookupPrice(table, 'gpt-4o-2024-05-13'),
    (err: Error & { code?: string }) =>
      err.code === 'BP_UNPRICED' &&
      /no price for model "gpt-4o-2024-05-13" in prices\.json/.test(err.message) &&
      /--price-file FILE/.test(err.message) &&
      /--allow-unpriced/.test(err.message),
  );
  const lookup = lookupPrice(table, 'my-model', { allowUnpriced: true });
  assert.equal(lookup.price, undefined);
  assert.match(lookup.warning ?? '', /no price for model "my-model".*--allow-unpriced/);
  assert.throws(
    () => estimateCost({ model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 1, path: 'flex' }),
    /BP_UNPRICED|no flex price for model "gpt-4o-mini"/,
  );
});

test('estimated costs equal hand computations, in whole micro-dollars rounded half up', () => {
  const usd = (model: string, inputTokens: number, outputTokens: number, path: 'sync' | 'batch' | 'flex') =>
    estimateCost({ model, inputTokens, outputTokens, path }).totalMicroUsd;
  // gpt-4o-mini batch: 1,234,567 × $0.075/M = 92,592.525 µ$; 345,678 × $0.30/M = 103,703.4 µ$; 196,295.925 µ$.
  assert.equal(usd('gpt-4o-mini', 1_234_567, 345_678, 'batch'), 196_296);
  // Synchronously: 1,234,567 × 0.15 + 345,678 × 0.60 = 185,185.05 + 207,406.8 = 392,591.85 µ$.
  assert.equal(usd('gpt-4o-mini', 1_234_567, 345_678, 'sync'), 392_592);
  const parts = estimateCost({
    model: 'gpt-4o-mini',
    inputTokens: 1_234_567,
    outputTokens: 345_678,
    path: 'batch',
  });
  assert.deepEqual([parts.inputMicroUsd, parts.outputMicroUsd, parts.usd], [92_593, 103_703, 0.196296]);
  // Halves up: 7 × 0.075 = 0.525 µ$ → 1; 6 × 0.075 = 0.45 µ$ → 0.
  assert.equal(usd('gpt-4o-mini', 7, 0, 'batch'), 1);
  assert.equal(usd('gpt-4o-mini', 6, 0, 'batch'), 0);
  // gpt-4.1: 40,000 fresh × $2 + 60,000 cached × $0.50 + 5,000 out × $8 = 80,000 + 30,000 + 40,000 µ$.
  assert.equal(
    estimateCost({
      model: 'gpt-4.1',
      inputTokens: 100_000,
      cachedInputTokens: 60_000,
      outputTokens: 5_000,
      path: 'sync',
    }).totalMicroUsd,
    150_000,
  );
  // gpt-5.4 bills a request above 272K input tokens at its long-context rates ($5 in, $22.50 out).
  assert.equal(usd('gpt-5.4', 272_000, 0, 'sync'), 680_000);
  assert.equal(usd('gpt-5.4', 300_000, 1_000, 'sync'), 1_500_000 + 22_500);
  // Flex is priced at Batch API rates where a model has it: gpt-5.5 10,000 × $2.50 + 2,000 × $15.
  assert.equal(usd('gpt-5.5', 10_000, 2_000, 'flex'), 55_000);
  // Exact past 2^53 pico-dollars: 123,456,789,012 × $0.075/M = 9,259,259,175.9 µ$.
  assert.equal(usd('gpt-4o-mini', 123_456_789_012, 0, 'batch'), 9_259_259_176);
  assert.equal(usd('text-embedding-3-small', 1_000_000, 0, 'batch'), 10_000);
  assert.equal(usd('omni-moderation-latest', 1_000_000, 0, 'batch'), 0);
});

test("actual costs come from each response's usage: cached input at its rate, reasoning billed once as output, cache writes apart", () => {
  const chat = {
    prompt_tokens: 1_200,
    completion_tokens: 300,
    prompt_tokens_details: { cached_tokens: 1_024, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 256 },
  };
  // o4-mini batch: 176 × 0.55 + 1,024 × 0.1375 + 300 × 2.2 = 96.8 + 140.8 + 660 = 897.6 µ$.
  const o4 = actualCost(chat, { model: 'o4-mini', path: 'batch' });
  assert.equal(o4.totalMicroUsd, 898);
  assert.deepEqual(o4.tokens, {
    inputTokens: 1_200,
    cachedInputTokens: 1_024,
    cacheWriteTokens: 0,
    outputTokens: 300,
    reasoningTokens: 256,
  });
  const responses = {
    input_tokens: 10_000,
    input_tokens_details: { cached_tokens: 1_000, cache_write_tokens: 4_000 },
    output_tokens: 500,
    output_tokens_details: { reasoning_tokens: 100 },
    total_tokens: 10_500,
  };
  // gpt-5.6-terra sync: 5,000 × $2 + 1,000 × $0.20 + 4,000 × $2.50 + 500 × $12 = 10,000 + 200 + 10,000 + 6,000 µ$.
  assert.equal(actualCost(responses, { model: 'gpt-5.6-terra', path: 'sync' }).totalMicroUsd, 26_200);
  // Embeddings report prompt tokens only: 8,000 × $0.13/M × 1/2.
  assert.equal(
    actualCost(
      { prompt_tokens: 8_000, total_tokens: 8_000 },
      { model: 'text-embedding-3-large', path: 'batch' },
    ).totalMicroUsd,
    520,
  );
  assert.deepEqual(billedTokens(null), {
    inputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
  });
});

function priceFile(content: unknown): string {
  const file = path.join(tempDir('bp-prices-'), 'prices.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

test('--price-file replaces whole entries and adds models; the names of a replaced entry go with it', () => {
  const file = priceFile({
    models: {
      'gpt-4o-mini': {
        sync: { input: 0.2, output: 0.8 },
        batch: { input: 0.1, output: 0.4 },
        pricesAsOf: '2026-12-01',
      },
      'my-finetune': { aliases: ['ft:gpt-4o-mini:acme::x1'], sync: { input: 0.3, output: 1.2 } },
    },
  });
  const table: PriceTable = loadPriceTable([file]);
  assert.deepEqual(table.origins, ['prices.json', file]);
  const mini = lookupPrice(table, 'gpt-4o-mini').price!;
  assert.equal(mini.source, file, 'an entry without a source names its file');
  assert.equal(mini.sync.cachedInput, undefined, 'none of the built-in rates are kept');
  // No cached rate: cached tokens bill as input. 1,000 × $0.10 + 100 × $0.40 = 100 + 40 µ$.
  assert.equal(
    estimateCost(
      { model: 'gpt-4o-mini', inputTokens: 1_000, cachedInputTokens: 500, outputTokens: 100, path: 'batch' },
      table,
    ).totalMicroUsd,
    140,
  );
  assert.throws(() => lookupPrice(table, 'gpt-4o-mini-2024-07-18'), /BP_UNPRICED|no price for model/);
  assert.equal(lookupPrice(table, 'ft:gpt-4o-mini:acme::x1').price?.model, 'my-finetune');
  assert.throws(
    () => estimateCost({ model: 'my-finetune', inputTokens: 1, outputTokens: 1, path: 'batch' }, table),
    /no batch price for model "my-finetune" \(its prices come from .*prices\.json\)/,
  );
  assert.equal(lookupPrice(table, 'gpt-4.1').price?.sync.input, 2, 'other built-in entries stay');
});

test('a bad --price-file is refused with what is wrong and where', () => {
  const refuses = (content: unknown, code: string, message: RegExp) => {
    const file = priceFile(content);
    assert.throws(
      () => loadPriceTable([file]),
      (err: Error & { code?: string; file?: string }) =>
        err.code === code && err.file === file && message.test(err.message),
      `${JSON.stringify(content)} → ${message}`,
    );
  };
  refuses('{"models": ', 'BP_USAGE', /is not JSON/);
  refuses({ models: { m: { sync: { input: -1, output: 1 } } } }, 'BP_USAGE', /models\.m\.sync\.input: /);
  refuses({ models: { m: { sync: { input: 0.1234567, output: 1 } } } }, 'BP_USAGE', /at most 6 decimals/);
  refuses({ models: { m: { sync: { input: 1 } } } }, 'BP_USAGE', /models\.m\.sync\.output/);
  refuses(
    {
      models: { a: { sync: { input: 1, output: 1 } }, b: { aliases: ['a'], sync: { input: 1, output: 1 } } },
    },
    'BP_USAGE',
    /"a" names both a and b/,
  );
  refuses({ prices: {} }, 'BP_USAGE', /models/);
  assert.throws(
    () => loadPriceTable([path.join(tempDir(), 'missing.json')]),
    (err: Error & { code?: string }) =>
      err.code === 'BP_IO' && /cannot read the price file/.test(err.message),
  );
});
