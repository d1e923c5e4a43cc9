/**
 * A run's money: the estimate of requests from their token counts (FileTokens) and an output
 * assumption, and the cost of what responses reported (the ledger's usage totals), each on the
 * batch path and, for comparison, the synchronous one. Pure over counts and a price table; the
 * ledger is read through src/ledger (usage-totals.ts), never written.
 */
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { type AnsweredBy, type UsageTotal, unfinishedByFile, usageTotals } from '../ledger/usage-totals.js';
import { type FileTokens, noTokens } from './file-tokens.js';
import {
  estimateCost,
  lookupPrice,
  microFromPico,
  type PriceTable,
  smallestLongContext,
  usageCost,
  usageSumCost,
} from './prices.js';

/** What prices a run: the table, and whether an unpriced model is only a warning. */
export interface CostSettings {
  table: PriceTable;
  allowUnpriced?: boolean | undefined;
  /** Output tokens to assume per request, in place of each request's limit. */
  expectOutputTokens?: number | undefined;
}

/** Requests' tokens with the output they are assumed to bill. */
export interface TokenEstimate {
  model: string;
  requests: number;
  inputTokens: number;
  /** Undefined when some request has no limit and no `--expect-output-tokens` was given. */
  outputTokens: number | undefined;
  /** Where the output figure comes from: `--expect-output-tokens 40`, `max_tokens (upper bound)`, … */
  outputFrom: string;
  /** Requests without an output limit (their output is not in `outputTokens` unless assumed). */
  unbounded: number;
  maxInputTokens: number;
  uncounted: string[];
}

/** Micro-dollars on the batch path and synchronously; undefined when the model has no price. */
export interface TwoWays {
  batchMicroUsd: number;
  syncMicroUsd: number;
}

/** `tokens` of `model`, with the output assumption of `expectOutputTokens` or else the requests' limits. */
export function tokenEstimate(model: string, tokens: FileTokens, expectOutputTokens?: number): TokenEstimate {
  const base = {
    model,
    requests: tokens.requests,
    inputTokens: tokens.inputTokens,
    unbounded: tokens.unbounded,
    maxInputTokens: tokens.maxInputTokens,
    uncounted: tokens.uncounted,
  };
  if (expectOutputTokens !== undefined) {
    return {
      ...base,
      outputTokens: tokens.requests * expectOutputTokens,
      outputFrom: `--expect-output-tokens ${expectOutputTokens} a request`,
    };
  }
  const fields = tokens.boundFrom.filter((f) => f !== 'no output');
  const bound = fields.length === 0 ? 'no output' : `${fields.join(', ')} (upper bound)`;
  if (tokens.unbounded > 0) {
    return {
      ...base,
      outputTokens: undefined,
      outputFrom: `unknown: ${tokens.unbounded} requests set no output limit (give --expect-output-tokens N)`,
    };
  }
  return { ...base, outputTokens: tokens.outputBoundTokens, outputFrom: bound };
}

/**
 * The estimate's cost both ways (output counted as 0 when unknown: the caller says so). Requests
 * priced together take the long-context tier of the largest of them, an upper bound for a model with one.
 */
export function priceEstimate(estimate: TokenEstimate, settings: CostSettings): TwoWays | undefined {
  if (!isPriced(estimate.model, settings)) return undefined;
  const price = (path: 'batch' | 'sync') =>
    estimateCost(
      {
        model: estimate.model,
        inputTokens: estimate.inputTokens,
        outputTokens: estimate.outputTokens ?? 0,
        tierInputTokens: estimate.maxInputTokens,
        path,
      },
      settings.table,
    ).totalMicroUsd;
  return { batchMicroUsd: price('batch'), syncMicroUsd: price('sync') };
}

/** What the responses so far reported, and cost. */
export interface SpentSoFar extends TwoWays {
  /** The exact costs the micro-dollars are rounded from, in pico-dollars. */
  batchPicoUsd: bigint;
  syncPicoUsd: bigint;
  requests: number;
  inputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  /** Models without a price (with allowUnpriced): their requests are counted, not priced. */
  unpriced: string[];
}

/**
 * The cost of every usage the ledger holds (or batch row `batchRowId`'s): tokens summed per model,
 * path and price tier, priced exactly, and rounded to the micro-dollar once. `results --cost`
 * prices each row exactly from the same rates, so the rows add up to the exact total.
 */
export function spentSoFar(
  ledger: Ledger,
  runModel: string | null,
  settings: CostSettings,
  batchRowId?: number,
): SpentSoFar {
  let batchPicoUsd = 0n;
  let syncPicoUsd = 0n;
  const spent = {
    requests: 0,
    inputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
  };
  const unpriced = new Set<string>();
  for (const total of usageTotals(ledger, smallestLongContext(settings.table), batchRowId)) {
    const model = total.model ?? runModel ?? '';
    const { usage } = total;
    spent.requests += total.requests;
    spent.inputTokens += usage.inputTokens;
    spent.cachedInputTokens += usage.cachedInputTokens;
    spent.cacheWriteTokens += usage.cacheWriteTokens;
    spent.outputTokens += usage.outputTokens;
    spent.reasoningTokens += usage.reasoningTokens;
    const costs = totalCost(total, model, settings);
    if (costs === undefined) unpriced.add(model);
    else {
      batchPicoUsd += costs.batch;
      syncPicoUsd += costs.sync;
    }
  }
  return {
    ...spent,
    batchPicoUsd,
    syncPicoUsd,
    batchMicroUsd: microFromPico(batchPicoUsd),
    syncMicroUsd: microFromPico(syncPicoUsd),
    unpriced: [...unpriced].sort(),
  };
}

function totalCost(
  total: UsageTotal,
  model: string,
  settings: CostSettings,
): { batch: bigint; sync: bigint } | undefined {
  if (!isPriced(model, settings)) return undefined;
  // A model priced for batches may have no flex price: its flex rows are unpriced, not guessed.
  if (total.path === 'flex' && !hasPathPrice(model, 'flex', settings)) return undefined;
  const price = (path: AnsweredBy) =>
    usageSumCost(total.usage, { model, path, tierInputTokens: total.tierInputTokens }, settings.table)
      .picoUsd;
  // As sent: a batch's rows at batch prices, the direct path's at its own (synchronous or flex).
  return { batch: price(total.path), sync: price('sync') };
}

/** Whether `model` has a price on `path` (the table may price a model's batches but not its flex tier). */
export function hasPathPrice(model: string, path: 'flex', settings: CostSettings): boolean {
  try {
    usageCost(NO_USAGE, { model, path }, settings.table);
    return true;
  } catch {
    return false;
  }
}

const NO_USAGE = {
  inputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
};

/** Whether `model` has a price; without one, BP_UNPRICED unless unpriced models are allowed. */
export function isPriced(model: string, settings: CostSettings): boolean {
  return (
    lookupPrice(settings.table, model, { allowUnpriced: settings.allowUnpriced ?? false }).price !== undefined
  );
}

/**
 * A sum of micro-dollars as dollars for people: 6 decimals, trailing zeros trimmed to at least 2.
 *
 * @example
 * ```ts
 * formatMicroUsd(12_345); // '$0.012345'
 * formatMicroUsd(2_550_000_000); // '$2550.00'
 * ```
 */
export function formatMicroUsd(microUsd: number): string {
  const sign = microUsd < 0 ? '-' : '';
  const abs = Math.abs(microUsd);
  const whole = Math.floor(abs / 1e6);
  const fraction = String(abs % 1e6)
    .padStart(6, '0')
    .replace(/0{1,4}$/, '');
  return `${sign}$${whole}.${fraction.padEnd(2, '0')}`;
}

/** Pico-dollars as a JSON number of dollars (to the double's 15 significant digits). */
export function usdOfPico(picoUsd: bigint): number {
  return Number(picoUsd) / 1e12;
}

/** Micro-dollars as a JSON number of dollars (exact to the micro-dollar). */
export function usdNumber(microUsd: number): number {
  return microUsd / 1e6;
}

/** A budget (`--max-usd X`) as micro-dollars; BP_USAGE for anything but a non-negative amount. */
export function parseBudget(text: string): number {
  const usd = Number(text);
  if (text.trim() === '' || !Number.isFinite(usd) || usd < 0) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--max-usd takes an amount of US dollars, like 25 or 0.50; got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(usd * 1e6);
}

/** What is left of a run, estimated: the unfinished requests of each file, at the file's estimate. */
export interface RemainingEstimate extends TwoWays {
  requests: number;
  /** Files not counted yet (none sent): their input is prepare's characters/4 estimate. */
  approximate: boolean;
  /** Requests whose output has no estimate (no limit, no `--expect-output-tokens`): priced as input only. */
  outputUnknown: number;
  /** Requests staged for a retry not yet written to a file: not in the figures. */
  unplaced: number;
}

/** A run's cost so far and projected to its end, batch and synchronous. */
export interface RunCost {
  spent: SpentSoFar;
  remaining: RemainingEstimate;
  projected: TwoWays;
  /** Models without a price (with allowUnpriced, or for status, which never fails on one). */
  unpriced: string[];
}

/**
 * Spent so far (every reported usage), plus the estimate of the requests not final yet: each file's
 * real token count (or prepare's characters/4 before one was made) scaled to its unfinished requests.
 * `unfinished`: how many requests are staged or submitted, when the caller has counted them (0: the
 * requests are not read again for the estimate).
 */
export function runCost(
  ledger: Ledger,
  runModel: string | null,
  settings: CostSettings,
  unfinished?: number,
): RunCost {
  const lenient = { ...settings, allowUnpriced: true };
  const spent = spentSoFar(ledger, runModel, lenient);
  const unpriced = new Set(spent.unpriced);
  const remaining: RemainingEstimate = {
    batchMicroUsd: 0,
    syncMicroUsd: 0,
    requests: 0,
    approximate: false,
    outputUnknown: 0,
    unplaced: 0,
  };
  const files = new Map(ledger.files().map((f) => [f.id, f]));
  for (const { fileId, requests } of unfinished === 0 ? [] : unfinishedByFile(ledger)) {
    const file = fileId === null ? undefined : files.get(fileId);
    if (!file || file.lines === 0) {
      remaining.unplaced += requests;
      continue;
    }
    remaining.requests += requests;
    const counted = file.token_count === null ? undefined : (JSON.parse(file.token_count) as FileTokens);
    if (!counted) remaining.approximate = true;
    const tokens: FileTokens = counted ?? {
      ...noTokens(),
      requests: file.lines,
      inputTokens: file.tokens,
      unbounded: file.lines,
    };
    const estimate = tokenEstimate(
      file.model ?? runModel ?? '',
      scaleTokens(tokens, requests),
      settings.expectOutputTokens,
    );
    if (estimate.outputTokens === undefined) remaining.outputUnknown += requests;
    const costs = priceEstimate(estimate, lenient);
    if (!costs) unpriced.add(estimate.model);
    else {
      remaining.batchMicroUsd += costs.batchMicroUsd;
      remaining.syncMicroUsd += costs.syncMicroUsd;
    }
  }
  return {
    spent,
    remaining,
    projected: {
      batchMicroUsd: spent.batchMicroUsd + remaining.batchMicroUsd,
      syncMicroUsd: spent.syncMicroUsd + remaining.syncMicroUsd,
    },
    unpriced: [...unpriced].sort(),
  };
}

/** A file's count scaled to `requests` of its requests (rounded; all of them: unchanged). */
function scaleTokens(tokens: FileTokens, requests: number): FileTokens {
  if (requests >= tokens.requests || tokens.requests === 0) return tokens;
  const share = requests / tokens.requests;
  return {
    ...tokens,
    requests,
    inputTokens: Math.round(tokens.inputTokens * share),
    outputBoundTokens: Math.round(tokens.outputBoundTokens * share),
    unbounded: Math.round(tokens.unbounded * share),
  };
}
