/**
 * The commands a user types next, printed with the real paths and the flags that matter: after
 * `--no-wait` / `submit` (status, collect, results) and as the resume line of an interrupt.
 * Built from the user's own arguments (src/cli/command-line.ts).
 */
import type { Command } from 'commander';
import { addBackendOptions } from './backend-options.js';
import { formatCommand, optionNames, shellQuote, typedArgs } from './command-line.js';
import { addResultsOptions } from './commands/results.js';
import { addReportOptions } from './reporter.js';

const BACKEND = new Set([...optionNames(addBackendOptions), ...optionNames(addReportOptions), 'ledger']);
const RESULTS = new Set([...optionNames(addResultsOptions), 'ledger']);

/** `batchpipe <name>` with the options of `args` (typed for `cmd`) that `keep` names, never a secret. */
export function commandWith(
  name: string,
  cmd: Command,
  args: readonly string[],
  keep: ReadonlySet<string>,
): string {
  const kept = typedArgs(cmd, args).filter(
    (a) => a.option !== undefined && keep.has(a.option) && !/apikey/i.test(a.option),
  );
  return formatCommand([name, ...kept.flatMap((a) => a.tokens)]);
}

/** `batchpipe collect …` with the backend flags the user gave `cmd`. */
export function collectCommand(cmd: Command, args: readonly string[]): string {
  return commandWith('collect', cmd, args, BACKEND);
}

/** `batchpipe results …` with the results flags the user gave (and `> FILE` for `--results FILE`). */
export function resultsCommand(
  cmd: Command,
  args: readonly string[],
  resultsFile: string | undefined,
): string {
  const line = commandWith('results', cmd, args, RESULTS);
  return resultsFile === undefined ? line : `${line} > ${shellQuote(resultsFile)}`;
}

/** What to type after submitting without waiting: watch, collect, results. */
export function afterSubmit(
  cmd: Command,
  args: readonly string[],
  ledger: string,
  resultsFile?: string,
): string {
  return [
    'submitted; the batches run at the provider. Next:',
    `  ${formatCommand(['status', '--ledger', ledger, '--watch'])}    # counts and batches, as the last poll saw them`,
    `  ${collectCommand(cmd, args)}    # waits until every request is final; stop it any time`,
    `  ${resultsCommand(cmd, args, resultsFile)}    # the rows with their results`,
  ].join('\n');
}
