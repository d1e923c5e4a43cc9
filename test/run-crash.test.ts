import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { baReviewsRunArgs, runCli, runKilledAfter, spawnServe, tempDir } from './support.js';

/** Kills that must land while a run is still working (runs that finish first do not count). */
const KILLS = 10;

test(`batchpipe run killed with SIGKILL at ${KILLS}+ random moments still ends with one result per request, nothing uploaded or created twice`, async (t) => {
  const data = tempDir();
  // Slow enough requests that kills land while batches run, not only before or after.
  const serve = await spawnServe(['--data', data, '--latency', '3', '--concurrency', '32', '--seed', '7']);
  try {
    const dir = tempDir();
    const ledger = path.join(dir, 'crash.db');
    const args = baReviewsRunArgs(
      ledger,
      serve.url,
      '--max-lines',
      '400',
      '--poll-interval',
      '0.05',
      '--results',
      path.join(dir, 'results.jsonl'),
    );
    const env = { OPENAI_API_KEY: 'local' };
    process.env.OPENAI_API_KEY ??= 'local';
    // How long an undisturbed run would take, on a separate ledger and server.
    const probeServe = await spawnServe(['--data', tempDir(), '--latency', '3', '--concurrency', '32']);
    const started = Date.now();
    const probe = await runCli(
      [
        ...args.map((a) =>
          a === ledger ? path.join(dir, 'probe.db') : a === serve.url ? probeServe.url : a,
        ),
      ],
      { env },
    );
    const duration = Date.now() - started;
    await probeServe.stop();
    assert.equal(probe.code, 0, probe.stderr);

    const moments: number[] = [];
    let interrupted = 0;
    // Kill at random moments until ten kills have landed mid-run (at most 40 tries): resumed runs
    // have less left to do, so later kills more often find the work done.
    // A resumed run that ends before its kill shows how long what is left takes: later kills aim
    // inside that, so the test does not hinge on the machine's speed staying what the probe saw.
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
    assert.equal(last.code, 0, last.stderr);

    // The ledger: every custom_id once, in exactly one final state.
    const db = new Database(ledger, { readonly: true });
    const states = db.prepare('SELECT state, count(*) AS n FROM requests GROUP BY state').all() as {
      state: string;
      n: number;
    }[];
    const files = db.prepare('SELECT name, attempt FROM files WHERE complete = 1').all() as {
      name: string;
      attempt: number;
    }[];
    db.close();
    assert.deepEqual(states, [{ state: 'succeeded', n: 3701 }]);

    // The server's own lists: each file uploaded once, one batch per file and attempt.
    const client = new OpenAI({ apiKey: 'local', baseURL: serve.url });
    const uploads = new Map<string, number>();
    for await (const f of client.files.list({ purpose: 'batch' }))
      uploads.set(f.filename, (uploads.get(f.filename) ?? 0) + 1);
    assert.equal(uploads.size, files.length);
    for (const [name, n] of uploads) assert.equal(n, 1, `${name} uploaded once`);
    const batchesPerFile = new Map<string, number>();
    const outputs: string[] = [];
    for await (const b of client.batches.list({ limit: 100 })) {
      const file = (b.metadata as Record<string, string>).batchpipe_file!;
      batchesPerFile.set(file, (batchesPerFile.get(file) ?? 0) + 1);
      if (b.output_file_id) outputs.push(b.output_file_id);
    }
    for (const [name, n] of batchesPerFile) assert.equal(n, 1, `one batch for ${name}`);
    // No request succeeded twice anywhere on the server.
    const succeeded = new Map<string, number>();
    for (const id of outputs) {
      const text = await (await client.files.content(id)).text();
      for (const line of text.split('\n').filter(Boolean)) {
        const parsed = JSON.parse(line) as { custom_id: string; response: { status_code: number } | null };
        if (parsed.response && parsed.response.status_code < 300)
          succeeded.set(parsed.custom_id, (succeeded.get(parsed.custom_id) ?? 0) + 1);
      }
    }
    assert.equal(succeeded.size, 3701);
    assert.ok(
      [...succeeded.values()].every((n) => n === 1),
      'no request succeeded twice',
    );
  } finally {
    await serve.stop();
  }
});
