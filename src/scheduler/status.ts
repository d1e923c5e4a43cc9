import { estimateCost, loadPriceTable, type PricePath } from '../cost/prices.js';
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
  const totals = BatchTables.of(ledger).pathTotals();
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

/** Counts per request state, every batch with its progress, and tokens used so far. */
export function runStatus(ledger: Ledger): RunStatus {
  const tables = BatchTables.of(ledger);
  const files = new Map(ledger.files().map((f) => [f.id, f]));
  const tokens = RequestStates.of(ledger).tokenTotals();
  const prepare = prepareState(ledger);
  const identity = storedRunIdentity(ledger);
  const summary = runSummaryOf(ledger);
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
    requests: ledger.counts(),
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
    ...(prepare ? { prepare } : {}),
    ...pathsPart(ledger),
  };
}

function pathsPart(ledger: Ledger): Pick<RunStatus, 'paths' | 'direct_resent'> {
  const paths = pathCosts(ledger);
  return paths ? { paths, direct_resent: RequestStates.of(ledger).directResent() } : {};
}
