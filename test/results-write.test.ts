import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import type { Ledger } from '../src/ledger/ledger.js';
import { applyResultLines } from '../src/results/apply.js';
import { type WriteResultsOptions, writeResults } from '../src/results/write-results.js';
import { chatOutputLine, httpErrorLine, prepareText } from './results-support.js';
import { tempDir } from './support.js';

/** Result texts that CSV quoting, formula escaping and JSON decoding each treat apart. */
const TRICKY_CONTENT = [
  'a "result", with a comma',
  'line one\nline two',
  'carriage\rreturn',
  '=1+1',
  'plain, with a comma',
  '@formula, with a comma',
  '-1 minus',
  '+44 plus',
  '\r starts with CR',
  '－fullwidth minus',
  '\tleading tab',
  '@mention',
  'emoji 👍🏽 and é',
  'back\\slash and \u00e9 escaped',
  '',
  '{"looks": "like json"}',
];

/** Enough records for several 2,000-row pages, some not canonical CSV, some formula-like. */
async function pagedLedger(withReject: boolean): Promise<Ledger> {
  const records: string[] = [];
  for (let i = 0; i < 5_000; i++) {
    const text = i % 7 === 0 ? '"plain, quoted"' : i % 11 === 0 ? '"needless quotes"' : `=text ${i}`;
    records.push(`r${i},${text}`);
  }
  if (withReject) records.splice(2_500, 0, ',no id');
  const rejectsPath = path.join(tempDir('bp-write-'), 'rejects.jsonl');
  // A ledger file: the format worker opens its own connection to it.
  const ledger = await prepareText(`id,text\n${records.join('\n')}\n`, { rejectsPath });
  const lines: string[] = [];
  for (let i = 0; i < 5_000; i += 3) {
    const content = TRICKY_CONTENT[(i / 3) % TRICKY_CONTENT.length]!;
    lines.push(
      i % 2 === 0
        ? chatOutputLine(`r${i}`, `${content} ${i}`)
        : httpErrorLine(`r${i}`, 400, { code: 'bad', message: `${content}, "quoted"` }),
    );
  }
  // Two late pages hold a NUL and a lone surrogate: results SQLite leaves to JavaScript.
  lines.push(chatOutputLine('r4001', 'nul \u0000 here'), chatOutputLine('r4603', 'lone \ud800 surrogate'));
  await applyResultLines(ledger, Readable.from([`${lines.join('\n')}\n`]), {
    endpoint: '/v1/chat/completions',
    maxAttempts: 1,
  });
  return ledger;
}

async function written(
  ledger: Ledger,
  options: WriteResultsOptions,
): Promise<{ text: string; rows: number }> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  const { rows } = await writeResults(ledger, out, options);
  return { text: Buffer.concat(chunks).toString('utf8'), rows };
}

test('CSV pages formatted on the format worker are the ones formatted on this thread', async () => {
  for (const withReject of [false, true]) {
    const ledger = await pagedLedger(withReject);
    try {
      const variants: WriteResultsOptions[] = [
        { format: 'csv' },
        { format: 'csv', expand: true, escapeFormulas: true },
        { format: 'csv', escapeFormulas: true },
        { format: 'csv', status: ['succeeded', 'pending'] },
        { format: 'csv', status: ['failed'] },
      ];
      for (const options of variants) {
        const here = await written(ledger, { ...options, threadAfterPages: false });
        for (const threadAfterPages of [0, 1]) {
          const threaded = await written(ledger, { ...options, threadAfterPages });
          assert.equal(threaded.rows, here.rows);
          assert.equal(threaded.text, here.text, JSON.stringify({ options, threadAfterPages, withReject }));
        }
      }
    } finally {
      ledger.close();
    }
  }
});
