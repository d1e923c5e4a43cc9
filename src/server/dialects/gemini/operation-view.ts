/**
 * How an engine batch looks through Gemini's Batch API: a long-running `Operation` whose `metadata` is
 * the `GenerateContentBatch` (or `EmbedContentBatch`): state, times, stats and, once it has ended, its
 * output (`responsesFile`, or `inlinedResponses` for inline requests). The SDK reads `metadata` and maps
 * `BATCH_STATE_*` to its `JOB_STATE_*`. Pure but for reading an inline batch's results file.
 */
import { readFile } from 'node:fs/promises';
import type { Tally } from '../../engine/result-journal.js';
import { rpcCode } from '../../http/dialect-errors.js';
import type { DataDir } from '../../store/data-dir.js';
import type { StoredBatch } from '../../store/server-store.js';
import { type BatchStatus, type GeminiBatchInternals, TERMINAL_STATUSES } from '../../types.js';
import { rfc3339 } from '../../util/clock.js';
import { geminiBatchName, geminiFileName } from '../../util/ids.js';

const TYPE_PREFIX = 'type.googleapis.com/google.ai.generativelanguage.v1main.';

/** Gemini's state of each engine status (it has no cancelling state: a cancel runs until it ends). */
const STATES: Record<BatchStatus, string> = {
  validating: 'BATCH_STATE_PENDING',
  in_progress: 'BATCH_STATE_RUNNING',
  finalizing: 'BATCH_STATE_RUNNING',
  cancelling: 'BATCH_STATE_RUNNING',
  completed: 'BATCH_STATE_SUCCEEDED',
  failed: 'BATCH_STATE_FAILED',
  cancelled: 'BATCH_STATE_CANCELLED',
  expired: 'BATCH_STATE_EXPIRED',
};

export interface OperationViewOptions {
  dataDir: DataDir;
  /** Live counts while the engine runs the batch. */
  tally: Tally | undefined;
  /** Read an inline batch's responses into the view (`false` for lists, which stay small). */
  withInlinedResponses: boolean;
}

/** The batch as an `Operation`. */
export async function operationView(stored: StoredBatch, options: OperationViewOptions) {
  const { batch, internals } = stored;
  const gemini = internals.gemini as GeminiBatchInternals;
  const name = geminiBatchName(batch.id);
  const ended = TERMINAL_STATUSES.has(batch.status);
  const batchType = gemini.kind === 'embed' ? 'EmbedContentBatch' : 'GenerateContentBatch';
  const output = ended && batch.status !== 'failed' ? await outputOf(stored, options) : undefined;
  const endTime = batch.completed_at ?? batch.failed_at ?? batch.cancelled_at ?? batch.expired_at;
  const updated = Math.max(
    batch.created_at,
    batch.in_progress_at ?? 0,
    batch.cancelling_at ?? 0,
    endTime ?? 0,
  );
  const metadata = {
    '@type': `${TYPE_PREFIX}${batchType}`,
    model: gemini.model,
    name,
    ...(gemini.displayName === null ? {} : { displayName: gemini.displayName }),
    ...(gemini.sourceFileId === null
      ? {}
      : { inputConfig: { fileName: geminiFileName(gemini.sourceFileId) } }),
    createTime: rfc3339(batch.created_at),
    updateTime: rfc3339(updated),
    ...(ended && endTime !== null ? { endTime: rfc3339(endTime) } : {}),
    ...batchStats(stored, options.tally),
    state: STATES[batch.status],
    priority: '0',
    ...(output ? { output } : {}),
  };
  const error = operationError(stored);
  return {
    name,
    metadata,
    ...(ended ? { done: true } : {}),
    ...(error ? { error } : {}),
    ...(batch.status === 'completed' && output
      ? {
          response: {
            '@type': `${TYPE_PREFIX}${gemini.kind === 'embed' ? 'AsyncBatchEmbedContentResponse' : 'BatchGenerateContentResponse'}`,
            output,
          },
        }
      : {}),
  };
}

/**
 * `batchStats` (int64 counts as strings), once the number of requests is known: requests that failed
 * are counted as failed, those a stop left unrun as pending.
 */
function batchStats(stored: StoredBatch, tally: Tally | undefined) {
  const { batch, internals } = stored;
  const total = internals.requestCount ?? batch.request_counts.total;
  if (total === 0 && batch.status === 'validating') return {};
  const succeeded = tally?.completed ?? batch.request_counts.completed;
  const unrun = tally?.unrun ?? internals.unrun ?? { expired: 0, cancelled: 0 };
  const failed = (tally?.failed ?? batch.request_counts.failed) - unrun.expired - unrun.cancelled;
  return {
    batchStats: {
      requestCount: String(total),
      successfulRequestCount: String(succeeded),
      failedRequestCount: String(failed),
      pendingRequestCount: String(Math.max(0, total - succeeded - failed)),
    },
  };
}

/** The output of an ended batch: its results file, or for inline requests the responses themselves. */
async function outputOf(stored: StoredBatch, options: OperationViewOptions) {
  const gemini = stored.internals.gemini as GeminiBatchInternals;
  if (gemini.sourceFileId !== null) return { responsesFile: geminiFileName(gemini.resultsFileId) };
  if (!options.withInlinedResponses) return undefined;
  const text = await readFile(options.dataDir.filePath(gemini.resultsFileId), 'utf8');
  const inlinedResponses = text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as unknown);
  return { inlinedResponses: { inlinedResponses } };
}

/** The `error` of an operation that did not succeed (google.rpc.Status). */
function operationError(stored: StoredBatch): { code: number; message: string } | undefined {
  const { batch } = stored;
  switch (batch.status) {
    case 'failed': {
      const errors = batch.errors?.data ?? [];
      return {
        code: rpcCode(FAILURE_STATUS[errors[0]?.code ?? ''] ?? 'INVALID_ARGUMENT'),
        message: errors.map(describeError).join('; ') || 'The batch failed.',
      };
    }
    case 'cancelled':
      return { code: 1, message: 'The batch was cancelled.' };
    case 'expired':
      return { code: 4, message: 'The batch expired before all its requests ran.' };
    default:
      return undefined;
  }
}

/** The status of a batch that failed, by the engine's error code (the rest: the input was invalid). */
const FAILURE_STATUS: Record<string, string> = {
  token_limit_exceeded: 'RESOURCE_EXHAUSTED',
  file_not_found: 'NOT_FOUND',
  server_error: 'INTERNAL',
};

function describeError(error: { code: string; message: string; line: number | null }): string {
  return `${error.line === null ? '' : `line ${error.line}: `}${error.message} (${error.code})`;
}
