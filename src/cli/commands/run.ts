import type { Command } from 'commander';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { prepare } from '../../prepare/prepare.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { writeResults } from '../../results/write-results.js';
import { drive, status } from '../../scheduler/api.js';
import { lowerMaxLines } from '../../scheduler/restage.js';
import { formatStatus } from '../../scheduler/status.js';
import {
  addBackendOptions,
  type BackendFlags,
  openProviderFromFlags,
  schedulerOptionsFromFlags,
} from '../backend-options.js';
import { storeOutputSchema } from '../options.js';
import { checkOutputPath, writeOutput } from '../output.js';
import {
  addPrepareOptions,
  formatPrepareSummary,
  type PrepareFlags,
  prepareOptionsFromFlags,
} from './prepare.js';
import { addResultsOptions, type ResultsFlags, resultsOptionsFromFlags } from './results.js';

interface RunFlags extends PrepareFlags, BackendFlags, ResultsFlags {
  wait: boolean;
  results?: string;
  outputSchema?: string;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('prepare, submit, collect and retry until every request is final, then write the results')
    .argument('[file]', "input file, or - for stdin (omit to resume the ledger's run)");
  addPrepareOptions(cmd, { outRequired: false });
  addResultsOptions(addBackendOptions(cmd))
    .option('--no-wait', 'submit and return; `batchpipe collect` picks up later')
    .option('--results <file>', 'write the results here instead of stdout')
    .option(
      '--output-schema <file.json>',
      'JSON Schema parsed results must match; a mismatch is retried (kept in the ledger)',
    )
    .action(async (file: string | undefined, flags: RunFlags, command: Command) => {
      // Outputs that cannot be written fail now, not after the batches ran.
      if (flags.results !== undefined) checkOutputPath('--results', flags.results);
      if (flags.rejects !== undefined) checkOutputPath('--rejects', flags.rejects);
      const ledger = Ledger.open(flags.ledger, { holder: 'batchpipe run' });
      try {
        // A new ledger needs input (stdin when no file is named); an existing one resumes, and a
        // named file is checked against what the ledger already holds.
        if (file === undefined) requireCompletePrepare(ledger, flags.ledger, 'run');
        if (file !== undefined || !hasRunIdentity(ledger)) {
          const options = prepareOptionsFromFlags(file ?? '-', flags, ledger);
          const summary = await prepare(options);
          process.stderr.write(`batchpipe: ${formatPrepareSummary(summary, options.outDir)}`);
        } else if (command.getOptionValueSource('maxLines') === 'cli') {
          // Resuming with a smaller --max-lines: files not yet sent are written again that small.
          const moved = lowerMaxLines(ledger, flags.maxLines);
          process.stderr.write(
            `batchpipe: files from now on hold at most ${flags.maxLines} requests (${moved} staged requests to rewrite)\n`,
          );
        }
        if (flags.outputSchema !== undefined) await storeOutputSchema(ledger, flags.outputSchema);
        const provider = await openProviderFromFlags(flags);
        let final: boolean;
        try {
          ({ final } = await drive({
            ...schedulerOptionsFromFlags(flags, ledger, provider),
            wait: flags.wait,
          }));
        } finally {
          await provider.close();
        }
        process.stderr.write(formatStatus(status({ ledger })));
        if (!final) {
          process.stderr.write(
            'batchpipe: submitted; `batchpipe collect --ledger …` waits for the results\n',
          );
          return;
        }
        const options = resultsOptionsFromFlags(flags, ledger);
        const { rows } = await writeOutput(flags.results, (out) => writeResults(ledger, out, options));
        process.stderr.write(
          `batchpipe: wrote ${rows} results${flags.results ? ` to ${flags.results}` : ''}\n`,
        );
      } finally {
        ledger.close();
      }
    });
}
