/**
 * `batchpipe estimate`: what a run will cost before anything is sent. Given input, it runs prepare's
 * own code into a temporary directory (removed after), so the requests counted are exactly those
 * `prepare` would build; given `--ledger`, it reads an existing run's request files. Writes nothing
 * the user keeps; the table or JSON goes to stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { estimateFiles, type ModelEstimate, type RunEstimate } from '../../cost/estimate.js';
import type { Rates } from '../../cost/prices.js';
import { type CostSettings, formatMicroUsd, usdNumber } from '../../cost/run-cost.js';
import { BatchpipeError, ErrorCodes } from '../../errors.js';
import { hasRunIdentity } from '../../ledger/identity.js';
import { Ledger } from '../../ledger/ledger.js';
import { prepare } from '../../prepare/prepare.js';
import { addPriceOptions, costSettingsFromFlags, type PriceFlags } from '../cost-options.js';
import { examples } from '../help.js';
import { formatCount, plural } from '../human.js';
import { addPrepareOptions, type PrepareFlags, prepareOptionsFromFlags } from './prepare.js';

interface EstimateFlags extends Omit<PrepareFlags, 'ledger'>, PriceFlags {
  ledger?: string;
  json?: boolean;
}

export function registerEstimate(program: Command): void {
  const cmd = program
    .command('estimate')
    .description('count the input tokens of a run and price it in batch and synchronously, sending nothing')
    .argument('[file]', 'input file, or - for stdin (omit with --ledger to estimate a prepared run)')
    .option('--ledger <path>', "estimate this prepared run's request files instead of input");
  addPrepareOptions(cmd, { ledger: false });
  addPriceOptions(cmd, { output: true })
    .option('--json', 'the estimate as JSON')
    .addHelpText(
      'after',
      examples([
        "batchpipe estimate examples/feedback.csv --model gpt-4o-mini --prompt 'Classify: {{text}}' --expect-output-tokens 5",
        'batchpipe estimate --ledger runs/fb.db --json',
      ]),
    )
    .action(async (file: string | undefined, flags: EstimateFlags) => {
      const settings = costSettingsFromFlags(flags);
      if (file !== undefined && flags.ledger !== undefined) {
        throw new BatchpipeError(
          ErrorCodes.USAGE,
          'estimate takes input or --ledger, not both: input is estimated as prepare would build it, --ledger as a prepared run holds it',
        );
      }
      const { estimate, rejected } =
        flags.ledger === undefined
          ? await estimateInput(file ?? '-', flags, settings)
          : { estimate: await estimateLedger(flags.ledger, settings), rejected: 0 };
      for (const m of estimate.models)
        if (m.warning) process.stderr.write(`batchpipe: warning: ${m.warning}\n`);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(estimateJson(estimate, rejected))}\n`
          : formatEstimate(estimate, rejected),
      );
    });
}

/** Prepares the input into a temporary directory, counts its files, and removes the directory. */
async function estimateInput(
  input: string,
  flags: EstimateFlags,
  settings: CostSettings,
): Promise<{ estimate: RunEstimate; rejected: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'batchpipe-estimate-'));
  try {
    const ledgerPath = join(dir, 'estimate.db');
    const ledger = Ledger.open(ledgerPath, { holder: 'batchpipe estimate' });
    try {
      // Bad records are counted, not written: a --rejects file goes to the temporary directory too.
      const { rejects, ...rest } = flags;
      const prepareFlags: PrepareFlags = {
        ...rest,
        ledger: ledgerPath,
        out: join(dir, 'requests'),
        ...(rejects === undefined ? {} : { rejects: join(dir, 'rejects') }),
      };
      const summary = await prepare(prepareOptionsFromFlags(input, prepareFlags, ledger));
      return {
        estimate: await estimateFiles(ledger.files({ complete: true }), settings),
        rejected: summary.rejected,
      };
    } finally {
      ledger.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A prepared run: the request files prepare wrote (attempt 1), each request once as it was first
 * built; retry files are left out. Counts the run's files kept in the ledger are used as they are.
 */
async function estimateLedger(path: string, settings: CostSettings): Promise<RunEstimate> {
  const ledger = Ledger.open(path, { mustExist: true, lock: false });
  try {
    if (!hasRunIdentity(ledger)) {
      throw new BatchpipeError(
        ErrorCodes.USAGE,
        `${path} holds no prepared run; give input to estimate instead`,
      );
    }
    return await estimateFiles(
      ledger.files({ complete: true }).filter((f) => f.attempt === 1),
      settings,
    );
  } finally {
    ledger.close();
  }
}

function rateText(rates: Rates, key: 'input' | 'output'): string {
  return `$${rates[key]}`;
}

/** The estimate for people: per model, tokens and where the output figure comes from, then prices both ways. */
export function formatEstimate(estimate: RunEstimate, rejected: number): string {
  const lines = [
    `${plural(estimate.requests, 'request')} in ${plural(estimate.files, 'file')}${rejected > 0 ? ` (${plural(rejected, 'record')} rejected, not counted)` : ''}`,
  ];
  for (const m of estimate.models) lines.push('', ...modelLines(m));
  if (estimate.models.length > 1) {
    lines.push(
      '',
      `total: ${formatMicroUsd(estimate.batchMicroUsd)} in batch, ${formatMicroUsd(estimate.syncMicroUsd)} synchronously, saving ${formatMicroUsd(estimate.syncMicroUsd - estimate.batchMicroUsd)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function modelLines(m: ModelEstimate): string[] {
  const t = m.tokens;
  const lines = [
    `model ${t.model || '(none)'}: ${plural(t.requests, 'request')}, counted in ${m.encoding.encoding}${m.encoding.guessed ? ' (an unknown model: assumed)' : ''}`,
    `  input tokens:  ${formatCount(t.inputTokens)}`,
    `  output tokens: ${t.outputTokens === undefined ? '?' : formatCount(t.outputTokens)} (${t.outputFrom})`,
  ];
  if (t.uncounted.length > 0) {
    lines.push(
      `  not counted:   ${t.uncounted.join(', ')} (billed as input by rules OpenAI does not publish)`,
    );
  }
  if (!m.priced) return [...lines, `  no price: ${m.warning ?? ''}`];
  const { sync, batch, price } = m.priced;
  const row = (name: string, p: typeof sync) => [
    name,
    rateText(p.rates, 'input'),
    rateText(p.rates, 'output'),
    formatMicroUsd(p.cost.inputMicroUsd),
    formatMicroUsd(p.cost.outputMicroUsd),
    formatMicroUsd(p.cost.totalMicroUsd),
  ];
  const saving = sync.cost.totalMicroUsd - batch.cost.totalMicroUsd;
  const share =
    sync.cost.totalMicroUsd > 0 ? ` (${Math.round((100 * saving) / sync.cost.totalMicroUsd)}%)` : '';
  lines.push(
    '',
    ...table([
      ['', 'INPUT $/1M', 'OUTPUT $/1M', 'INPUT', 'OUTPUT', 'TOTAL'],
      row('synchronous', sync),
      row('batch', batch),
    ]).map((l) => `  ${l}`),
    `  saving with batch: ${formatMicroUsd(saving)}${share}`,
    `  prices of ${price.model}${price.pricesAsOf ? ` as of ${price.pricesAsOf}` : ''} (${price.source}${price.batchSource ? `; batch: ${price.batchSource}` : ''})`,
  );
  if (t.outputTokens === undefined)
    lines.push('  the dollar figures leave the output out: give --expect-output-tokens N');
  return lines;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** `estimate --json`: the stable shape (fields are only ever added). */
export function estimateJson(estimate: RunEstimate, rejected: number): object {
  const both = (sync: number, batch: number) => ({
    sync_usd: usdNumber(sync),
    batch_usd: usdNumber(batch),
    saving_usd: usdNumber(sync - batch),
    sync_micro_usd: sync,
    batch_micro_usd: batch,
  });
  return {
    requests: estimate.requests,
    files: estimate.files,
    rejected,
    models: estimate.models.map((m) => ({
      model: m.tokens.model,
      encoding: m.encoding.encoding,
      encoding_assumed: m.encoding.guessed,
      requests: m.tokens.requests,
      input_tokens: m.tokens.inputTokens,
      output_tokens: m.tokens.outputTokens ?? null,
      output_from: m.tokens.outputFrom,
      not_counted: m.tokens.uncounted,
      ...(m.priced
        ? {
            prices: {
              sync: m.priced.sync.rates,
              batch: m.priced.batch.rates,
              model: m.priced.price.model,
              as_of: m.priced.price.pricesAsOf ?? null,
              source: m.priced.price.source,
            },
            sync: costJson(m.priced.sync.cost),
            batch: costJson(m.priced.batch.cost),
            ...both(m.priced.sync.cost.totalMicroUsd, m.priced.batch.cost.totalMicroUsd),
          }
        : { unpriced: m.warning ?? true }),
    })),
    total: both(estimate.syncMicroUsd, estimate.batchMicroUsd),
  };
}

function costJson(cost: { inputMicroUsd: number; outputMicroUsd: number; totalMicroUsd: number }) {
  return {
    input_usd: usdNumber(cost.inputMicroUsd),
    output_usd: usdNumber(cost.outputMicroUsd),
    total_usd: usdNumber(cost.totalMicroUsd),
    total_micro_usd: cost.totalMicroUsd,
  };
}
