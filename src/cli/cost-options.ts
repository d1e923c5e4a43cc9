/**
 * The cost flags: `--price-file` (repeatable), `--allow-unpriced` and `--expect-output-tokens` for
 * every command that prices (estimate, run, submit, status, results), and `--max-usd` for those
 * that create batches (run, submit). Parses them into src/cost and src/scheduler's terms.
 */
import type { Command } from 'commander';
import { loadPriceTable } from '../cost/prices.js';
import { type CostSettings, parseBudget } from '../cost/run-cost.js';
import { storeBudget, storedBudget } from '../ledger/budget.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Budget } from '../scheduler/budget.js';
import { numberOption } from './options.js';

export interface PriceFlags {
  priceFile?: string[];
  allowUnpriced?: boolean;
  expectOutputTokens?: number;
}

export interface BudgetFlags extends PriceFlags {
  /** Micro-dollars, or `null` for `--max-usd none`. */
  maxUsd?: number | null;
}

function collectFiles(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--price-file`, `--allow-unpriced`; with `output`, `--expect-output-tokens` too. */
export function addPriceOptions(cmd: Command, options: { output?: boolean } = {}): Command {
  cmd
    .option(
      '--price-file <file>',
      'prices (JSON, the shape of prices.json) that replace or add models; repeatable',
      collectFiles,
    )
    .option('--allow-unpriced', 'a model without a price is a warning, its cost left out');
  if (options.output) {
    cmd.option(
      '--expect-output-tokens <n>',
      "output tokens to assume a request (default: each request's max_tokens / max_completion_tokens / max_output_tokens, an upper bound)",
      numberOption('--expect-output-tokens', { min: 0, integer: true }),
    );
  }
  return cmd;
}

/** `--max-usd` and the price flags it needs. */
export function addBudgetOptions(cmd: Command): Command {
  return addPriceOptions(cmd, { output: true }).option(
    '--max-usd <usd>',
    'refuse to start above this estimate (batch prices), and create no batch that would take spent + queued + its estimate over it; kept for the run (none: drop it)',
    (value: string) => (value === 'none' ? null : parseBudget(value)),
  );
}

/** The price table and assumptions of the flags (the price files read now: a bad one fails first). */
export function costSettingsFromFlags(flags: PriceFlags): CostSettings {
  return {
    table: loadPriceTable(flags.priceFile ?? []),
    allowUnpriced: flags.allowUnpriced ?? false,
    expectOutputTokens: flags.expectOutputTokens,
  };
}

/**
 * The run's budget: `--max-usd` when given (kept in the ledger for the commands after it; `none`
 * drops it), else the one the ledger keeps, with the output assumption it was given with unless
 * `--expect-output-tokens` says otherwise.
 */
export function runBudget(flags: BudgetFlags, ledger: Ledger): Budget | undefined {
  if (flags.maxUsd !== undefined) {
    const budget =
      flags.maxUsd === null
        ? undefined
        : { maxMicroUsd: flags.maxUsd, expectOutputTokens: flags.expectOutputTokens };
    storeBudget(ledger, budget);
  }
  const kept = storedBudget(ledger);
  if (!kept) return undefined;
  const expectOutputTokens = flags.expectOutputTokens ?? kept.expectOutputTokens;
  return {
    maxMicroUsd: kept.maxMicroUsd,
    settings: costSettingsFromFlags({
      ...flags,
      ...(expectOutputTokens === undefined ? {} : { expectOutputTokens }),
    }),
  };
}
