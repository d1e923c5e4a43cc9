/**
 * Composes batchpipe's stages by hand with `stream.pipeline`: CSV in, validated Batch API request
 * files and a ledger out. Run it: `node dist/examples/compose-stages.js [out-dir]`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
  batchSink,
  csvSource,
  jsonlEncode,
  Ledger,
  promptTemplate,
  type RejectedRecord,
  validateRequests,
} from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/examples/, the data stays in examples/.
const input = join(here, '..', '..', 'examples', 'feedback.csv');
const outDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'batchpipe-example-'));

const ledger = Ledger.open(join(outDir, 'ledger.db'));
const rejects: RejectedRecord[] = [];

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

const counts = ledger.counts();
for (const file of ledger.files({ complete: true }))
  console.log(`${file.path}\t${file.lines} requests\t${file.sha256}`);
console.log(`staged ${counts.staged}, rejected ${rejects.length}`);
ledger.close();
