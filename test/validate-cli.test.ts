import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'batchpipe-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function chat(customId: string, model = 'gpt-4o-mini', content: unknown = 'Hello'): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content }] },
  });
}

function embedding(customId: string, input: unknown): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: 'e', input },
  });
}

/** Writes a file into the test folder and returns its path. */
function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout split into lines, without the final empty one. */
  lines: string[];
}

function batchpipe(args: string[], input?: string): Run {
  const r = spawnSync(process.execPath, ['bin/batchpipe.js', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    input: input ?? '',
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    lines: r.stdout.split('\n').filter((l) => l !== ''),
  };
}

/** Asserts the exit code, showing the run's output when it differs. */
function expectExit(r: Run, code: number): void {
  assert.equal(r.status, code, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

describe('batchpipe validate', () => {
  it('accepts valid files, LF and CRLF, with or without a final newline: exit 0 and a summary', () => {
    const lf = file('lf.jsonl', `${chat('a')}\n${chat('b')}\n`);
    const crlf = file('crlf.jsonl', `${chat('a')}\r\n${chat('b')}\r\n${chat('c')}`);
    const emb = file('emb.jsonl', `${embedding('x', ['one', 'two'])}\n`);
    const r = batchpipe(['validate', lf, crlf, emb]);
    expectExit(r, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^ok: 3 files, 6 requests, \d+ (B|KB|MB)\n$/);
  });

  it('reports invalid JSON with its line, exit 1', () => {
    const path = file('bad-json.jsonl', `${chat('a')}\n{"custom_id": "b",\n${chat('c')}\n`);
    const r = batchpipe(['validate', path]);
    expectExit(r, 1);
    assert.equal(r.lines.length, 1, r.stdout);
    assert.match(r.lines[0] ?? '', new RegExp(`^${escapeRegExp(path)}:2: invalid_json `));
  });

  it('reports missing and wrong fields with their paths', () => {
    const noModel = JSON.stringify({
      custom_id: 'b',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { messages: [{ role: 'user', content: 'x' }] },
    });
    const getMethod = JSON.stringify({ ...JSON.parse(chat('c')), method: 'GET' });
    const path = file(
      'fields.jsonl',
      [chat('a'), noModel, getMethod, chat('d', 'gpt-4o-mini', 42)].join('\n'),
    );
    const r = batchpipe(['validate', path]);
    expectExit(r, 1);
    assert.deepEqual(
      r.lines.map((l) => l.split(' ').slice(0, 3).join(' ')),
      [
        `${path}:2: missing_field body.model:`,
        `${path}:3: invalid_method method:`,
        `${path}:4: invalid_type body.messages[0].content:`,
      ],
    );
  });

  it('names the id and both lines of a duplicate custom_id', () => {
    const path = file('dup.jsonl', [chat('a'), chat('b'), chat('c'), chat('b')].join('\n'));
    const r = batchpipe(['validate', path]);
    expectExit(r, 1);
    assert.deepEqual(r.lines, [`${path}:4: duplicate_custom_id duplicate custom_id "b" (first on line 2)`]);
  });

  it('reports a url or a model that differs within the file', () => {
    const path = file('mixed.jsonl', [chat('a'), chat('b', 'gpt-4o'), embedding('c', 'text')].join('\n'));
    const r = batchpipe(['validate', path]);
    expectExit(r, 1);
    const codes = r.lines.map((l) => l.split(' ').slice(0, 2).join(' '));
    assert.deepEqual(codes, [
      `${path}:2: model_mismatch`,
      `${path}:3: url_mismatch`,
      `${path}:3: model_mismatch`,
    ]);
  });

  it('enforces --max-lines and --max-bytes', () => {
    const lines = ['a', 'b', 'c', 'd'].map((id) => chat(id));
    const path = file('four.jsonl', `${lines.join('\n')}\n`);
    const tooMany = batchpipe(['validate', '--max-lines', '3', path]);
    expectExit(tooMany, 1);
    assert.deepEqual(
      tooMany.lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      [`${path}:4: too_many_lines`],
    );
    expectExit(batchpipe(['validate', '--max-lines', '4', path]), 0);

    // Each line is its JSON plus '\n': the limit falls inside line 3.
    const lineBytes = Buffer.byteLength(lines[0] ?? '') + 1;
    const tooBig = batchpipe(['validate', '--max-bytes', String(lineBytes * 2 + 1), path]);
    expectExit(tooBig, 1);
    assert.deepEqual(
      tooBig.lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      [`${path}:3: too_many_bytes`],
    );
    expectExit(batchpipe(['validate', '--max-bytes', String(lineBytes * 4), path]), 0);
  });

  it('enforces the total embedding inputs of a file', () => {
    const path = file(
      'emb-many.jsonl',
      [embedding('a', ['1', '2', '3']), embedding('b', ['4', '5'])].join('\n'),
    );
    expectExit(batchpipe(['validate', '--max-embedding-inputs', '5', path]), 0);
    const r = batchpipe(['validate', '--max-embedding-inputs', '4', path]);
    expectExit(r, 1);
    assert.deepEqual(
      r.lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      [`${path}:2: too_many_embedding_inputs`],
    );
  });

  it('reports a BOM but still checks the first line', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const path = file('bom.jsonl', Buffer.concat([bom, Buffer.from(`${chat('a')}\n${chat('a')}\n`)]));
    const r = batchpipe(['validate', path]);
    expectExit(r, 1);
    assert.deepEqual(
      r.lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      [`${path}:1: bom`, `${path}:2: duplicate_custom_id`],
    );
  });

  it('reports blank lines, invalid UTF-8 and an empty file', () => {
    const badUtf8 = Buffer.concat([
      Buffer.from(`${chat('a')}\n{"x":"`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}\n'),
    ]);
    const utf8Path = file('latin.jsonl', badUtf8);
    const blankPath = file('blank.jsonl', `${chat('a')}\n\n${chat('b')}\n`);
    const emptyPath = file('empty.jsonl', '');
    const r = batchpipe(['validate', utf8Path, blankPath, emptyPath]);
    expectExit(r, 1);
    assert.deepEqual(
      r.lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
      [`${utf8Path}:2: invalid_utf8`, `${blankPath}:2: blank_line`, `${emptyPath}:1: empty_file`],
    );
  });

  it('reports a missing file as BP_IO, checks the other files, and exits 1', () => {
    const good = file('good.jsonl', `${chat('a')}\n`);
    const missing = join(dir, 'does-not-exist.jsonl');
    const r = batchpipe(['validate', missing, good]);
    expectExit(r, 1);
    assert.equal(r.lines.length, 1, r.stdout);
    assert.match(r.lines[0] ?? '', new RegExp(`^${escapeRegExp(missing)}: BP_IO `));
    assert.match(r.stderr, /2 files, 1 request\b/);
  });

  it('reads stdin for -', () => {
    const ok = batchpipe(['validate', '-'], `${chat('a')}\n${chat('b')}\n`);
    expectExit(ok, 0);
    assert.match(ok.stderr, /^ok: 1 file, 2 requests/);
    const bad = batchpipe(['validate', '-'], `${chat('a')}\n${chat('a')}\n`);
    expectExit(bad, 1);
    assert.deepEqual(bad.lines, ['-:2: duplicate_custom_id duplicate custom_id "a" (first on line 1)']);
  });

  it('exits 2 on usage errors', () => {
    const noFiles = batchpipe(['validate']);
    expectExit(noFiles, 2);
    assert.equal(noFiles.stdout, '');
    assert.notEqual(noFiles.stderr, '');
    expectExit(batchpipe(['validate', '--max-lines', 'ten', 'x.jsonl']), 2);
    expectExit(batchpipe(['validate', '--max-bytes', '0', 'x.jsonl']), 2);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
