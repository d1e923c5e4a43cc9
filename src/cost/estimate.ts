/**
 * What `batchpipe estimate` computes: request files counted (or their kept counts read), grouped
 * by model, with each model's prices and costs on the batch and synchronous paths. Reads the files
 * it is given; writes nothing.
 */
import { addTokens, countRequestFile, type FileTokens, noTokens } from './file-tokens.js';
import { type Cost, estimateCost, lookupPrice, type ModelPrice, type Rates, ratesFor } from './prices.js';
import type { CostSettings, TokenEstimate } from './run-cost.js';
import { tokenEstimate } from './run-cost.js';
import { encodingForModel, type ModelEncoding } from './tokens.js';

/** A request file as the ledger lists it: where, of which model, and its kept count if any. */
export interface EstimatedFile {
  path: string;
  model: string | null;
  token_count: string | null;
}

/** One model's requests, tokens and costs. */
export interface ModelEstimate {
  tokens: TokenEstimate;
  files: number;
  encoding: ModelEncoding;
  /** Undefined when the model has no price (with allowUnpriced). */
  priced?: {
    price: ModelPrice;
    sync: { rates: Rates; cost: Cost };
    batch: { rates: Rates; cost: Cost };
  };
  /** The warning that replaced BP_UNPRICED. */
  warning?: string;
}

export interface RunEstimate {
  models: ModelEstimate[];
  requests: number;
  files: number;
  /** Totals over the priced models, in micro-dollars. */
  syncMicroUsd: number;
  batchMicroUsd: number;
}

/** Counts (or reads the kept counts of) `files` and prices them per model. */
export async function estimateFiles(
  files: readonly EstimatedFile[],
  settings: CostSettings,
): Promise<RunEstimate> {
  const byModel = new Map<string, { tokens: FileTokens; files: number }>();
  for (const file of files) {
    const tokens =
      file.token_count === null
        ? await countRequestFile(file.path)
        : (JSON.parse(file.token_count) as FileTokens);
    const model = file.model ?? '';
    const sum = byModel.get(model) ?? { tokens: noTokens(), files: 0 };
    byModel.set(model, { tokens: addTokens(sum.tokens, tokens), files: sum.files + 1 });
  }
  const estimate: RunEstimate = {
    models: [],
    requests: 0,
    files: files.length,
    syncMicroUsd: 0,
    batchMicroUsd: 0,
  };
  for (const [model, { tokens, files: count }] of byModel) {
    const one = modelEstimate(model, tokens, count, settings);
    estimate.models.push(one);
    estimate.requests += tokens.requests;
    if (one.priced) {
      estimate.syncMicroUsd += one.priced.sync.cost.totalMicroUsd;
      estimate.batchMicroUsd += one.priced.batch.cost.totalMicroUsd;
    }
  }
  return estimate;
}

function modelEstimate(
  model: string,
  counted: FileTokens,
  files: number,
  settings: CostSettings,
): ModelEstimate {
  const tokens = tokenEstimate(model, counted, settings.expectOutputTokens);
  const encoding = encodingForModel(model);
  const lookup = lookupPrice(settings.table, model, { allowUnpriced: settings.allowUnpriced ?? false });
  if (!lookup.price) return { tokens, files, encoding, warning: lookup.warning };
  const path = (p: 'sync' | 'batch') => ({
    rates: ratesFor(lookup.price!, p, tokens.maxInputTokens),
    cost: estimateCost(
      {
        model,
        inputTokens: tokens.inputTokens,
        outputTokens: tokens.outputTokens ?? 0,
        tierInputTokens: tokens.maxInputTokens,
        path: p,
      },
      settings.table,
    ),
  });
  return {
    tokens,
    files,
    encoding,
    priced: { price: lookup.price, sync: path('sync'), batch: path('batch') },
  };
}
