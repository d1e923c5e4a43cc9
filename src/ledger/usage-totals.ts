/**
 * The usage a run's requests were billed for, summed per model and per distinct usage (so a caller
 * pricing each group prices every request exactly as it would one by one), for the whole run or one
 * batch, with the path that answered them (a batch, or the direct path's synchronous or flex calls);
 * and how many requests of each file are not final yet. Reads `requests`, `files` and `batches`.
 */
import type { Usage } from '../types.js';
import { connectionOf, type Ledger } from './ledger.js';

/** The price path that answered a request: a batch, or the direct path's synchronous or flex calls. */
export type AnsweredBy = 'batch' | 'sync' | 'flex';

/** Requests of one model, answered on one path, that reported the same usage. */
export interface UsageGroup {
  /** The model of the request's file; null for a request that has none (the run's model then). */
  model: string | null;
  path: AnsweredBy;
  usage: Usage;
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
 * Requests are grouped by their own columns first (file, batch, usage) and only each group looks up
 * its file's model and batch's path: a lookup of both per request cost more than the grouping.
 */
const BY_REQUEST = `SELECT file_id, batch_id, input_tokens AS input, coalesce(cached_input_tokens, 0) AS cached,
  coalesce(cache_write_tokens, 0) AS writes, coalesce(output_tokens, 0) AS output,
  coalesce(reasoning_tokens, 0) AS reasoning, count(*) AS n
  FROM requests WHERE input_tokens IS NOT NULL`;
const BY_REQUEST_GROUP = 'GROUP BY file_id, batch_id, input, cached, writes, output, reasoning';

const GROUP_COLUMNS = `f.model AS model, ${PATH} AS path, g.input AS input, g.cached AS cached, g.writes AS writes,
  g.output AS output, g.reasoning AS reasoning, sum(g.n) AS requests`;
const JOINS = 'LEFT JOIN files f ON f.id = g.file_id LEFT JOIN batches b ON b.id = g.batch_id';
const GROUP_BY = 'GROUP BY f.model, path, input, cached, writes, output, reasoning';

interface GroupRow {
  model: string | null;
  path: AnsweredBy;
  input: number;
  cached: number;
  writes: number;
  output: number;
  reasoning: number;
  requests: number;
}

/**
 * Every reported usage of the run (or of batch row `batchRowId`), grouped. A request keeps the usage
 * of its latest attempt: an attempt retried since counts until the retry's outcome replaces it.
 * Read one group at a time (the connection is busy until the iteration ends): a run's usages take
 * as many groups as they have distinct counts, which grows with the run (80,000 for 2,400,000 rows).
 */
export function* usageGroups(ledger: Ledger, batchRowId?: number): Generator<UsageGroup> {
  const where = batchRowId === undefined ? '' : 'AND batch_id = ?';
  const rows = connectionOf(ledger)
    .prepare<unknown[], GroupRow>(
      `SELECT ${GROUP_COLUMNS} FROM (${BY_REQUEST} ${where} ${BY_REQUEST_GROUP}) g ${JOINS} ${GROUP_BY}`,
    )
    .iterate(...(batchRowId === undefined ? [] : [batchRowId]));
  for (const r of rows) {
    yield {
      model: r.model,
      path: r.path,
      requests: r.requests,
      usage: {
        inputTokens: r.input,
        cachedInputTokens: r.cached,
        cacheWriteTokens: r.writes,
        outputTokens: r.output,
        reasoningTokens: r.reasoning,
      },
    };
  }
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

/** The usage of the requests with these seqs (any order; those without a request are left out). */
export function usageOfRequests(ledger: Ledger, seqs: readonly number[]): RequestUsage[] {
  const rows = connectionOf(ledger)
    .prepare<[string], GroupRow & { seq: number; input: number | null }>(
      `SELECT r.seq AS seq, f.model AS model, ${PATH} AS path, r.input_tokens AS input, coalesce(r.cached_input_tokens, 0) AS cached,
         coalesce(r.cache_write_tokens, 0) AS writes, coalesce(r.output_tokens, 0) AS output,
         coalesce(r.reasoning_tokens, 0) AS reasoning, 1 AS requests
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
