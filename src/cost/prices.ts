/**
 * Prices and money: the dated price table (prices.json at the top of the repo, extended or overridden
 * by `--price-file`), its validation, the lookup of a model's prices, and the cost of tokens on the
 * synchronous, batch or flex path, estimated from counts or actual from a response's `usage`.
 *
 * Money is exact: a rate of r USD per 1M tokens is r micro-dollars a token, held as an integer number
 * of micro-dollars per 1M tokens (rates have at most 6 decimals); tokens × rate is then an exact
 * integer of pico-dollars (BigInt). Costs are added in pico-dollars and rounded to whole micro-dollars,
 * halves up, once: where a figure is shown. Reads files; writes nothing.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { Usage, UsageSum } from '../types.js';
import { openAiUsage } from './usage.js';

/** The paths a request can be billed on. */
export type PricePath = 'sync' | 'batch' | 'flex';

/** Rates of one path, in USD per 1M tokens. */
export interface Rates {
  input: number;
  /** Cached input (prompt-cache reads); without it, cached tokens bill as input. */
  cachedInput?: number | undefined;
  /** Prompt-cache writes, where the provider bills them apart; without it, they bill as input. */
  cacheWrite?: number | undefined;
  output: number;
}

/** One model's prices. */
export interface ModelPrice {
  /** The table's name for the model (aliases name the same entry). */
  model: string;
  provider?: string | undefined;
  aliases: string[];
  sync: Rates;
  batch?: Rates | undefined;
  flex?: Rates | undefined;
  /** Rates of a request whose input tokens are above `aboveInputTokens`. */
  longContext?:
    | { aboveInputTokens: number; sync: Rates; batch?: Rates | undefined; flex?: Rates | undefined }
    | undefined;
  /** When the prices were checked at their source. */
  pricesAsOf?: string | undefined;
  /** Where the prices come from: a key of the table's sources, or free text (a price file's entries name their file). */
  source: string;
  batchSource?: string | undefined;
  flexSource?: string | undefined;
  note?: string | undefined;
}

/** A source the table cites. */
export interface PriceSource {
  title: string;
  url: string;
  quotes?: string[] | undefined;
  read?: string | undefined;
}

/** The merged price table: built-in entries, then each price file's, later ones replacing earlier ones. */
export interface PriceTable {
  /** Every entry by its name and by each alias. */
  readonly byModel: ReadonlyMap<string, ModelPrice>;
  readonly sources: Readonly<Record<string, PriceSource>>;
  /** Where the entries came from, in order: `prices.json` (built in), then price files. */
  readonly origins: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------
// The file format

const MAX_RATE_DECIMALS = 6;

const rate = z
  .number()
  .nonnegative()
  .refine((r) => Number.isFinite(r) && isWholeAt(r * 10 ** MAX_RATE_DECIMALS), {
    message: `a rate has at most ${MAX_RATE_DECIMALS} decimals (USD per 1M tokens)`,
  });

const ratesSchema = z.object({
  input: rate,
  cachedInput: rate.optional(),
  cacheWrite: rate.optional(),
  output: rate,
});

const entrySchema = z.object({
  provider: z.string().optional(),
  aliases: z.array(z.string().min(1)).optional(),
  sync: ratesSchema,
  batch: ratesSchema.optional(),
  flex: ratesSchema.optional(),
  longContext: z
    .object({
      aboveInputTokens: z.int().positive(),
      sync: ratesSchema,
      batch: ratesSchema.optional(),
      flex: ratesSchema.optional(),
    })
    .optional(),
  pricesAsOf: z.iso.date().optional(),
  source: z.string().min(1).optional(),
  batchSource: z.string().optional(),
  flexSource: z.string().optional(),
  note: z.string().optional(),
});

const sourceSchema = z.object({
  title: z.string(),
  url: z.string(),
  quotes: z.array(z.string()).optional(),
  read: z.string().optional(),
});

const tableSchema = z.object({
  sources: z.record(z.string(), sourceSchema).optional(),
  models: z.record(z.string().min(1), entrySchema),
});

type TableFile = z.infer<typeof tableSchema>;

function isWholeAt(scaled: number): boolean {
  return Math.abs(scaled - Math.round(scaled)) < 1e-6;
}

// ---------------------------------------------------------------------------------------------------------
// Loading and merging

/** The built-in table's path: prices.json at the package root (this file is dist/src/cost/prices.js). */
export const BUILT_IN_PRICES = new URL('../../../prices.json', import.meta.url);

let builtIn: PriceTable | undefined;

/**
 * The built-in table, merged with `priceFiles` in order (each replaces or adds whole entries: a model
 * given in a file takes none of the built-in rates).
 *
 * @example
 * ```ts
 * const table = loadPriceTable(['my-prices.json']);
 * estimateCost({ model: 'gpt-4o-mini', inputTokens: 1_000, outputTokens: 100, path: 'batch' }, table);
 * ```
 */
export function loadPriceTable(priceFiles: readonly string[] = []): PriceTable {
  builtIn ??= parsePriceTable(readJson(BUILT_IN_PRICES, 'prices.json'), 'prices.json');
  let table = builtIn;
  for (const file of priceFiles) table = mergePriceTables(table, parsePriceTable(readJson(file, file), file));
  return table;
}

function readJson(file: string | URL, name: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BatchpipeError(ErrorCodes.IO, `cannot read the price file ${name}: ${(err as Error).message}`, {
      file: name,
      cause: err,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--price-file ${name} is not JSON: ${(err as Error).message}`,
      {
        file: name,
        cause: err,
      },
    );
  }
}

/** Validates a price table's JSON (`origin` names it in errors and is the default source of its entries). */
export function parsePriceTable(json: unknown, origin: string): PriceTable {
  const parsed = tableSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const path = first.path.map(String).join('.');
    throw new BatchpipeError(
      ErrorCodes.USAGE,
      `--price-file ${origin}: ${path ? `${path}: ` : ''}${first.message}` +
        (parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : ''),
      { file: origin, field: path || undefined },
    );
  }
  return buildTable(parsed.data, origin);
}

function buildTable(file: TableFile, origin: string): PriceTable {
  const byModel = new Map<string, ModelPrice>();
  for (const [model, entry] of Object.entries(file.models)) {
    const price: ModelPrice = {
      model,
      provider: entry.provider,
      aliases: entry.aliases ?? [],
      sync: entry.sync,
      batch: entry.batch,
      flex: entry.flex,
      longContext: entry.longContext,
      pricesAsOf: entry.pricesAsOf,
      source: entry.source ?? origin,
      batchSource: entry.batchSource,
      flexSource: entry.flexSource,
      note: entry.note,
    };
    for (const name of [model, ...price.aliases]) {
      const other = byModel.get(name);
      if (other) {
        throw new BatchpipeError(
          ErrorCodes.USAGE,
          `--price-file ${origin}: ${JSON.stringify(name)} names both ${other.model} and ${model}`,
          { file: origin, field: `models.${model}` },
        );
      }
      byModel.set(name, price);
    }
  }
  return { byModel, sources: file.sources ?? {}, origins: [origin] };
}

/** `base` with `override`'s entries replacing those of the same models (by name or alias), and added. */
export function mergePriceTables(base: PriceTable, override: PriceTable): PriceTable {
  const byModel = new Map(base.byModel);
  const replaced = new Set<ModelPrice>();
  for (const name of override.byModel.keys()) {
    const old = base.byModel.get(name);
    if (old) replaced.add(old);
  }
  // A replaced entry goes away under all its names, so no alias keeps pointing at old rates.
  for (const [name, price] of base.byModel) if (replaced.has(price)) byModel.delete(name);
  for (const [name, price] of override.byModel) byModel.set(name, price);
  return {
    byModel,
    sources: { ...base.sources, ...override.sources },
    origins: [...base.origins, ...override.origins],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Lookup

/** What a lookup found: the model's prices, or a warning when unpriced models are allowed. */
export type PriceLookup = { price: ModelPrice; warning?: undefined } | { price?: undefined; warning: string };

/**
 * The prices of `model` (by name or alias). An unknown model is a BP_UNPRICED error naming
 * `--price-file`, or, with `allowUnpriced`, a warning to print and no price.
 */
export function lookupPrice(
  table: PriceTable,
  model: string,
  options: { allowUnpriced?: boolean } = {},
): PriceLookup {
  const price = table.byModel.get(model);
  if (price) return { price };
  const message = unpricedMessage(table, model);
  if (options.allowUnpriced) return { warning: `${message}; going on without its cost (--allow-unpriced)` };
  throw new BatchpipeError(
    ErrorCodes.UNPRICED,
    `${message}: give its prices with --price-file FILE (see docs/cost.md), or --allow-unpriced to go on without its cost`,
  );
}

function unpricedMessage(table: PriceTable, model: string): string {
  return `no price for model ${JSON.stringify(model)} in ${table.origins.join(' + ')}`;
}

/** The rates of `price` on `path` for a request of `inputTokens`; BP_UNPRICED when the table has none. */
export function ratesFor(price: ModelPrice, path: PricePath, inputTokens = 0): Rates {
  const long = price.longContext;
  const tier = long && inputTokens > long.aboveInputTokens ? long : price;
  const rates = tier[path];
  if (!rates) {
    throw new BatchpipeError(
      ErrorCodes.UNPRICED,
      `no ${path} price for model ${JSON.stringify(price.model)}${tier === long ? ` above ${long?.aboveInputTokens} input tokens` : ''} ` +
        `(its prices come from ${price.source}): give them with --price-file FILE (see docs/cost.md)`,
    );
  }
  return rates;
}

// ---------------------------------------------------------------------------------------------------------
// Money

/** A cost in whole micro-dollars (µ$), each part rounded from its exact value, halves up. */
export interface Cost {
  inputMicroUsd: number;
  outputMicroUsd: number;
  /** Rounded from the exact sum, so it can differ from the sum of the parts by a micro-dollar. */
  totalMicroUsd: number;
  /** `totalMicroUsd` in dollars. */
  usd: number;
  /** The exact total in pico-dollars (10⁻¹² USD): what a sum of costs adds before it is rounded once. */
  picoUsd: bigint;
}

/** Tokens as billed (the provider-neutral {@link Usage}); its earlier name. */
export type BilledTokens = Usage;

/** An integer number of µ$ per 1M tokens: the rate in pico-dollars per token. */
function picoPerToken(usdPerMillion: number | undefined): bigint {
  return BigInt(Math.round((usdPerMillion ?? 0) * 10 ** MAX_RATE_DECIMALS));
}

/** Pico-dollars rounded to whole micro-dollars, halves up. */
export function microFromPico(pico: bigint): number {
  return Number((pico + 500_000n) / 1_000_000n);
}

function cost(rates: Rates, tokens: UsageSum): Cost {
  const input =
    BigInt(tokens.uncachedInputTokens) * picoPerToken(rates.input) +
    BigInt(tokens.cachedInputTokens) * picoPerToken(rates.cachedInput ?? rates.input) +
    BigInt(tokens.cacheWriteTokens) * picoPerToken(rates.cacheWrite ?? rates.input);
  const output = BigInt(tokens.outputTokens) * picoPerToken(rates.output);
  const totalMicroUsd = microFromPico(input + output);
  return {
    inputMicroUsd: microFromPico(input),
    outputMicroUsd: microFromPico(output),
    totalMicroUsd,
    usd: totalMicroUsd / 1e6,
    picoUsd: input + output,
  };
}

/** One request's usage with its uncached input (never below 0, whatever the counts say). */
function sumOfOne(tokens: Usage): UsageSum {
  return {
    ...tokens,
    uncachedInputTokens: Math.max(0, tokens.inputTokens - tokens.cachedInputTokens - tokens.cacheWriteTokens),
  };
}

/** What an estimate prices: one request, or requests that share a price tier. */
export interface EstimateInput {
  model: string;
  inputTokens: number;
  outputTokens: number;
  /** Input tokens expected from the prompt cache (default 0). */
  cachedInputTokens?: number;
  path: PricePath;
  /**
   * The input tokens that decide a long-context tier (default `inputTokens`): for requests priced
   * together, the largest one's, so that all are priced at the higher tier when one reaches it.
   */
  tierInputTokens?: number;
}

/**
 * The cost of `inputTokens` and `outputTokens` of `model` on `path`. A model with a long-context tier is
 * priced by the tier of `inputTokens`, so give one request's tokens for such a model, not a run's total.
 *
 * @example
 * ```ts
 * estimateCost({ model: 'gpt-4o-mini', inputTokens: 1_000_000, outputTokens: 0, path: 'batch' }).usd; // 0.075
 * ```
 */
export function estimateCost(input: EstimateInput, table: PriceTable = loadPriceTable()): Cost {
  const lookup = lookupPrice(table, input.model);
  const rates = ratesFor(lookup.price!, input.path, input.tierInputTokens ?? input.inputTokens);
  return cost(
    rates,
    sumOfOne({
      inputTokens: input.inputTokens,
      cachedInputTokens: input.cachedInputTokens ?? 0,
      cacheWriteTokens: 0,
      outputTokens: input.outputTokens,
      reasoningTokens: 0,
    }),
  );
}

/** OpenAI's `usage` as billed tokens (see openAiUsage in usage.ts); missing fields count 0. */
export const billedTokens = openAiUsage;

/**
 * What a response cost, from its `usage` (see billedTokens), for `model` on `path`.
 *
 * @example
 * ```ts
 * actualCost({ prompt_tokens: 1200, prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens: 80 },
 *   { model: 'gpt-4o-mini', path: 'batch' });
 * ```
 */
export function actualCost(
  usage: unknown,
  billing: { model: string; path: PricePath },
  table: PriceTable = loadPriceTable(),
): Cost & { tokens: BilledTokens } {
  const tokens = billedTokens(usage);
  return { ...usageCost(tokens, billing, table), tokens };
}

/** What `usage` (a provider's, mapped onto {@link Usage}) cost for `model` on `path`. */
export function usageCost(
  usage: Usage,
  billing: { model: string; path: PricePath },
  table: PriceTable = loadPriceTable(),
): Cost {
  return usageSumCost(sumOfOne(usage), { ...billing, tierInputTokens: usage.inputTokens }, table);
}

/**
 * What requests cost together, exactly: `sum` is their usage summed, all in the price tier that
 * `tierInputTokens` (one of them's input) decides.
 */
export function usageSumCost(
  sum: UsageSum,
  billing: { model: string; path: PricePath; tierInputTokens: number },
  table: PriceTable = loadPriceTable(),
): Cost {
  const lookup = lookupPrice(table, billing.model);
  return cost(ratesFor(lookup.price!, billing.path, billing.tierInputTokens), sum);
}

/**
 * The fewest input tokens above which some model of `table` has a long-context tier (Infinity if
 * none): requests at or below it are in every model's base tier.
 */
export function smallestLongContext(table: PriceTable): number {
  let smallest = Number.POSITIVE_INFINITY;
  for (const price of table.byModel.values()) {
    if (price.longContext) smallest = Math.min(smallest, price.longContext.aboveInputTokens);
  }
  return smallest;
}
