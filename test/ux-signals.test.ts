import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, REPO_ROOT, runCli, spawnCli, spawnServe, tempDir, waitFor } from './support.js';
import { FEEDBACK_CSV } from './ux-support.js';

const ENV = { OPENAI_API_KEY: 'sk-ux-test-key' };

/** Splits a printed command line as a POSIX shell would (the quoting `shellQuote` writes). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)) {
    words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!);
  }
  return words;
}

test('SIGINT during collect says what was in flight and the command that goes on; that command finishes the run', async () => {
  const serve = await spawnServe(['--data', path.join(tempDir(), 'srv'), '--latency', '1500']);
  try {
    const dir = tempDir('bp ux signals ');
    const ledger = path.join(dir, 'fb.db');
    const submit = await runCli(
      [
        'run',
        FEEDBACK_CSV,
        '--ledger',
        ledger,
        '--base-url',
        serve.url,
        '--model',
        'gpt-4o-mini',
        '--id-column',
        'id',
        '--prompt',
        "It's {{text}}",
        '--max-lines',
        '4',
        '--no-wait',
      ],
      { env: ENV },
    );
    assert.equal(submit.code, 0, submit.stderr);
    // --no-wait names the follow-ups with the real (quoted) paths.
    const collectLine = /^ {2}(batchpipe collect .*?) {4}#/m.exec(submit.stderr)?.[1];
    assert.ok(collectLine, submit.stderr);
    assert.deepEqual(shellWords(collectLine).slice(1), [
      'collect',
      '--ledger',
      ledger,
      '--base-url',
      serve.url,
    ]);

    const collect = spawnCli(
      ['collect', '--ledger', ledger, '--base-url', serve.url, '--poll-interval', '0.2'],
      { env: ENV },
    );
    await waitFor('collect to poll', () => /in_progress/.test(collect.stderr()), 20_000);
    collect.child.kill('SIGINT');
    const stopped = await collect.exited;
    assert.equal(stopped.code, 130, stopped.stderr);
    const line = /^batchpipe: interrupted by SIGINT (.*)$/m.exec(stopped.stderr)?.[1];
    assert.ok(line, stopped.stderr);
    assert.match(
      line,
      /while collecting: 3 batches open \(\d in_progress.*\), running on at the provider; \d+ of 12 requests done/,
    );
    const resume = /; to go on: (batchpipe .*)$/.exec(line)?.[1];
    assert.ok(resume, line);
    const words = shellWords(resume);
    assert.equal(words[0], 'batchpipe');
    const finished = await runCli(words.slice(1), { env: ENV });
    assert.equal(finished.code, 0, finished.stderr);
    const status = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
    assert.equal(status.requests.succeeded, 12);
  } finally {
    await serve.stop();
  }
});

test('SIGTERM during prepare exits 143 with the same command to finish preparing', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'x.db');
  const child = spawn(
    process.execPath,
    [BIN, 'prepare', '-', '--ledger', ledger, '--model', 'm', '--prompt', '{{a}}', '--input-format', 'jsonl'],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // stdin stays open: prepare has read one record and waits for more when the signal comes.
  child.stdin.write('{"a":"one"}\n');
  await waitFor('prepare to open its ledger', () => existsSync(ledger), 10_000);
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const ended = { code, stderr };
  assert.equal(ended.code, 143, ended.stderr);
  assert.match(
    ended.stderr,
    /interrupted by SIGTERM while preparing \(\d records? read\).*\(give it the same input on stdin\); to go on: batchpipe prepare - --ledger \S+ --model m --prompt '\{\{a\}\}' --input-format jsonl$/m,
  );
});

test('`results | head`: a reader that closes the pipe early leaves the command quiet, exit 0', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'fb.db');
  const run = await runCli([
    'run',
    FEEDBACK_CSV,
    '--backend',
    'local',
    '--ledger',
    ledger,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--poll-interval',
    '0.2',
  ]);
  assert.equal(run.code, 0, run.stderr);
  // As pino's test/broken-pipe.test.js: the reader is gone before the CLI writes a byte.
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, 'results', '--ledger', ledger], { cwd: REPO_ROOT });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(result.code, 0);
  assert.equal(result.stderr, '');
});
