import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { progressFrame } from '../src/cli/progress/progress-frame.js';
import { RunProgress } from '../src/cli/progress/run-progress.js';
import { Reporter, type ReportMode, reportMode } from '../src/cli/reporter.js';
import { DEFAULT_STUCK_AFTER } from '../src/cli/stuck.js';
import type { BatchpipeEvent } from '../src/events.js';
import { runCli, spawnServe, tempDir } from './support.js';
import { CONTROL, FEEDBACK_CSV, runInTerminal, terminalEnv } from './ux-support.js';

const KEY = { OPENAI_API_KEY: 'sk-ux-test-key' };

function feedbackRun(ledger: string, url: string, ...extra: string[]): string[] {
  return [
    'run',
    FEEDBACK_CSV,
    '--ledger',
    ledger,
    '--base-url',
    url,
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'id',
    '--prompt',
    'Classify: {{text}}',
    '--max-lines',
    '3',
    '--poll-interval',
    '0.2',
    ...extra,
  ];
}

test('run under a terminal redraws its progress on stderr; piped, stderr is plain lines and stdout only the results', async () => {
  const serve = await spawnServe(['--data', path.join(tempDir(), 'srv'), '--latency', '400']);
  try {
    const dir = tempDir();
    const tty = await runInTerminal(feedbackRun(path.join(dir, 'tty.db'), serve.url), {
      redirect: `> ${path.join(dir, 'tty.csv')}`,
      env: KEY,
    });
    assert.equal(tty.code, 0, tty.stdout);
    // The frame: an overall bar and one line per open batch, erased (CSI 2K, cursor up) and drawn again.
    assert.match(tty.stdout, /requests \[[#-]{20}\] \d+ of 12 final/);
    assert.match(tty.stdout, / {2}batch_\w+ {2}(validating|in_progress|finalizing)/);
    assert.ok(tty.stdout.includes('\x1b[2K\x1b[1A'), 'lines erased to redraw');
    const frames = tty.stdout.match(/requests \[/g) ?? [];
    assert.ok(frames.length >= 2, `the frame was drawn ${frames.length} times`);

    const piped = await runCli(feedbackRun(path.join(dir, 'piped.db'), serve.url), { env: terminalEnv(KEY) });
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, CONTROL, 'no control characters on a piped stderr');
    assert.match(piped.stderr, /^batchpipe: batch \S+ completed \(3 completed, 0 failed of 3\)$/m);
    // stdout holds the results and nothing else: what `results` writes for the same ledger.
    const results = await runCli(['results', '--ledger', path.join(dir, 'piped.db')]);
    assert.equal(piped.stdout, results.stdout);
    // The terminal run wrote the same table to its file (ids and statuses; the answers are synthetic).
    const ttyCsv = readFileSync(path.join(dir, 'tty.csv'), 'utf8');
    assert.equal(ttyCsv.split('\n').length, results.stdout.split('\n').length);
  } finally {
    await serve.stop();
  }
});

test('--log-format json writes every event as a JSON line on stderr, and --quiet keeps a terminal plain', async () => {
  const serve = await spawnServe(['--data', path.join(tempDir(), 'srv')]);
  try {
    const dir = tempDir();
    const json = await runCli(feedbackRun(path.join(dir, 'j.db'), serve.url, '--log-format', 'json'), {
      env: KEY,
    });
    assert.equal(json.code, 0, json.stderr);
    const lines = json.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; time: string });
    const types = new Set(lines.map((l) => l.type));
    for (const type of [
      'prepare.progress',
      'file.written',
      'file.uploaded',
      'batch.created',
      'batch.polled',
      'results.applied',
      'batch.ended',
      'status',
      'log',
    ]) {
      assert.ok(types.has(type), `a ${type} line`);
    }
    assert.ok(lines.every((l) => !Number.isNaN(Date.parse(l.time))));
    assert.equal(lines.filter((l) => l.type === 'batch.created').length, 4);

    const quiet = await runInTerminal([...feedbackRun(path.join(dir, 'q.db'), serve.url), '--quiet'], {
      redirect: '> /dev/null',
      env: KEY,
    });
    assert.equal(quiet.code, 0, quiet.stdout);
    assert.doesNotMatch(quiet.stdout.replace(/\r\n/g, '\n'), CONTROL);
    assert.match(quiet.stdout, /batchpipe: created batch for/);
  } finally {
    await serve.stop();
  }
});

test('the form of stderr follows the flags, CI, NO_COLOR, TERM and whether stderr is a terminal', () => {
  const tty = { isTTY: true };
  const cases: [object, NodeJS.ProcessEnv, { isTTY?: boolean }, ReportMode][] = [
    [{}, {}, tty, 'tty'],
    [{}, {}, {}, 'plain'],
    [{ quiet: true }, {}, tty, 'plain'],
    [{}, { CI: 'true' }, tty, 'plain'],
    [{}, { CI: 'false' }, tty, 'tty'],
    [{}, { NO_COLOR: '' }, tty, 'plain'],
    [{}, { TERM: 'dumb' }, tty, 'plain'],
    [{ logFormat: 'json' }, { CI: '1' }, {}, 'json'],
  ];
  for (const [flags, env, stderr, mode] of cases) {
    assert.equal(reportMode(flags, env, stderr), mode, JSON.stringify([flags, env, stderr]));
  }
});

test('plain lines: state changes as they come, a progress line at most once a minute while waiting', () => {
  let now = 0;
  const written: string[] = [];
  const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const reporter = new Reporter({ mode: 'plain', stream, now: () => now });
  const counts = {
    total: 10,
    staged: 0,
    submitted: 10,
    succeeded: 0,
    failed: 0,
    expired: 0,
    cancelled: 0,
    rejected: 0,
  };
  reporter.countFrom(() => counts);
  const polled = (done: number, status = 'in_progress'): BatchpipeEvent => ({
    type: 'batch.polled',
    batchId: 'b1',
    file: 'f1',
    status,
    rawStatus: status,
    counts: { total: 10, completed: done, failed: 0 },
  });
  reporter.onEvent(polled(0, 'validating'));
  reporter.onEvent(polled(0));
  assert.deepEqual(written, [
    'batchpipe: batch b1 validating (0/10 done)\n',
    'batchpipe: batch b1 in_progress (0/10 done)\n',
  ]);
  // Polls every 5 s for 3 minutes: a heartbeat at most once a minute.
  for (let t = 5; t <= 180; t += 5) {
    now = t * 1000;
    reporter.onEvent(polled(Math.min(10, Math.floor(t / 20))));
  }
  const beats = written.filter((l) => l.includes('still waiting'));
  assert.equal(beats.length, 3, beats.join(''));
  assert.match(beats[0]!, /still waiting for 1 batch \(1 in_progress\); 3 of 10 requests done; 1m00s so far/);
  // The batch ends: its line says so once (from batch.ended), never as a polled status.
  reporter.onEvent(polled(10, 'completed'));
  assert.ok(!written.some((l) => /b1 completed \(10\/10/.test(l)));
});

test('the frame: prepare by bytes of the file (records for stdin), then the overall bar and a line per open batch', () => {
  let now = 0;
  const progress = new RunProgress(() => now);
  progress.apply({
    type: 'prepare.progress',
    bytesRead: 0,
    totalBytes: 2 * 1024 * 1024,
    records: 0,
    staged: 0,
    rejected: 0,
  });
  now = 2000;
  progress.apply({
    type: 'prepare.progress',
    bytesRead: 1024 * 1024,
    totalBytes: 2 * 1024 * 1024,
    records: 5000,
    staged: 4990,
    rejected: 10,
  });
  const size = { columns: 120, rows: 30 };
  assert.deepEqual(progressFrame(progress, now, size, DEFAULT_STUCK_AFTER), [
    'preparing [##########----------] 50% 1.0 MB of 2.0 MB · 5,000 records · 10 rejected · 2,500 rows/s',
  ]);
  const stdin = new RunProgress(() => now);
  stdin.apply({
    type: 'prepare.progress',
    bytesRead: 10,
    totalBytes: undefined,
    records: 7,
    staged: 7,
    rejected: 0,
  });
  assert.match(progressFrame(stdin, now, size, DEFAULT_STUCK_AFTER)[0]!, /^preparing 7 records · /);

  const counts = {
    total: 10,
    staged: 0,
    submitted: 10,
    succeeded: 0,
    failed: 0,
    expired: 0,
    cancelled: 0,
    rejected: 0,
  };
  progress.countRequests = () => counts;
  progress.refreshCounts();
  progress.apply({ type: 'file.uploaded', file: 'f1', remoteFileId: 'file-1', requests: 10, bytes: 2048 });
  progress.apply({
    type: 'batch.created',
    batchId: 'b1',
    provider: 'openai',
    file: 'f1',
    requests: 10,
    tokens: 99,
    model: 'm',
    queuedTokens: 99,
    recovered: false,
  });
  progress.apply({
    type: 'batch.polled',
    batchId: 'b1',
    file: 'f1',
    status: 'finalizing',
    rawStatus: 'finalizing',
    counts: { total: 10, completed: 8, failed: 2 },
  });
  now += 31 * 60_000;
  assert.deepEqual(progressFrame(progress, now, size, DEFAULT_STUCK_AFTER), [
    'uploaded 1 file (2.0 KB)',
    'requests [####################] 10 of 10 final · 0 succeeded · 2 failed',
    '  b1  finalizing  10/10 (2 failed)  31m00s  STUCK? finalizing for 31m00s',
  ]);
});

test("the ledger's counts are read when shown, once per change: not at every ended batch", () => {
  let reads = 0;
  let succeeded = 0;
  const progress = new RunProgress(() => 0);
  progress.countRequests = () => {
    reads++;
    const done = { succeeded, failed: 0, expired: 0, cancelled: 0, rejected: 0 };
    return { total: 30, staged: 0, submitted: 30 - succeeded, ...done };
  };
  progress.refreshCounts();
  const ended = (batchId: string): BatchpipeEvent => ({
    type: 'batch.ended',
    batchId,
    file: `${batchId}.jsonl`,
    status: 'completed',
    counts: { total: 10, completed: 10, failed: 0 },
    failure: undefined,
    tokens: { input: 0, output: 0 },
  });
  for (const id of ['b1', 'b2', 'b3']) {
    succeeded += 10;
    progress.apply(ended(id));
  }
  assert.equal(reads, 0, 'three batches ended, nothing shown: no count read');
  // Shown: read once, as the ledger is now; shown again with no change in between: not read again.
  assert.equal(progress.done(), 30);
  assert.equal(progress.counts?.succeeded, 30);
  assert.equal(reads, 1);
  succeeded = 20; // a change the progress was not told about is not seen
  assert.equal(progress.counts?.succeeded, 30);
  progress.apply({ type: 'request.retried', files: 1, requests: 10 });
  assert.equal(progress.counts?.succeeded, 20);
  assert.equal(reads, 2);
});
