/**
 * Bytes that are not valid in the input's encoding stop the run naming file, line, byte offset and
 * column, or with --rejects become counted rejects; the encoding is part of the run's identity.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { prepareFileArgs } from './input-support.js';
import { pythonFirstInvalidUtf8 } from './python-reference.js';
import { runCli, tempDir } from './support.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

/** `prepare FILE` with the test template, ledger and files beside the file. */
function prepareFile(file: string, ...flags: string[]) {
  return runCli(prepareFileArgs(file, ...flags));
}

function writeInput(name: string, bytes: Buffer): string {
  const file = path.join(tempDir(), name);
  writeFileSync(file, bytes);
  return file;
}

test('invalid UTF-8 stops the run naming file, line, byte offset, column and the likely encoding', async () => {
  const cases = [
    {
      // Windows-1252 ’ and é in the second column of the third line, after a quoted line break.
      bytes: b('id,text,n\r\n1,"two\r\nlines",x\r\n2,caf\xe9 \x92ok\x92,y\r\n'),
      line: 4,
      column: 'text',
      guess: 'windows-1252',
    },
    {
      // Mac Roman é and è in the third column, after a UTF-8 BOM and valid UTF-8.
      bytes: Buffer.concat([Buffer.from('\ufeffid,n,text\n1,ü,ok\n'), b('2,x,caf\x8e cr\x8fme\n')]),
      line: 3,
      column: 'text',
      guess: 'macintosh',
    },
    {
      // Bytes Windows-1252 has no character for: only Latin-1 reads them.
      bytes: b('id,text\n1,a\x81b\x8dc\n'),
      line: 2,
      column: 'text',
      guess: 'latin1',
    },
  ];
  for (const c of cases) {
    const file = writeInput('enc.csv', c.bytes);
    const run = await prepareFile(file);
    assert.equal(run.code, 1, run.stderr);
    const offset = pythonFirstInvalidUtf8(file);
    assert.ok(
      run.stderr.includes(
        `${file}:${c.line}: BP_ENCODING invalid UTF-8 at byte offset ${offset} (column ${c.column}); the file looks like ${c.guess}: try --encoding ${c.guess}`,
      ),
      run.stderr,
    );
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('with --rejects, records with invalid UTF-8 are counted rejects and the rest go on (in this thread or a worker)', async () => {
  for (const threads of ['0', '1']) await rejectsInvalidRecords(threads);
});

async function rejectsInvalidRecords(threads: string): Promise<void> {
  const bytes = b('id,text\n1,fine\n2,caf\xe9\n3,"also\nfine"\n4,\x93q\x94\n');
  const file = writeInput('enc.csv', bytes);
  const rejects = path.join(path.dirname(file), 'rejects.jsonl');
  const run = await prepareFile(file, '--rejects', rejects, '--threads', threads);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 4 = staged 2 \+ rejected 2/);
  const lines = readFileSync(rejects, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { line: number; code: string; field: string; message: string });
  assert.deepEqual(
    lines.map((l) => [l.line, l.code, l.field]),
    [
      [3, 'BP_ENCODING', 'text'],
      [6, 'BP_ENCODING', 'text'],
    ],
  );
  assert.match(lines[0]!.message, new RegExp(`byte offset ${pythonFirstInvalidUtf8(file)} `));
  const db = new Database(path.join(path.dirname(file), 'l.db'), { readonly: true });
  const counted = db.prepare('SELECT line, code FROM rejects ORDER BY seq').all();
  db.close();
  assert.deepEqual(counted, [
    { line: 3, code: 'BP_ENCODING' },
    { line: 6, code: 'BP_ENCODING' },
  ]);
}

test('a header with invalid UTF-8 stops the run even with --rejects; so does a JSONL line', async () => {
  const csv = writeInput('h.csv', b('id,t\xe9xt\n1,a\n'));
  const header = await prepareFile(csv, '--rejects', path.join(path.dirname(csv), 'r.jsonl'));
  assert.equal(header.code, 1);
  assert.match(
    header.stderr,
    new RegExp(`${csv}:1: BP_ENCODING invalid UTF-8 at byte offset 4 in the header`),
  );

  const jsonl = writeInput('x.jsonl', b('{"id":"1","text":"a"}\n\n{"id":"2","text":"caf\xe9"}\n'));
  const line = await prepareFile(jsonl);
  assert.equal(line.code, 1);
  assert.match(
    line.stderr,
    new RegExp(`${jsonl}:3: BP_ENCODING invalid UTF-8 at byte offset ${pythonFirstInvalidUtf8(jsonl)};`),
  );
});

test('decoded input: a byte without a character, or an unpaired UTF-16 surrogate, is BP_ENCODING too', async () => {
  const cp1252 = writeInput('w.csv', b('id,text\r\n1,ok \x80\r\n2,"bad\r\n\x81"\r\n'));
  const run = await prepareFile(cp1252, '--encoding', 'windows-1252');
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /w\.csv:3: BP_ENCODING byte 0x81 has no character in windows-1252 \(column text\)/,
  );

  const text = Buffer.from('id,text\n1,a\n2,b', 'utf16le');
  const lone = Buffer.concat([
    Buffer.from([0xff, 0xfe]),
    text,
    Buffer.from([0x00, 0xd8]),
    Buffer.from('\n', 'utf16le'),
  ]);
  const surrogate = writeInput('s.csv', lone);
  const bad = await prepareFile(surrogate);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /s\.csv:3: BP_ENCODING invalid utf-16le input \(column text\)/);

  const unknown = await prepareFile(cp1252, '--encoding', 'klingon');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /BP_USAGE --encoding "klingon" is not an encoding/);
});

test('the encoding is part of the run: another one is refused, a ledger from before it was recorded reads UTF-8', async () => {
  const file = writeInput('w.csv', b('id,text\n1,caf\xe9\n'));
  assert.equal((await prepareFile(file, '--encoding', 'windows-1252')).code, 0);
  const other = await prepareFile(file, '--encoding', 'latin1');
  assert.equal(other.code, 1);
  assert.match(
    other.stderr,
    /BP_LEDGER_MISMATCH .*encoding: ledger has "windows-1252", this run has "latin1"/,
  );

  const utf8 = writeInput('u.csv', Buffer.from('id,text\n1,café\n'));
  assert.equal((await prepareFile(utf8)).code, 0);
  const ledger = path.join(path.dirname(utf8), 'l.db');
  const db = new Database(ledger);
  const identity = JSON.parse(
    db.prepare("SELECT value FROM meta WHERE key = 'identity'").pluck().get() as string,
  );
  assert.equal(identity.encoding, 'utf-8');
  delete identity.encoding;
  db.prepare("UPDATE meta SET value = ? WHERE key = 'identity'").run(JSON.stringify(identity));
  db.close();
  const again = await prepareFile(utf8);
  assert.equal(again.code, 0, again.stderr);
  const refused = await prepareFile(utf8, '--encoding', 'latin1');
  assert.match(refused.stderr, /encoding: ledger has "utf-8", this run has "latin1"/);
});
