import { type Command, Option } from 'commander';
import { type CostSettings, isPriced } from '../../cost/run-cost.js';
import { storedRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { useSmallPageCache } from '../../ledger/reading.js';
import { requireCompletePrepare } from '../../prepare/run-identity.js';
import { parseStatusList, type ResultStatus } from '../../results/ledger-rows.js';
import { inputFormat } from '../../results/result-source.js';
import { rowCosts } from '../../results/row-costs.js';
import { type WriteResultsOptions, writeResults } from '../../results/write-results.js';
import { userArgs } from '../argv.js';
import { repeatCommand } from '../command-line.js';
import { costSettingsFromFlags } from '../cost-options.js';
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
  cost?: boolean;
  priceFile?: string[];
  allowUnpriced?: boolean;
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
    )
    .option(
      '--cost',
      "each request's cost as sent (batch, or the direct path's prices) from its usage: a result_cost_usd column (JSONL: cost_usd)",
    );
}

export function resultsOptionsFromFlags(flags: ResultsFlags, ledger: Ledger): WriteResultsOptions {
  const prices = flags.cost ? costSettingsFromFlags(flags) : undefined;
  if (prices) checkPriced(ledger, prices);
  return {
    cost: prices ? rowCosts(ledger, storedRunIdentity(ledger)?.model ?? null, prices) : undefined,
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
    .option(
      '--price-file <file>',
      'with --cost: prices (JSON, the shape of prices.json) that replace or add models; repeatable',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--allow-unpriced', 'with --cost: a model without a price gets an empty cost')
    .addHelpText(
      'after',
      examples([
        'batchpipe results --ledger runs/fb.db --expand > fb.csv',
        'batchpipe results --ledger runs/fb.db --status failed,expired --format jsonl | head',
        'batchpipe results --ledger runs/fb.db --cost > fb-with-costs.csv',
      ]),
    )
    .action(async (flags: ResultsFlags, cmd: Command) => {
      onInterrupt(() => ({
        doing: 'while writing the results: the output is cut short, the ledger untouched',
        resume: repeatCommand(cmd, userArgs(cmd)),
      }));
      // --cost reads the usage columns of schema 7: an older ledger is brought up to it first.
      const ledger = Ledger.open(
        flags.ledger,
        flags.cost ? { mustExist: true, lock: false } : { readonly: true },
      );
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

/** Every model of the run has a price (BP_UNPRICED before any row is written), unless allowed. */
function checkPriced(ledger: Ledger, prices: CostSettings): void {
  const models = new Set(ledger.files().map((f) => f.model ?? ''));
  const runModel = storedRunIdentity(ledger)?.model;
  if (runModel) models.add(runModel);
  for (const model of models) {
    if (!isPriced(model, prices)) {
      const warning = `no price for model ${JSON.stringify(model)}: its rows get an empty result_cost_usd (--allow-unpriced)`;
      process.stderr.write(`batchpipe: warning: ${warning}\n`);
    }
  }
}
