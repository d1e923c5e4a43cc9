import type { Command } from 'commander';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { storedRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { type ApplyCounts, applyResultLines } from '../../results/apply.js';
import { alignedChunks, fileChunks } from '../../results/line-chunks.js';
import { examples } from '../help.js';
import { intOption, storeOutputSchema } from '../options.js';

interface IngestFlags {
  ledger: string;
  outputSchema?: string;
  maxAttempts: number;
}

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('record Batch API output or error files downloaded elsewhere in the ledger')
    .argument('<files...>', 'output or error .jsonl files (- for stdin)')
    .requiredOption('--ledger <path>', 'SQLite ledger of the run the files belong to')
    .option('--output-schema <file.json>', 'JSON Schema the parsed results must match (kept in the ledger)')
    .option(
      '--max-attempts <n>',
      'tries per request before a retryable failure is final',
      intOption('--max-attempts'),
      3,
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe ingest batch_abc_output.jsonl batch_abc_errors.jsonl --ledger runs/fb.db',
        'batchpipe ingest output.jsonl --ledger runs/fb.db --output-schema schema.json',
      ]),
    )
    .action(async (files: string[], flags: IngestFlags) => {
      const ledger = Ledger.open(flags.ledger, { mustExist: true, holder: 'batchpipe ingest' });
      try {
        const identity = storedRunIdentity(ledger);
        if (identity === undefined) {
          throw new BatchpipeError(
            ErrorCodes.USAGE,
            `ledger ${flags.ledger} holds no run yet; run batchpipe prepare first`,
          );
        }
        if (flags.outputSchema !== undefined) await storeOutputSchema(ledger, flags.outputSchema);
        const { endpoint } = identity;
        for (const file of files) {
          const input = file === '-' ? alignedChunks(process.stdin) : fileChunks(file);
          const counts = await applyResultLines(ledger, input, {
            endpoint,
            maxAttempts: flags.maxAttempts,
            source: file,
          });
          process.stderr.write(formatIngest(file, counts));
        }
      } finally {
        ledger.close();
      }
    });
}

function formatIngest(file: string, c: ApplyCounts): string {
  let text = `ingested ${file}: ${c.lines} lines = succeeded ${c.succeeded} + failed ${c.failed} + retried ${c.retried} + skipped ${c.skipped} + unknown ${c.unknown}\n`;
  if (c.unknown > 0) {
    const ids = c.unknownIds.map((id) => JSON.stringify(id)).join(', ');
    text += `batchpipe: warning: ${c.unknown} lines of ${file} name no request of this run (e.g. ${ids})\n`;
  }
  return text;
}
