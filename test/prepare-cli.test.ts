import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { BA_REVIEWS, prepareFromStdin, REPO_ROOT, readRequestFiles, runCli, tempDir } from './support.js';

const PROMPT = 'Classify this review: {{ReviewBody}}';
const reviews = parse(readFileSync(BA_REVIEWS), { columns: true }) as Record<string, string>[];

function prepareArgs(dir: string, ...extra: string[]): string[] {
  return [
    'prepare',
    BA_REVIEWS,
    '--ledger',
    path.join(dir, 'ledger.db'),
    '--out',
    path.join(dir, 'out'),
    '--model',
    'gpt-4o-mini',
    '--id-column',
    'ReviewID',
    '--prompt',
    PROMPT,
    ...extra,
  ];
}

test('the BA reviews become one request per review, user message exactly the prompt with the text', async () => {
  const dir = tempDir();
  const run = await runCli(prepareArgs(dir));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`read ${reviews.length} = staged ${reviews.length} \\+ rejected 0`));
  const { lines } = readRequestFiles(path.join(dir, 'out'));
  assert.equal(lines.length, reviews.length);
  const byId = new Map(lines.map((l) => JSON.parse(l)).map((r) => [r.custom_id, r]));
  assert.equal(byId.size, reviews.length, 'custom_ids are unique');
  for (const review of reviews) {
    const request = byId.get(review.ReviewID!);
    assert.ok(request, `review ${review.ReviewID} has a request`);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/v1/chat/completions');
    assert.equal(request.body.model, 'gpt-4o-mini');
    assert.deepEqual(request.body.messages, [
      { role: 'user', content: `Classify this review: ${review.ReviewBody}` },
    ]);
  }
  const check = await runCli([
    'validate',
    ...readRequestFiles(path.join(dir, 'out')).files.map((f) => path.join(dir, 'out', f)),
  ]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
});

test('the ledger records every request with its source line, record and file', async () => {
  const dir = tempDir();
  assert.equal((await runCli(prepareArgs(dir, '--max-lines', '1000'))).code, 0);
  const db = new Database(path.join(dir, 'ledger.db'), { readonly: true });
  const rows = db
    .prepare(
      'SELECT seq, line, custom_id, record, state, file_id FROM requests JOIN records USING (seq) ORDER BY seq',
    )
    .all() as {
    seq: number;
    line: number;
    custom_id: string;
    record: Buffer;
    state: string;
    file_id: number;
  }[];
  assert.equal(rows.length, reviews.length);
  // Independent oracle for start lines: csv-parse's own per-record info.
  const withInfo = parse(readFileSync(BA_REVIEWS), { columns: true, info: true }) as {
    info: { lines: number };
  }[];
  let prevEnd = 1; // the header ends on line 1
  rows.forEach((row, i) => {
    assert.equal(row.seq, i);
    assert.equal(row.state, 'staged');
    assert.equal(row.line, prevEnd + 1, `record ${i} starts after the previous one ends`);
    prevEnd = withInfo[i]!.info.lines;
    const values = parse(row.record)[0] as string[];
    assert.deepEqual(values, Object.values(reviews[i]!), `record ${i} is kept byte-exact`);
  });
  const files = db.prepare('SELECT path, lines, bytes, sha256, complete FROM files ORDER BY id').all() as {
    path: string;
    lines: number;
    bytes: number;
    sha256: string;
    complete: number;
  }[];
  assert.equal(files.length, 4);
  for (const file of files) {
    // Stored relative to the ledger's directory (the run folder can move).
    assert.ok(!path.isAbsolute(file.path), `${file.path} is relative to the ledger`);
    const content = readFileSync(path.join(dir, file.path));
    assert.equal(file.complete, 1);
    assert.equal(content.length, file.bytes);
    assert.equal(content.toString().split('\n').length - 1, file.lines);
    const { createHash } = await import('node:crypto');
    assert.equal(createHash('sha256').update(content).digest('hex'), file.sha256);
  }
  db.close();
});

test('--max-lines 1000 gives 4 files; --max-bytes 1000000 keeps every file within it', async () => {
  const byLines = tempDir();
  assert.equal((await runCli(prepareArgs(byLines, '--max-lines', '1000'))).code, 0);
  const lined = readRequestFiles(path.join(byLines, 'out'));
  assert.equal(lined.files.length, 4);
  assert.equal(lined.lines.length, reviews.length);

  const byBytes = tempDir();
  assert.equal((await runCli(prepareArgs(byBytes, '--max-bytes', '1000000'))).code, 0);
  const sized = readRequestFiles(path.join(byBytes, 'out'));
  assert.ok(sized.files.length >= 4, `${sized.files.length} files`);
  for (const f of sized.files) assert.ok(statSync(path.join(byBytes, 'out', f)).size <= 1_000_000, f);
  assert.equal(sized.lines.length, reviews.length);
  const check = await runCli([
    'validate',
    '--max-bytes',
    '1000000',
    ...sized.files.map((f) => path.join(byBytes, 'out', f)),
  ]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
});

test('a request larger than --max-bytes is an error naming its line', async () => {
  const dir = tempDir();
  const run = await runCli(prepareArgs(dir, '--max-bytes', '2000'));
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    // A request over the limit, or (read first when it comes first) a record itself over it.
    /ba-airline-reviews\.csv:\d+: BP_REQUEST_TOO_LARGE (request is \d+ bytes, over the per-file limit of 2000 bytes|record is (more than 2000|\d+ bytes, more than --max-bytes \(2000\)))/,
  );
});

const DUPES = 'id,text\n1,alpha\n2,"beta\nstill beta"\n1,gamma\n3,delta\n';

test('a duplicate id stops the run, naming the id and both lines', async () => {
  const dir = tempDir();
  const run = await prepareFromStdin(dir, DUPES, '--model', 'm', '--id-column', 'id', '--prompt', '{{text}}');
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /^batchpipe: -:5: BP_DUPLICATE_ID duplicate custom_id "1" \(first on line 2\) \[custom_id\]$/m,
  );
});

test('with --rejects, duplicates and bad records are set aside and counted: read = staged + rejected', async () => {
  const dir = tempDir();
  const input = `${DUPES}4\n5,"unterminated, but closed later"\n`;
  const rejects = path.join(dir, 'rejects.jsonl');
  const run = await prepareFromStdin(
    dir,
    input,
    '--model',
    'm',
    '--id-column',
    'id',
    '--prompt',
    '{{text}}',
    '--rejects',
    rejects,
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 6 = staged 4 \+ rejected 2/);
  const lines = readFileSync(rejects, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((r) => [r.line, r.seq, r.code]),
    [
      [5, 2, 'BP_DUPLICATE_ID'],
      [7, 4, 'BP_PARSE'],
    ],
  );
  assert.deepEqual(lines[0].record, { id: '1', text: 'gamma' });
  assert.match(lines[1].message, /expected 2 fields/);
  const ids = readRequestFiles(path.join(dir, 'out')).lines.map((l) => JSON.parse(l).custom_id);
  assert.deepEqual(ids, ['1', '2', '3', '5']);
});

test('a missing template field names the field and line', async () => {
  const dir = tempDir();
  const input = '{"id": 1, "text": "a"}\n\n{"id": 2, "body": "b"}\n';
  const run = await prepareFromStdin(dir, input, '--model', 'm', '--prompt', 'Say {{text}}');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /-:3: BP_TEMPLATE_MISSING_FIELD field "text" is missing from the record/);
  const csv = await runCli([
    'prepare',
    BA_REVIEWS,
    '--ledger',
    path.join(dir, 'c.db'),
    '--out',
    path.join(dir, 'c'),
    '--model',
    'm',
    '--prompt',
    '{{Review}}',
  ]);
  assert.equal(csv.code, 1);
  assert.match(csv.stderr, /BP_TEMPLATE_MISSING_FIELD field "Review" is not a column of the CSV header/);
});

test('JSONL from stdin: nested paths, 18-digit ids and numbers kept exact, values inserted as data', async () => {
  const dir = tempDir();
  const input = [
    '{"id": 123456789012345678, "user": {"name": "Zoë \\"Z\\""}, "score": 1.50, "text": "He said \\"hi\\"\\n}{"}',
    '{"id": 987654321098765432, "user": {"name": "Bob"}, "score": 2, "text": "plain"}',
  ].join('\n');
  const run = await prepareFromStdin(
    dir,
    input,
    '--model',
    'm',
    '--id-column',
    'id',
    '--system',
    'Rate {{user.name}}',
    '--prompt',
    '{{text}} ({{score}}, {{id}})',
  );
  assert.equal(run.code, 0, run.stderr);
  const requests = readRequestFiles(path.join(dir, 'out')).lines.map((l) => JSON.parse(l));
  assert.deepEqual(
    requests.map((r) => r.custom_id),
    ['123456789012345678', '987654321098765432'],
  );
  assert.deepEqual(requests[0].body.messages, [
    { role: 'system', content: 'Rate Zoë "Z"' },
    { role: 'user', content: 'He said "hi"\n}{ (1.50, 123456789012345678)' },
  ]);
  const db = new Database(path.join(dir, 'l.db'), { readonly: true });
  const record = (
    db.prepare('SELECT record FROM records WHERE seq = 0').get() as { record: Buffer }
  ).record.toString();
  assert.match(record, /"id": 123456789012345678/);
  db.close();
});

test('a --body template expresses other endpoints and fields; its strings take placeholders', async () => {
  const dir = tempDir();
  const body = path.join(dir, 'body.json');
  writeFileSync(body, JSON.stringify({ input: '{{text}}', dimensions: 256, encoding_format: 'float' }));
  const run = await prepareFromStdin(
    dir,
    'text\n"a, b"\nc\n',
    '--model',
    'text-embedding-3-small',
    '--endpoint',
    '/v1/embeddings',
    '--body',
    body,
  );
  assert.equal(run.code, 0, run.stderr);
  const requests = readRequestFiles(path.join(dir, 'out')).lines.map((l) => JSON.parse(l));
  assert.deepEqual(requests[0], {
    custom_id: 'req-0',
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: 'text-embedding-3-small', input: 'a, b', dimensions: 256, encoding_format: 'float' },
  });
  assert.equal(requests[1].custom_id, 'req-1');
});

test('a template that breaks the endpoint schema is rejected per record with the field', async () => {
  const dir = tempDir();
  const body = path.join(dir, 'body.json');
  writeFileSync(body, JSON.stringify({ input: '{{text}}' }));
  const run = await prepareFromStdin(
    dir,
    'text\nok\n""\nfine\n',
    '--model',
    'e',
    '--endpoint',
    '/v1/embeddings',
    '--body',
    body,
    '--rejects',
    path.join(dir, 'r.jsonl'),
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /read 3 = staged 2 \+ rejected 1/);
  const reject = JSON.parse(readFileSync(path.join(dir, 'r.jsonl'), 'utf8'));
  assert.equal(reject.line, 3);
  assert.equal(reject.code, 'BP_INVALID_REQUEST');
  assert.equal(reject.field, 'body.input');
});

test('CRLF, a BOM and quoted newlines parse the same as LF', async () => {
  const lf = 'id,text\n1,"a\nb"\n2,c\n';
  const crlf = `\ufeff${lf.replace(/\n/g, '\r\n')}`;
  const outs = [];
  for (const input of [lf, crlf]) {
    const dir = tempDir();
    const run = await prepareFromStdin(
      dir,
      input,
      '--model',
      'm',
      '--id-column',
      'id',
      '--prompt',
      '{{text}}',
    );
    assert.equal(run.code, 0, run.stderr);
    outs.push(readRequestFiles(path.join(dir, 'out')).lines.map((l) => JSON.parse(l)));
  }
  assert.equal(outs[0]![0].custom_id, '1', 'the BOM is not part of the first column name');
  assert.equal(outs[1]![0].custom_id, '1');
  assert.equal(outs[0]![1].body.messages[0].content, 'c');
  assert.equal(outs[1]![1].body.messages[0].content, 'c');
  // Inside quotes the CRLF is data and stays as written.
  assert.equal(outs[0]![0].body.messages[0].content, 'a\nb');
  assert.equal(outs[1]![0].body.messages[0].content, 'a\r\nb');
});

test('a ledger made with other options is refused, naming what differs', async () => {
  const dir = tempDir();
  assert.equal((await runCli(prepareArgs(dir, '--max-lines', '1000'))).code, 0);
  const again = await runCli([
    ...prepareArgs(dir, '--max-lines', '1000').map((a) => (a === 'gpt-4o-mini' ? 'gpt-4o' : a)),
  ]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /BP_LEDGER_MISMATCH .*model: ledger has "gpt-4o-mini", this run has "gpt-4o"/);
});

test('usage errors exit 2; --help and --version work', async () => {
  const help = await runCli(['prepare', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--id-column <name>/);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.stdout, `${pkg.version}\n`);
  const missing = await runCli(['prepare', BA_REVIEWS, '--out', 'x', '--model', 'm']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--ledger/);
  const dir = tempDir();
  const badLimit = await runCli(prepareArgs(dir, '--max-lines', '60000'));
  assert.equal(badLimit.code, 2);
  assert.match(badLimit.stderr, /--max-lines must be an integer from 1 to 50000/);
});

test('an embeddings file never carries more than 50,000 inputs in all', async () => {
  const dir = tempDir();
  const body = path.join(dir, 'body.json');
  writeFileSync(body, JSON.stringify({ input: ['{{text}}', 'query: {{text}}', 'passage: {{text}}'] }));
  const rows = 40_000;
  const input = `text\n${Array.from({ length: rows }, (_, i) => `t${i}`).join('\n')}\n`;
  const run = await prepareFromStdin(
    dir,
    input,
    '--model',
    'e',
    '--endpoint',
    '/v1/embeddings',
    '--body',
    body,
  );
  assert.equal(run.code, 0, run.stderr);
  const { files } = readRequestFiles(path.join(dir, 'out'));
  const perFile = files.map(
    (f) =>
      readFileSync(path.join(dir, 'out', f), 'utf8')
        .trim()
        .split('\n').length,
  );
  assert.deepEqual(perFile, [16_666, 16_666, 6_668]);
  const check = await runCli(['validate', ...files.map((f) => path.join(dir, 'out', f))]);
  assert.equal(check.code, 0, check.stdout);
});
