import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse';
import { FEEDBACK_COLUMNS, generateFeedbackCsv, writeFeedbackCsv } from '../bench/generate.js';

const ROWS = 3_000;

const generate = (seed: number | string, rows = ROWS): string =>
  [...generateFeedbackCsv({ rows, seed })].join('');

async function parseAll(text: string): Promise<Record<string, string>[]> {
  const records: Record<string, string>[] = [];
  for await (const record of parse(text, { columns: true })) records.push(record as Record<string, string>);
  return records;
}

describe('bench generator', () => {
  it('is deterministic: same seed, same bytes; another seed, other bytes', () => {
    const a = generate(7);
    assert.equal(generate(7), a);
    assert.equal(generate('7'), a, 'a numeric seed and its text are the same seed');
    assert.notEqual(generate(8), a);
  });

  it('a shorter run is a prefix of a longer one', () => {
    const short = generate(3, 100);
    assert.ok(generate(3, 200).startsWith(short));
  });

  it('streams the same bytes it generates, and counts them', async () => {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    const result = await writeFeedbackCsv(sink, { rows: ROWS, seed: 7 });
    const bytes = Buffer.concat(chunks);
    assert.equal(result.rows, ROWS);
    assert.equal(result.bytes, bytes.length);
    assert.equal(bytes.toString('utf8'), generate(7));
  });

  it('parses with csv-parse into exactly N records with the expected columns', async () => {
    const text = generate(1);
    const records = await parseAll(text);
    assert.equal(records.length, ROWS);
    for (const r of records) assert.deepEqual(Object.keys(r), [...FEEDBACK_COLUMNS]);
    const ids = records.map((r) => r.id ?? '');
    assert.equal(new Set(ids).size, ROWS, 'ids are unique');
    assert.ok(
      ids.every((id) => /^\d{18}$/.test(id)),
      'ids are 18-digit strings',
    );
    assert.ok(
      records.every((r) => (r.text ?? '').length > 0),
      'text is never empty',
    );
    assert.ok(!text.includes('\r'), 'the file is LF-only');
  });

  it('is messy: text holds quotes, commas, newlines, emoji, accents and £; optional columns are sometimes empty', async () => {
    const records = await parseAll(generate(1));
    const texts = records.map((r) => r.text ?? '');
    const some = (re: RegExp): number => texts.filter((t) => re.test(t)).length;
    assert.ok(some(/"/) > 100, 'double quotes');
    assert.ok(some(/,/) > 100, 'commas');
    assert.ok(some(/\n/) > 100, 'embedded newlines');
    assert.ok(some(/\p{Extended_Pictographic}/u) > 100, 'emoji');
    assert.ok(some(/\u200d/) > 0, 'ZWJ emoji sequences');
    assert.ok(some(/[éèëïñçöüøåúó]/i) > 100, 'accented letters');
    assert.ok(some(/£/) > 10, 'pound signs');
    assert.ok(some(/\{\{text\}\}/) > 0, 'literal placeholder syntax');
    const lengths = texts.map((t) => t.length).sort((a, b) => a - b);
    const median = lengths[Math.floor(lengths.length / 2)] ?? 0;
    assert.ok(median > 150 && median < 260, `median text length ~200 (got ${median})`);
    assert.ok((lengths.at(-1) ?? 0) > 1500, 'some long texts');
    assert.ok((lengths[0] ?? 0) < 20, 'some short texts');
    for (const column of ['customer', 'channel', 'rating'] as const) {
      assert.ok(
        records.some((r) => r[column] === ''),
        `${column} is sometimes empty`,
      );
    }
  });
});
