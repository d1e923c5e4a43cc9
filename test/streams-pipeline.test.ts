/**
 * The stream stages are the same pipeline as `prepare`: the same input through both gives the same
 * request files and the same ledger, and a ledger composed from the stages is one the CLI
 * (`run --ledger`, `submit` + `collect` + `results`) and `resultSource` take as theirs.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import {
  batchSink,
  csvSource,
  type Envelope,
  jsonlEncode,
  jsonlSource,
  Ledger,
  prepare,
  promptTemplate,
  type RejectedRecord,
  type RequestTemplateOptions,
  type ResultRow,
  resultSource,
  validateRequests,
  writeResults,
} from '../src/index.js';
import { BA_REVIEWS, REPO_ROOT, runCli, spawnServe, tempDir } from './support.js';

interface Limits {
  maxLines: number;
  maxBytes?: number;
}

/** What a ledger holds of a prepared run, without what names the run (its id, its folder). */
function snapshot(ledger: Ledger) {
  const read = ledger.requestAndRejectCount();
  return {
    identity: ledger.getMeta('identity'),
    columns: ledger.getMeta('columns'),
    prepared: ledger.getMeta('prepared_records'),
    files: ledger.files().map((f) => ({
      attempt: f.attempt,
      model: f.model,
      endpoint: f.endpoint,
      first_seq: f.first_seq,
      end_seq: f.end_seq,
      lines: f.lines,
      bytes: f.bytes,
      tokens: f.tokens,
      sha256: f.sha256,
      complete: f.complete,
      content: readFileSync(f.path),
    })),
    records: Array.from({ length: read }, (_, seq) => ledger.keptRecord(seq)),
    rejects: ledger.rejects(),
  };
}

/** The input through `prepare()` (rejects set aside) and through the composed stages, each in its own ledger. */
async function bothWays(
  input: string,
  format: 'csv' | 'jsonl',
  template: RequestTemplateOptions,
  limits: Limits,
  encoding?: string,
) {
  const dir = tempDir('bp-same-');
  const prepared = Ledger.open(path.join(dir, 'prepared.db'));
  await prepare({
    ...template,
    ...limits,
    input,
    encoding,
    ledger: prepared,
    outDir: path.join(dir, 'prepared'),
    rejectsPath: path.join(dir, 'rejects.jsonl'),
  });
  const streamed = Ledger.open(path.join(dir, 'streamed.db'));
  const called: RejectedRecord[] = [];
  await pipeline(
    format === 'csv' ? csvSource(input, { encoding }) : jsonlSource(input, { encoding }),
    promptTemplate(template),
    validateRequests(),
    jsonlEncode(),
    batchSink({
      ledger: streamed,
      outDir: path.join(dir, 'streamed'),
      ...limits,
      onReject: (r) => called.push(r),
    }),
  );
  const result = { prepared: snapshot(prepared), streamed: snapshot(streamed), called };
  prepared.close();
  streamed.close();
  return result;
}

function assertSameRun(run: Awaited<ReturnType<typeof bothWays>>, expectedRejects: string[]): void {
  const { prepared, streamed, called } = run;
  assert.ok(prepared.files.length > 1, 'the run rolls files');
  assert.deepEqual(
    prepared.rejects.map((r) => r.code),
    expectedRejects,
  );
  assert.equal(prepared.prepared, String(prepared.records.length));
  assert.deepEqual(streamed, prepared);
  // onReject got each reject as the ledger keeps it: the one reject shape (`field` may be absent).
  const shape = (r: RejectedRecord) => ({ ...r, field: r.field });
  assert.deepEqual(called.map(shape), prepared.rejects.map(shape));
}

const LONG = 'x'.repeat(1900);

/** Text as UTF-8, with `\xe9` pieces kept as that one (invalid) byte. */
function bytesOf(pieces: string[]): Buffer {
  return Buffer.concat(pieces.map((p) => (p.includes('\xe9') ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

/** A CSV with a BOM, every record end, quotes, bad records of each kind, and enough rows to roll files. */
function messyCsv(): Buffer {
  const rows = [
    '\ufeffid,text,note\r\n',
    '1,"hello, world",a\r\n',
    '2,"multi\r\nline ""quoted""",b\r\n',
    '3,plain,c\n',
    ',no id,d\n', // BP_ID_MISSING
    '5,caf\xe9,e\n', // not UTF-8: BP_ENCODING
    '6,too,many,fields\n', // BP_PARSE
    '1,dup,f\n', // BP_DUPLICATE_ID
    `8,${LONG},g\n`, // a record under --max-bytes whose request is over it: BP_REQUEST_TOO_LARGE
    '9,emoji \u{1F600},h\r',
    '10,"bare\rCR inside",i\r\n',
    '11,empty note,\n',
  ];
  for (let i = 12; i < 30; i++) rows.push(`${i},row ${i},n${i}\n`);
  rows.push('31,"last, without a line break",z');
  return bytesOf(rows);
}

test('a CSV through prepare() and through the composed stages: the same request files, ledger rows and rejects', async () => {
  const input = path.join(tempDir(), 'messy.csv');
  writeFileSync(input, messyCsv());
  const chat = await bothWays(
    input,
    'csv',
    { model: 'gpt-4o-mini', idColumn: 'id', system: 'Be brief.', prompt: 'Say: {{text}}' },
    { maxLines: 4, maxBytes: 2000 },
  );
  assertSameRun(chat, [
    'BP_ID_MISSING',
    'BP_ENCODING',
    'BP_PARSE',
    'BP_DUPLICATE_ID',
    'BP_REQUEST_TOO_LARGE',
  ]);
  // Embeddings of an empty note break the endpoint's schema: checked per record, both ways.
  const embeddings = await bothWays(
    input,
    'csv',
    { endpoint: '/v1/embeddings', model: 'text-embedding-3-small', id: 'row-{{id}}', prompt: '{{note}}' },
    { maxLines: 5 },
  );
  assertSameRun(embeddings, ['BP_ENCODING', 'BP_PARSE', 'BP_DUPLICATE_ID', 'BP_INVALID_REQUEST']);
  // Read as windows-1252 (the encoding is part of the run's identity), every byte is a character.
  const decoded = await bothWays(
    input,
    'csv',
    { model: 'm', prompt: '{{text}}' },
    { maxLines: 10 },
    'cp1252',
  );
  assertSameRun(decoded, ['BP_PARSE']);
  assert.equal(JSON.parse(decoded.streamed.identity!).encoding, 'cp1252');
});

test('the BA reviews through prepare() and through the composed stages: the same files and ledger', async () => {
  const run = await bothWays(
    BA_REVIEWS,
    'csv',
    { model: 'gpt-4o-mini', idColumn: 'ReviewID', prompt: 'Classify: {{ReviewBody}} ({{Route}})' },
    { maxLines: 700 },
  );
  assertSameRun(run, []);
  const rows = parse(readFileSync(BA_REVIEWS), { columns: true }) as unknown[];
  assert.equal(run.streamed.records.length, rows.length);
});

test('a JSONL input through prepare() and through the composed stages: the same files, ledger rows and rejects', async () => {
  const input = path.join(tempDir(), 'messy.jsonl');
  const lines = [
    '{"id": 123456789012345678, "text": "big id", "n": 1.50}\n',
    '\n',
    '{"id": 2, "text": "nested", "meta": {"a": [1, 2, {"b": null}]}}\r\n',
    '{"id": 3, "text": "caf\xe9"}\n', // BP_ENCODING
    '{bad json\n', // BP_PARSE
    '[1, 2]\n', // BP_PARSE: not an object
    '{"id": 5}\n', // BP_TEMPLATE_MISSING_FIELD
    '{"id": 2, "text": "dup"}\n', // BP_DUPLICATE_ID
    '{"id": 7, "text": "emoji \u{1F600} \\u00e9 \\n"}\n',
  ];
  for (let i = 8; i < 20; i++) lines.push(`{"id": ${i}, "text": "row ${i}"}\n`);
  lines.push('{"id": 20, "text": null}'); // BP_TEMPLATE_MISSING_FIELD, and no final line break
  writeFileSync(input, bytesOf(lines));
  const run = await bothWays(
    input,
    'jsonl',
    { model: 'gpt-4o-mini', idColumn: 'id', system: 'Be brief.', prompt: '{{text}}' },
    { maxLines: 3 },
  );
  assertSameRun(run, [
    'BP_ENCODING',
    'BP_PARSE',
    'BP_PARSE',
    'BP_TEMPLATE_MISSING_FIELD',
    'BP_DUPLICATE_ID',
    'BP_TEMPLATE_MISSING_FIELD',
  ]);
});

const FEEDBACK = path.join(REPO_ROOT, 'examples', 'feedback.csv');

/** The README's feedback rows, and two more: one without an id (rejected), one with a quoted line break. */
function feedbackInput(dir: string): { input: string; rows: Record<string, string>[]; rejectLine: number } {
  const text = `${readFileSync(FEEDBACK, 'utf8').trimEnd()}\n,2026-11-08,web,no id here\n1014,2026-11-08,app,"two\nlines, and ""quotes"""\n`;
  const input = path.join(dir, 'feedback.csv');
  writeFileSync(input, text);
  // Parsed independently of batchpipe; `info.lines` is where a (one-line) record is.
  const parsed = parse(text, { columns: true, info: true }) as {
    record: Record<string, string>;
    info: { lines: number };
  }[];
  const reject = parsed.find((p) => p.record.id === '')!;
  return { input, rows: parsed.map((p) => p.record), rejectLine: reject.info.lines };
}

type Feedback = { id: string; submitted: string; channel: string; text: string };

/** The stages composed exactly as the README's "From code" shows, into `ledgerPath`. */
async function composeAsReadme(
  source: Readable,
  ledgerPath: string,
  outDir: string,
): Promise<RejectedRecord[]> {
  const rejects: RejectedRecord[] = [];
  const ledger = Ledger.open(ledgerPath);
  try {
    await pipeline(
      source,
      promptTemplate({ model: 'gpt-4o-mini', idColumn: 'id', prompt: 'Classify: {{text}}' }),
      validateRequests(),
      jsonlEncode(),
      batchSink({ ledger, outDir, onReject: (r) => rejects.push(r) }),
    );
  } finally {
    ledger.close();
  }
  return rejects;
}

function snapshotOf(ledgerPath: string) {
  const ledger = Ledger.open(ledgerPath, { lock: false });
  try {
    return snapshot(ledger);
  } finally {
    ledger.close();
  }
}

async function collectRows<R>(ledger: Ledger) {
  const rows: ResultRow<unknown, R>[] = [];
  for await (const row of resultSource<R>({ ledger })) rows.push(row);
  return rows;
}

test('a ledger composed as the README shows: `run --ledger` (local backend), then resultSource and writeResults in code', async () => {
  const dir = tempDir('bp-composed-');
  const { input, rows, rejectLine } = feedbackInput(dir);
  const ledgerPath = path.join(dir, 'fb.db');
  const rejects = await composeAsReadme(csvSource(input), ledgerPath, path.join(dir, 'fb'));
  assert.deepEqual(
    rejects.map((r) => [r.line, r.code]),
    [[rejectLine, 'BP_ID_MISSING']],
  );

  const status = await runCli(['status', '--ledger', ledgerPath, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual(JSON.parse(status.stdout).prepare, { state: 'complete', read: rows.length });

  const run = await runCli(['run', '--ledger', ledgerPath, '--backend', 'local', '--poll-interval', '0.05']);
  // One record was rejected: the run finishes with a row that did not succeed, exit 3.
  assert.equal(run.code, 3, run.stderr);
  const out = parse(run.stdout, { columns: true }) as Record<string, string>[];
  assert.deepEqual(
    out.map(({ result, result_status, result_error, ...input }) => input),
    rows,
    'every input row, with its columns',
  );
  assert.deepEqual(
    out.map((r) => r.result_status),
    rows.map((r) => (r.id === '' ? 'rejected' : 'succeeded')),
  );
  assert.ok(out.every((r) => (r.result_status === 'succeeded') === (r.result !== '')));
  assert.match(
    out.find((r) => r.id === '')!.result_error!,
    new RegExp(`^BP_ID_MISSING: line ${rejectLine}: `),
  );

  // In code: typed rows, each record an object with its columns; a reject's line in its error.
  const ledger = Ledger.open(ledgerPath, { lock: false });
  try {
    const results = await collectRows<Feedback>(ledger);
    assert.deepEqual(
      results.map((r) => r.record),
      rows,
    );
    const texts = results.flatMap((r) => (r.status === 'succeeded' ? [r.record.text] : []));
    assert.deepEqual(
      texts,
      rows.filter((r) => r.id !== '').map((r) => r.text),
    );
    const rejected = results.find((r) => r.status === 'rejected');
    assert.equal(rejected?.status, 'rejected');
    if (rejected?.status === 'rejected') {
      assert.equal(rejected.error.line, rejectLine);
      assert.equal(rejected.line, rejectLine);
    }
    // writeResults gives what the CLI wrote.
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    await writeResults(ledger, sink, { format: 'csv' });
    assert.equal(Buffer.concat(chunks).toString(), run.stdout);
  } finally {
    ledger.close();
  }

  // The same pipeline again resumes: it checks what the ledger holds and changes nothing. Other
  // options are refused, naming them.
  const before = snapshotOf(ledgerPath);
  assert.deepEqual(await composeAsReadme(csvSource(input), ledgerPath, path.join(dir, 'fb')), []);
  assert.deepEqual(snapshotOf(ledgerPath), before);
  const again = await runCli(['results', '--ledger', ledgerPath]);
  assert.equal(again.stdout, run.stdout);
  const other = Ledger.open(ledgerPath);
  try {
    await assert.rejects(
      pipeline(
        csvSource(input),
        promptTemplate({ model: 'gpt-4o', idColumn: 'id', prompt: 'Classify: {{text}}' }),
        jsonlEncode(),
        batchSink({ ledger: other, outDir: path.join(dir, 'fb') }),
      ),
      (err: Error & { code?: string }) =>
        err.code === 'BP_LEDGER_MISMATCH' &&
        /model: ledger has "gpt-4o-mini", this run has "gpt-4o"/.test(err.message),
    );
  } finally {
    other.close();
  }
});

test('a JSONL ledger composed as the README shows: `submit` + `collect` + `results` against `batchpipe serve`, and resultSource', async () => {
  const dir = tempDir('bp-composed-jsonl-');
  const { rows } = feedbackInput(dir);
  // The same rows as JSONL, and a line that is not JSON.
  const lines = rows.map((r) => JSON.stringify(r));
  const input = path.join(dir, 'feedback.jsonl');
  writeFileSync(input, `${lines.slice(0, 5).join('\n')}\n{not json\n${lines.slice(5).join('\n')}\n`);
  const ledgerPath = path.join(dir, 'fb.db');
  const rejects = await composeAsReadme(jsonlSource(input), ledgerPath, path.join(dir, 'fb'));
  assert.deepEqual(
    rejects.map((r) => [r.line, r.code]),
    [
      [6, 'BP_PARSE'],
      [rows.findIndex((r) => r.id === '') + 2, 'BP_ID_MISSING'],
    ],
  );

  const serve = await spawnServe(['--data', path.join(dir, 'server')]);
  try {
    const env = { OPENAI_API_KEY: 'local' };
    const api = ['--ledger', ledgerPath, '--base-url', serve.url];
    const submit = await runCli(['submit', ...api], { env });
    assert.equal(submit.code, 0, submit.stderr);
    const collect = await runCli(['collect', ...api, '--poll-interval', '0.05'], { env });
    // The rejected record: a finished run with a row that did not succeed, exit 3.
    assert.equal(collect.code, 3, collect.stderr);
  } finally {
    await serve.stop();
  }
  const results = await runCli(['results', '--ledger', ledgerPath, '--format', 'jsonl']);
  assert.equal(results.code, 0, results.stderr);
  const out = results.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { record: unknown; status: string; error: { line?: number } | null });
  const expected = [...rows.slice(0, 5), '{not json', ...rows.slice(5)];
  assert.deepEqual(
    out.map((r) => r.record),
    expected,
    'every input line, each record with its fields',
  );
  assert.deepEqual(
    out.map((r) => r.status),
    expected.map((r) => (typeof r === 'string' || r.id === '' ? 'rejected' : 'succeeded')),
  );
  assert.deepEqual(
    out.filter((r) => r.status === 'rejected').map((r) => r.error?.line),
    rejects.map((r) => r.line),
  );

  const ledger = Ledger.open(ledgerPath, { lock: false });
  try {
    const rowsInCode = await collectRows<Feedback>(ledger);
    assert.deepEqual(
      rowsInCode.map((r) => r.record),
      expected,
    );
    assert.deepEqual(
      rowsInCode.filter((r) => r.status === 'rejected').map((r) => r.error?.line),
      rejects.map((r) => r.line),
    );
  } finally {
    ledger.close();
  }
});

test('records built by hand go through promptTemplate as JSONL: kept as their JSON text, and the run is prepared', async () => {
  const dir = tempDir();
  const ledgerPath = path.join(dir, 'l.db');
  const records = [{ q: 'one' }, { q: 'two', n: 2 }, { q: 'three', nested: { a: [1] } }];
  const envelopes: Envelope[] = records.map((record, seq) => ({ seq, line: seq + 1, record }));
  const ledger = Ledger.open(ledgerPath);
  try {
    await pipeline(
      Readable.from(envelopes),
      promptTemplate({ model: 'm', prompt: 'Answer {{q}}' }),
      validateRequests(),
      jsonlEncode(),
      batchSink({ ledger, outDir: path.join(dir, 'out') }),
    );
    assert.equal(JSON.parse(ledger.getMeta('identity')!).format, 'jsonl');
    assert.deepEqual(
      records.map((_, seq) => ledger.keptRecord(seq)?.record.toString()),
      records.map((r) => JSON.stringify(r)),
    );
    assert.deepEqual(
      (await collectRows(ledger)).map((r) => r.record),
      records,
    );
  } finally {
    ledger.close();
  }
  const status = await runCli(['status', '--ledger', ledgerPath, '--json']);
  assert.deepEqual(JSON.parse(status.stdout).prepare, { state: 'complete', read: records.length });
});

test('batchSink takes one source and one template: records of two are refused', async () => {
  const dir = tempDir();
  const ledger = Ledger.open(path.join(dir, 'l.db'));
  const template = promptTemplate({ model: 'm', prompt: '{{text}}' });
  const fromTwo = async function* () {
    for await (const env of csvSource(Readable.from([Buffer.from('text\na\n')]))) yield env;
    yield { seq: 1, line: 9, record: { text: 'by hand' } } satisfies Envelope;
  };
  try {
    await assert.rejects(
      pipeline(
        Readable.from(fromTwo()),
        template,
        jsonlEncode(),
        batchSink({ ledger, outDir: path.join(dir, 'o') }),
      ),
      (err: Error & { code?: string }) =>
        err.code === 'BP_USAGE' && /record 1 \(line 9\) comes from another/.test(err.message),
    );
  } finally {
    ledger.close();
  }
});

test('a template naming a column the CSV header lacks stops both ways, before any record is written', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, 'id,text\n1,a\n2,b\n');
  const template = { model: 'm', prompt: '{{text}} {{nosuch}}' };
  const failure = async (run: Promise<unknown>) => {
    const err = await run.then(
      () => assert.fail('expected an error'),
      (e: Error & { code?: string }) => e,
    );
    return { code: err.code, message: err.message };
  };
  const prepared = Ledger.open(path.join(dir, 'p.db'));
  const streamed = Ledger.open(path.join(dir, 's.db'));
  try {
    const viaPrepare = await failure(
      prepare({
        ...template,
        input,
        ledger: prepared,
        outDir: path.join(dir, 'p'),
        rejectsPath: path.join(dir, 'r'),
      }),
    );
    const viaStages = await failure(
      pipeline(
        csvSource(input),
        promptTemplate(template),
        jsonlEncode(),
        batchSink({ ledger: streamed, outDir: path.join(dir, 's'), onReject: () => {} }),
      ),
    );
    assert.equal(viaPrepare.code, 'BP_TEMPLATE_MISSING_FIELD');
    assert.match(viaPrepare.message, /"nosuch" is not a column of the CSV header/);
    assert.deepEqual(viaStages, viaPrepare);
    assert.equal(streamed.requestAndRejectCount(), 0);
    assert.deepEqual(streamed.files(), []);
  } finally {
    prepared.close();
    streamed.close();
  }
});

test('a pipeline stopped by a bad record leaves an incomplete run the CLI refuses; the pipeline again with onReject finishes it', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'messy.csv');
  writeFileSync(input, messyCsv());
  const ledgerPath = path.join(dir, 'l.db');
  const outDir = path.join(dir, 'out');
  const template = { model: 'gpt-4o-mini', idColumn: 'id', prompt: '{{text}}' };
  const stages = (ledger: Ledger, onReject?: (r: RejectedRecord) => void) =>
    pipeline(
      csvSource(input),
      promptTemplate(template),
      validateRequests(),
      jsonlEncode(),
      batchSink({ ledger, outDir, maxLines: 2, maxBytes: 2000, ...(onReject ? { onReject } : {}) }),
    );
  const first = Ledger.open(ledgerPath);
  try {
    await assert.rejects(stages(first), (err: Error & { code?: string; line?: number; file?: string }) => {
      return err.code === 'BP_ID_MISSING' && err.line === 6 && err.file === input;
    });
  } finally {
    first.close();
  }
  const submit = await runCli(['submit', '--ledger', ledgerPath, '--backend', 'local']);
  assert.equal(submit.code, 1);
  assert.match(submit.stderr, /BP_INCOMPLETE_RUN/);

  const second = Ledger.open(ledgerPath);
  const rejects: RejectedRecord[] = [];
  try {
    await stages(second, (r) => rejects.push(r));
    const prepared = Ledger.open(path.join(dir, 'p.db'));
    try {
      await prepare({
        ...template,
        input,
        ledger: prepared,
        outDir: path.join(dir, 'p'),
        maxLines: 2,
        maxBytes: 2000,
        rejectsPath: path.join(dir, 'rejects.jsonl'),
      });
      assert.deepEqual(snapshot(second), snapshot(prepared));
    } finally {
      prepared.close();
    }
  } finally {
    second.close();
  }
  assert.deepEqual(
    rejects.map((r) => r.code),
    ['BP_ID_MISSING', 'BP_ENCODING', 'BP_PARSE', 'BP_DUPLICATE_ID', 'BP_REQUEST_TOO_LARGE'],
  );
});
