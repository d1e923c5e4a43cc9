/**
 * The scheduler from code: prepare, submit and collect (and drive) called as library functions
 * against the local server over HTTP, with their events; and a provider without uploads behind the
 * same port, whose lost create response is settled by its intent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import path, { basename } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import OpenAI from 'openai';
import {
  type BatchProvider,
  type BatchpipeEvent,
  collect,
  drive,
  Ledger,
  openProvider,
  ProviderError,
  prepare,
  resultSource,
  startLocalServer,
  status,
  submit,
} from '../src/index.js';
import { connectionOf } from '../src/ledger/ledger.js';
import { REPO_ROOT, tempDir } from './support.js';

const RECORDS = 25;
const MAX_LINES = 10;
const FILES = Math.ceil(RECORDS / MAX_LINES);

/** A CSV of RECORDS rows with an id and a text of varying length. */
function writeInput(dir: string): string {
  const file = path.join(dir, 'in.csv');
  const rows = Array.from({ length: RECORDS }, (_, i) => `r${i},"say ${'word '.repeat(i % 7)}${i}"`);
  writeFileSync(file, `id,text\n${rows.join('\n')}\n`);
  return file;
}

async function preparedLedger(
  dir: string,
  onEvent?: (e: BatchpipeEvent) => void,
  { input = writeInput(dir), maxLines = MAX_LINES } = {},
) {
  const ledger = Ledger.open(path.join(dir, 'run.db'));
  await prepare({
    ledger,
    input,
    outDir: path.join(dir, 'out'),
    model: 'gpt-4o-mini',
    idColumn: 'id',
    prompt: '{{text}}',
    maxLines,
    onEvent,
  });
  return { ledger, input };
}

/** What the server answered each custom_id, read from its own output files with the SDK. */
async function serverAnswers(client: OpenAI): Promise<Map<string, string>> {
  const answers = new Map<string, string>();
  for await (const batch of client.batches.list({ limit: 100 })) {
    if (!batch.output_file_id) continue;
    const text = await (await client.files.content(batch.output_file_id)).text();
    for (const line of text.split('\n').filter((l) => l !== '')) {
      const out = JSON.parse(line) as {
        custom_id: string;
        response: { body: { choices: { message: { content: string } }[] } };
      };
      answers.set(out.custom_id, out.response.body.choices[0]!.message.content);
    }
  }
  return answers;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test('submit and collect from code against startLocalServer: every request final with its answer, told by events', async () => {
  const dir = tempDir();
  const events: BatchpipeEvent[] = [];
  const onEvent = (e: BatchpipeEvent) => events.push(e);
  const { ledger, input } = await preparedLedger(dir, onEvent);
  // The first download ends after half its lines: that file is applied twice, its tokens counted once.
  const server = await startLocalServer({ dataDir: path.join(dir, 'server'), port: 0, truncateDownloads: 1 });
  const provider = await openProvider({ backend: 'openai', baseUrl: server.url, apiKey: 'local' });
  try {
    const of = <T extends BatchpipeEvent['type']>(type: T) =>
      events.filter((e): e is Extract<BatchpipeEvent, { type: T }> => e.type === type);

    const progress = of('prepare.progress');
    assert.ok(progress.length > 0);
    assert.equal(progress.at(-1)!.bytesRead, statSync(input).size);
    assert.equal(progress.at(-1)!.totalBytes, statSync(input).size);
    assert.equal(progress.at(-1)!.records, RECORDS);
    const files = ledger.files({ complete: true });
    assert.equal(files.length, FILES);
    assert.deepEqual(
      of('file.written').map((e) => [e.file, e.requests, e.bytes]),
      files.map((f) => [f.name, f.lines, f.bytes]),
    );

    const submitted = await submit({ ledger, provider, onEvent });
    assert.deepEqual(submitted, { final: false, uploaded: FILES, created: FILES, settled: 0 });
    assert.deepEqual(
      of('file.uploaded').map((e) => e.file),
      files.map((f) => f.name),
    );
    const created = of('batch.created');
    assert.equal(created.length, FILES);
    assert.ok(created.every((e) => !e.recovered && e.provider === 'openai'));
    assert.equal(status({ ledger }).requests.submitted, RECORDS);

    const collected = await collect({ ledger, provider, onEvent, pollIntervalMs: 20 });
    assert.equal(collected.final, true);
    assert.equal(collected.settled, FILES);

    const now = status({ ledger });
    assert.equal(now.requests.succeeded, RECORDS);
    const answers = await serverAnswers(new OpenAI({ apiKey: 'local', baseURL: server.url }));
    assert.equal(answers.size, RECORDS);
    let rows = 0;
    for await (const row of resultSource({ ledger })) {
      rows++;
      assert.equal(row.status, 'succeeded');
      assert.equal(row.result, answers.get(row.custom_id!), `the answer of ${row.custom_id}`);
    }
    assert.equal(rows, RECORDS);

    // Polls carry each batch's counts; applied files and ended batches carry the tokens the ledger sums.
    const polled = of('batch.polled');
    assert.ok(polled.length >= FILES);
    const lastPoll = new Map(polled.map((e) => [e.file, e]));
    for (const f of files) {
      const last = lastPoll.get(f.name)!;
      assert.equal(last.status, 'completed');
      assert.deepEqual(last.counts, { total: f.lines, completed: f.lines, failed: 0 });
    }
    const applied = of('results.applied');
    assert.equal(of('batch.redownload').length, 1);
    assert.equal(applied.length, FILES + 1);
    assert.equal(sum(applied.map((e) => e.succeeded)), RECORDS);
    assert.ok(now.tokens.input > 0 && now.tokens.output > 0);
    assert.equal(sum(applied.map((e) => e.tokens.input)), now.tokens.input);
    assert.equal(sum(applied.map((e) => e.tokens.output)), now.tokens.output);
    const ended = of('batch.ended');
    assert.deepEqual(ended.map((e) => e.batchId).sort(), created.map((e) => e.batchId).sort());
    assert.equal(sum(ended.map((e) => e.tokens.output)), now.tokens.output);
    assert.ok(ended.every((e) => e.status === 'completed' && e.failure === undefined));
  } finally {
    await provider.close();
    await server.close();
    ledger.close();
  }
});

/**
 * A provider that takes its requests inline (no uploads), as Anthropic's Message Batches do, built
 * over the OpenAI provider for the test: it uploads inside `createBatch`. Its first create answers
 * with a retryable error after the batch was made, as a response lost on the way would.
 */
function inlineProvider(inner: BatchProvider): BatchProvider & { creates: number } {
  const name = 'inline-test';
  let lost = false;
  const provider = {
    ...inner,
    name,
    capabilities: { upload: false },
    uploadFile: undefined,
    findUpload: undefined,
    creates: 0,
    async createBatch(request: Parameters<BatchProvider['createBatch']>[0]) {
      const local = request.input;
      assert.ok('path' in local, 'an inline provider is given the local request file');
      const file = await inner.uploadFile!({
        name: basename(local.path),
        bytes: local.bytes,
        path: local.path,
        open: () => createReadStream(local.path),
      });
      provider.creates++;
      const batch = await inner.createBatch({ ...request, input: { fileId: file.id } });
      if (!lost) {
        lost = true;
        throw new ProviderError('the connection was reset (test)', { retryable: true });
      }
      return { ...batch, provider: name };
    },
    async findBatchByIntent(...args: Parameters<BatchProvider['findBatchByIntent']>) {
      const found = await inner.findBatchByIntent(...args);
      return found && { ...found, provider: name };
    },
  };
  return provider;
}

test('drive from code with a provider that takes requests inline: no uploads by the scheduler, and a lost create response settled by its intent', async () => {
  const dir = tempDir();
  const { ledger } = await preparedLedger(dir);
  const server = await startLocalServer({ dataDir: path.join(dir, 'server'), port: 0 });
  const inner = await openProvider({ backend: 'openai', baseUrl: server.url, apiKey: 'local' });
  const provider = inlineProvider(inner);
  try {
    const result = await drive({ ledger, provider, pollIntervalMs: 20 });
    assert.equal(result.final, true);
    assert.equal(result.uploaded, 0, 'the scheduler uploads nothing for an inline provider');
    assert.equal(status({ ledger }).requests.succeeded, RECORDS);
    assert.ok(ledger.files().every((f) => f.remote_file_id === null));

    const client = new OpenAI({ apiKey: 'local', baseURL: server.url });
    const batches = [];
    for await (const b of client.batches.list({ limit: 100 })) batches.push(b);
    assert.equal(provider.creates, FILES, 'the lost create was found, not made again');
    assert.equal(batches.length, FILES, 'one batch per file on the server');
    const providers = connectionOf(ledger).prepare('SELECT DISTINCT provider FROM batches').pluck().all();
    assert.deepEqual(providers, ['inline-test']);
  } finally {
    await inner.close();
    await server.close();
    ledger.close();
  }
});

test('examples/drive-from-code.ts (the README example) prepares, drives and reads back every record', async () => {
  const dir = tempDir();
  const script = path.join(REPO_ROOT, 'dist', 'examples', 'drive-from-code.js');
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      execFile(process.execPath, [script, dir], (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      });
    },
  );
  assert.equal(run.code, 0, run.stderr);
  const ids = (
    parse(readFileSync(path.join(REPO_ROOT, 'examples', 'feedback.csv')), { columns: true }) as {
      id: string;
    }[]
  ).map((r) => r.id);
  const rows = run.stdout
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  assert.deepEqual(
    rows.map((r) => r[0]),
    ids,
  );
  assert.ok(rows.every((r) => r[1] === 'succeeded' && r[2] !== 'null'));
  assert.match(run.stderr, /^batch \S+ completed$/m);
});

test('uploads of request files many times the upload buffers: the server holds every byte as prepare wrote it', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'big.csv');
  // 3,000 rows of ~2 KB texts, all different: over 3 MB per file, past UPLOAD_BUFFERS × a chunk
  // many times over, so a chunk's memory reused too early would change the bytes the server stores.
  const rows = Array.from(
    { length: 3000 },
    (_, i) => `r${i},"${`row ${i} ü€ ${'abcdefghij'.repeat(1 + (i % 7))} `.repeat(40)}"`,
  );
  writeFileSync(input, `id,text\n${rows.join('\n')}\n`);
  const { ledger } = await preparedLedger(dir, undefined, { input, maxLines: 1500 });
  const server = await startLocalServer({ dataDir: path.join(dir, 'server'), port: 0 });
  const provider = await openProvider({ backend: 'openai', baseUrl: server.url, apiKey: 'local' });
  try {
    await submit({ ledger, provider });
    const files = ledger.files();
    assert.equal(files.length, 2);
    const client = new OpenAI({ apiKey: 'local', baseURL: server.url });
    for (const file of files) {
      const local = readFileSync(path.join(dir, 'out', basename(file.path)));
      assert.ok(local.length > 3_000_000, `${file.name} is ${local.length} bytes`);
      const remote = Buffer.from(await (await client.files.content(file.remote_file_id!)).arrayBuffer());
      assert.ok(remote.equals(local), `${file.name}: the uploaded bytes differ from the file`);
    }
  } finally {
    await provider.close();
    await server.close();
    ledger.close();
  }
});
