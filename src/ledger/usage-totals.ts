/**
 * The usage a run's requests were billed for, summed per model, price tier and the path that answered
 * them (a batch, or the direct path's synchronous or flex calls), for the whole run or one batch; and
 * how many requests of each file are not final yet. Reads `requests`, `files` and `batches`.
 */
import type { Usage, UsageSum } from '../types.js';
import { connectionOf, type Ledger } from './ledger.js';

/** The price path that answered a request: a batch, or the direct path's synchronous or flex calls. */
export type AnsweredBy = 'batch' | 'sync' | 'flex';

/** The summed usage of requests of one model, answered on one path, in one price tier. */
export interface UsageTotal {
  /** The model of the requests' file; null for requests in none (the run's model then). */
  model: string | null;
  path: AnsweredBy;
  /**
   * The input tokens that decide the tier: 0 for requests at or below `longContextAbove` (the base
   * tier of every model), else each request's own input (requests above it are summed per input count).
   */
  tierInputTokens: number;
  usage: UsageSum;
  requests: number;
}

/** Requests not final yet, per file (the file's estimate covers them); `fileId` null: staged in no file. */
export interface UnfinishedInFile {
  fileId: number | null;
  requests: number;
}

/** The batch row's provider says the path: `direct` and `flex` rows hold synchronous calls. */
const PATH = `CASE b.provider WHEN 'direct' THEN 'sync' WHEN 'flex' THEN 'flex' ELSE 'batch' END`;

/**
 * Requests are summed by their own columns first (file, batch, tier) and only each sum looks up its
 * file's model and batch's path: a lookup of both per request cost more than the summing.
 */
const BY_REQUEST = `SELECT file_id, batch_id, CASE WHEN input_tokens > :above THEN input_tokens ELSE 0 END AS tier,
  sum(input_tokens) AS input, sum(coalesce(cached_input_tokens, 0)) AS cached,
  sum(coalesce(cache_write_tokens, 0)) AS writes, sum(coalesce(output_tokens, 0)) AS output,
  sum(coalesce(reasoning_tokens, 0)) AS reasoning,
  sum(max(input_tokens - coalesce(cached_input_tokens, 0) - coalesce(cache_write_tokens, 0), 0)) AS uncached,
  count(*) AS n
  FROM requests WHERE input_tokens IS NOT NULL`;
const BY_REQUEST_GROUP = 'GROUP BY file_id, batch_id, tier';

const TOTAL_COLUMNS = `f.model AS model, ${PATH} AS path, g.tier AS tier, sum(g.input) AS input, sum(g.cached) AS cached,
  sum(g.writes) AS writes, sum(g.output) AS output, sum(g.reasoning) AS reasoning, sum(g.uncached) AS uncached,
  sum(g.n) AS requests`;
const JOINS = 'LEFT JOIN files f ON f.id = g.file_id LEFT JOIN batches b ON b.id = g.batch_id';
const GROUP_BY = 'GROUP BY f.model, path, tier';

interface TotalRow {
  model: string | null;
  path: AnsweredBy;
  tier: number;
  input: number;
  cached: number;
  writes: number;
  output: number;
  reasoning: number;
  uncached: number;
  requests: number;
}

/**
 * Every reported usage of the run (or of batch row `batchRowId`), summed. A request keeps the usage of
 * its latest attempt: an attempt retried since counts until the retry's outcome replaces it.
 * `longContextAbove`: the fewest input tokens above which any model is priced at another tier
 * (Infinity: no model is); only requests above it are told apart by their input.
 */
export function usageTotals(ledger: Ledger, longContextAbove: number, batchRowId?: number): UsageTotal[] {
  const where = batchRowId === undefined ? '' : 'AND batch_id = :batch';
  const rows = connectionOf(ledger)
    .prepare<[Record<string, number | null>], TotalRow>(
      `SELECT ${TOTAL_COLUMNS} FROM (${BY_REQUEST} ${where} ${BY_REQUEST_GROUP}) g ${JOINS} ${GROUP_BY}`,
    )
    .all({
      // SQLite integers stop at 2^63: a comparison with NULL puts every request in the base tier.
      above: Number.isFinite(longContextAbove) ? longContextAbove : null,
      ...(batchRowId === undefined ? {} : { batch: batchRowId }),
    });
  return rows.map((r) => ({
    model: r.model,
    path: r.path,
    tierInputTokens: r.tier,
    requests: r.requests,
    usage: {
      inputTokens: r.input,
      cachedInputTokens: r.cached,
      cacheWriteTokens: r.writes,
      outputTokens: r.output,
      reasoningTokens: r.reasoning,
      uncachedInputTokens: r.uncached,
    },
  }));
}

/** How many requests of each file are staged or submitted (not final). */
export function unfinishedByFile(ledger: Ledger): UnfinishedInFile[] {
  return connectionOf(ledger)
    .prepare<[], UnfinishedInFile>(
      `SELECT file_id AS fileId, count(*) AS requests FROM requests
       WHERE state IN ('staged', 'submitted') GROUP BY file_id`,
    )
    .all();
}

/** One request's reported usage and model (null usage: none reported yet). */
export interface RequestUsage {
  seq: number;
  model: string | null;
  path: AnsweredBy;
  usage: Usage | null;
}

interface RequestUsageRow {
  seq: number;
  model: string | null;
  path: AnsweredBy;
  input: number | null;
  cached: number;
  writes: number;
  output: number;
  reasoning: number;
}

/** The usage of the requests with these seqs (any order; those without a request are left out). */
export function usageOfRequests(ledger: Ledger, seqs: readonly number[]): RequestUsage[] {
  const rows = connectionOf(ledger)
    .prepare<[string], RequestUsageRow>(
      `SELECT r.seq AS seq, f.model AS model, ${PATH} AS path, r.input_tokens AS input, coalesce(r.cached_input_tokens, 0) AS cached,
         coalesce(r.cache_write_tokens, 0) AS writes, coalesce(r.output_tokens, 0) AS output,
         coalesce(r.reasoning_tokens, 0) AS reasoning
       FROM requests r LEFT JOIN files f ON f.id = r.file_id LEFT JOIN batches b ON b.id = r.batch_id
       WHERE r.seq IN (SELECT value FROM json_each(?))`,
    )
    .all(JSON.stringify(seqs));
  return rows.map((r) => ({
    seq: r.seq,
    model: r.model,
    path: r.path,
    usage:
      r.input === null
        ? null
        : {
            inputTokens: r.input,
            cachedInputTokens: r.cached,
            cacheWriteTokens: r.writes,
            outputTokens: r.output,
            reasoningTokens: r.reasoning,
          },
  }));
}
