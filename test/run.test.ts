import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import OpenAI from 'openai';
import { localServerDir } from '../src/providers/local/local-provider.js';
import { startLocalServer } from '../src/server/index.js';
import { BA_REVIEWS, runCli, spawnServe, tempDir } from './support.js';

const reviews = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];

async function serverLists(dataDir: string) {
  const server = await startLocalServer({ dataDir, port: 0 });
  try {
    const client = new OpenAI({ apiKey: 'local', baseURL: server.url });
    const files = [];
    for await (const f of client.files.list({ purpose: 'batch' })) files.push(f);
    const batches = [];
    for await (const b of client.batches.list({ limit: 100 })) batches.push(b);
    return { files, batches };
  } finally {
    await server.close();
  }
}

test('run on the BA reviews with the local backend: every request succeeds; a second run uploads and creates nothing', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'ba.db');
  const args = [
    'run',
    BA_REVIEWS,
    '--backend',
    'local',
    '--ledger',
    ledger,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'ReviewID',
    '--prompt',
    'Classify this review: {{ReviewBody}}',
    '--max-lines',
    '1000',
    '--format',
    'jsonl',
    '--poll-interval',
    '0.2',
  ];
  const first = await runCli(args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /local backend: built-in Batch API server at http:\/\/127\.0\.0\.1:\d+\/v1/);
  const rows = first.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, reviews.length);
  assert.ok(
    rows.every((r) => r.status === 'succeeded'),
    'every request succeeded',
  );

  const status = await runCli(['status', '--ledger', ledger, '--json']);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.requests.succeeded, reviews.length);
  assert.equal(parsed.requests.total, reviews.length);
  assert.equal(parsed.batches.length, 4);
  assert.ok(parsed.batches.every((b: { status: string }) => b.status === 'completed'));

  const before = await serverLists(localServerDir(ledger));
  assert.equal(before.files.length, 4);
  assert.equal(before.batches.length, 4);
  const second = await runCli(args);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, first.stdout, 'the same results, written again');
  const after = await serverLists(localServerDir(ledger));
  assert.deepEqual(after.files.map((f) => f.id).sort(), before.files.map((f) => f.id).sort());
  assert.deepEqual(after.batches.map((b) => b.id).sort(), before.batches.map((b) => b.id).sort());
});

test('without a key and without --backend local the CLI says exactly that', async () => {
  const dir = tempDir();
  const run = await runCli(
    [
      'run',
      BA_REVIEWS,
      '--ledger',
      path.join(dir, 'l.db'),
      '--model',
      'm',
      '--prompt',
      '{{ReviewBody}}',
      '--id-column',
      'ReviewID',
    ],
    {
      env: { OPENAI_API_KEY: '' },
    },
  );
  assert.equal(run.code, 1);
  assert.match(run.stderr, /BP_NO_API_KEY no OpenAI API key: set OPENAI_API_KEY .* or use --backend local/);
});

test('against a key-protected `batchpipe serve`, the key never reaches the ledger, the files or the output', async () => {
  const secret = `sk-test-${Math.random().toString(36).slice(2)}-SECRET`;
  const data = tempDir();
  const serve = await spawnServe(['--data', data, '--api-key', secret]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'l.db');
    const run = await runCli(
      [
        'run',
        '-',
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        '--model',
        'm',
        '--prompt',
        'Say {{text}}',
        '--poll-interval',
        '0.1',
      ],
      { stdin: 'text\nhello\nworld\n', env: { OPENAI_API_KEY: secret } },
    );
    assert.equal(run.code, 0, run.stderr);
    for (const text of [run.stdout, run.stderr, readFileSync(ledger).toString('latin1'), serve.stderr()]) {
      assert.ok(!text.includes(secret), 'the key appears nowhere');
    }
    // A refused key: the error is reported without the key in it.
    const other = path.join(dir, 'other.db');
    const prep = await runCli(
      [
        'prepare',
        '-',
        '--ledger',
        other,
        '--out',
        path.join(dir, 'o'),
        '--model',
        'm',
        '--prompt',
        '{{text}}',
      ],
      { stdin: 'text\nx\n' },
    );
    assert.equal(prep.code, 0, prep.stderr);
    const wrong = await runCli(['submit', '--ledger', other, '--base-url', serve.url], {
      env: { OPENAI_API_KEY: `${secret}-wrong` },
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /BP_API (reading the API.s clock for the )?upload of .* failed: 401/);
    assert.ok(!wrong.stderr.includes(secret));
  } finally {
    await serve.stop();
  }
});

test('run --no-wait submits and returns; cancel stops the batches and keeps what they finished; collect --once polls one round', async () => {
  const data = tempDir();
  const serve = await spawnServe(['--data', data, '--latency', '20', '--concurrency', '4']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'c.db');
    const env = { OPENAI_API_KEY: 'local' };
    const submitted = await runCli(
      [
        'run',
        BA_REVIEWS,
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        '--model',
        'm',
        '--id-column',
        'ReviewID',
        '--prompt',
        '{{ReviewBody}}',
        '--max-lines',
        '1000',
        '--no-wait',
      ],
      { env },
    );
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal(submitted.stdout, '', 'no results yet');
    const before = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
    assert.equal(before.requests.submitted, reviews.length);
    assert.equal(before.batches.length, 4);

    const once = await runCli(['collect', '--ledger', ledger, '--base-url', serve.url, '--once'], { env });
    assert.equal(once.code, 0, once.stderr);
    await new Promise((r) => setTimeout(r, 300)); // let some requests finish
    const cancel = await runCli(
      ['cancel', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.1'],
      { env },
    );
    assert.equal(cancel.code, 0, cancel.stderr);
    const after = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
    const r = after.requests;
    assert.equal(r.submitted + r.staged, 0, 'nothing left open');
    assert.ok(r.succeeded > 0, 'what finished before the cancel is kept');
    assert.ok(r.cancelled > 0, 'the rest is cancelled');
    assert.equal(r.succeeded + r.cancelled + r.failed, reviews.length);
    assert.ok(after.batches.every((b: { status: string }) => b.status === 'cancelled'));
  } finally {
    await serve.stop();
  }
});

test('run without input refuses a ledger whose prepare never finished, and finishes it when given the input again', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'l.db');
  const common = [
    '--ledger',
    ledger,
    '--backend',
    'local',
    '--model',
    'm',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--poll-interval',
    '0.1',
  ];
  const broken = await runCli(['run', '-', ...common], { stdin: 'id,text\n1,a\n1,b\n' });
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /BP_DUPLICATE_ID/);
  const resumed = await runCli(['run', ...common]);
  assert.equal(resumed.code, 1);
  assert.match(resumed.stderr, /BP_INCOMPLETE_RUN run: the run in .* stopped preparing after 0 records/);
  const fixed = await runCli(['run', '-', ...common, '--format', 'jsonl'], { stdin: 'id,text\n1,a\n2,b\n' });
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.deepEqual(
    fixed.stdout
      .trim()
      .split('\n')
      .map((l) => [JSON.parse(l).custom_id, JSON.parse(l).status]),
    [
      ['1', 'succeeded'],
      ['2', 'succeeded'],
    ],
  );
});

test('results ingested from elsewhere are not sent again: a partly answered file is split before submit', async () => {
  const data = tempDir();
  const serve = await spawnServe(['--data', data]);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'i.db');
    const prep = await runCli([
      'prepare',
      BA_REVIEWS,
      '--ledger',
      ledger,
      '--out',
      path.join(dir, 'out'),
      '--model',
      'm',
      '--id-column',
      'ReviewID',
      '--prompt',
      '{{ReviewBody}}',
      '--max-lines',
      '1000',
    ]);
    assert.equal(prep.code, 0, prep.stderr);
    // Answers for the first 300 reviews, as a dashboard download would hold them.
    const answered = reviews.slice(0, 300).map((r) => r.ReviewID!);
    const output = answered
      .map((id) =>
        JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: id,
          response: {
            status_code: 200,
            request_id: `req_${id}`,
            body: {
              object: 'chat.completion',
              choices: [
                { index: 0, message: { role: 'assistant', content: 'earlier' }, finish_reason: 'stop' },
              ],
            },
          },
          error: null,
        }),
      )
      .join('\n');
    const outputFile = path.join(dir, 'earlier-output.jsonl');
    writeFileSync(outputFile, `${output}\n`);
    const ingest = await runCli(['ingest', '--ledger', ledger, outputFile]);
    assert.equal(ingest.code, 0, ingest.stderr);

    const run = await runCli(
      ['run', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.1', '--format', 'jsonl'],
      { env: { OPENAI_API_KEY: 'local' } },
    );
    assert.equal(run.code, 0, run.stderr);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; status: string; result: unknown });
    assert.equal(rows.length, reviews.length);
    assert.ok(rows.every((r) => r.status === 'succeeded'));
    assert.ok(
      rows.filter((r) => answered.includes(r.custom_id)).every((r) => r.result === 'earlier'),
      'ingested answers kept',
    );

    // What the server was sent: every review once, except the 300 answered before.
    const client = new OpenAI({ apiKey: 'local', baseURL: serve.url });
    const sent: string[] = [];
    for await (const f of client.files.list({ purpose: 'batch' })) {
      const text = await (await client.files.content(f.id)).text();
      for (const line of text.split('\n').filter(Boolean))
        sent.push((JSON.parse(line) as { custom_id: string }).custom_id);
    }
    assert.equal(sent.length, reviews.length - answered.length);
    assert.equal(new Set(sent).size, sent.length);
    assert.ok(!sent.some((id) => answered.includes(id)), 'no ingested request was sent again');
  } finally {
    await serve.stop();
  }
});
