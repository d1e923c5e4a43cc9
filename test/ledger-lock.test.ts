import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { writeFeedbackCsv } from '../bench/generate.js';
import { ErrorCodes } from '../src/errors.js';
import { Ledger } from '../src/ledger/ledger.js';
import { type CliResult, runCli, spawnCli, spawnServe, tempDir, waitFor } from './support.js';

const env = { OPENAI_API_KEY: 'local' };

/** `n` CSV rows `id,text`. */
function writeRows(file: string, n: number): void {
  const rows = Array.from({ length: n }, (_, i) => `r${i},"feedback number ${i}, with a comma"`);
  writeFileSync(file, `id,text\n${rows.join('\n')}\n`);
}

/** The ledger and template options of the test input (prepare's and run's). */
function ledgerArgs(ledger: string): string[] {
  return [
    '--ledger',
    ledger,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Classify: {{text}}',
    '--max-lines',
    '40',
  ];
}

function runArgs(ledger: string, url: string, input?: string): string[] {
  return [
    'run',
    ...(input === undefined ? [] : [input]),
    ...ledgerArgs(ledger),
    '--base-url',
    url,
    '--poll-interval',
    '0.05',
    '--format',
    'jsonl',
  ];
}

/** The refusal a second writer must get: at once, exit 1, naming the holder. */
function assertBusy(second: CliResult, holderPid: number, command: string): void {
  assert.equal(second.code, 1, second.stderr);
  assert.match(second.stderr, /BP_LEDGER_BUSY/);
  assert.ok(
    second.stderr.includes(`\`batchpipe ${command}\` (pid ${holderPid} on `),
    `names the holder: ${second.stderr}`,
  );
}

/**
 * The server's own lists: every file uploaded once, one batch per file, no request answered twice;
 * and as many files and batches as the ledger has complete files.
 */
async function assertNothingTwice(url: string, ledgerPath: string, requests: number): Promise<void> {
  const db = new Database(ledgerPath, { readonly: true });
  const files = db.prepare('SELECT count(*) FROM files WHERE complete = 1').pluck().get() as number;
  db.close();
  const client = new OpenAI({ apiKey: 'local', baseURL: url });
  const uploads = new Map<string, number>();
  for await (const f of client.files.list({ purpose: 'batch' }))
    uploads.set(f.filename, (uploads.get(f.filename) ?? 0) + 1);
  assert.equal(uploads.size, files, 'every file uploaded');
  for (const [name, n] of uploads) assert.equal(n, 1, `${name} uploaded once`);
  const batchesPerFile = new Map<string, number>();
  const answered = new Map<string, number>();
  for await (const b of client.batches.list({ limit: 100 })) {
    const file = (b.metadata as Record<string, string>).batchpipe_file!;
    batchesPerFile.set(file, (batchesPerFile.get(file) ?? 0) + 1);
    for (const id of [b.output_file_id, b.error_file_id]) {
      if (!id) continue;
      const text = await (await client.files.content(id)).text();
      for (const line of text.split('\n').filter(Boolean)) {
        const customId = (JSON.parse(line) as { custom_id: string }).custom_id;
        answered.set(customId, (answered.get(customId) ?? 0) + 1);
      }
    }
  }
  assert.equal(batchesPerFile.size, files, 'a batch for every file');
  for (const [name, n] of batchesPerFile) assert.equal(n, 1, `one batch for ${name}`);
  assert.equal(answered.size, requests, 'every request answered');
  assert.deepEqual(
    [...answered].filter(([, n]) => n > 1),
    [],
    'no request answered twice',
  );
}

test('run + run on one ledger: the second is refused at once; status and results work meanwhile; nothing is sent twice', async () => {
  const serve = await spawnServe(['--data', tempDir(), '--latency', '200', '--concurrency', '8']);
  try {
    const dir = tempDir();
    const input = path.join(dir, 'in.csv');
    writeRows(input, 160);
    const ledger = path.join(dir, 'x.db');
    const first = spawnCli(runArgs(ledger, serve.url, input), { env });
    await waitFor('the first run to finish preparing', () => /prepared: /.test(first.stderr()));

    const started = Date.now();
    const second = await runCli(runArgs(ledger, serve.url, input), { env });
    const took = Date.now() - started;
    assertBusy(second, first.child.pid!, 'run');
    const status = await runCli(['status', '--ledger', ledger, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { requests: { total: number } }).requests.total, 160);
    const results = await runCli(['results', '--ledger', ledger, '--format', 'jsonl']);
    assert.equal(results.code, 0, results.stderr);
    assert.equal(results.stdout.trim().split('\n').length, 160);
    assert.equal(first.child.exitCode, null, 'the first run was still running all along');
    assert.ok(took < 5000, `refused at once (${took} ms)`);

    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim().split('\n').length, 160);
    await assertNothingTwice(serve.url, ledger, 160);
  } finally {
    await serve.stop();
  }
});

test('collect + run on one ledger: the run is refused while collect works; nothing is sent twice', async () => {
  const serve = await spawnServe(['--data', tempDir(), '--latency', '200', '--concurrency', '8']);
  try {
    const dir = tempDir();
    const input = path.join(dir, 'in.csv');
    writeRows(input, 160);
    const ledger = path.join(dir, 'x.db');
    const prepared = await runCli(['prepare', input, ...ledgerArgs(ledger), '--out', path.join(dir, 'out')]);
    assert.equal(prepared.code, 0, prepared.stderr);

    const collect = spawnCli(
      ['collect', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.05'],
      {
        env,
      },
    );
    const client = new OpenAI({ apiKey: 'local', baseURL: serve.url });
    await waitFor('collect to create a batch', async () => (await client.batches.list()).data.length > 0);
    for (const args of [runArgs(ledger, serve.url), runArgs(ledger, serve.url, input)]) {
      assertBusy(await runCli(args, { env }), collect.child.pid!, 'collect');
    }
    assert.equal(collect.child.exitCode, null, 'collect was still running');
    const done = await collect.exited;
    assert.equal(done.code, 0, done.stderr);
    await assertNothingTwice(serve.url, ledger, 160);
  } finally {
    await serve.stop();
  }
});

test('prepare + prepare on one ledger: the second is refused and creates nothing; a SIGKILLed holder frees the lock', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in.csv');
  await writeFeedbackCsv(input, { rows: 40_000, seed: 3 });
  const ledger = path.join(dir, 'x.db');
  const args = (out: string, ...extra: string[]) => [
    'prepare',
    input,
    '--ledger',
    ledger,
    '--out',
    path.join(dir, out),
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--max-lines',
    '2000',
    ...extra,
  ];
  // The ledger file exists once its holder has the lock (the lock comes first).
  const first = spawnCli(args('out'));
  await waitFor('the first prepare to open its ledger', () => existsSync(ledger));
  const second = await runCli(args('out-b', '--rejects', path.join(dir, 'rej-b.jsonl')));
  assertBusy(second, first.child.pid!, 'prepare');
  assert.equal(first.child.exitCode, null, 'the first prepare was still running');
  assert.ok(!existsSync(path.join(dir, 'out-b')), 'no output directory');
  assert.ok(!existsSync(path.join(dir, 'rej-b.jsonl')), 'no rejects file');
  const done = await first.exited;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /read 40000 = staged 40000 \+ rejected 0/);

  // A holder killed with SIGKILL holds nothing: the next one proceeds (here it resumes).
  const other = path.join(dir, 'y.db');
  const killed = spawnCli(args('out-y').map((a) => (a === ledger ? other : a)));
  await waitFor('the killed prepare to open its ledger', () => existsSync(other));
  killed.child.kill('SIGKILL');
  assert.equal((await killed.exited).signal, 'SIGKILL');
  const next = await runCli(args('out-y').map((a) => (a === ledger ? other : a)));
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /read 40000 = staged 40000 \+ rejected 0/);
});

test('in one process: a second writer is refused, readers are not, and close() frees the lock', () => {
  const file = path.join(tempDir(), 'l.db');
  const holder = Ledger.open(file, { holder: 'test holder' });
  try {
    assert.throws(
      () => Ledger.open(file),
      (err: Error & { code?: string }) =>
        err.code === ErrorCodes.LEDGER_BUSY &&
        err.message.includes(`\`test holder\` (pid ${process.pid} on `),
    );
    const reader = Ledger.open(file, { readonly: true });
    assert.equal(reader.getMeta('identity'), undefined);
    reader.close();
    // An in-memory ledger belongs to its connection alone: no lock.
    const a = Ledger.open(':memory:');
    const b = Ledger.open(':memory:');
    a.close();
    b.close();
  } finally {
    holder.close();
  }
  const again = Ledger.open(file);
  again.close();
});
