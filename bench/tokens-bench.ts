/**
 * What exact token counting costs per record, in CPU time: prepare's encoder with the characters/4
 * estimate against the same encoder with `compileInputTokenCounter`, and batchpipe's counter against
 * the tokenizer package's own `countTokens`, on generated feedback and on the BA reviews.
 *
 * @example
 * ```sh
 * node dist/bench/tokens-bench.js                      # 20,000 generated rows and the BA reviews
 * node dist/bench/tokens-bench.js --rows 50000 --encoding cl100k_base
 * ```
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { type EncodingName, tokenCounter } from '../src/cost/text-tokens.js';
import { packageEncoding } from '../src/cost/tokenizer-package.js';
import { compileTailEncoder } from '../src/transforms/request-builder.js';
import { columnFieldResolver } from '../src/transforms/template.js';
import { generateFeedbackCsv } from './generate.js';
import { compileInputTokenCounter } from './template-tokens.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '20000' },
    encoding: { type: 'string', default: 'o200k_base' },
    reviews: {
      type: 'string',
      default: path.join(process.env.BATCHPIPE_SHARED ?? '../shared', 'data/ba-airline-reviews.csv'),
    },
    repeat: { type: 'string', default: '7' },
  },
});
const encoding = values.encoding as EncodingName;
const model = encoding === 'o200k_base' ? 'gpt-4o-mini' : 'gpt-4';
const repeat = Number(values.repeat);

/** Median CPU microseconds per item of `run` over `items` items. */
function cpuPerItem(items: number, run: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / items);
  }
  return samples.sort((a, b) => a - b)[samples.length >> 1]!;
}

function measure(name: string, rows: string[][], column: string): void {
  const columns = rows[0]!;
  const records = rows.slice(1);
  const options = { model, system: 'You are a classifier.', prompt: `Classify this feedback: {{${column}}}` };
  const resolve = columnFieldResolver(columns);
  const encodeTail = compileTailEncoder(options, resolve);
  const inputTokens = compileInputTokenCounter(options, resolve);
  const started = performance.now();
  inputTokens(records[0]!);
  const firstMs = performance.now() - started;
  const estimate = cpuPerItem(records.length, () => {
    for (const record of records) Math.ceil(encodeTail(record).tail.length / 4);
  });
  const counted = cpuPerItem(records.length, () => {
    for (const record of records) {
      encodeTail(record);
      inputTokens(record);
    }
  });
  const index = columns.indexOf(column);
  const texts = records.map((r) => r[index] ?? '');
  const chars = texts.reduce((n, t) => n + t.length, 0) / texts.length;
  const counter = tokenCounter(encoding);
  const ours = cpuPerItem(texts.length, () => {
    for (const text of texts) counter.count(text);
  });
  const reference = packageEncoding(encoding);
  const theirs = cpuPerItem(texts.length, () => {
    for (const text of texts) reference.countTokens(text);
  });
  console.log(
    `${name}: ${records.length} records, ${chars.toFixed(0)} chars of ${column} (${encoding}; first count ${firstMs.toFixed(0)} ms)\n` +
      `  per record, encode + chars/4 ${estimate.toFixed(2)} µs, encode + count ${counted.toFixed(2)} µs (+${(counted - estimate).toFixed(2)})\n` +
      `  per text, counter ${ours.toFixed(2)} µs, package countTokens ${theirs.toFixed(2)} µs`,
  );
}

measure(
  'generated feedback',
  parse([...generateFeedbackCsv({ rows: Number(values.rows) })].join('')),
  'text',
);
measure('BA reviews', parse(readFileSync(values.reviews)), 'ReviewBody');
