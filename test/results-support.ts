/**
 * Helpers for the results tests: genuine output and error files from the local Batch API server
 * through the real `openai` SDK, a prepared ledger, and CSV oracles. (Not a test file itself.)
 */
import { createReadStream, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import OpenAI from 'openai';
import { Ledger } from '../src/ledger/ledger.js';
import { type PrepareOptions, prepare } from '../src/prepare/prepare.js';
import { type LocalServerOptions, startLocalServer } from '../src/server/index.js';
import { runCli, tempDir } from './support.js';

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** The BA reviews' JSON-schema body: `{ sentiment, topics[] }`, strict. */
export const SENTIMENT_SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { type: 'string', enum: ['positive', 'negative', 'mixed'] },
    topics: { type: 'array', items: { type: 'string' } },
  },
  required: ['sentiment', 'topics'],
  additionalProperties: false,
};

export const SENTIMENT_BODY = {
  response_format: {
    type: 'json_schema',
    json_schema: { name: 'review', strict: true, schema: SENTIMENT_SCHEMA },
  },
};

/** Writes a JSON file and returns its path. */
export function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/**
 * Runs every request file of `outDir` as a batch on a fresh local server (real SDK calls: upload,
 * create, poll, download) and saves each batch's output and error files in `dest`. Returns their
 * paths, output files first for each batch.
 */
export async function runBatchesLocally(
  outDir: string,
  dest: string,
  options: Partial<LocalServerOptions> & { endpoint?: string } = {},
): Promise<string[]> {
  const { endpoint = '/v1/chat/completions', ...serverOptions } = options;
  const server = await startLocalServer({
    port: 0,
    dataDir: tempDir('bp-results-server-'),
    ...serverOptions,
  });
  const client = new OpenAI({ apiKey: 'test', baseURL: server.url, maxRetries: 0 });
  const saved: string[] = [];
  try {
    const files = readdirSync(outDir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
    for (const name of files) {
      const file = await client.files.create({
        file: createReadStream(path.join(outDir, name)),
        purpose: 'batch',
      });
      let batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: endpoint as OpenAI.Batches.BatchCreateParams['endpoint'],
        completion_window: '24h',
      });
      const deadline = Date.now() + 60_000;
      while (!TERMINAL.has(batch.status)) {
        if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status}`);
        await new Promise((r) => setTimeout(r, 20));
        batch = await client.batches.retrieve(batch.id);
      }
      for (const [kind, id] of [
        ['output', batch.output_file_id],
        ['error', batch.error_file_id],
      ] as const) {
        if (!id) continue;
        const target = path.join(dest, `${path.basename(name, '.jsonl')}-${kind}.jsonl`);
        writeFileSync(target, Buffer.from(await (await client.files.content(id)).arrayBuffer()));
        saved.push(target);
      }
    }
  } finally {
    await server.close();
  }
  return saved;
}

/** `batchpipe prepare` through the real bin; fails the test on a non-zero exit. */
export async function prepareCli(args: string[]): Promise<void> {
  const run = await runCli(['prepare', ...args]);
  if (run.code !== 0) throw new Error(`prepare failed (${run.code}): ${run.stderr}`);
}

/** The CSV the input's own columns should come out as: csv-parse → csv-stringify of the input. */
export function roundTrip(csv: Buffer | string): { header: string[]; rows: string[][]; text: string[] } {
  const records = parse(csv, { bom: true, relax_column_count: true, skip_empty_lines: true }) as string[][];
  const [header, ...rows] = records;
  return { header: header!, rows, text: rows.map((r) => stringify([r]).replace(/\n$/, '')) };
}

/** Parses a results CSV (header and rows). */
export function parseResults(csv: string): {
  header: string[];
  rows: Record<string, string>[];
  raw: string[][];
} {
  const raw = parse(csv, { relax_column_count: false }) as string[][];
  const [header, ...rest] = raw;
  const rows = rest.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
  return { header: header!, rows, raw: rest };
}

/** The lines of a JSONL text, parsed. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON and assert on its shape.
export function jsonLines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/** A line of an output file: a 2xx `chat.completion` whose message content is `content`. */
export function chatOutputLine(customId: string, content: string, status = 200): string {
  return JSON.stringify({
    id: `batch_req_${customId}`,
    custom_id: customId,
    response: {
      status_code: status,
      request_id: `req_${customId}`,
      body: {
        object: 'chat.completion',
        choices: [
          { index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
      },
    },
    error: null,
  });
}

/** A line of an error file: a response with a non-2xx `status` and `{ error }` (or another body). */
export function httpErrorLine(customId: string, status: number, error?: Record<string, unknown>): string {
  return JSON.stringify({
    id: `batch_req_${customId}`,
    custom_id: customId,
    response: {
      status_code: status,
      request_id: 'r',
      body: error === undefined ? { detail: 'x' } : { error },
    },
    error: null,
  });
}

/**
 * Prepares `text` (a CSV with an `id` column and a `text` column) in this process into a new ledger
 * (`:memory:` when asked), prompt `Classify: {{text}}`, with `extra` options on top.
 */
export async function prepareText(
  text: string,
  extra: Partial<PrepareOptions> & { inMemory?: boolean } = {},
): Promise<Ledger> {
  const { inMemory, ...options } = extra;
  const dir = tempDir('bp-results-prepared-');
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, text);
  const ledger = Ledger.open(inMemory ? ':memory:' : path.join(dir, 'ledger.db'));
  await prepare({
    input,
    ledger,
    outDir: path.join(dir, 'out'),
    model: 'gpt-4o-mini',
    prompt: 'Classify: {{text}}',
    idColumn: 'id',
    threads: 0,
    ...options,
  });
  return ledger;
}
