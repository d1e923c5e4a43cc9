/**
 * A Gemini batch (the long-running `Operation` the Batch API returns, as the SDK's generic
 * `operations.get` hands it over, or the SDK's reshaped `BatchJob`) in the ledger's provider-neutral
 * terms. Pure: no SDK calls. Gemini's states map onto the ledger's statuses; its `batchStats` onto the
 * request counts; its one results file (`responsesFile`) is the output file, and there is no separate
 * error file (failed requests are `{ key, error }` lines of the same file).
 */
import type { BatchJob } from '@google/genai';
import { rpcCodeName } from '../../dialects/gemini.js';
import type { BatchStatus, RemoteBatch, RemoteBatchError } from '../../types.js';

/** The name Gemini batches go by in the ledger. */
export const GEMINI_PROVIDER = 'gemini';

/**
 * The ledger's status of each Gemini state, by its tail: the wire says `BATCH_STATE_*`, the SDK's
 * `BatchJob` `JOB_STATE_*`. A partial success has ended with results to read, like a completed batch.
 */
const STATUS_OF_STATE: Record<string, BatchStatus> = {
  UNSPECIFIED: 'validating',
  QUEUED: 'validating',
  PENDING: 'validating',
  RUNNING: 'in_progress',
  UPDATING: 'in_progress',
  PAUSED: 'in_progress',
  CANCELLING: 'cancelling',
  SUCCEEDED: 'completed',
  PARTIALLY_SUCCEEDED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
};

/** google.rpc.Code of a refusal for the enqueued-token quota. */
const RESOURCE_EXHAUSTED = 8;

/** The ledger's status of a Gemini state word (`BATCH_STATE_RUNNING`, `JOB_STATE_RUNNING`). */
export function statusOfState(state: string | undefined): BatchStatus {
  const tail = (state ?? '').replace(/^(BATCH|JOB)_STATE_/, '');
  return STATUS_OF_STATE[tail] ?? 'in_progress';
}

/** The batch as the wire shows it: `{ name, metadata: GenerateContentBatch, done, error }`. */
export function remoteBatchOfOperation(operation: Record<string, unknown>): RemoteBatch {
  const metadata = asObject(operation.metadata) ?? {};
  const name = typeof operation.name === 'string' ? operation.name : String(metadata.name ?? '');
  const rawStatus = typeof metadata.state === 'string' ? metadata.state : 'BATCH_STATE_UNSPECIFIED';
  const status = statusOfState(rawStatus);
  const output = asObject(metadata.output) ?? asObject(asObject(operation.response)?.output);
  const error = asObject(operation.error);
  const errors: RemoteBatchError[] =
    status === 'failed' && error
      ? [
          {
            code: typeof error.code === 'number' ? rpcCodeName(error.code) : 'batch_failed',
            message: typeof error.message === 'string' ? error.message : null,
            line: null,
          },
        ]
      : [];
  const resultsFile = typeof output?.responsesFile === 'string' ? output.responsesFile : '';
  return {
    id: name,
    provider: GEMINI_PROVIDER,
    status,
    rawStatus,
    counts: countsOf(asObject(metadata.batchStats)),
    outputFile: resultsFile || null,
    errorFile: null,
    errors,
    refusedForTokenLimit: status === 'failed' && error?.code === RESOURCE_EXHAUSTED,
    usage: null,
    createdAt: unixSeconds(metadata.createTime),
    endedAt: unixSeconds(metadata.endTime),
    raw: operation,
  };
}

/**
 * The batch as the SDK's `BatchJob` shows it (what `batches.create` and `batches.list` return): the
 * SDK drops `batchStats` and the operation's `error`, so counts are unknown until the batch is
 * retrieved as an operation.
 */
export function remoteBatchOfJob(job: BatchJob): RemoteBatch {
  const rawStatus = job.state ?? 'JOB_STATE_UNSPECIFIED';
  return {
    id: job.name ?? '',
    provider: GEMINI_PROVIDER,
    status: statusOfState(rawStatus),
    rawStatus,
    counts: null,
    outputFile: job.dest?.fileName || null,
    errorFile: null,
    errors: [],
    refusedForTokenLimit: false,
    usage: null,
    createdAt: unixSeconds(job.createTime),
    endedAt: unixSeconds(job.endTime),
    raw: job,
  };
}

/**
 * `batchStats` (int64 counts as strings) as the ledger's counts: every request that has a results
 * line is either successful or failed; requests a stop left unrun are pending and have none.
 */
function countsOf(stats: Record<string, unknown> | undefined): RemoteBatch['counts'] {
  if (!stats) return null;
  const count = (value: unknown) => {
    const n = Number(value ?? 0);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  };
  return {
    total: count(stats.requestCount),
    completed: count(stats.successfulRequestCount),
    failed: count(stats.failedRequestCount),
  };
}

/** RFC 3339 → unix seconds (floored), or null. */
export function unixSeconds(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
