/**
 * Input that cannot be read, or holds no records, stops prepare and run with a BP_* code naming the
 * input and exit 1: never a stack trace.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type CliResult, runCli, tempDir } from './support.js';

function prepare(dir: string, input: string, stdin?: string): Promise<CliResult> {
  const args = ['prepare', input, '--ledger', path.join(dir, 'l.db'), '--out', path.join(dir, 'out')];
  return runCli([...args, '--model', 'm', '--prompt', '{{text}}'], stdin === undefined ? {} : { stdin });
}

/** `run` on the local backend with a ledger in `dir`, on `input` (or stdin when none is named). */
function runLocal(dir: string, input: string[], stdin = ''): Promise<CliResult> {
  const ledger = path.join(dir, 'r.db');
  return runCli(
    ['run', ...input, '--backend', 'local', '--ledger', ledger, '--model', 'm', '--prompt', 'x'],
    {
      stdin,
    },
  );
}

function assertFails(run: CliResult, pattern: RegExp): void {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at |internal error/, 'no stack trace');
}

test('a directory, a missing file or a path through a file is BP_IO naming the path', async () => {
  const dir = tempDir();
  const folder = path.join(dir, 'folder');
  mkdirSync(folder);
  const file = path.join(dir, 'file.csv');
  writeFileSync(file, 'id,text\n1,a\n');
  assertFails(await prepare(dir, folder), new RegExp(`${folder}: BP_IO input ${folder} is a directory`));
  const missing = path.join(dir, 'nosuch.csv');
  assertFails(await prepare(dir, missing), new RegExp(`${missing}: BP_IO input ${missing} does not exist`));
  const through = path.join(file, 'x.csv');
  assertFails(
    await prepare(dir, through),
    new RegExp(`${through}: BP_IO input ${through} cannot be read \\(ENOTDIR\\)`),
  );
  const run = await runLocal(dir, [folder]);
  assertFails(run, /BP_IO input .* is a directory/);
});

test('empty stdin, a CSV header alone or an empty JSON array is BP_NO_RECORDS naming the input', async () => {
  const cases: [string, RegExp][] = [
    ['', /^batchpipe: -: BP_NO_RECORDS the input is empty: there are no records to prepare$/m],
    ['id,text\r\n\r\n', /^batchpipe: -: BP_NO_RECORDS the input holds a header and no records/m],
    [' [ ]\n', /^batchpipe: -: BP_NO_RECORDS the input holds an empty array/m],
    ['\r\n\n\r', /^batchpipe: -: BP_NO_RECORDS the input holds only blank lines/m],
  ];
  for (const [stdin, pattern] of cases) assertFails(await prepare(tempDir(), '-', stdin), pattern);
  const run = await runLocal(tempDir(), []);
  assertFails(run, /^batchpipe: -: BP_NO_RECORDS the input is empty/m);
});
