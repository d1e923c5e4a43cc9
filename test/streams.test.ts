import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
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
  promptTemplate,
  type RejectedRecord,
  validateRequests,
} from '../src/index.js';
import { BA_REVIEWS, REPO_ROOT, readRequestFiles, tempDir } from './support.js';

test('csvSource yields envelopes with seq, start line and exact string values', async () => {
  const envelopes: Envelope[] = [];
  for await (const env of csvSource(BA_REVIEWS)) envelopes.push(env as Envelope);
  const expected = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];
  assert.equal(envelopes.length, expected.length);
  assert.deepEqual(
    envelopes.map((e) => e.record),
    expected,
  );
  assert.deepEqual(
    envelopes.slice(0, 3).map((e) => [e.seq, e.line]),
    [
      [0, 2],
      [1, 3],
      [2, 4],
    ],
  );
});

test('jsonlSource reads stdin-like streams and keeps long numbers exact', async () => {
  const input = Readable.from([Buffer.from('{"id": 123456789012345678}\n\n{"id":'), Buffer.from(' 2}\n')]);
  const envelopes: Envelope[] = [];
  for await (const env of jsonlSource(input)) envelopes.push(env as Envelope);
  assert.deepEqual(
    envelopes.map(({ seq, line, record, source }) => ({
      seq,
      line,
      record,
      source: Buffer.from(source!).toString(),
    })),
    [
      { seq: 0, line: 1, record: { id: '123456789012345678' }, source: '{"id": 123456789012345678}' },
      { seq: 1, line: 3, record: { id: 2 }, source: '{"id": 2}' },
    ],
  );
});

test('stages compose with pipeline into rolled files and a ledger; rejects reach the callback', async () => {
  const dir = tempDir();
  const ledger = Ledger.open(path.join(dir, 'l.db'));
  const rejects: RejectedRecord[] = [];
  const csv = 'id,text\na,one\nb,two\na,dup\nc,\nd,four\n';
  await pipeline(
    csvSource(Readable.from([Buffer.from(csv)])),
    promptTemplate({ model: 'm', idColumn: 'id', prompt: '{{text}}', endpoint: '/v1/embeddings' }),
    validateRequests(),
    jsonlEncode(),
    batchSink({
      ledger,
      outDir: path.join(dir, 'out'),
      maxLines: 2,
      onReject: (r) => rejects.push(r),
      endpoint: '/v1/embeddings',
    }),
  );
  assert.deepEqual(
    rejects.map((r) => [r.line, r.code]),
    [
      [4, 'BP_DUPLICATE_ID'],
      [5, 'BP_INVALID_REQUEST'],
    ],
  );
  const { files, lines } = readRequestFiles(path.join(dir, 'out'));
  assert.equal(files.length, 2);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).custom_id),
    ['a', 'b', 'd'],
  );
  const counts = ledger.counts();
  assert.equal(counts.staged, 3);
  assert.equal(counts.rejected, 2);
  ledger.close();
});

test('the example in examples/ runs the whole trip: request files, batches, every row back with its result', async () => {
  const dir = tempDir();
  const script = path.join(REPO_ROOT, 'dist', 'examples', 'compose-stages.js');
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [script, dir], { cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(out.code, 0, out.stderr);
  const rows = parse(readFileSync(path.join(REPO_ROOT, 'examples', 'feedback.csv')), { columns: true }) as {
    id: string;
    text: string;
  }[];
  assert.match(out.stdout, new RegExp(`staged ${rows.length}, rejected 0`));
  const { lines } = readRequestFiles(path.join(dir, 'requests'));
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).body.messages[1].content),
    rows.map((r) => r.text),
  );
  // The results: every input row with its columns, each with a result.
  const results = parse(readFileSync(path.join(dir, 'results.csv')), { columns: true }) as Record<
    string,
    string
  >[];
  assert.deepEqual(
    results.map(({ result, result_status, result_error, ...input }) => input),
    rows,
  );
  assert.ok(
    results.every((r) => r.result_status === 'succeeded' && r.result !== '' && r.result_error === ''),
  );
  assert.match(out.stdout, new RegExp(`wrote ${rows.length} rows to `));
  for (const row of rows) assert.match(out.stdout, new RegExp(`^${row.id}\tsucceeded\t`, 'm'));
});
