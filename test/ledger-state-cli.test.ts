/**
 * The ledger as a user meets it from the shell: a prepare that stopped half way, a first prepare that
 * failed, a run folder moved elsewhere, and outputs that cannot be written. Every case spawns the bin.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { BIN, type CliResult, runCli, tempDir } from './support.js';

/** Rows of about 100 bytes: the input spans more than one 256 KB prepare chunk. */
function rows(count: number, duplicateAt?: number): { csv: string; ids: string[] } {
  const ids: string[] = [];
  let csv = 'id,text\n';
  for (let i = 1; i <= count; i++) {
    const id = i === duplicateAt ? '7' : String(i);
    ids.push(id);
    csv += `${id},review ${i}: ${'the flight was fine and the crew was kind '.repeat(2)}\n`;
  }
  return { csv, ids };
}

const template = ['--model', 'm', '--id-column', 'id', '--prompt', '{{text}}'];

/** `results` CSV on stdout as [id, result_status] pairs. */
function statuses(stdout: string): [string, string][] {
  const table = parse(stdout, { columns: true }) as Record<string, string>[];
  return table.map((r) => [r.id!, r.result_status!]);
}

/** Runs the bin with stdout on a file descriptor (e.g. /dev/full) instead of a pipe. */
function runCliWithStdout(args: string[], stdoutPath: string): Promise<CliResult> {
  const fd = openSync(stdoutPath, 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: '', stderr }));
  });
}

test('a prepare stopped by a bad record: status says incomplete, results/submit/collect refuse, run with the input finishes it', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'p.db');
  const count = 3000;
  const duplicateAt = 2900;
  const { csv, ids } = rows(count, duplicateAt);
  const input = path.join(dir, 'in.csv');
  writeFileSync(input, csv);

  const stopped = await runCli([
    'prepare',
    input,
    '--ledger',
    ledger,
    '--out',
    path.join(dir, 'out'),
    '--max-lines',
    '500',
    ...template,
  ]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, new RegExp(`in.csv:${duplicateAt + 1}: BP_DUPLICATE_ID`));

  const json = await runCli(['status', '--ledger', ledger, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const status = JSON.parse(json.stdout);
  assert.equal(status.prepare.state, 'incomplete');
  // What the ledger holds: some whole chunks, never the records from the bad one on.
  assert.equal(status.prepare.read, status.requests.total);
  assert.ok(status.requests.total > 0 && status.requests.total < duplicateAt, `${status.requests.total}`);
  const text = await runCli(['status', '--ledger', ledger]);
  assert.match(text.stdout, new RegExp(`^prepare: incomplete, read ${status.prepare.read} records`, 'm'));

  const results = await runCli(['results', '--ledger', ledger]);
  assert.equal(results.code, 1);
  assert.equal(results.stdout, '', 'no partial table');
  assert.match(
    results.stderr,
    /BP_INCOMPLETE_RUN results: .*run `batchpipe run` or `batchpipe prepare` again/,
  );
  for (const command of ['submit', 'collect']) {
    const refused = await runCli([command, '--ledger', ledger, '--backend', 'local']);
    assert.equal(refused.code, 1, `${command}: ${refused.stderr}`);
    assert.match(refused.stderr, new RegExp(`BP_INCOMPLETE_RUN ${command}: the run in `));
  }

  const finished = await runCli([
    'run',
    input,
    '--ledger',
    ledger,
    '--max-lines',
    '500',
    ...template,
    '--backend',
    'local',
    '--poll-interval',
    '0.05',
    '--rejects',
    path.join(dir, 'rejects.jsonl'),
  ]);
  // The duplicate went to --rejects: a finished run with a row that did not succeed, exit 3.
  assert.equal(finished.code, 3, finished.stderr);
  assert.match(
    finished.stderr,
    /finished with 0 failed, 0 expired, 0 cancelled, 1 rejected of [\d,]+ \(exit 3\)/,
  );
  const expected = ids.map((id, i): [string, string] => [
    id,
    i + 1 === duplicateAt ? 'rejected' : 'succeeded',
  ]);
  assert.deepEqual(statuses(finished.stdout), expected);
  const after = JSON.parse((await runCli(['status', '--ledger', ledger, '--json'])).stdout);
  assert.deepEqual(after.prepare, { state: 'complete', read: count });
  const again = await runCli(['results', '--ledger', ledger]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(statuses(again.stdout), expected);
});

test('collect never waits silently: nothing left says so; requests nothing can send stop it with why', {
  timeout: 60_000,
}, async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'c.db');
  const made = await runCli(
    ['prepare', '-', '--ledger', ledger, '--out', path.join(dir, 'out'), ...template],
    {
      stdin: 'id,text\n1,a\n2,b\n3,c\n',
    },
  );
  assert.equal(made.code, 0, made.stderr);
  // As a crash of an older batchpipe left it: prepare marked done, its requests in a file never completed.
  const db = new Database(ledger);
  db.prepare('UPDATE files SET complete = 0').run();
  db.close();
  const staged = 3;
  const stuck = await runCli([
    'collect',
    '--ledger',
    ledger,
    '--backend',
    'local',
    '--poll-interval',
    '0.05',
  ]);
  assert.equal(stuck.code, 1, stuck.stderr);
  assert.match(
    stuck.stderr,
    new RegExp(
      `BP_INCOMPLETE_RUN nothing to wait for: no batch is open and nothing can be submitted, yet ${staged} requests are not final: ${staged} staged in no complete request file`,
    ),
  );

  const done = path.join(dir, 'd.db');
  const small = await runCli(['run', '-', '--ledger', done, ...template, '--backend', 'local'], {
    stdin: 'id,text\n1,a\n2,b\n',
  });
  assert.equal(small.code, 0, small.stderr);
  const nothing = await runCli(['collect', '--ledger', done, '--backend', 'local']);
  assert.equal(nothing.code, 0, nothing.stderr);
  assert.match(nothing.stderr, /nothing to collect: every request is final/);
});

test('a first prepare that failed binds nothing: the corrected retry runs; a ledger with requests still refuses', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'q.db');
  const stdin = 'id,text\n1,a\n2,b\n';
  const prepare = (...flags: string[]) =>
    runCli(['prepare', '-', '--ledger', ledger, '--out', path.join(dir, 'out'), '--model', 'm', ...flags], {
      stdin,
    });
  const failed = await prepare('--prompt', '{{nosuch}}');
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /BP_TEMPLATE_MISSING_FIELD/);
  const fixed = await prepare('--prompt', '{{text}}', '--id-column', 'id');
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stderr, /read 2 = staged 2 \+ rejected 0/);
  const other = await prepare('--prompt', '{{id}}', '--id-column', 'id', '--model', 'm2');
  assert.equal(other.code, 1);
  assert.match(
    other.stderr,
    /BP_LEDGER_MISMATCH .*model: ledger has "m", this run has "m2"; prompt: ledger has "\{\{text\}\}", this run has "\{\{id\}\}"/,
  );
});

test('a run folder moved elsewhere keeps working from any directory: submit, run with its input, results', async () => {
  const root = tempDir();
  const { csv, ids } = rows(9);
  writeFileSync(path.join(root, 'in.csv'), csv);
  for (const d of ['a', 'b', 'c', 'sub']) mkdirSync(path.join(root, d));
  const prepared = await runCli(
    [
      'prepare',
      '../in.csv',
      '--ledger',
      'run/x.db',
      '--out',
      'run/x.requests',
      '--max-lines',
      '2',
      ...template,
    ],
    {
      cwd: path.join(root, 'a'),
    },
  );
  assert.equal(prepared.code, 0, prepared.stderr);
  // From another directory, with the ledger named relative to it.
  const submitted = await runCli(
    ['submit', '--ledger', '../a/run/x.db', '--backend', 'local', '--max-batches', '2'],
    {
      cwd: path.join(root, 'sub'),
    },
  );
  assert.equal(submitted.code, 0, submitted.stderr);
  assert.match(submitted.stderr, /9 total: .* 5 staged, 4 submitted/, 'two batches of two requests');

  // The folder moves: ledger, request files and the local server's state beside it.
  renameSync(path.join(root, 'a', 'run'), path.join(root, 'b', 'moved'));
  assert.ok(existsSync(path.join(root, 'b', 'moved', 'x.server')));
  const ran = await runCli(
    [
      'run',
      '../in.csv',
      '--ledger',
      '../b/moved/x.db',
      '--max-lines',
      '2',
      ...template,
      '--backend',
      'local',
      '--poll-interval',
      '0.05',
    ],
    { cwd: path.join(root, 'c') },
  );
  assert.equal(ran.code, 0, ran.stderr);
  const expected = ids.map((id): [string, string] => [id, 'succeeded']);
  assert.deepEqual(statuses(ran.stdout), expected);
  const results = await runCli(['results', '--ledger', path.join('moved', 'x.db')], {
    cwd: path.join(root, 'b'),
  });
  assert.equal(results.code, 0, results.stderr);
  assert.deepEqual(statuses(results.stdout), expected);
});

test('a request file gone from disk: submit names it instead of crashing', async () => {
  const dir = tempDir();
  const ledger = path.join(dir, 'g.db');
  const out = path.join(dir, 'out');
  const made = await runCli(['prepare', '-', '--ledger', ledger, '--out', out, ...template], {
    stdin: 'id,text\n1,a\n',
  });
  assert.equal(made.code, 0, made.stderr);
  const [name] = readdirSync(out);
  rmSync(path.join(out, name!));
  const submitted = await runCli(['submit', '--ledger', ledger, '--backend', 'local']);
  assert.equal(submitted.code, 1);
  assert.match(
    submitted.stderr,
    new RegExp(`BP_LEDGER_MISMATCH request file .*${name} is in the ledger but missing on disk`),
  );
  assert.ok(!submitted.stderr.includes('    at '), 'no stack trace');
});

test('outputs that cannot be written are BP_IO errors naming the path, before any work or when the disk is full', async () => {
  const dir = tempDir();
  const stdin = 'id,text\n1,a\n2,b\n';
  const run = (ledger: string, ...flags: string[]) =>
    runCli(['run', '-', '--ledger', path.join(dir, ledger), ...template, '--backend', 'local', ...flags], {
      stdin,
    });
  for (const [flag, file] of [
    ['--results', 'nodir/x.csv'],
    ['--rejects', 'nodir/r.jsonl'],
  ] as const) {
    const missing = await run('m.db', flag, path.join(dir, file));
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      new RegExp(`BP_IO cannot write ${flag} .*${file}: the folder .*nodir does not exist`),
    );
    assert.ok(!missing.stderr.includes('    at '), 'no stack trace');
    assert.ok(!existsSync(path.join(dir, 'm.db')), 'nothing ran');
  }

  const ok = await run('r.db');
  assert.equal(ok.code, 0, ok.stderr);
  const full = await run('r.db', '--results', '/dev/full');
  assert.equal(full.code, 1);
  assert.match(full.stderr, /BP_IO cannot write \/dev\/full: no space left on device \(ENOSPC\)/);
  for (const args of [
    ['results', '--ledger', path.join(dir, 'r.db')],
    ['status', '--ledger', path.join(dir, 'r.db'), '--json'],
  ]) {
    const result = await runCliWithStdout(args, '/dev/full');
    assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`);
    assert.match(result.stderr, /BP_IO cannot write stdout: no space left on device \(ENOSPC\)/);
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
  }
  // The same commands with room to write succeed, so the failure above is the disk's.
  const room = await runCliWithStdout(
    ['results', '--ledger', path.join(dir, 'r.db')],
    path.join(dir, 'out.csv'),
  );
  assert.equal(room.code, 0, room.stderr);
  assert.equal(readFileSync(path.join(dir, 'out.csv'), 'utf8').split('\n').length, 4);
});

test('--poll-interval and --threads take only what they can use: a usage error (exit 2) names the flag', async () => {
  const dir = tempDir();
  const cases: [string, string, RegExp][] = [
    ['--poll-interval', 'abc', /--poll-interval takes a number above 0/],
    ['--poll-interval', '0', /--poll-interval takes a number above 0/],
    ['--threads', '-1', /--threads takes an integer from 0 to 64/],
    ['--threads', '1.5', /--threads takes an integer from 0 to 64/],
  ];
  for (const [flag, value, message] of cases) {
    const result = await runCli(['run', '-', '--ledger', path.join(dir, 'u.db'), ...template, flag, value]);
    assert.equal(result.code, 2, `${flag} ${value}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.match(result.stderr, new RegExp(`got "${value}"`));
  }
  // Values in range pass: the other tests run with --poll-interval 0.05, and --threads 0 below.
  const inRange = await runCli(
    ['prepare', '-', '--ledger', path.join(dir, 't.db'), '--out', dir, ...template, '--threads', '0'],
    {
      stdin: 'id,text\n1,a\n',
    },
  );
  assert.equal(inRange.code, 0, inRange.stderr);
});
