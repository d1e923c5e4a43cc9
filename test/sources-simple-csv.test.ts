import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createRng, generateFeedbackCsv } from '../bench/generate.js';
import { CSV_PARSE_OPTIONS } from '../src/sources/parse-chunk.js';
import { simpleCsvValues } from '../src/sources/simple-csv.js';
import { BA_REVIEWS } from './support.js';

/** What prepare's csv-parse call gives for `bytes`, or the error it throws. */
function csvParse(bytes: Buffer): string[][] | Error {
  try {
    return parse(bytes, CSV_PARSE_OPTIONS) as string[][];
  } catch (err) {
    return err as Error;
  }
}

/** The fast path must give csv-parse's values exactly, or step aside; returns whether it took the input. */
function agrees(bytes: Buffer, what: string): boolean {
  const fast = simpleCsvValues(bytes);
  if (fast === undefined) return false;
  const reference = csvParse(bytes);
  assert.ok(
    !(reference instanceof Error),
    `${what}: csv-parse fails (${reference}) where the fast path gave values`,
  );
  assert.deepEqual(fast, reference, `${what}: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  return true;
}

/** The bytes between record boundaries, in pieces of about `size` bytes, cut as prepare's chunker cuts. */
function chunks(text: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  let inQuotes = false;
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 0x22) inQuotes = !inQuotes;
    else if (text[i] === 0x0a && !inQuotes) {
      last = i + 1;
      if (last - start >= size) {
        out.push(text.subarray(start, last));
        start = last;
      }
    }
  }
  out.push(text.subarray(start));
  return out;
}

/** `text` (LF record ends) with each record-ending LF (outside quotes) replaced by `ending`. */
function withRecordEnds(text: Buffer, ending: string): Buffer {
  const parts: Buffer[] = [];
  let inQuotes = false;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 0x22) inQuotes = !inQuotes;
    else if (text[i] === 0x0a && !inQuotes) {
      parts.push(text.subarray(from, i), Buffer.from(ending));
      from = i + 1;
    }
  }
  parts.push(text.subarray(from));
  return Buffer.concat(parts);
}

test('the fast path gives csv-parse values for the bench data, LF or CRLF, and steps aside for bare CR', () => {
  const generated = Buffer.from([...generateFeedbackCsv({ rows: 20_000, seed: 7 })].join(''));
  const body = generated.subarray(generated.indexOf(0x0a) + 1);
  for (const ending of ['\n', '\r\n']) {
    let taken = 0;
    const pieces = chunks(withRecordEnds(body, ending), 64 * 1024);
    for (const [i, piece] of pieces.entries()) if (agrees(piece, `generated chunk ${i}`)) taken++;
    assert.equal(
      taken,
      pieces.length,
      `every chunk of the generated data (${JSON.stringify(ending)}) is plain CSV`,
    );
  }

  const reviews = readFileSync(BA_REVIEWS);
  for (const [i, piece] of chunks(reviews, 64 * 1024).entries()) agrees(piece, `BA reviews chunk ${i}`);
  assert.equal(simpleCsvValues(Buffer.from('a,b\r1,2\r')), undefined);
  assert.equal(simpleCsvValues(Buffer.from('a,b\r\n1,2\r')), undefined);
  assert.equal(simpleCsvValues(Buffer.from('a,"b"\r1,2\r\n')), undefined);
  assert.ok(agrees(Buffer.from('a,"b\rc\nd\r\n"\r\n\r\n1,2\r\n'), 'CR and LF inside quotes of a CRLF chunk'));
});

test('on random CSV, well-formed or not, the fast path gives csv-parse values or steps aside', () => {
  const random = createRng(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const atoms = ['a', 'bc', ' ', ',', '"', '""', '\n', '\r', '\r\n', 'é', '😀', '\u0000', '\t', "'", '\\'];
  let taken = 0;
  for (let n = 0; n < 20_000; n++) {
    const records: string[] = [];
    for (let r = Math.floor(random() * 4); r >= 0; r--) {
      const fields: string[] = [];
      for (let f = Math.floor(random() * 4); f >= 0; f--) {
        let value = '';
        for (let k = Math.floor(random() * 5); k > 0; k--) value += pick(atoms);
        // Mostly quoted as csv-stringify would, sometimes raw (possibly malformed).
        const mode = random();
        if (mode < 0.4) fields.push(/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);
        else if (mode < 0.7) fields.push(`"${value.replaceAll('"', '""')}"`);
        else fields.push(value);
      }
      records.push(fields.join(','));
    }
    const text = records.join(pick(['\n', '\n', '\n\n', '\r\n'])) + pick(['', '\n', '\n\n']);
    const bytes = Buffer.from(text);
    if (agrees(bytes, `case ${n}`)) taken++;
  }
  // Cases with a CR anywhere, or malformed, are csv-parse's by design; many others go the fast way.
  assert.ok(taken > 2_500, `the fast path took only ${taken} of 20,000 cases`);
});

test('invalid UTF-8 decodes as csv-parse decodes it', () => {
  const bytes = Buffer.concat([Buffer.from('a,'), Buffer.from([0xff, 0xc3]), Buffer.from(',"x\n",z\n')]);
  assert.ok(agrees(bytes, 'invalid UTF-8'));
});
