import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, JobState } from '@google/genai';
import Database from 'better-sqlite3';
import { type JsonObject, removeDir, startTestServer, tempDir } from './server-support.js';
import { spawnServe } from './support.js';

test('a `batchpipe serve` killed mid-batch carries on with its Anthropic and Gemini batches after a restart, each request once', async () => {
  const dataDir = tempDir();
  const dir = tempDir();
  const customIds = Array.from({ length: 24 }, (_, i) => `r-${i}`);
  const keys = Array.from({ length: 24 }, (_, i) => `k${i}`);
  const first = await spawnServe(['--data', dataDir, '--latency', '60', '--concurrency', '2']);
  let messageBatchId: string;
  let fileBatch: string;
  let inlineBatch: string;
  try {
    const origin = first.url.replace(/\/v1$/, '');
    const anthropic = new Anthropic({ apiKey: 'test', baseURL: origin });
    const ai = new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl: origin } });
    messageBatchId = (
      await anthropic.messages.batches.create({
        requests: customIds.map((id) => ({
          custom_id: id,
          params: {
            model: 'claude-sonnet-4-5',
            max_tokens: 64,
            messages: [{ role: 'user', content: `Review ${id}` }],
          },
        })),
      })
    ).id;
    const input = path.join(dir, 'in.jsonl');
    writeFileSync(
      input,
      `${keys.map((key) => JSON.stringify({ key, request: { contents: [{ parts: [{ text: `Review ${key}` }] }] } })).join('\n')}\n`,
    );
    const file = await ai.files.upload({ file: input, config: { mimeType: 'application/jsonl' } });
    fileBatch = (await ai.batches.create({ model: 'gemini-2.5-flash', src: file.name as string }))
      .name as string;
    inlineBatch = (
      await ai.batches.create({
        model: 'gemini-2.5-flash',
        src: keys.map((key) => ({
          contents: [{ role: 'user', parts: [{ text: `Review ${key}` }] }],
          metadata: { key },
        })),
      })
    ).name as string;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(
      (await anthropic.messages.batches.retrieve(messageBatchId)).processing_status,
      'in_progress',
    );
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await exited;
  } finally {
    await first.stop();
  }

  const second = await spawnServe(['--data', dataDir]);
  try {
    const origin = second.url.replace(/\/v1$/, '');
    const anthropic = new Anthropic({ apiKey: 'test', baseURL: origin });
    const ai = new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl: origin } });
    const deadline = Date.now() + 20_000;
    const jobs = new Map<string, Awaited<ReturnType<typeof ai.batches.get>>>();
    for (;;) {
      const batch = await anthropic.messages.batches.retrieve(messageBatchId);
      for (const name of [fileBatch, inlineBatch]) jobs.set(name, await ai.batches.get({ name }));
      const geminiDone = [...jobs.values()].every((j) => j.state === JobState.JOB_STATE_SUCCEEDED);
      if (batch.processing_status === 'ended' && geminiDone) break;
      assert.ok(Date.now() < deadline, 'the batches end after the restart');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const results: string[] = [];
    for await (const line of await anthropic.messages.batches.results(messageBatchId)) {
      assert.equal(line.result.type, 'succeeded');
      results.push(line.custom_id);
    }
    assert.deepEqual(results.sort(), [...customIds].sort(), 'every custom_id once');
    assert.equal((await anthropic.messages.batches.list()).data.length, 1, 'no batch twice');

    const downloaded = path.join(dir, 'out.jsonl');
    await ai.files.download({
      file: jobs.get(fileBatch)?.dest?.fileName as string,
      downloadPath: downloaded,
    });
    const fileKeys = readFileSync(downloaded, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as JsonObject).key);
    assert.deepEqual(fileKeys, keys, 'every key once, in input order');
    assert.deepEqual(
      (jobs.get(inlineBatch)?.dest?.inlinedResponses ?? []).map((r) => r.metadata?.key),
      keys,
    );
    let listed = 0;
    for await (const _ of await ai.batches.list()) listed++;
    assert.equal(listed, 2);
  } finally {
    await second.stop();
    await removeDir(dataDir);
    await removeDir(dir);
  }
});

test('a data dir of the previous server (schema 1) opens, keeps its OpenAI batches and files, and takes the other APIs', async () => {
  const dataDir = tempDir();
  // The tables as schema 1 created them, holding one finished OpenAI batch.
  const db = new Database(path.join(dataDir, 'state.db'));
  db.exec(`
    CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, purpose TEXT NOT NULL,
      deleted INTEGER NOT NULL DEFAULT 0, sweep INTEGER NOT NULL DEFAULT 0, doc TEXT NOT NULL);
    CREATE INDEX files_purpose ON files (purpose, seq);
    CREATE TABLE batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, model TEXT,
      tokens INTEGER NOT NULL DEFAULT 0, input_file_id TEXT NOT NULL, doc TEXT NOT NULL, internals TEXT NOT NULL);
    CREATE INDEX batches_status ON batches (status);
    PRAGMA user_version = 1;
  `);
  const fileId = 'file-AAAAAAAAAAAAAAAAAAAAAA';
  const batchId = `batch_${'a'.repeat(32)}`;
  const file = {
    id: fileId,
    object: 'file',
    bytes: 2,
    created_at: 1,
    expires_at: null,
    filename: 'in.jsonl',
    purpose: 'batch',
    status: 'processed',
    status_details: null,
  };
  db.prepare('INSERT INTO files (id, purpose, doc) VALUES (?, ?, ?)').run(
    fileId,
    'batch',
    JSON.stringify(file),
  );
  const batch = {
    id: batchId,
    object: 'batch',
    endpoint: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    errors: null,
    input_file_id: fileId,
    completion_window: '24h',
    status: 'completed',
    output_file_id: null,
    error_file_id: null,
    created_at: 1,
    in_progress_at: 1,
    expires_at: 86_401,
    finalizing_at: 1,
    completed_at: 2,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: {
      input_tokens: 0,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 0,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 0,
    },
    metadata: null,
  };
  const internals = {
    deadlineMs: 86_401_000,
    tokens: 0,
    outputFileId: 'file-BBBBBBBBBBBBBBBBBBBBBB',
    errorFileId: 'file-CCCCCCCCCCCCCCCCCCCCCC',
    outputExpiresAfter: null,
  };
  db.prepare(
    'INSERT INTO batches (id, status, model, tokens, input_file_id, doc, internals) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run(batchId, 'completed', 'gpt-4o-mini', 0, fileId, JSON.stringify(batch), JSON.stringify(internals));
  db.close();

  const server = await startTestServer({ dataDir });
  try {
    assert.deepEqual(
      (await server.client.batches.list()).data.map((b) => b.id),
      [batchId],
    );
    assert.equal((await server.client.batches.retrieve(batchId)).status, 'completed');
    assert.deepEqual(
      (await server.client.files.list()).data.map((f) => f.id),
      [fileId],
    );
    const anthropic = new Anthropic({ apiKey: 'test', baseURL: server.origin });
    assert.equal(
      (await anthropic.messages.batches.list()).data.length,
      0,
      'an OpenAI batch is not an Anthropic one',
    );
  } finally {
    await server.close();
  }
  const reopened = new Database(path.join(dataDir, 'state.db'), { readonly: true });
  assert.equal(reopened.pragma('user_version', { simple: true }), 2);
  reopened.close();
  await removeDir(dataDir);
});
