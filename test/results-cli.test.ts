/**
 * End to end through the real bin: `prepare` → the local Batch API server driven by the real `openai`
 * SDK (upload, create, poll, download the output and error files) → `ingest` → `results`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import {
  jsonLines,
  parseResults,
  prepareCli,
  roundTrip,
  runBatchesLocally,
  SENTIMENT_BODY,
  SENTIMENT_SCHEMA,
  writeJson,
} from './results-support.js';
import { BA_REVIEWS, runCli, tempDir } from './support.js';

const input = readFileSync(BA_REVIEWS);
const expected = roundTrip(input);
const REVIEWS = expected.rows.length;

/** The BA reviews prepared once with a `{ sentiment, topics[] }` JSON-schema body. */
let ba: { dir: string; pristine: string; outDir: string };
/** Their output (and error) files from one clean local run. */
let cleanFiles: string[];

before(async () => {
  const dir = tempDir('bp-results-cli-');
  const pristine = path.join(dir, 'pristine.db');
  const outDir = path.join(dir, 'out');
  const body = writeJson(dir, 'body.json', SENTIMENT_BODY);
  await prepareCli([
    BA_REVIEWS,
    '--ledger',
    pristine,
    '--out',
    outDir,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'ReviewID',
    '--prompt',
    'Classify this review: {{ReviewBody}}',
    '--body',
    body,
  ]);
  ba = { dir, pristine, outDir };
  cleanFiles = await runBatchesLocally(outDir, mkdir(dir, 'clean'));
});

function mkdir(...parts: string[]): string {
  const dir = path.join(...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

let copies = 0;
/** A copy of the prepared ledger, as if freshly prepared. */
function freshLedger(): string {
  const copy = path.join(ba.dir, `ledger-${copies++}.db`);
  copyFileSync(ba.pristine, copy);
  return copy;
}

async function ok(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const run = await runCli(args);
  assert.equal(run.code, 0, `batchpipe ${args.join(' ')}\n${run.stderr}`);
  return run;
}

async function ingested(files: string[], ...flags: string[]): Promise<{ ledger: string; stderr: string }> {
  const ledger = freshLedger();
  const { stderr } = await ok(['ingest', '--ledger', ledger, ...flags, ...files]);
  return { ledger, stderr };
}

/** The input's own columns of every output row, and the rest. */
function splitRows(raw: string[][]): { own: string[][]; extra: string[][] } {
  const n = expected.header.length;
  return { own: raw.map((r) => r.slice(0, n)), extra: raw.map((r) => r.slice(n)) };
}

describe('the BA reviews with a JSON-schema body', () => {
  test('results --expand: 3,701 rows in input order, input cells as csv-parse → csv-stringify, result fields as columns', async () => {
    const { ledger, stderr } = await ingested(cleanFiles);
    assert.match(stderr, new RegExp(`${REVIEWS} lines = succeeded ${REVIEWS} \\+ failed 0`));
    const { stdout } = await ok(['results', '--ledger', ledger, '--expand']);
    const out = parseResults(stdout);
    assert.deepEqual(out.header, [
      ...expected.header,
      'result.sentiment',
      'result.topics',
      'result_status',
      'result_error',
    ]);
    assert.equal(out.raw.length, REVIEWS);
    const { own, extra } = splitRows(out.raw);
    assert.deepEqual(own, expected.rows, 'the input, row for row, in input order');
    // Byte for byte: each output record is csv-stringify of its cells (so the input part is exactly
    // what a csv-parse → csv-stringify round trip of the input gives).
    assert.equal(stdout, stringify([out.header, ...out.raw]));
    for (const [sentiment, topics, status, error] of extra) {
      assert.ok(['positive', 'negative', 'mixed'].includes(sentiment!), sentiment);
      assert.ok(Array.isArray(JSON.parse(topics!)));
      assert.equal(status, 'succeeded');
      assert.equal(error, '');
    }
  });

  test('results without --expand: one result column of JSON; JSONL: the same rows as objects, with usage', async () => {
    const { ledger } = await ingested(cleanFiles);
    const csv = parseResults((await ok(['results', '--ledger', ledger, '--format', 'csv'])).stdout);
    assert.deepEqual(csv.header.slice(-3), ['result', 'result_status', 'result_error']);
    const results = csv.raw.map((r) => JSON.parse(r[expected.header.length]!));
    assert.ok(results.every((r) => typeof r.sentiment === 'string' && Array.isArray(r.topics)));

    const lines = jsonLines((await ok(['results', '--ledger', ledger, '--format', 'jsonl'])).stdout);
    assert.equal(lines.length, REVIEWS);
    const records = parse(input, { columns: true, bom: true }) as Record<string, string>[];
    lines.forEach((line, i) => {
      assert.deepEqual(Object.keys(line), ['custom_id', 'status', 'record', 'result', 'error', 'usage']);
      assert.equal(line.custom_id, records[i]!.ReviewID);
      assert.deepEqual(line.record, records[i]);
      assert.deepEqual(line.result, results[i]);
      assert.equal(line.status, 'succeeded');
      assert.equal(line.error, null);
      assert.ok(line.usage.input_tokens > 0 && line.usage.output_tokens > 0);
    });
  });

  test('--order completion lists the results in the order the output file does', async () => {
    const { ledger } = await ingested(cleanFiles);
    const lines = jsonLines(
      (await ok(['results', '--ledger', ledger, '--format', 'jsonl', '--order', 'completion'])).stdout,
    );
    const fileOrder = jsonLines(readFileSync(cleanFiles[0]!, 'utf8')).map((l) => l.custom_id);
    assert.deepEqual(
      lines.map((l) => l.custom_id),
      fileOrder,
    );
    assert.notDeepEqual(
      fileOrder.slice(0, 50),
      lines
        .map((l) => l.record.ReviewID)
        .sort()
        .slice(0, 50),
    );
  });

  test('--output-schema at ingest: outputs that do not match fail with invalid_output and the zod path', async () => {
    const strict = {
      ...SENTIMENT_SCHEMA,
      properties: { ...SENTIMENT_SCHEMA.properties, sentiment: { const: 'positive' } },
    };
    const schema = writeJson(ba.dir, 'strict.json', strict);
    const { ledger } = await ingested(cleanFiles, '--output-schema', schema, '--max-attempts', '1');
    const out = parseResults((await ok(['results', '--ledger', ledger, '--expand'])).stdout);
    assert.equal(out.rows.length, REVIEWS);
    const failed = out.rows.filter((r) => r.result_status === 'failed');
    assert.ok(failed.length > 0 && failed.length < REVIEWS);
    for (const r of failed) {
      assert.match(
        r.result_error!,
        /^invalid_output: the output does not match the output schema: sentiment: /,
      );
      assert.equal(r['result.sentiment'], '');
    }
    for (const r of out.rows.filter((x) => x.result_status === 'succeeded'))
      assert.equal(r['result.sentiment'], 'positive');
    // With attempts left they wait for a retry instead, their error shown.
    const retry = await ingested(cleanFiles, '--output-schema', schema);
    const pending = parseResults(
      (await ok(['results', '--ledger', retry.ledger, '--status', 'pending'])).stdout,
    );
    assert.equal(pending.rows.length, failed.length);
    assert.ok(pending.rows.every((r) => r.result_error!.startsWith('invalid_output: ')));
  });

  test('with --fail-rate, failed rows are there with their status and error, never missing', async () => {
    const files = await runBatchesLocally(ba.outDir, mkdir(ba.dir, 'faulty'), { failRate: 0.2, seed: 5 });
    const errorLines = jsonLines(readFileSync(files.find((f) => f.endsWith('-error.jsonl'))!, 'utf8'));
    assert.ok(errorLines.length > 400, `${errorLines.length} failures injected`);
    const { ledger } = await ingested(files, '--max-attempts', '1');
    const out = parseResults((await ok(['results', '--ledger', ledger])).stdout);
    assert.equal(out.rows.length, REVIEWS);
    assert.deepEqual(splitRows(out.raw).own, expected.rows);
    const failed = out.rows.filter((r) => r.result_status === 'failed');
    assert.equal(failed.length, errorLines.length);
    assert.deepEqual(new Set(failed.map((r) => r.ReviewID)), new Set(errorLines.map((l) => l.custom_id)));
    for (const r of failed) {
      assert.match(r.result_error!, /^(server_error|rate_limit_exceeded): ./);
      assert.equal(r.result, '');
    }
    assert.equal(out.rows.filter((r) => r.result_status === 'succeeded').length, REVIEWS - errorLines.length);
    // Attempts left: the same rows wait as pending, with the error that sent them back.
    const again = await ingested(files);
    const statuses = parseResults(
      (await ok(['results', '--ledger', again.ledger, '--status', 'pending'])).stdout,
    );
    assert.equal(statuses.rows.length, errorLines.length);
  });

  test('a refusal from the model is failed with code refusal, never retried', async () => {
    const upstream = await fakeUpstream();
    try {
      const files = await runBatchesLocally(ba.outDir, mkdir(ba.dir, 'refusals'), { upstream: upstream.url });
      const { ledger, stderr } = await ingested(files);
      assert.match(stderr, / retried 0 /);
      const out = parseResults((await ok(['results', '--ledger', ledger, '--expand'])).stdout);
      const refused = out.rows.filter((r) => r.result_status === 'failed');
      assert.equal(refused.length, upstream.refused());
      assert.ok(refused.length > 0);
      for (const r of refused) assert.equal(r.result_error, "refusal: I'm sorry, I can't help with that.");
      assert.equal(out.rows.filter((r) => r.result_status === 'succeeded').length, REVIEWS - refused.length);
    } finally {
      await upstream.close();
    }
  });
});

/** An OpenAI-compatible chat server that refuses every review whose prompt mentions "rude". */
async function fakeUpstream(): Promise<{ url: string; refused: () => number; close: () => Promise<void> }> {
  let refused = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const request = JSON.parse(body);
      const prompt: string = request.messages.at(-1).content;
      const refuse = /\brude\b/i.test(prompt);
      if (refuse) refused++;
      const message = refuse
        ? { role: 'assistant', content: null, refusal: "I'm sorry, I can't help with that." }
        : { role: 'assistant', content: '{"sentiment":"mixed","topics":["service"]}', refusal: null };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-x',
          object: 'chat.completion',
          created: 0,
          model: request.model,
          choices: [{ index: 0, message, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    refused: () => refused,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('small inputs', () => {
  /** Prepares `text` (CSV, or JSONL when `name` ends in .jsonl) and returns its ledger and request dir. */
  async function prepared(
    text: string,
    ...flags: string[]
  ): Promise<{ dir: string; ledger: string; outDir: string }> {
    const dir = tempDir('bp-results-small-');
    const name = flags[0]?.endsWith('.jsonl') ? flags.shift()! : 'in.csv';
    const file = path.join(dir, name);
    writeFileSync(file, text);
    const ledger = path.join(dir, 'ledger.db');
    const outDir = path.join(dir, 'out');
    const common = ['--ledger', ledger, '--out', outDir, '--model', 'gpt-4o-mini', '--id-column', 'id'];
    await prepareCli([file, ...common, '--prompt', 'Summarise: {{text}}', ...flags]);
    return { dir, ledger, outDir };
  }

  test('input cells written otherwise than csv-stringify would (quotes, CRLF, a BOM) come out as it would', async () => {
    const csv =
      '\uFEFFid,text,note\r\n"1","plain, quoted",""\r\n2,"multi\r\nline ""q""",x\r\n"3",three,"y"\r\n';
    const { dir, ledger, outDir } = await prepared(csv);
    await ok(['ingest', '--ledger', ledger, ...(await runBatchesLocally(outDir, mkdir(dir, 'dl')))]);
    const { stdout } = await ok(['results', '--ledger', ledger]);
    const trip = roundTrip(csv);
    const lines = (parse(stdout) as string[][]).slice(1);
    assert.deepEqual(
      lines.map((r) => r.slice(0, 3)),
      trip.rows,
    );
    // Each output record starts with the csv-stringify text of the input's cells, byte for byte.
    const records = stdout.split(/\n(?=\d,)/).slice(1);
    assert.equal(records.length, 3);
    records.forEach((record, i) => {
      assert.ok(record.startsWith(`${trip.text[i]},`), `${record} vs ${trip.text[i]}`);
    });
    assert.ok(stdout.startsWith('id,text,note,result,'));
  });

  test('rejected and pending records are listed with everything else', async () => {
    const csv = 'id,text\na,first\n,no id\nc,third\nd,fourth\ne,fifth\n,again no id\ng,seventh\n';
    const rejects = path.join(tempDir('bp-results-rejects-'), 'rejects.jsonl');
    const { dir, ledger, outDir } = await prepared(csv, '--rejects', rejects, '--max-lines', '2');
    // Only the first request file's batch has run.
    const files = await runBatchesLocally(outDir, mkdir(dir, 'dl'));
    const first = files.filter((f) => path.basename(f).includes('-00001-'));
    assert.ok(first.length > 0, files.join(', '));
    await ok(['ingest', '--ledger', ledger, ...first]);
    const out = parseResults((await ok(['results', '--ledger', ledger])).stdout);
    assert.deepEqual(
      out.rows.map((r) => [r.id, r.text, r.result_status]),
      [
        ['a', 'first', 'succeeded'],
        ['', 'no id', 'rejected'],
        ['c', 'third', 'succeeded'],
        ['d', 'fourth', 'pending'],
        ['e', 'fifth', 'pending'],
        ['', 'again no id', 'rejected'],
        ['g', 'seventh', 'pending'],
      ],
    );
    assert.match(out.rows[1]!.result_error!, /^BP_ID_MISSING: line 3: /);
    const some = parseResults(
      (await ok(['results', '--ledger', ledger, '--status', 'rejected,pending'])).stdout,
    );
    assert.deepEqual(
      some.rows.map((r) => r.text),
      ['no id', 'fourth', 'fifth', 'again no id', 'seventh'],
    );
    const bad = await runCli(['results', '--ledger', ledger, '--status', 'done']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--status: unknown status "done"/);
  });

  test('--escape-formulas prefixes cells a spreadsheet would run with a quote, as csv-stringify does', async () => {
    const csv = 'id,text,note\n1,=1+1,+cmd\n2,-2,"@SUM(A1), really"\n3,plain,\tx\n';
    const { dir, ledger, outDir } = await prepared(csv);
    await ok(['ingest', '--ledger', ledger, ...(await runBatchesLocally(outDir, mkdir(dir, 'dl')))]);
    const plain = (await ok(['results', '--ledger', ledger])).stdout;
    const rows = parse(plain) as string[][];
    assert.deepEqual(rows[1]!.slice(0, 3), ['1', '=1+1', '+cmd']);
    const escaped = (await ok(['results', '--ledger', ledger, '--escape-formulas'])).stdout;
    assert.equal(escaped, stringify(rows, { escape_formulas: true }));
    const cells = parse(escaped) as string[][];
    assert.deepEqual(cells[1]!.slice(0, 3), ['1', "'=1+1", "'+cmd"]);
    assert.deepEqual(cells[2]!.slice(1, 3), ["'-2", "'@SUM(A1), really"]);
    assert.equal(cells[3]![2], "'\tx");
  });

  test('an input column named like a result column is refused unless --result-prefix names them apart', async () => {
    const { dir, ledger, outDir } = await prepared('id,text,result\n1,hello,kept\n');
    await ok(['ingest', '--ledger', ledger, ...(await runBatchesLocally(outDir, mkdir(dir, 'dl')))]);
    const clash = await runCli(['results', '--ledger', ledger]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /the input already has a column "result"; give --result-prefix/);
    const out = parseResults((await ok(['results', '--ledger', ledger, '--result-prefix', 'llm_'])).stdout);
    assert.deepEqual(out.header, [
      'id',
      'text',
      'result',
      'llm_result',
      'llm_result_status',
      'llm_result_error',
    ]);
    assert.equal(out.rows[0]!.result, 'kept');
    assert.equal(out.rows[0]!.llm_result_status, 'succeeded');
    // JSONL output has no columns to collide.
    await ok(['results', '--ledger', ledger, '--format', 'jsonl']);
  });

  test('JSONL input: CSV columns are the records top-level keys; JSONL records come back exactly', async () => {
    const lines = [
      '{"id": 123456789012345678, "text": "exact digits", "meta": {"score": 0.10}}',
      '{"id": 2, "text": "second", "tags": ["a", "b"], "missing": null}',
    ];
    const { dir, ledger, outDir } = await prepared(`${lines.join('\n')}\n`, 'in.jsonl');
    await ok(['ingest', '--ledger', ledger, ...(await runBatchesLocally(outDir, mkdir(dir, 'dl')))]);
    const jsonl = (await ok(['results', '--ledger', ledger])).stdout;
    const out = jsonl.split('\n').filter((l) => l !== '');
    assert.equal(out.length, 2);
    // The source line itself is embedded: 18 digits and 0.10 as they were written.
    assert.ok(out[0]!.includes(`"record":${lines[0]}`), out[0]);
    assert.equal(JSON.parse(out[0]!).custom_id, '123456789012345678');
    const csv = parseResults((await ok(['results', '--ledger', ledger, '--format', 'csv'])).stdout);
    assert.deepEqual(csv.header, [
      'id',
      'text',
      'meta',
      'tags',
      'missing',
      'result',
      'result_status',
      'result_error',
    ]);
    assert.deepEqual(
      csv.raw.map((r) => r.slice(0, 5)),
      [
        // Nested values as their text in the line: 0.10 as written, the spaces kept.
        ['123456789012345678', 'exact digits', '{"score": 0.10}', '', ''],
        ['2', 'second', '', '["a", "b"]', ''],
      ],
    );
  });

  test('ingest: a broken file fails naming its line; unknown ids are a warning, not an error', async () => {
    const { dir, ledger } = await prepared('id,text\n1,hello\n');
    const broken = path.join(dir, 'broken.jsonl');
    writeFileSync(
      broken,
      '{"custom_id":"1","response":null,"error":{"code":"x","message":"y"}}\n{not json\n',
    );
    const bad = await runCli(['ingest', '--ledger', ledger, broken]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /broken\.jsonl:2: BP_RESULT_LINE not a JSON line/);
    const strangers = path.join(dir, 'strangers.jsonl');
    writeFileSync(strangers, '{"custom_id":"zz","response":null,"error":{"code":"x","message":"y"}}\n');
    const warned = await ok(['ingest', '--ledger', ledger, strangers]);
    assert.match(
      warned.stderr,
      /warning: 1 lines of .*strangers\.jsonl name no request of this run \(e\.g\. "zz"\)/,
    );
    const missing = await runCli(['ingest', '--ledger', path.join(dir, 'nope.db'), strangers]);
    assert.equal(missing.code, 1);
    const absent = path.join(dir, 'absent.jsonl');
    const unreadable = await runCli(['ingest', '--ledger', ledger, absent]);
    assert.equal(unreadable.code, 1);
    assert.match(unreadable.stderr, /BP_IO cannot read .*absent\.jsonl: ENOENT/);
  });

  test('ingest - reads the output file from standard input, as from a file', async () => {
    const { ledger } = await prepared('id,text\n1,hello\n2,world\n');
    const lines = '{"custom_id":"2","response":null,"error":{"code":"batch_expired","message":"late"}}\n';
    const fromStdin = await runCli(['ingest', '--ledger', ledger, '--max-attempts', '1', '-'], {
      stdin: lines,
    });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.match(fromStdin.stderr, /ingested -: 1 lines = succeeded 0 \+ failed 1/);
    const { stdout } = await ok(['results', '--ledger', ledger]);
    assert.equal(
      stdout,
      'id,text,result,result_status,result_error\n1,hello,,pending,\n2,world,,expired,batch_expired: late\n',
    );
  });
});
