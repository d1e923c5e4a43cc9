/**
 * The whole trip from code: CSV in, batchpipe's stages composed by hand with `stream.pipeline` into
 * request files and a ledger, the batches run (here on the built-in local Batch API server, no key
 * needed), and every input row back with its result, in code and as CSV.
 * Run it: `node dist/examples/compose-stages.js [out-dir]`.
 */
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
  batchSink,
  csvSource,
  drive,
  jsonlEncode,
  Ledger,
  openProvider,
  promptTemplate,
  type Reject,
  resultSource,
  validateRequests,
  writeResults,
} from '../src/index.js';

/** A row of feedback.csv, as `resultSource` gives it back. */
interface Feedback {
  id: string;
  submitted: string;
  channel: string;
  text: string;
}

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/examples/, the data stays in examples/.
const input = join(here, '..', '..', 'examples', 'feedback.csv');
const outDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'batchpipe-example-'));

const ledger = Ledger.open(join(outDir, 'feedback.db'));
const rejects: Reject[] = [];
try {
  // 1. CSV → request files + ledger, exactly as `batchpipe prepare` would make them.
  await pipeline(
    csvSource(input),
    promptTemplate({
      model: 'gpt-4o-mini',
      idColumn: 'id',
      system: 'Categorize the sentiment: positive, negative or mixed. Answer with one word.',
      prompt: '{{text}}',
    }),
    validateRequests(),
    jsonlEncode(),
    batchSink({ ledger, outDir: join(outDir, 'requests'), maxLines: 5, onReject: (r) => rejects.push(r) }),
  );
  for (const file of ledger.files({ complete: true }))
    console.log(`${file.name}\t${file.lines} requests\t${file.sha256}`);
  console.log(`staged ${ledger.counts().staged}, rejected ${rejects.length}`);

  // 2. Submit the files and collect the results (use `backend: 'openai'` with OPENAI_API_KEY set).
  const provider = await openProvider({ backend: 'local', ledgerPath: ledger.path });
  try {
    await drive({
      ledger,
      provider,
      pollIntervalMs: 100,
      onEvent: (e) => {
        if (e.type === 'batch.ended') console.log(`batch ${e.batchId} ${e.status}`);
      },
    });
  } finally {
    await provider.close();
  }

  // 3. Every input row, typed, with what became of it.
  for await (const row of resultSource<Feedback, string>({ ledger })) {
    if (row.status === 'rejected') console.log(`line ${row.line}: ${row.error.code} ${row.error.message}`);
    else console.log(`${row.record.id}\t${row.status}\t${row.result}\t${row.record.text.slice(0, 40)}`);
  }

  // 4. And back to CSV: the input's columns, then result, result_status and result_error.
  const out = createWriteStream(join(outDir, 'results.csv'));
  const { rows } = await writeResults(ledger, out, { format: 'csv' });
  out.end();
  await finished(out);
  console.log(`wrote ${rows} rows to ${join(outDir, 'results.csv')}`);
} finally {
  ledger.close();
}
