import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { BatchpipeError } from '../src/errors.js';
import { connectionOf, type Ledger, type RequestResultRow } from '../src/ledger/ledger.js';
import { OutcomeStage } from '../src/ledger/outcome-stage.js';
import { type ApplyOptions, applyResultLines } from '../src/results/apply.js';
import { expectedOutput } from '../src/results/extract.js';
import { parseLineChunk } from '../src/results/line-chunks.js';
import { outputSchemaFromJsonSchema, setOutputSchema } from '../src/results/output-schema.js';
import {
  chatOutputLine,
  httpErrorLine,
  prepareText,
  SENTIMENT_BODY,
  SENTIMENT_SCHEMA,
} from './results-support.js';

const CHAT = '/v1/chat/completions';

type Row = Omit<RequestResultRow, 'record' | 'line'> & { file_id: number | null; batch_id: number | null };

/** A ledger prepared from `n` records with ids `id-0` … (JSON-schema body when `json`). */
async function preparedLedger(
  n: number,
  options: { json?: boolean; inMemory?: boolean } = {},
): Promise<Ledger> {
  const csv = `id,text\n${Array.from({ length: n }, (_, i) => `id-${i},review ${i}`).join('\n')}\n`;
  return prepareText(csv, {
    body: options.json ? SENTIMENT_BODY : undefined,
    inMemory: options.inMemory ?? false,
  });
}

/** No scratch database is attached any more, and none is left in the temp directory. */
function assertNoStagingLeft(ledger: Ledger): void {
  const schemas = connectionOf(ledger).prepare<[], { name: string }>('PRAGMA database_list').all();
  assert.deepEqual(
    schemas.map((s) => s.name).filter((name) => name !== 'temp'),
    ['main'],
  );
  const temp = connectionOf(ledger).prepare("SELECT name FROM sqlite_temp_master WHERE type = 'table'").all();
  assert.deepEqual(temp, []);
  const scratch = readdirSync(tmpdir()).filter(
    (f) => f.startsWith(`batchpipe-`) && f.includes(`-${process.pid}-`),
  );
  assert.deepEqual(scratch, []);
}

/** What a promise resolves to, and the most worker threads this process had while it ran. */
async function mostWorkersDuring<T>(work: Promise<T>): Promise<[T, number]> {
  let most = 0;
  const look = () => {
    const report = process.report.getReport() as unknown as { workers: unknown[] };
    most = Math.max(most, report.workers.length);
  };
  const timer = setInterval(look, 20);
  try {
    return [await work, most];
  } finally {
    clearInterval(timer);
  }
}

function rows(ledger: Ledger): Row[] {
  return connectionOf(ledger).prepare<[], Row>('SELECT * FROM requests ORDER BY seq').all();
}

function row(ledger: Ledger, customId: string): Row {
  return connectionOf(ledger)
    .prepare<[string], Row>('SELECT * FROM requests WHERE custom_id = ?')
    .get(customId)!;
}

const ok = chatOutputLine;
const httpError = httpErrorLine;

/** An error-file line without a response. */
function lineError(customId: string, code: string, message = code): string {
  return JSON.stringify({
    id: `batch_req_${customId}`,
    custom_id: customId,
    response: null,
    error: { code, message },
  });
}

function apply(
  ledger: Ledger,
  lines: string[] | string,
  options: Partial<ApplyOptions> = {},
  chunk?: number,
) {
  const text = typeof lines === 'string' ? lines : `${lines.join('\n')}\n`;
  const bytes = Buffer.from(text);
  const pieces = chunk === undefined ? [bytes] : [];
  if (chunk !== undefined)
    for (let i = 0; i < bytes.length; i += chunk) pieces.push(bytes.subarray(i, i + chunk));
  return applyResultLines(ledger, Readable.from(pieces), {
    endpoint: CHAT,
    maxAttempts: 3,
    source: 'out.jsonl',
    ...options,
  });
}

/**
 * Adds to `lines` (one per request id-0 … id-(n-1)) repeats after their first line (every 500th id,
 * with another result) and 30 unknown ids, one every `gap` lines from the start.
 */
function withRepeatsAndStrangers(lines: string[], n: number, gap: number): void {
  for (let i = 0; i < n; i += 500) lines.push(ok(`id-${i}`, 'repeat'));
  for (let i = 0; i < 30; i++) lines.splice(i * gap, 0, ok(`stranger-${i}`, 'x'));
}

/** The unknown ids `withRepeatsAndStrangers` adds that an apply names as examples. */
const FIRST_STRANGERS = ['stranger-0', 'stranger-1', 'stranger-2', 'stranger-3', 'stranger-4'];

describe('applyResultLines: outcomes', () => {
  test('usage: cached, cache-write and reasoning tokens stored beside input and output (successes and failures)', async () => {
    const ledger = await preparedLedger(3);
    const withUsage = (customId: string, content: string, usage: Record<string, unknown>) => {
      const line = JSON.parse(ok(customId, content));
      line.response.body.usage = usage;
      return JSON.stringify(line);
    };
    const detailed = (input: number, cached: number, writes: number, output: number, reasoning: number) => ({
      prompt_tokens: input,
      prompt_tokens_details: { cached_tokens: cached, cache_write_tokens: writes },
      completion_tokens: output,
      completion_tokens_details: { reasoning_tokens: reasoning },
    });
    const refused = JSON.parse(withUsage('id-1', '', detailed(20, 4, 0, 9, 5)));
    refused.response.body.choices[0].message = { role: 'assistant', content: null, refusal: 'no' };
    await apply(ledger, [
      withUsage('id-0', 'a', detailed(1200, 1024, 16, 80, 64)),
      JSON.stringify(refused),
      httpError('id-2', 500),
    ]);
    const usage = connectionOf(ledger)
      .prepare(
        `SELECT custom_id, state, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
           reasoning_tokens FROM requests ORDER BY seq`,
      )
      .raw()
      .all();
    assert.deepEqual(usage, [
      ['id-0', 'succeeded', 1200, 1024, 16, 80, 64],
      ['id-1', 'failed', 20, 4, 0, 9, 5],
      ['id-2', 'staged', null, null, null, null, null],
    ]);
  });

  test('successes: result as JSON text, status, tokens; result_seq in line order', async () => {
    const ledger = await preparedLedger(4);
    const counts = await apply(ledger, [ok('id-2', 'b'), ok('id-0', 'a'), ok('id-3', 'c')]);
    assert.deepEqual(counts, {
      lines: 3,
      succeeded: 3,
      failed: 0,
      retried: 0,
      unknown: 0,
      skipped: 0,
      unknownIds: [],
    });
    const [r0, r1, r2, r3] = rows(ledger);
    assert.equal(r0!.state, 'succeeded');
    assert.equal(r0!.result, '"a"');
    assert.equal(r0!.status_code, 200);
    assert.deepEqual([r0!.input_tokens, r0!.output_tokens], [10, 3]);
    assert.equal(r1!.state, 'staged');
    assert.ok(
      r2!.result_seq! < r0!.result_seq! && r0!.result_seq! < r3!.result_seq!,
      'completion order = line order',
    );
    // A later file continues the order.
    await apply(ledger, [ok('id-1', 'd')]);
    assert.ok(row(ledger, 'id-1').result_seq! > r3!.result_seq!);
  });

  test('non-2xx: failed with the body error code (or type), http_<status> without one; 4xx is final', async () => {
    const ledger = await preparedLedger(3);
    const counts = await apply(ledger, [
      httpError('id-0', 400, { type: 'invalid_request_error', code: 'invalid_value', message: 'bad model' }),
      httpError('id-1', 404, { type: 'not_found_error', message: 'nope' }),
      httpError('id-2', 403),
    ]);
    assert.equal(counts.failed, 3);
    assert.deepEqual(
      rows(ledger).map((r) => [r.state, r.status_code, r.error_code, r.error_message]),
      [
        ['failed', 400, 'invalid_value', 'bad model'],
        ['failed', 404, 'not_found_error', 'nope'],
        ['failed', 403, 'http_403', 'HTTP 403: {"detail":"x"}'],
      ],
    );
  });

  test('429, 5xx and batch_expired are retried while attempts are left, keeping the last error', async () => {
    const ledger = await preparedLedger(3);
    const counts = await apply(ledger, [
      httpError('id-0', 429, { code: 'rate_limit_exceeded', message: 'slow down' }),
      httpError('id-1', 500, { type: 'server_error', message: 'oops' }),
      lineError('id-2', 'batch_expired', 'window closed'),
    ]);
    assert.equal(counts.retried, 3);
    for (const r of rows(ledger)) {
      assert.equal(r.state, 'staged');
      assert.equal(r.attempt, 2);
      assert.equal(r.file_id, null, 'out of its file: the retry stage writes it again');
      assert.equal(r.batch_id, null);
      assert.equal(r.result_seq, null);
      assert.ok(r.error_code);
    }
    assert.equal(row(ledger, 'id-2').error_message, 'window closed');
  });

  test('without attempts left the retryable failures are final: failed, expired; batch_cancelled is cancelled', async () => {
    const ledger = await preparedLedger(3);
    await apply(
      ledger,
      [
        httpError('id-0', 503, { type: 'server_error', message: 'down' }),
        lineError('id-1', 'batch_expired'),
        lineError('id-2', 'batch_cancelled'),
      ],
      { maxAttempts: 1 },
    );
    assert.deepEqual(
      rows(ledger).map((r) => [r.state, r.attempt, r.error_code]),
      [
        ['failed', 1, 'server_error'],
        ['expired', 1, 'batch_expired'],
        ['cancelled', 1, 'batch_cancelled'],
      ],
    );
  });

  test('a JSON-schema run: parsed objects; the stored output schema makes a mismatch invalid_output (retried)', async () => {
    const ledger = await preparedLedger(3, { json: true });
    setOutputSchema(ledger, SENTIMENT_SCHEMA);
    const counts = await apply(
      ledger,
      [
        ok('id-0', '{"sentiment":"positive","topics":["crew"]}'),
        ok('id-1', '{"sentiment":"ecstatic","topics":[]}'),
        ok('id-2', '{"sentiment":'),
      ],
      { maxAttempts: 2 },
    );
    assert.deepEqual([counts.succeeded, counts.retried], [1, 2]);
    assert.equal(row(ledger, 'id-0').result, '{"sentiment":"positive","topics":["crew"]}');
    assert.equal(row(ledger, 'id-1').error_code, 'invalid_output');
    assert.match(row(ledger, 'id-1').error_message!, /sentiment: Invalid option/);
    assert.equal(row(ledger, 'id-2').error_code, 'invalid_json');
    // Attempt 2 of 2: the same mismatch is now final.
    await apply(ledger, [ok('id-1', '{"sentiment":"ecstatic","topics":[]}')], {
      maxAttempts: 2,
      outputSchema: outputSchemaFromJsonSchema(SENTIMENT_SCHEMA),
    });
    assert.equal(row(ledger, 'id-1').state, 'staged', 'ingest: a failure does not overwrite a recorded one');
  });

  test('a large file of a run with an output schema: both threads validate (invalid_output)', async () => {
    const n = 12_000; // past the size where the parse worker starts
    const ledger = await preparedLedger(n, { json: true });
    setOutputSchema(ledger, SENTIMENT_SCHEMA);
    const topics = JSON.stringify(Array.from({ length: 60 }, (_, i) => `topic ${i}`));
    const lines = Array.from({ length: n }, (_, i) =>
      ok(`id-${i}`, `{"sentiment":"${i % 1000 === 3 ? 'ecstatic' : 'positive'}","topics":${topics}}`),
    );
    const counts = await apply(ledger, lines);
    assert.deepEqual([counts.succeeded, counts.retried], [n - 12, 12]);
    for (const r of rows(ledger)) {
      assert.equal(r.error_code, r.seq % 1000 === 3 ? 'invalid_output' : null, `seq ${r.seq}`);
    }
  });

  test('a refusal is failed at once, never retried', async () => {
    const ledger = await preparedLedger(1, { json: true });
    const line = JSON.stringify({
      id: 'b',
      custom_id: 'id-0',
      response: {
        status_code: 200,
        request_id: 'r',
        body: {
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: null, refusal: 'No.' },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
        },
      },
      error: null,
    });
    const counts = await apply(ledger, [line]);
    assert.equal(counts.failed, 1);
    const r = row(ledger, 'id-0');
    assert.deepEqual(
      [r.state, r.error_code, r.error_message, r.input_tokens],
      ['failed', 'refusal', 'No.', 5],
    );
  });
});

describe('applyResultLines: which lines change which requests', () => {
  test('collect (batchId): only requests submitted in that batch change; applying again changes nothing', async () => {
    const ledger = await preparedLedger(4);
    connectionOf(ledger).exec(
      "UPDATE requests SET state = 'submitted', batch_id = CASE WHEN seq < 2 THEN 7 ELSE 8 END",
    );
    const lines = [
      ok('id-0', 'a'),
      ok('id-1', 'b'),
      ok('id-2', 'c'),
      httpError('id-3', 500, { type: 'server_error' }),
    ];
    const first = await apply(ledger, lines, { batchId: 7 });
    assert.deepEqual([first.succeeded, first.skipped], [2, 2]);
    assert.deepEqual(
      rows(ledger).map((r) => r.state),
      ['succeeded', 'succeeded', 'submitted', 'submitted'],
    );
    const again = await apply(ledger, lines, { batchId: 7 });
    assert.deepEqual([again.succeeded, again.failed, again.retried, again.skipped], [0, 0, 0, 4]);
    const other = await apply(ledger, lines, { batchId: 8 });
    assert.deepEqual([other.succeeded, other.retried, other.skipped], [1, 1, 2]);
    assert.equal(row(ledger, 'id-3').state, 'staged');
  });

  test('ingest: succeeded is never overwritten, a success replaces a failure, a failure never a recorded one', async () => {
    const ledger = await preparedLedger(3);
    await apply(ledger, [ok('id-0', 'first'), httpError('id-1', 400, { code: 'bad', message: 'm' })]);
    const second = await apply(ledger, [
      ok('id-0', 'second'),
      ok('id-1', 'fixed'),
      httpError('id-2', 500, { type: 'server_error', message: 'x' }),
    ]);
    assert.deepEqual([second.succeeded, second.retried, second.skipped], [1, 1, 1]);
    assert.equal(row(ledger, 'id-0').result, '"first"');
    assert.equal(row(ledger, 'id-1').result, '"fixed"');
    assert.equal(row(ledger, 'id-1').error_code, null, 'the success clears the old error');
    // The same error file again: the retry under way is not counted twice.
    const third = await apply(ledger, [httpError('id-2', 500, { type: 'server_error', message: 'x' })]);
    assert.deepEqual([third.retried, third.skipped], [0, 1]);
    assert.equal(row(ledger, 'id-2').attempt, 2);
  });

  test('a custom_id the ledger does not know is counted and named, never an error', async () => {
    const ledger = await preparedLedger(2);
    const counts = await apply(ledger, [ok('id-0', 'a'), ok('stranger-1', 'x'), ok('stranger-2', 'y')]);
    assert.deepEqual([counts.succeeded, counts.unknown], [1, 2]);
    assert.deepEqual(counts.unknownIds, ['stranger-1', 'stranger-2']);
  });

  test('a repeated custom_id: the first line counts, the repeat is skipped', async () => {
    const ledger = await preparedLedger(1);
    const counts = await apply(ledger, [ok('id-0', 'first'), ok('id-0', 'second')]);
    assert.deepEqual([counts.succeeded, counts.skipped], [1, 1]);
    assert.equal(row(ledger, 'id-0').result, '"first"');
  });
});

describe('applyResultLines: reading the file', () => {
  test('any chunking (1-byte pieces through multi-byte characters), CRLF, blank lines, a BOM', async () => {
    const ledger = await preparedLedger(3);
    const text = `\uFEFF${ok('id-0', 'café 👍🏽')}\r\n\r\n${ok('id-1', 'ünï')}\n   \n${ok('id-2', 'ok')}`;
    const counts = await apply(ledger, text, {}, 1);
    assert.equal(counts.lines, 3);
    assert.deepEqual(
      rows(ledger).map((r) => r.result),
      ['"café 👍🏽"', '"ünï"', '"ok"'],
    );
  });

  test('an unparsable line fails naming the file line, and nothing of the file is applied', async () => {
    const ledger = await preparedLedger(3);
    for (const [bad, message] of [
      ['{"custom_id": "id-2", ', /out\.jsonl:3: BP_RESULT_LINE not a JSON line/],
      ['{"custom_id": 12, "response": null, "error": null}', /out\.jsonl:3: BP_RESULT_LINE .*custom_id/],
      [
        '{"custom_id": "id-2", "response": null, "error": null}',
        /out\.jsonl:3: .*neither a response nor an error/,
      ],
    ] as const) {
      await assert.rejects(apply(ledger, [ok('id-0', 'a'), ok('id-1', 'b'), bad]), (err: unknown) => {
        assert.ok(err instanceof BatchpipeError);
        assert.equal(err.line, 3);
        assert.match(err.format(), message);
        return true;
      });
      assert.deepEqual(
        rows(ledger).map((r) => r.state),
        ['staged', 'staged', 'staged'],
      );
    }
  });

  test('a large file is parsed on two threads with the same outcome, and a bad line deep in it is still named', async () => {
    const n = 12_000; // ~11 MB: past the size where the parse worker starts
    const ledger = await preparedLedger(n);
    const filler = 'x'.repeat(800);
    const lines = Array.from({ length: n }, (_, i) =>
      i % 1000 === 7 ? lineError(`id-${i}`, 'batch_expired') : ok(`id-${i}`, `${filler} ${i}`),
    );
    const counts = await apply(ledger, lines.reverse());
    assert.deepEqual([counts.lines, counts.succeeded, counts.retried], [n, n - 12, 12]);
    const all = rows(ledger);
    for (const r of all) {
      if (r.seq % 1000 === 7) assert.equal(r.state, 'staged');
      else assert.equal(r.result, JSON.stringify(`${filler} ${r.seq}`));
    }
    // Completion order follows the (reversed) lines.
    assert.ok(all[0]!.result_seq! > all[1]!.result_seq!);

    const fresh = await preparedLedger(n);
    const broken = lines.slice();
    broken[n - 5] = '{oops';
    await assert.rejects(apply(fresh, broken), (err: unknown) => {
      assert.ok(err instanceof BatchpipeError);
      assert.match(err.format(), /^out\.jsonl:11996: BP_RESULT_LINE not a JSON line/);
      return true;
    });
    assert.equal(rows(fresh).filter((r) => r.state !== 'staged').length, 0);
    assertNoStagingLeft(fresh);
  });

  test('inline (collect): a large file applied on this thread alone records what two threads record', async () => {
    const n = 12_000; // ~11 MB: past the size where the parse worker would start
    const filler = 'y'.repeat(800);
    const lines = Array.from({ length: n }, (_, i) =>
      i % 997 === 5
        ? httpError(`id-${i}`, 500, { type: 'server_error' })
        : ok(`id-${i}`, `${filler} ${(i * 7919) % n}`),
    ).reverse();
    const threaded = await preparedLedger(n);
    const inline = await preparedLedger(n);
    const [counts, workers] = await mostWorkersDuring(apply(threaded, lines));
    assert.ok(workers > 0, 'the default applies a file this large on worker threads too');
    const [inlineCounts, inlineWorkers] = await mostWorkersDuring(apply(inline, lines, { inline: true }));
    assert.equal(inlineWorkers, 0);
    assert.deepEqual(inlineCounts, counts);
    assert.deepEqual([counts.succeeded, counts.retried], [n - 13, 13]);
    assert.deepEqual(rows(inline), rows(threaded));
    assertNoStagingLeft(inline);
  });

  test('works on an in-memory ledger, and leaves no staging tables behind', async () => {
    const ledger = await preparedLedger(2, { inMemory: true });
    await apply(ledger, [ok('id-0', 'a')]);
    await assert.rejects(apply(ledger, ['nope']));
    assertNoStagingLeft(ledger);
    assert.equal(row(ledger, 'id-0').state, 'succeeded');
  });

  test("scratch files that killed processes left behind are removed; a live process's are kept", async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const live = spawn('sleep', ['30']);
    const stale = path.join(tmpdir(), `batchpipe-stage-${dead}-0.db`);
    const kept = path.join(tmpdir(), `batchpipe-joined-${live.pid}-3.db`);
    try {
      writeFileSync(stale, '');
      writeFileSync(`${stale}-journal`, '');
      writeFileSync(kept, '');
      // A fresh process: the sweep runs at its first scratch database.
      const script = `
        import { scratchPath } from ${JSON.stringify(new URL('../src/ledger/outcome-stage.js', import.meta.url).href)};
        scratchPath('stage');`;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(
        [existsSync(stale), existsSync(`${stale}-journal`), existsSync(kept)],
        [false, false, true],
      );
    } finally {
      live.kill();
      rmSync(kept, { force: true });
    }
  });

  test('a large file with repeated and unknown ids: first line wins, counts add up, on a file and in memory', async () => {
    const n = 12_000;
    const filler = 'y'.repeat(800);
    for (const inMemory of [false, true]) {
      const ledger = await preparedLedger(n, { inMemory });
      const lines = Array.from({ length: n }, (_, i) => ok(`id-${i}`, `${filler} ${i}`)).reverse();
      withRepeatsAndStrangers(lines, n, 300);
      const counts = await apply(ledger, lines);
      assert.deepEqual(
        [counts.lines, counts.succeeded, counts.skipped, counts.unknown],
        [n + 24 + 30, n, 24, 30],
      );
      assert.deepEqual(counts.unknownIds, FIRST_STRANGERS);
      for (const r of rows(ledger)) assert.equal(r.result, JSON.stringify(`${filler} ${r.seq}`));
      assertNoStagingLeft(ledger);
    }
  });
});

describe('applyResultLines for one batch (collect)', () => {
  test("repeated, unknown and other batches' ids: first line wins, the rest change nothing, counts add up", async () => {
    const n = 6_000;
    const ledger = await preparedLedger(n);
    // Every 10th request is another batch's; the rest are batch 7's, submitted.
    connectionOf(ledger).exec(
      "UPDATE requests SET state = 'submitted', batch_id = CASE WHEN seq % 10 = 3 THEN 8 ELSE 7 END",
    );
    const lines = Array.from({ length: n }, (_, i) => ok(`id-${i}`, `first ${i}`)).reverse();
    withRepeatsAndStrangers(lines, n, 150);
    const counts = await apply(ledger, lines, { batchId: 7 });
    const ours = n - n / 10;
    assert.deepEqual(
      [counts.lines, counts.succeeded, counts.failed, counts.retried, counts.skipped, counts.unknown],
      [n + 12 + 30, ours, 0, 0, n / 10 + 12, 30],
    );
    assert.deepEqual(counts.unknownIds, FIRST_STRANGERS);
    for (const r of rows(ledger)) {
      if (r.seq % 10 === 3) assert.deepEqual([r.state, r.result], ['submitted', null]);
      else assert.deepEqual([r.state, r.result], ['succeeded', JSON.stringify(`first ${r.seq}`)]);
    }
    // Applied again, nothing changes; batch 8's own file then applies its requests only.
    const again = await apply(ledger, lines, { batchId: 7 });
    assert.deepEqual([again.succeeded, again.skipped, again.unknown], [0, n + 12, 30]);
    const other = await apply(ledger, lines, { batchId: 8 });
    assert.deepEqual([other.succeeded, other.skipped], [n / 10, ours + 12]);
    assertNoStagingLeft(ledger);
  });
});

describe('OutcomeStage', () => {
  test('its scratch files are gone once joined (a kill leaves nothing), and it still applies', async () => {
    const ledger = await preparedLedger(2);
    const stage = new OutcomeStage(ledger);
    try {
      const text = `${[ok('id-0', 'a'), ok('id-1', 'b')].join('\n')}\n`;
      const ctx = { endpoint: CHAT, expect: expectedOutput({ endpoint: CHAT, body: {} }) };
      stage.add(parseLineChunk({ bytes: Buffer.from(text), firstLine: 1 }, ctx, 'out.jsonl'));
      stage.joinHere([0, 1]);
      assert.ok(existsSync(stage.stagingPath));
      stage.releaseFiles();
      assert.equal(existsSync(stage.stagingPath), false);
      stage.settleJoins(5);
      const params = { batchId: undefined, maxAttempts: 3, resultSeqBase: 0, failures: false };
      const applied = ledger.transaction(() => stage.applyRange(-1, 1, params));
      assert.equal(applied.succeeded, 2);
    } finally {
      stage.close();
    }
  });

  test('a request deleted between the join and the apply: the range is refused, no row appears', async () => {
    const ledger = await preparedLedger(3);
    const stage = new OutcomeStage(ledger);
    try {
      const text = `${[ok('id-0', 'a'), ok('id-1', 'b'), ok('id-2', 'c')].join('\n')}\n`;
      const ctx = { endpoint: CHAT, expect: expectedOutput({ endpoint: CHAT, body: {} }) };
      stage.add(parseLineChunk({ bytes: Buffer.from(text), firstLine: 1 }, ctx, 'out.jsonl'));
      stage.joinHere([0, 1]);
      assert.deepEqual(stage.settleJoins(5), { unknown: 0, unknownIds: [], repeated: 0 });
      connectionOf(ledger).prepare("DELETE FROM requests WHERE custom_id = 'id-1'").run();
      const params = { batchId: undefined, maxAttempts: 3, resultSeqBase: 0, failures: false };
      assert.throws(
        () => ledger.transaction(() => stage.applyRange(-1, 2, params)),
        (err: unknown) => err instanceof BatchpipeError && err.code === 'BP_LEDGER_MISMATCH',
      );
      assert.deepEqual(
        rows(ledger).map((r) => [r.custom_id, r.state]),
        [
          ['id-0', 'staged'],
          ['id-2', 'staged'],
        ],
      );
    } finally {
      stage.close();
    }
  });
});
