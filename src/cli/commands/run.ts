import type { Command } from 'commander';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { RequestStates } from '../../ledger/request-states.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { writeResults } from '../../results/write-results.js';
import { drive } from '../../scheduler/api.js';
import { lowerMaxLines } from '../../scheduler/restage.js';
import { userArgs } from '../argv.js';
import {
  addBackendOptions,
  type BackendFlags,
  batchHome,
  checkBackendFlags,
  openProviderFromFlags,
  schedulerOptionsFromFlags,
} from '../backend-options.js';
import { optionNames, repeatCommand } from '../command-line.js';
import { addBudgetOptions, type BudgetFlags, costSettingsFromFlags, runBudget } from '../cost-options.js';
import { afterSubmit } from '../follow-ups.js';
import { examples } from '../help.js';
import { plural } from '../human.js';
import { onInterrupt } from '../interrupt.js';
import { storeOutputSchema } from '../options.js';
import { checkOutputPath, writeOutput } from '../output.js';
import { describeInFlight } from '../progress/in-flight.js';
import { addReportOptions, Reporter, type ReportFlags } from '../reporter.js';
import { reportFinished, reportStatus } from './batches.js';
import { addPrepareOptions, type PrepareFlags, prepareFromCli } from './prepare.js';
import { addResultsOptions, type ResultsFlags, resultsOptionsFromFlags } from './results.js';

interface RunFlags extends PrepareFlags, BackendFlags, ResultsFlags, ReportFlags, BudgetFlags {
  wait: boolean;
  results?: string;
  outputSchema?: string;
}

/** What a prepared ledger keeps: going on, the input and these options are not given again. */
const KEPT_BY_THE_LEDGER = [
  ...optionNames((c) => addPrepareOptions(c)).filter((n) => n !== 'ledger'),
  'outputSchema',
];

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('prepare, submit, collect and retry until every request is final, then write the results')
    .argument('[file]', "input file, or - for stdin (omit to resume the ledger's run)");
  addPrepareOptions(cmd);
  addBudgetOptions(addReportOptions(addResultsOptions(addBackendOptions(cmd))))
    .option('--no-wait', 'submit and return; `batchpipe collect` picks up later')
    .option('--results <file>', 'write the results here instead of stdout')
    .option(
      '--output-schema <file.json>',
      'JSON Schema parsed results must match; a mismatch is retried (kept in the ledger)',
    )
    .addHelpText(
      'after',
      examples([
        'batchpipe run examples/feedback.csv --backend local --ledger runs/fb.db --model gpt-4o-mini --id-column id --body examples/sentiment-body.json --expand > fb.csv',
        "batchpipe run feedback.csv --ledger runs/fb.db --model gpt-4o-mini --prompt 'Classify: {{text}}' --no-wait   # OpenAI",
        'batchpipe run --ledger runs/fb.db --max-attempts 5 > fb.csv   # resume; a higher --max-attempts retries what may succeed',
        'batchpipe run feedback.csv --ledger runs/fb.db --model gpt-4o-mini --prompt "{{text}}" --max-usd 5 --expect-output-tokens 20',
      ]),
    )
    .action(async (file: string | undefined, flags: RunFlags, command: Command) => {
      checkBackendFlags(flags);
      // Price files are read (and a bad one refused) before any work.
      const prices = costSettingsFromFlags(flags);
      // Outputs that cannot be written fail now, not after the batches ran.
      if (flags.results !== undefined) checkOutputPath('--results', flags.results);
      if (flags.rejects !== undefined) checkOutputPath('--rejects', flags.rejects);
      const reporter = Reporter.open(flags);
      const ledger = Ledger.open(flags.ledger, { holder: 'batchpipe run' });
      try {
        const args = userArgs(command);
        // A new ledger needs input (stdin when no file is named); an existing one resumes, and a
        // named file is checked against what the ledger already holds.
        const resumed = hasRunIdentity(ledger);
        if (file === undefined) requireCompletePrepare(ledger, flags.ledger, 'run');
        if (file !== undefined || !resumed) await prepareFromCli(file, flags, ledger, reporter, command);
        else if (command.getOptionValueSource('maxLines') === 'cli') {
          // Resuming with a smaller --max-lines: files not yet sent are written again that small.
          const moved = lowerMaxLines(ledger, flags.maxLines);
          reporter.log(
            `files from now on hold at most ${flags.maxLines} requests (${moved} staged requests to rewrite)`,
          );
        }
        if (resumed && command.getOptionValueSource('maxAttempts') === 'cli') {
          // A higher --max-attempts on a run that gave up on some requests: try those again that may succeed.
          const again = ledger.transaction(() =>
            RequestStates.of(ledger).restageFinal(['failed', 'expired'], flags.maxAttempts, true),
          );
          if (again > 0) {
            reporter.log(
              `--max-attempts ${flags.maxAttempts}: ${plural(again, 'failed request')} that may succeed go again`,
            );
          }
        }
        if (flags.outputSchema !== undefined) await storeOutputSchema(ledger, flags.outputSchema);
        onInterrupt(() => ({
          doing: describeInFlight(reporter.progress, batchHome(flags)),
          resume: repeatCommand(command, args, { options: KEPT_BY_THE_LEDGER, positionals: true }),
        }));
        const provider = await openProviderFromFlags(flags, reporter);
        let final: boolean;
        try {
          ({ final } = await drive({
            ...schedulerOptionsFromFlags(flags, ledger, provider, reporter),
            wait: flags.wait,
            budget: runBudget(flags, ledger),
          }));
        } finally {
          await provider.close();
        }
        reportStatus(reporter, ledger, prices);
        if (!final) {
          reporter.log(afterSubmit(command, args, flags.ledger, flags.results));
          return;
        }
        onInterrupt(() => ({
          doing: 'while writing the results (every request is final: nothing else was under way)',
          resume: repeatCommand(command, args, { options: KEPT_BY_THE_LEDGER, positionals: true }),
        }));
        const options = resultsOptionsFromFlags(flags, ledger);
        const { rows } = await writeOutput(flags.results, (out) => writeResults(ledger, out, options));
        reporter.log(`wrote ${rows} results${flags.results ? ` to ${flags.results}` : ''}`);
        process.exitCode = reportFinished(reporter, ledger, flags.ledger);
      } finally {
        ledger.close();
      }
    });
}
