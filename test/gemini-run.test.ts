/**
 * `batchpipe run --provider gemini` end to end through the real bin: the BA reviews with a JSON-schema
 * body beside the same run on openai (same result columns, input order, original columns as read by an
 * independent CSV parser), a faulty server (failed lines, expiry, the token quota, HTTP 429/500/503),
 * and SIGKILL at random moments against a `batchpipe serve` checked through its own Gemini lists.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GoogleGenAI } from '@google/genai';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { BA_REVIEWS, runCli, runKilledAfter, spawnServe, tempDir } from './support.js';

const reviews = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];
const inputColumns = Object.keys(reviews[0]!);

const SCHEMA_PROPERTIES = {
  sentiment: { enum: ['positive', 'negative', 'mixed'] },
  topics: { type: 'array', items: { type: 'string' } },
};

/** The same request for both providers: a prompt and a JSON schema, each in its native body. */
function bodies(dir: string): { openai: string; gemini: string } {
  const openai = path.join(dir, 'openai-body.json');
  writeFileSync(
    openai,
    JSON.stringify({
      messages: [{ role: 'user', content: 'Classify this review: {{ReviewBody}}' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'review',
          strict: true,
          schema: {
            type: 'object',
            properties: {
              sentiment: { type: 'string', ...SCHEMA_PROPERTIES.sentiment },
              topics: SCHEMA_PROPERTIES.topics,
            },
            required: ['sentiment', 'topics'],
            additionalProperties: false,
          },
        },
      },
    }),
  );
  const gemini = path.join(dir, 'gemini-body.json');
  writeFileSync(
    gemini,
    JSON.stringify({
      contents: [{ role: 'user', parts: [{ text: 'Classify this review: {{ReviewBody}}' }] }],
      generationConfig: {
        responseMimeType: 'application/json',
        responseSchema: {
          type: 'OBJECT',
          properties: {
            sentiment: { type: 'STRING', enum: ['positive', 'negative', 'mixed'] },
            topics: { type: 'ARRAY', items: { type: 'STRING' } },
          },
          required: ['sentiment', 'topics'],
        },
      },
    }),
  );
  return { openai, gemini };
}

function baArgs(ledger: string, ...extra: string[]): string[] {
  return ['run', BA_REVIEWS, '--ledger', ledger, '--id-column', 'ReviewID', ...extra];
}

test('run --provider gemini --backend local on the BA reviews: 3,701 rows, the result columns of openai, input order, original columns as read', async () => {
  const dir = tempDir();
  const body = bodies(dir);
  const common = ['--backend', 'local', '--expand', '--max-lines', '1000', '--poll-interval', '0.2'];
  const [openai, gemini] = await Promise.all([
    runCli(baArgs(path.join(dir, 'openai.db'), '--model', 'gpt-4o-mini', '--body', body.openai, ...common)),
    runCli(
      baArgs(
        path.join(dir, 'gemini.db'),
        '--provider',
        'gemini',
        '--model',
        'gemini-2.5-flash',
        '--body',
        body.gemini,
        ...common,
      ),
    ),
  ]);
  assert.equal(openai.code, 0, openai.stderr);
  assert.equal(gemini.code, 0, gemini.stderr);
  assert.match(gemini.stderr, /\/v1beta\/generateContent/);

  const read = (csv: string) => parse(csv, { columns: true }) as Record<string, string>[];
  const openaiRows = read(openai.stdout);
  const geminiRows = read(gemini.stdout);
  const header = (csv: string) => parse(csv, { to_line: 1 })[0] as string[];
  assert.deepEqual(header(gemini.stdout), header(openai.stdout), 'the same columns, in the same order');
  assert.deepEqual(header(gemini.stdout), [
    ...inputColumns,
    'result.sentiment',
    'result.topics',
    'result_status',
    'result_error',
  ]);
  assert.equal(geminiRows.length, reviews.length);
  assert.equal(openaiRows.length, reviews.length);
  for (const [i, row] of geminiRows.entries()) {
    const source = reviews[i]!;
    for (const column of inputColumns) assert.equal(row[column], source[column], `row ${i} ${column}`);
    assert.equal(row.result_status, 'succeeded', `row ${i}`);
    assert.ok(['positive', 'negative', 'mixed'].includes(row['result.sentiment']!), row['result.sentiment']);
    const topics = JSON.parse(row['result.topics']!) as unknown;
    assert.ok(Array.isArray(topics) && topics.every((t) => typeof t === 'string'), row['result.topics']);
  }

  // The input's bytes: each record's text in the ledger is the record as it was read.
  const db = new Database(path.join(dir, 'gemini.db'), { readonly: true });
  const usage = db
    .prepare('SELECT count(*) AS n, sum(input_tokens) AS input, sum(output_tokens) AS output FROM requests')
    .get() as { n: number; input: number; output: number };
  db.close();
  assert.equal(usage.n, reviews.length);
  assert.ok(usage.input > reviews.length && usage.output > reviews.length, JSON.stringify(usage));
});

test('run --provider gemini against a faulty server (failed lines, expiry, the token quota, HTTP faults): every request final, retries counted', async (t) => {
  const serve = await spawnServe([
    '--data',
    tempDir(),
    '--fail-rate',
    '0.1',
    '--http-fault-rate',
    '0.05',
    '--completion-window',
    '1s',
    '--latency',
    '10',
    '--concurrency',
    '8',
    // The server counts Gemini prompts' text alone, under the client's estimate: at 400,000 it refuses
    // some of the ~900,000 estimated the client may queue, while any one file of 500 fits.
    '--enqueued-token-limit',
    '400000',
    '--seed',
    '3',
  ]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'faults.db');
    const body = bodies(dir);
    const run = await runCli(
      baArgs(
        ledger,
        '--provider',
        'gemini',
        // The URL serve prints, `/v1` and all: the SDK adds `/v1beta` itself, so it is cut back.
        '--base-url',
        serve.url,
        '--model',
        'gemini-2.5-flash',
        '--body',
        body.gemini,
        '--max-lines',
        '500',
        '--max-attempts',
        '4',
        '--max-enqueued-tokens',
        '900000',
        '--poll-interval',
        '0.1',
        '--format',
        'jsonl',
      ),
      { env: { GEMINI_API_KEY: 'local', GOOGLE_API_KEY: '' } },
    );
    assert.ok(run.code === 0 || run.code === 3, run.stderr);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; error: unknown });
    assert.equal(rows.length, reviews.length, 'every record is in the results');

    const status = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
    const r = status.requests;
    assert.equal(r.staged + r.submitted, 0, 'nothing left unfinished');
    assert.equal(r.succeeded + r.failed + r.expired + r.cancelled, reviews.length);
    assert.equal(
      run.code,
      r.succeeded === reviews.length ? 0 : 3,
      'exit 3 exactly when some rows did not succeed',
    );
    assert.ok(status.tokens.peak_queued['gemini-2.5-flash'] <= 900_000, JSON.stringify(status.tokens));

    const db = new Database(ledger, { readonly: true });
    const retried = (
      db.prepare('SELECT count(*) AS n FROM requests WHERE attempt > 1').get() as { n: number }
    ).n;
    const statuses = db
      .prepare('SELECT DISTINCT status FROM batches')
      .all()
      .map((b) => (b as { status: string }).status);
    const refused = (
      db.prepare("SELECT count(*) AS n FROM batches WHERE errors LIKE '%RESOURCE_EXHAUSTED%'").get() as {
        n: number;
      }
    ).n;
    const failedCodes = db
      .prepare('SELECT DISTINCT error_code FROM requests WHERE error_code IS NOT NULL')
      .all()
      .map((x) => (x as { error_code: string }).error_code);
    db.close();
    t.diagnostic(
      `final ${JSON.stringify(r)}; ${retried} retried; batch statuses ${statuses.join(', ')}; ${refused} refused for the quota; codes ${failedCodes.join(', ')}`,
    );
    assert.ok(r.succeeded > 0);
    assert.ok(retried > 0, 'failed lines and expired requests were retried');
    assert.ok(statuses.includes('expired'), 'some batches expired');
    assert.ok(refused > 0, 'the server refused some batches for its token quota');
    for (const row of rows)
      if (row.status !== 'succeeded') assert.ok(row.error, 'a failed row carries its error');
  } finally {
    await serve.stop();
  }
});

/** Kills that must land while a run is still working. */
const KILLS = 10;

test(`run --provider gemini killed with SIGKILL at ${KILLS} random moments: every row once, nothing uploaded or created twice on the server`, async (t) => {
  // Beside the kills, the answers to the first 14 uploads and creates are lost on the way (the server made
  // the file or batch): the 10 uploads and at least 4 creates are settled by intent for certain, not only
  // when a kill lands in that moment.
  const serve = await spawnServe([
    '--data',
    tempDir(),
    '--latency',
    '3',
    '--concurrency',
    '32',
    '--seed',
    '7',
    '--lose-create-responses',
    '14',
  ]);
  const origin = serve.url.replace(/\/v1$/, '');
  try {
    const dir = tempDir();
    const body = bodies(dir);
    const ledger = path.join(dir, 'crash.db');
    const args = (db: string, at: string) =>
      baArgs(
        db,
        '--provider',
        'gemini',
        '--base-url',
        at,
        '--model',
        'gemini-2.5-flash',
        '--body',
        body.gemini,
        '--max-lines',
        '400',
        '--poll-interval',
        '0.05',
        '--format',
        'jsonl',
        '--results',
        path.join(dir, `${path.basename(db)}.results.jsonl`),
      );
    const env = { GEMINI_API_KEY: 'local', GOOGLE_API_KEY: '' };
    process.env.GEMINI_API_KEY = 'local';
    process.env.GOOGLE_API_KEY = '';

    const probeServe = await spawnServe(['--data', tempDir(), '--latency', '3', '--concurrency', '32']);
    const started = Date.now();
    const probe = await runCli(args(path.join(dir, 'probe.db'), probeServe.url.replace(/\/v1$/, '')), {
      env,
    });
    const duration = Date.now() - started;
    await probeServe.stop();
    assert.equal(probe.code, 0, probe.stderr);

    const moments: number[] = [];
    let window = duration;
    for (let tries = 0; moments.length < KILLS && tries < 40; tries++) {
      const at = Math.round(50 + Math.random() * window * 0.9);
      const began = Date.now();
      const ended = await runKilledAfter(args(ledger, origin), at);
      if (ended.signal === 'SIGKILL') moments.push(at);
      else window = Math.max(100, Date.now() - began);
    }
    t.diagnostic(`undisturbed run ${duration} ms; killed mid-run at ${moments.join(', ')} ms`);
    assert.equal(moments.length, KILLS, `${moments.length} kills landed mid-run`);

    const last = await runCli(args(ledger, origin), { env });
    assert.equal(last.code, 0, last.stderr);
    const results = readFileSync(path.join(dir, 'crash.db.results.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(
      results.map((l) => (JSON.parse(l) as { record: { ReviewID: string } }).record.ReviewID),
      reviews.map((r) => r.ReviewID),
      'every row once, in input order',
    );

    const db = new Database(ledger, { readonly: true });
    const states = db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all();
    const files = db.prepare('SELECT name FROM files WHERE complete = 1').all() as { name: string }[];
    db.close();
    assert.deepEqual(states, [{ state: 'succeeded', n: reviews.length }]);

    // The server's own Gemini lists, through the SDK: each file uploaded once, one batch per file.
    const ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl: origin } });
    const uploads = new Map<string, number>();
    for await (const f of await ai.files.list({ config: { pageSize: 100 } })) {
      if (f.source === 'GENERATED') continue;
      const file = (f.displayName ?? '').replace(/\.[0-9a-f]{8}\.jsonl$/, '.jsonl');
      uploads.set(file, (uploads.get(file) ?? 0) + 1);
    }
    assert.deepEqual([...uploads.keys()].sort(), files.map((f) => f.name).sort());
    for (const [name, n] of uploads) assert.equal(n, 1, `${name} uploaded once`);
    const batchesPerFile = new Map<string, number>();
    const outputs: string[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 100 } })) {
      const file = (job.displayName ?? '').split(' ')[3] ?? '';
      batchesPerFile.set(file, (batchesPerFile.get(file) ?? 0) + 1);
      if (job.dest?.fileName) outputs.push(job.dest.fileName);
    }
    assert.equal(batchesPerFile.size, files.length);
    for (const [name, n] of batchesPerFile) assert.equal(n, 1, `one batch for ${name}`);
    const succeeded = new Map<string, number>();
    for (const name of outputs) {
      const target = path.join(dir, `${name.replace('/', '-')}.jsonl`);
      await ai.files.download({ file: name, downloadPath: target });
      for (const line of readFileSync(target, 'utf8').split('\n').filter(Boolean)) {
        const parsed = JSON.parse(line) as { key: string; response?: unknown };
        if (parsed.response) succeeded.set(parsed.key, (succeeded.get(parsed.key) ?? 0) + 1);
      }
    }
    assert.equal(succeeded.size, reviews.length);
    assert.ok(
      [...succeeded.values()].every((n) => n === 1),
      'no request succeeded twice',
    );
  } finally {
    await serve.stop();
  }
});

test('run --provider gemini without GEMINI_API_KEY or GOOGLE_API_KEY says which to set, before any work', async () => {
  const dir = tempDir();
  const run = await runCli(
    baArgs(
      path.join(dir, 'l.db'),
      '--provider',
      'gemini',
      '--model',
      'gemini-2.5-flash',
      '--prompt',
      '{{ReviewBody}}',
    ),
    { env: { GEMINI_API_KEY: '', GOOGLE_API_KEY: '' } },
  );
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /BP_NO_API_KEY no Gemini API key: set GEMINI_API_KEY \(or GOOGLE_API_KEY\), or use --backend local/,
  );
  assert.doesNotMatch(run.stderr, /prepared:/, 'nothing was prepared');
});
