import { estimateCost, loadPriceTable, type PricePath } from '../cost/prices.js';
import { type CostSettings, runCost, type TwoWays, usdNumber } from '../cost/run-cost.js';
import { BatchTables } from '../ledger/batches.js';
import { runIdOf, runSummaryOf, storedRunIdentity } from '../ledger/identity.js';
import type { Ledger, RequestCounts } from '../ledger/ledger.js';
import { RequestStates } from '../ledger/request-states.js';
import { type PrepareState, prepareState } from '../prepare/run-identity.js';

/** The stable JSON shape of `batchpipe status --json` (fields are only ever added). */
export interface RunStatus {
  /** The run: its id, model, endpoint, input as named, and when it was made (ISO). */
  run?: {
    id: string;
    model: string | null;
    endpoint: string;
    input: string | null;
    created_at: string | null;
  };
  requests: RequestCounts;
  batches: {
    id: string | null;
    file: string;
    attempt: number;
    status: string | null;
    request_counts: unknown;
    /** When batchpipe asked for the batch (ISO, this machine's clock). */
    created_at: string;
    /** When the ledger first saw it in its current status, and when it last heard of it (ISO); null: not yet. */
    status_since: string | null;
    polled_at: string | null;
    /** Settled: ended, and its results are in the ledger. */
    settled: boolean;
  }[];
  tokens: { input: number; output: number; peak_queued: Record<string, number> };
  /** What the run cost so far and is projected to cost, when `status` was given prices. */
  cost?: CostStatus;
  /** Whether prepare read the whole input (absent for a ledger no prepare made, e.g. by `batchSink`). */
  prepare?: PrepareState;
  /**
   * Which path answered the succeeded requests (present once any went `direct` or `flex`: `--mode
   * direct`, or hedged): per path and model, requests, tokens and their price on that path (batch,
   * synchronous or flex rates; null when the model or path has no price).
   */
  paths?: PathCost[];
  /** Requests sent again on the direct path after a run died with them in flight (at-least-once). */
  direct_resent?: number;
}

export interface PathCost {
  path: string;
  model: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  usd: number | null;
}

const PRICE_PATH: Record<string, PricePath> = { batch: 'batch', direct: 'sync', flex: 'flex' };

/**
 * Succeeded requests per path with their cost at that path's rates (from the tokens the ledger keeps:
 * cached input is not told apart here), or undefined when every request went by batch.
 */
export function pathCosts(ledger: Ledger): PathCost[] | undefined {
  const tables = BatchTables.of(ledger);
  if (!tables.anyAnsweredOffBatch()) return undefined;
  const totals = tables.pathTotals();
  if (!totals.some((t) => t.path !== 'batch')) return undefined;
  let table: ReturnType<typeof loadPriceTable> | undefined;
  return totals.map((t) => {
    let usd: number | null = null;
    try {
      table ??= loadPriceTable();
      usd = estimateCost(
        {
          model: t.model ?? '',
          inputTokens: t.inputTokens,
          outputTokens: t.outputTokens,
          path: PRICE_PATH[t.path] ?? 'sync',
        },
        table,
      ).usd;
    } catch {
      usd = null; // unpriced model or path: shown as such
    }
    return {
      path: t.path,
      model: t.model,
      requests: t.requests,
      input_tokens: t.inputTokens,
      output_tokens: t.outputTokens,
      usd,
    };
  });
}

/** A sum both ways, in dollars (exact to the micro-dollar) and micro-dollars. */
export interface TwoWaysUsd {
  batch_usd: number;
  sync_usd: number;
  /** `sync_usd - batch_usd`: what batching saves. */
  saving_usd: number;
  batch_micro_usd: number;
  sync_micro_usd: number;
}

/** `status`'s cost: spent (from the responses' usage), the rest estimated, and the total projected. */
export interface CostStatus {
  currency: 'USD';
  spent: TwoWaysUsd & {
    requests: number;
    input_tokens: number;
    cached_input_tokens: number;
    cache_write_tokens: number;
    output_tokens: number;
    reasoning_tokens: number;
  };
  remaining: TwoWaysUsd & {
    requests: number;
    /** Some files are not counted yet: their input is prepare's characters/4 estimate. */
    approximate: boolean;
    /** Requests without an output estimate (no limit, no --expect-output-tokens): input only. */
    output_unknown: number;
    /** Requests waiting for a retry file: not in the figures. */
    unplaced: number;
  };
  projected: TwoWaysUsd;
  /** Models without a price: their requests are not in the dollar figures. */
  unpriced: string[];
}

function twoWays(costs: TwoWays): TwoWaysUsd {
  return {
    batch_usd: usdNumber(costs.batchMicroUsd),
    sync_usd: usdNumber(costs.syncMicroUsd),
    saving_usd: usdNumber(costs.syncMicroUsd - costs.batchMicroUsd),
    batch_micro_usd: costs.batchMicroUsd,
    sync_micro_usd: costs.syncMicroUsd,
  };
}

function costStatus(
  ledger: Ledger,
  model: string | null,
  prices: CostSettings,
  requests: RequestCounts,
): CostStatus {
  const unfinished = requests.staged + requests.submitted;
  const { spent, remaining, projected, unpriced } = runCost(ledger, model, prices, unfinished);
  return {
    currency: 'USD',
    spent: {
      ...twoWays(spent),
      requests: spent.requests,
      input_tokens: spent.inputTokens,
      cached_input_tokens: spent.cachedInputTokens,
      cache_write_tokens: spent.cacheWriteTokens,
      output_tokens: spent.outputTokens,
      reasoning_tokens: spent.reasoningTokens,
    },
    remaining: {
      ...twoWays(remaining),
      requests: remaining.requests,
      approximate: remaining.approximate,
      output_unknown: remaining.outputUnknown,
      unplaced: remaining.unplaced,
    },
    projected: twoWays(projected),
    unpriced,
  };
}

/**
 * Counts per request state, every batch with its progress, and tokens used so far; with `prices`,
 * the cost so far and projected.
 */
export function runStatus(ledger: Ledger, prices?: CostSettings): RunStatus {
  const tables = BatchTables.of(ledger);
  const files = new Map(ledger.files().map((f) => [f.id, f]));
  const prepare = prepareState(ledger);
  const identity = storedRunIdentity(ledger);
  const summary = runSummaryOf(ledger);
  const requests = ledger.counts();
  // Each of these reads every request: the cost's read already sums the tokens.
  const cost = prices ? costStatus(ledger, identity?.model ?? null, prices, requests) : undefined;
  const tokens = cost
    ? { input: cost.spent.input_tokens, output: cost.spent.output_tokens }
    : RequestStates.of(ledger).tokenTotals();
  const iso = (seconds: number | null) => (seconds === null ? null : new Date(seconds * 1000).toISOString());
  return {
    ...(identity
      ? {
          run: {
            id: runIdOf(ledger),
            model: identity.model,
            endpoint: identity.endpoint,
            input: summary.input,
            created_at: summary.createdAt,
          },
        }
      : {}),
    requests,
    batches: tables.batches().map((b) => ({
      id: b.remote_id,
      file: files.get(b.file_id)?.name ?? String(b.file_id),
      attempt: files.get(b.file_id)?.attempt ?? 1,
      status: b.status,
      request_counts: b.request_counts ? JSON.parse(b.request_counts) : null,
      created_at: iso(b.create_started_at)!,
      status_since: iso(b.status_since),
      polled_at: iso(b.updated_at),
      settled: b.settled === 1,
    })),
    tokens: { ...tokens, peak_queued: tables.peakQueued() },
    ...(cost ? { cost } : {}),
    ...(prepare ? { prepare } : {}),
    ...pathsPart(ledger),
  };
}

function pathsPart(ledger: Ledger): Pick<RunStatus, 'paths' | 'direct_resent'> {
  const paths = pathCosts(ledger);
  return paths ? { paths, direct_resent: RequestStates.of(ledger).directResent() } : {};
}
