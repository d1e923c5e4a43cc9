/**
 * Small crafted files, as real exports come, through the real bin (`prepare`, then `results`): every
 * output column, stored record, request text and line checked against Python's csv module reading
 * the same file with `newline=''` and the stated encoding.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { prepareFileArgs, randomCsv, TEMPLATE_FLAGS } from './input-support.js';
import { pythonCsvRecords, pythonCsvRows } from './python-reference.js';
import { readRequestFiles, runCli, tempDir } from './support.js';

interface CsvCase {
  name: string;
  bytes: Buffer;
  /** The encoding Python reads the file in (a BOM included: `utf-8-sig`, `utf-16`). */
  python?: string;
  /** Extra flags for prepare (`--encoding …`). */
  flags?: string[];
}

const RESULT_COLUMNS = ['result', 'result_status', 'result_error'];

/** Prepares `c` (id column `id`, prompt `{{text}}`), writes its results, and checks both against Python. */
async function checkAgainstPython(c: CsvCase): Promise<void> {
  const dir = tempDir();
  const file = path.join(dir, `${c.name}.csv`);
  writeFileSync(file, c.bytes);
  const ledger = path.join(dir, 'l.db');
  const out = path.join(dir, 'out');
  const flags = c.flags ?? [];
  const prep = await runCli(prepareFileArgs(file, ...flags));
  assert.equal(prep.code, 0, `${c.name}: ${prep.stderr}`);
  const results = await runCli(['results', '--ledger', ledger]);
  assert.equal(results.code, 0, `${c.name}: ${results.stderr}`);
  const resultsFile = path.join(dir, 'results.csv');
  writeFileSync(resultsFile, results.stdout);

  const [header, ...rows] = pythonCsvRows(file, c.python ?? 'utf-8');
  assert.ok(header && rows.length > 0, `${c.name}: Python reads a header and rows`);
  const [outHeader, ...outRows] = pythonCsvRows(resultsFile);
  assert.deepEqual(outHeader?.values, [...header.values, ...RESULT_COLUMNS], `${c.name}: output header`);
  assert.equal(outRows.length, rows.length, `${c.name}: one output row per input record`);
  const width = header.values.length;
  rows.forEach((row, i) => {
    assert.deepEqual(outRows[i]!.values.slice(0, width), row.values, `${c.name}: output row ${i + 1}`);
  });

  const db = new Database(ledger, { readonly: true });
  const stored = db
    .prepare('SELECT seq, line, record FROM requests JOIN records USING (seq) ORDER BY seq')
    .all() as { seq: number; line: number; record: Buffer }[];
  db.close();
  assert.deepEqual(
    stored.map((r) => r.line),
    rows.map((r) => r.line),
    `${c.name}: each record's line, as Python counts lines`,
  );
  for (const r of stored) assert.ok(isUtf8(r.record), `${c.name}: record ${r.seq} is stored as UTF-8`);
  assert.deepEqual(
    pythonCsvRecords(stored.map((r) => r.record.toString('utf8'))),
    rows.map((r) => r.values),
    `${c.name}: the stored records hold the values`,
  );

  const textColumn = header.values.indexOf('text');
  const prompts = new Map(
    readRequestFiles(out).lines.map((l) => {
      const request = JSON.parse(l) as { custom_id: string; body: { messages: { content: string }[] } };
      return [request.custom_id, request.body.messages[0]!.content];
    }),
  );
  for (const row of rows) {
    assert.equal(
      prompts.get(row.values[0]!),
      row.values[textColumn],
      `${c.name}: request text of ${row.values[0]}`,
    );
  }
}

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

const RECORD_ENDINGS: CsvCase[] = [
  { name: 'bare-cr', bytes: b('id,text\r1,hello\r2,world\r3,"multi\rline"\r') },
  { name: 'bare-cr-last-crlf', bytes: b('id,text\r1,hello\r2,world\r\n') },
  { name: 'crlf', bytes: b('id,text\r\n1,"a\r\nb"\r\n2,x\r\n') },
  { name: 'lf', bytes: b('id,text\n1,"a\nb"\n2,x\n') },
  { name: 'crlf-with-cr-and-lf-in-quotes', bytes: b('id,text\r\n1,"a\rb\nc\r\nd"\r\n\r\n2,"x"\r\n3,y') },
  { name: 'lf-last-cr', bytes: b('id,text\n1,a\n2,"b\r\nc"\n3,d\r') },
  {
    name: 'every-ending-and-blank-lines',
    bytes: b('id,text\n\n1,a\r2,b\r\n\r\n\r3,"c\r\n"\n\n\r4,"d\n\re"\r\r\n5,e'),
  },
  {
    name: 'long-ids-and-at-signs',
    bytes: b(
      'id,text\r\n123456789012345678,"@united No, thanks, not again"\r\n987654321098765432,@plain\r\n000000000000000001,=1+2\r\n',
    ),
  },
];

test('CR, LF and CRLF record endings, mixed and inside quotes, read as Python reads them', async () => {
  await Promise.all(RECORD_ENDINGS.map(checkAgainstPython));
});

/** Every byte from 0x80 to 0xFF but `except`, as one field's bytes. */
function highBytes(except: number[] = []): Buffer {
  return Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i).filter((x) => !except.includes(x)));
}

const utf16 = (text: string, bigEndian: boolean): Buffer => {
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  return bigEndian ? le.swap16() : le;
};
const UNICODE_TEXT = 'id,text\r\n1,"café ’ 😀, ok"\r\n2,"x\r\ny"\r\n3,@z\r\n';

const ENCODINGS: CsvCase[] = [
  { name: 'utf8-bom', bytes: Buffer.from(`\ufeff${UNICODE_TEXT}`), python: 'utf-8-sig' },
  {
    name: 'windows-1252',
    // ’ € Š … é, and every byte windows-1252 defines (0x81, 0x8D, 0x8F, 0x90 and 0x9D it does not).
    bytes: Buffer.concat([
      b('id,text\r\n1,"It\x92s \x80 5, \x8a \x85 caf\xe9"\r\n2,"'),
      highBytes([0x81, 0x8d, 0x8f, 0x90, 0x9d]),
      b('"\r\n'),
    ]),
    python: 'windows-1252',
    flags: ['--encoding', 'windows-1252'],
  },
  {
    name: 'macintosh',
    // café crème brûlée “q” …, then every byte but 0xBD (Ω: U+03A9 in Apple's table, U+2126 in Python's).
    bytes: Buffer.concat([
      b('id,text\r1,caf\x8e cr\x8fme br\x9el\x8ee \xd2q\xd3 \xc9\r2,"'),
      highBytes([0xbd]),
      b('"\r'),
    ]),
    python: 'macintosh',
    flags: ['--encoding', 'macintosh'],
  },
  {
    name: 'latin1',
    bytes: Buffer.concat([b('id,text\n1,"'), highBytes(), b('"\n2,na\xefve\n')]),
    python: 'latin1',
    flags: ['--encoding', 'latin1'],
  },
  { name: 'utf-16le-bom', bytes: utf16(UNICODE_TEXT, false), python: 'utf-16' },
  { name: 'utf-16be-bom', bytes: utf16(UNICODE_TEXT, true), python: 'utf-16' },
  {
    name: 'utf-16le-bom-named',
    bytes: utf16(UNICODE_TEXT, false),
    python: 'utf-16',
    flags: ['--encoding', 'UTF-16LE'],
  },
];

test('UTF-8 with a BOM, Windows-1252, Mac Roman, Latin-1 and UTF-16 with a BOM decode as Python decodes them', async () => {
  await Promise.all(ENCODINGS.map(checkAgainstPython));
});

test('a generated CSV mixing every ending, over many chunks and on a worker thread, reads as Python reads it', async () => {
  await checkAgainstPython({
    name: 'generated-endings',
    bytes: Buffer.from(randomCsv(11, 30_000)),
    flags: ['--threads', '1'],
  });
});

test('the reported bare-CR files run end to end on the local backend with every column back', async () => {
  const files = [b('id,text\r1,hello\r2,world\r3,"multi\rline"\r'), b('id,text\r1,hello\r2,world\r\n')];
  await Promise.all(
    files.map(async (bytes, i) => {
      const dir = tempDir();
      const file = path.join(dir, `cr${i}.csv`);
      writeFileSync(file, bytes);
      const out = path.join(dir, 'results.csv');
      const ledger = path.join(dir, 'cr.db');
      const run = await runCli([
        'run',
        file,
        '--backend',
        'local',
        '--ledger',
        ledger,
        ...TEMPLATE_FLAGS,
        '--results',
        out,
      ]);
      assert.equal(run.code, 0, run.stderr);
      const [header, ...rows] = pythonCsvRows(file);
      const [outHeader, ...outRows] = pythonCsvRows(out);
      assert.deepEqual(outHeader!.values, [...header!.values, ...RESULT_COLUMNS]);
      assert.equal(outRows.length, rows.length);
      rows.forEach((row, r) => {
        const got = outRows[r]!.values;
        assert.deepEqual(got.slice(0, 2), row.values, `cr${i}.csv row ${r + 1}`);
        assert.equal(got[3], 'succeeded');
        assert.ok(got[2]!.length > 0, 'a reply');
      });
    }),
  );
});
