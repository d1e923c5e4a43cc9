import { type Command, Option } from 'commander';
import { Ledger } from '../../ledger/ledger.js';
import { useSmallPageCache } from '../../ledger/reading.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { parseStatusList, type ResultStatus } from '../../results/ledger-rows.js';
import { inputFormat } from '../../results/result-source.js';
import { type WriteResultsOptions, writeResults } from '../../results/write-results.js';
import { userArgs } from '../argv.js';
import { repeatCommand } from '../command-line.js';
import { examples } from '../help.js';
import { onInterrupt } from '../interrupt.js';
import { writeOutput } from '../output.js';

export interface ResultsFlags {
  ledger: string;
  format?: 'csv' | 'jsonl';
  status?: ResultStatus[];
  order: 'input' | 'completion';
  expand?: boolean;
  escapeFormulas?: boolean;
  resultPrefix?: string;
}

/** The options `results` and `run` share: which rows, in which form. */
export function addResultsOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--format <format>', "output format (default: the input's)").choices(['csv', 'jsonl']),
    )
    .option(
      '--status <list>',
      'only these statuses: succeeded,failed,expired,cancelled,rejected,pending',
      parseStatusList,
    )
    .addOption(
      new Option('--order <order>', 'input order, or the order results came in')
        .choices(['input', 'completion'])
        .default('input'),
    )
    .option('--expand', 'CSV: one result.<field> column per field of object results')
    .option('--escape-formulas', "CSV: prefix cells starting with = + - @ (tab, CR) with ' for spreadsheets")
    .option(
      '--result-prefix <prefix>',
      'CSV: prefix of the result columns (when the input has a "result" column)',
    );
}

export function resultsOptionsFromFlags(flags: ResultsFlags, ledger: Ledger): WriteResultsOptions {
  return {
    format: flags.format ?? inputFormat(ledger),
    status: flags.status,
    order: flags.order,
    expand: flags.expand,
    escapeFormulas: flags.escapeFormulas,
    resultPrefix: flags.resultPrefix,
  };
}

export function registerResults(program: Command): void {
  addResultsOptions(
    program
      .command('results')
      .description('write every input record with its result, status and error to stdout (CSV or JSONL)')
      .requiredOption('--ledger <path>', 'SQLite ledger of the run'),
  )
    .addHelpText(
      'after',
      examples([
        'batchpipe results --ledger runs/fb.db --expand > fb.csv',
        'batchpipe results --ledger runs/fb.db --status failed,expired --format jsonl | head',
      ]),
    )
    .action(async (flags: ResultsFlags, cmd: Command) => {
      onInterrupt(() => ({
        doing: 'while writing the results: the output is cut short, the ledger untouched',
        resume: repeatCommand(cmd, userArgs(cmd)),
      }));
      const ledger = Ledger.open(flags.ledger, { readonly: true });
      useSmallPageCache(ledger);
      try {
        requireCompletePrepare(ledger, flags.ledger, 'results');
        const options = resultsOptionsFromFlags(flags, ledger);
        const { rows } = await writeOutput(undefined, (out) => writeResults(ledger, out, options));
        process.stderr.write(`batchpipe: results: ${rows} rows\n`);
      } finally {
        ledger.close();
      }
    });
}
