import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { csvCell, csvRow, isCanonicalCsvRecord, parseCsvRecords } from '../src/internal/csv-cells.js';

/** A seeded PRNG (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  'a',
  'b',
  ' ',
  ',',
  '"',
  '\n',
  '\r',
  '\r\n',
  '=',
  '+',
  '-',
  '@',
  '\t',
  'é',
  '👍🏽',
  '＝',
  '＋',
  "'",
  '\\',
];

function randomValue(next: () => number): string {
  const length = Math.floor(next() * 6);
  let s = '';
  for (let i = 0; i < length; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

function randomRow(next: () => number, fields: number): string[] {
  return Array.from({ length: fields }, () => randomValue(next));
}

test('csvCell and csvRow write what csv-stringify writes, with and without escape_formulas', () => {
  const next = rng(1);
  for (let i = 0; i < 3000; i++) {
    const row = randomRow(next, 1 + Math.floor(next() * 4));
    for (const escapeFormulas of [false, true]) {
      const expected = stringify([row], { escape_formulas: escapeFormulas }).replace(/\n$/, '');
      assert.equal(csvRow(row, escapeFormulas), expected, JSON.stringify(row));
    }
  }
  assert.equal(csvCell('=SUM(A1)', true), "'=SUM(A1)");
  assert.equal(csvCell('-1, said she', true), `"'-1, said she"`);
});

test('a canonical record is exactly csv-parse → csv-stringify of itself; csv-stringify output is canonical', () => {
  const next = rng(2);
  let canonical = 0;
  let rewritten = 0;
  for (let i = 0; i < 3000; i++) {
    const fields = 1 + Math.floor(next() * 4);
    const row = randomRow(next, fields);
    const written = stringify([row]).replace(/\n$/, '');
    assert.equal(isCanonicalCsvRecord(Buffer.from(written), fields, false), true, JSON.stringify(written));
    // With formula escaping, canonical exactly when escaping changes nothing, quoted cells included.
    const escaped = stringify([row], { escape_formulas: true }).replace(/\n$/, '');
    assert.equal(
      isCanonicalCsvRecord(Buffer.from(written), fields, true),
      escaped === written,
      `${JSON.stringify(written)} escaped ${JSON.stringify(escaped)}`,
    );
    // The same values written another way (every field quoted): canonical only if nothing changed.
    const quoted = row.map((v) => `"${v.replaceAll('"', '""')}"`).join(',');
    const reparsed = parse(quoted, { relax_column_count: true }) as string[][];
    const roundTrip = stringify(reparsed).replace(/\n$/, '');
    const claimed = isCanonicalCsvRecord(Buffer.from(quoted), fields, false);
    if (claimed) {
      canonical++;
      assert.equal(roundTrip, quoted, `claimed canonical: ${JSON.stringify(quoted)}`);
    } else {
      rewritten++;
    }
    assert.equal(claimed, roundTrip === quoted, `${JSON.stringify(quoted)} → ${JSON.stringify(roundTrip)}`);
  }
  assert.ok(canonical > 100 && rewritten > 100, `both cases exercised (${canonical}, ${rewritten})`);
});

test('not canonical: a wrong field count, stray or unclosed quotes, a bare CR/LF, formula starts when escaping', () => {
  const no = (text: string, fields: number, escapeFormulas = false) =>
    assert.equal(isCanonicalCsvRecord(Buffer.from(text), fields, escapeFormulas), false, text);
  no('a,b', 3);
  no('a,b,c', 2);
  no('a"b,c', 2);
  no('"abc', 1);
  no('"a,b"x', 1);
  no('"a,b', 1); // unclosed after a comma (the scan then jumps to the next quote)
  no('"a,""b"x', 1);
  no('a\rb', 1);
  no('""', 1); // an empty value is written without quotes
  no('"plain"', 1); // quotes nothing needs
  no('=1+1,b', 2, true);
  no('x,＝1', 2, true);
  no('"@united No, thanks",x', 2, true); // the value starts with @, not the field
  no('x,"\r1"', 2, true);
  no('"＠a\nb"', 1, true);
  assert.equal(isCanonicalCsvRecord(Buffer.from('"a, =b",c'), 2, true), true);
  assert.equal(isCanonicalCsvRecord(Buffer.from('"""=a"""'), 1, true), true); // starts with a quote
  assert.equal(isCanonicalCsvRecord(Buffer.from('=1+1,b'), 2, false), true);
  assert.equal(isCanonicalCsvRecord(Buffer.from('a,'), 2, false), true); // trailing empty field
  assert.equal(isCanonicalCsvRecord(Buffer.from('"a, ""b"" c",d'), 2, false), true);
  assert.equal(isCanonicalCsvRecord(Buffer.from(''), 1, false), true);
});

test('stored records parse a page at a time, one by one when one of them is malformed', () => {
  const records = ['a,"b\nc"', '1,2', '', '"x""y",z'].map((r) => Buffer.from(r));
  assert.deepEqual(parseCsvRecords(records), [['a', 'b\nc'], ['1', '2'], [''], ['x"y', 'z']]);
  const withBad = [...records, Buffer.from('"unclosed,1')];
  const parsed = parseCsvRecords(withBad);
  assert.deepEqual(parsed.slice(0, 4), [['a', 'b\nc'], ['1', '2'], [''], ['x"y', 'z']]);
  assert.equal(parsed[4], undefined);
});
