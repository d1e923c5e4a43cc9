/**
 * `--provider anthropic` killed with SIGKILL at random moments across create, poll and download, on a
 * `batchpipe serve` (its Anthropic Message Batches API): every row once, and no batch created twice,
 * checked against the server's own list. Anthropic batches carry no tag, so an interrupted create
 * is found by its request count and time: this is where that has to hold.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import Database from 'better-sqlite3';
import { BA_REVIEWS, runCli, runKilledAfter, spawnServe, tempDir } from './support.js';

const KILLS = 10;

test(`--provider anthropic killed with SIGKILL at ${KILLS}+ random moments still ends with one result per request and one batch per file`, async (t) => {
  const serve = await spawnServe([
    '--data',
    tempDir(),
    '--latency',
    '3',
    '--concurrency',
    '32',
    '--seed',
    '7',
  ]);
  try {
    const dir = tempDir('bp-anthropic-crash-');
    const ledger = path.join(dir, 'crash.db');
    const args = [
      'run',
      BA_REVIEWS,
      '--provider',
      'anthropic',
      '--ledger',
      ledger,
      '--base-url',
      serve.url,
      '--model',
      'claude-haiku-4-5',
      '--id-column',
      'ReviewID',
      '--prompt',
      'Classify: {{ReviewBody}}',
      '--max-lines',
      '400',
      '--poll-interval',
      '0.05',
      '--format',
      'jsonl',
      '--results',
      path.join(dir, 'results.jsonl'),
    ];
    const env = { ANTHROPIC_API_KEY: 'local' };
    // The children inherit this process's environment (runKilledAfter takes none of its own).
    process.env.ANTHROPIC_API_KEY ??= 'local';

    // How long an undisturbed run takes, on its own ledger and server.
    const probeServe = await spawnServe(['--data', tempDir(), '--latency', '3', '--concurrency', '32']);
    const started = Date.now();
    const probe = await runCli(
      args.map((a) => (a === ledger ? path.join(dir, 'probe.db') : a === serve.url ? probeServe.url : a)),
      { env },
    );
    const duration = Date.now() - started;
    await probeServe.stop();
    assert.equal(probe.code, 0, probe.stderr);

    const moments: number[] = [];
    let interrupted = 0;
    let window = duration;
    for (let tries = 0; interrupted < KILLS && tries < 40; tries++) {
      const at = Math.round(50 + Math.random() * window * 0.9);
      const began = Date.now();
      const ended = await runKilledAfter(args, at);
      if (ended.signal === 'SIGKILL') {
        interrupted++;
        moments.push(at);
      } else {
        window = Math.max(100, Date.now() - began);
      }
    }
    t.diagnostic(`undisturbed run ${duration} ms; killed mid-run at ${moments.join(', ')} ms`);
    assert.equal(interrupted, KILLS, `${interrupted} kills landed mid-run`);

    const last = await runCli(args, { env });
    assert.equal(last.code, 0, `${last.stderr}\nserver: ${serve.stderr().slice(-3000)}`);

    const db = new Database(ledger, { readonly: true });
    const states = db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all();
    const sent = db
      .prepare('SELECT remote_id FROM batches WHERE remote_id IS NOT NULL')
      .pluck()
      .all() as string[];
    const files = db.prepare('SELECT count(*) FROM files WHERE complete = 1').pluck().get() as number;
    db.close();
    assert.deepEqual(states, [{ state: 'succeeded', n: 3701 }]);

    // The server's own list: as many batches as the ledger sent, each one the ledger knows.
    const client = new Anthropic({ apiKey: 'local', baseURL: serve.url.replace(/\/v1$/, '') });
    const onServer: Anthropic.Messages.MessageBatch[] = [];
    for await (const batch of client.messages.batches.list({ limit: 100 })) onServer.push(batch);
    assert.deepEqual(onServer.map((b) => b.id).sort(), [...sent].sort(), 'no batch the ledger does not know');
    assert.equal(sent.length, files, 'one batch per request file');
    // No request sent in two batches, and each answered once.
    const seen = new Map<string, number>();
    for (const batch of onServer) {
      for await (const line of await client.messages.batches.results(batch.id)) {
        seen.set(line.custom_id, (seen.get(line.custom_id) ?? 0) + 1);
        assert.equal(line.result.type, 'succeeded');
      }
    }
    assert.equal(seen.size, 3701);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'no request in two batches',
    );
  } finally {
    await serve.stop();
  }
});

test('--provider anthropic: creations whose response is lost are found again by count and time, never created twice', async () => {
  // The server makes the first 3 batches and drops the connection before answering: the client
  // cannot know whether they exist, and must find them rather than create them again.
  const serve = await spawnServe(['--data', tempDir(), '--lose-create-responses', '3']);
  try {
    const dir = tempDir('bp-anthropic-lost-');
    const ledger = path.join(dir, 'lost.db');
    const run = await runCli(
      [
        'run',
        BA_REVIEWS,
        '--provider',
        'anthropic',
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        '--model',
        'claude-haiku-4-5',
        '--id-column',
        'ReviewID',
        '--prompt',
        'Classify: {{ReviewBody}}',
        '--max-lines',
        '1000',
        '--poll-interval',
        '0.05',
        '--format',
        'jsonl',
      ],
      { env: { ANTHROPIC_API_KEY: 'local' } },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split('\n').length, 3701);
    const db = new Database(ledger, { readonly: true });
    const sent = db.prepare('SELECT remote_id FROM batches WHERE remote_id IS NOT NULL').pluck().all();
    db.close();
    const client = new Anthropic({ apiKey: 'local', baseURL: serve.url.replace(/\/v1$/, '') });
    const onServer: string[] = [];
    for await (const batch of client.messages.batches.list({ limit: 100 })) onServer.push(batch.id);
    assert.equal(onServer.length, 4, 'one batch for each of the 4 files');
    assert.deepEqual(onServer.sort(), (sent as string[]).sort());
  } finally {
    await serve.stop();
  }
});
