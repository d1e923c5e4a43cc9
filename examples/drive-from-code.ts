/**
 * The whole job from code: prepare a CSV into a ledger, run its batches on the built-in local
 * backend (`drive`, with its events), and read every record back with its result. Run it:
 * `node dist/examples/drive-from-code.js [run-dir]`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drive, Ledger, openProvider, prepare, resultSource } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/examples/, the data stays in examples/.
const input = join(here, '..', '..', 'examples', 'feedback.csv');
const runDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'batchpipe-example-'));

const ledger = Ledger.open(join(runDir, 'fb.db'));
await prepare({
  ledger,
  input,
  outDir: join(runDir, 'fb'),
  model: 'gpt-4o-mini',
  idColumn: 'id',
  prompt: 'Classify: {{text}}',
});
const provider = await openProvider({ backend: 'local', ledgerPath: ledger.path });
try {
  await drive({
    ledger,
    provider,
    onEvent: (e) => {
      if (e.type === 'batch.ended') console.error(`batch ${e.batchId} ${e.status}`);
    },
  });
} finally {
  await provider.close();
}
for await (const row of resultSource({ ledger })) {
  console.log(`${row.custom_id}\t${row.status}\t${JSON.stringify(row.result)}`);
}
ledger.close();
