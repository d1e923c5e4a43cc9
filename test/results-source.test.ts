import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { z } from 'zod';
import { connectionOf, Ledger } from '../src/ledger/ledger.js';
import { prepare } from '../src/prepare/prepare.js';
import { applyResultLines } from '../src/results/apply.js';
import { type ResultRow, resultSource } from '../src/results/result-source.js';
import { writeResults } from '../src/results/write-results.js';
import { chatOutputLine, prepareText } from './results-support.js';
import { tempDir } from './support.js';

const ok = chatOutputLine;

function failure(customId: string, status: number, code: string): string {
  const body = { error: { code, message: `${code} happened`, type: 'x' } };
  return JSON.stringify({
    id: 'b',
    custom_id: customId,
    response: { status_code: status, request_id: 'r', body },
    error: null,
  });
}

/**
 * Ten CSV records: two rejected (no id), the others requests; 3 and 6 succeed, 4 fails for good, 5
 * fails and waits for a retry, the rest stay pending.
 */
const MIXED_CSV = `id,text\n${[
  'a,"one, with a comma"',
  ',no id here',
  'c,"multi\nline"',
  'd,four',
  'e,five',
  'f,six',
  'g,seven',
  ',also no id',
  'i,nine',
  'j,ten',
].join('\n')}\n`;

async function mixedLedger(): Promise<Ledger> {
  const dir = tempDir('bp-source-');
  const ledger = await prepareText(MIXED_CSV, {
    rejectsPath: path.join(dir, 'rejects.jsonl'),
  });
  const lines = [
    ok('f', 'later'),
    ok('c', 'earlier... no: second'),
    failure('d', 400, 'bad_request'),
    failure('e', 500, 'server_error'),
  ];
  await applyResultLines(ledger, Readable.from([`${lines.join('\n')}\n`]), {
    endpoint: '/v1/chat/completions',
    maxAttempts: 3,
  });
  return ledger;
}

/** The 1-based line of MIXED_CSV a record starts on, counted in the text. */
function lineOf(record: string): number {
  return MIXED_CSV.slice(0, MIXED_CSV.indexOf(record)).split('\n').length;
}

async function collect(source: Readable): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for await (const row of source) rows.push(row as ResultRow);
  return rows;
}

test('every input record once, in input order, with status, result, error and usage', async () => {
  const ledger = await mixedLedger();
  for (const pageSize of [2000, 3, 1]) {
    const rows = await collect(resultSource({ ledger, pageSize }));
    assert.deepEqual(
      rows.map((r) => r.seq),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      `page size ${pageSize}`,
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      [
        'pending',
        'rejected',
        'succeeded',
        'failed',
        'pending',
        'succeeded',
        'pending',
        'rejected',
        'pending',
        'pending',
      ],
    );
  }
  const rows = await collect(resultSource({ ledger }));
  assert.deepEqual(rows[2], {
    seq: 2,
    line: 4,
    custom_id: 'c',
    record: { id: 'c', text: 'multi\nline' },
    status: 'succeeded',
    result: 'earlier... no: second',
    error: null,
    usage: { input_tokens: 10, output_tokens: 3 },
  });
  assert.deepEqual(rows[1]!.record, { id: '', text: 'no id here' });
  assert.equal(rows[1]!.custom_id, null);
  assert.equal(rows[1]!.error!.code, 'BP_ID_MISSING');
  assert.deepEqual(rows[3]!.error, {
    code: 'bad_request',
    message: 'bad_request happened',
    status_code: 400,
  });
  // Pending after a retryable failure: the last error is shown.
  assert.equal(rows[4]!.error!.code, 'server_error');
  assert.equal(rows[0]!.error, null);
  assert.equal(rows[0]!.usage, null);
});

test('a status filter', async () => {
  const ledger = await mixedLedger();
  const only = async (status: ResultRow['status'][]) =>
    (await collect(resultSource({ ledger, status, pageSize: 2 }))).map((r) => r.seq);
  assert.deepEqual(await only(['rejected']), [1, 7]);
  assert.deepEqual(await only(['succeeded', 'failed']), [2, 3, 5]);
  assert.deepEqual(await only(['pending', 'rejected']), [0, 1, 4, 6, 7, 8, 9]);
});

test('completion order: outcomes as they were recorded, then the rest in input order', async () => {
  const ledger = await mixedLedger();
  const rows = await collect(resultSource({ ledger, order: 'completion', pageSize: 2 }));
  assert.deepEqual(
    rows.map((r) => r.seq),
    [5, 2, 3, 0, 1, 4, 6, 7, 8, 9],
  );
  const done = await collect(resultSource({ ledger, order: 'completion', status: ['succeeded'] }));
  assert.deepEqual(
    done.map((r) => r.custom_id),
    ['f', 'c'],
  );
});

test('an output schema in code types and transforms results; a mismatch shows as invalid_output', async () => {
  const ledger = await mixedLedger();
  const schema = z.string().transform((s) => s.length);
  const rows = await collect(resultSource({ ledger, status: ['succeeded'], outputSchema: schema }));
  assert.deepEqual(
    rows.map((r) => r.result),
    [21, 5],
  );
  const strict = z.string().startsWith('earlier');
  const checked = await collect(resultSource({ ledger, status: ['succeeded'], outputSchema: strict }));
  assert.deepEqual(
    checked.map((r) => [r.status, r.error?.code ?? null]),
    [
      ['succeeded', null],
      ['failed', 'invalid_output'],
    ],
  );
});

test('JSONL records come back as objects, long numbers with their exact digits', async () => {
  const dir = tempDir('bp-source-jsonl-');
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(
    input,
    '{"id": 123456789012345678, "text": "hi", "meta": {"n": 1.50}}\n{"id": 2, "text": "yo", "extra": [1, 2]}\n',
  );
  const ledger = Ledger.open(path.join(dir, 'ledger.db'));
  await prepare({
    input,
    ledger,
    outDir: path.join(dir, 'out'),
    model: 'gpt-4o-mini',
    prompt: '{{text}}',
    idColumn: 'id',
    threads: 0,
  });
  const rows = await collect(resultSource({ ledger }));
  assert.deepEqual(
    rows.map((r) => [r.custom_id, r.record]),
    [
      ['123456789012345678', { id: '123456789012345678', text: 'hi', meta: { n: '1.50' } }],
      ['2', { id: 2, text: 'yo', extra: [1, 2] }],
    ],
  );
});

test('stopping early leaves nothing open: no statement, no snapshot table', async () => {
  const ledger = await mixedLedger();
  for (const order of ['input', 'completion'] as const) {
    const source = resultSource({ ledger, order, pageSize: 2 });
    for await (const row of source) {
      assert.ok(row);
      break;
    }
    assert.equal(source.destroyed, true);
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    connectionOf(ledger).prepare("SELECT name FROM sqlite_temp_master WHERE type = 'table'").all(),
    [],
  );
  // The connection is free for writes.
  connectionOf(ledger).prepare("UPDATE requests SET state = 'staged' WHERE seq = 0").run();
});

test("a reject's line reaches every output: the result source and JSONL results", async () => {
  const ledger = await mixedLedger();
  const expected = [lineOf(',no id here'), lineOf(',also no id')];
  const rows = await collect(resultSource({ ledger, status: ['rejected'] }));
  assert.deepEqual(
    rows.map((r) => [r.line, r.error?.line]),
    expected.map((line) => [line, line]),
  );
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await writeResults(ledger, out, { format: 'jsonl', status: ['rejected'] });
  const lines = Buffer.concat(chunks).toString().trim().split('\n');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).error.line),
    expected,
  );
});
