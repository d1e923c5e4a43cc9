/**
 * Anthropic's `message_batch` in the ledger's provider-neutral terms. Anthropic has three statuses
 * (`in_progress`, `canceling`, `ended`) and counts that move only at the end; an ended batch is
 * `cancelled` when a cancel was asked for, `expired` when requests ran out of time, else `completed`.
 * Its results are one stream, named by the batch id (`outputFile`).
 */
import type { MessageBatch } from '@anthropic-ai/sdk/resources/messages/batches';
import type { BatchStatus, RemoteBatch } from '../../types.js';

export const ANTHROPIC_PROVIDER = 'anthropic';

export function remoteBatchOfMessageBatch(batch: MessageBatch): RemoteBatch {
  const c = batch.request_counts;
  const total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
  const ended = batch.processing_status === 'ended';
  return {
    id: batch.id,
    provider: ANTHROPIC_PROVIDER,
    status: statusOf(batch),
    rawStatus: batch.processing_status,
    // Canceled and expired requests have a result line too: they count with the failures.
    counts: { total, completed: c.succeeded, failed: c.errored + c.canceled + c.expired },
    outputFile: ended ? batch.id : null,
    errorFile: null,
    errors: [],
    refusedForTokenLimit: false,
    usage: null,
    createdAt: unixSeconds(batch.created_at),
    endedAt: batch.ended_at === null ? null : unixSeconds(batch.ended_at),
    raw: batch,
  };
}

function statusOf(batch: MessageBatch): BatchStatus {
  if (batch.processing_status === 'in_progress') return 'in_progress';
  if (batch.processing_status === 'canceling') return 'cancelling';
  if (batch.cancel_initiated_at !== null) return 'cancelled';
  return batch.request_counts.expired > 0 ? 'expired' : 'completed';
}

/** An RFC 3339 time as unix seconds. */
export function unixSeconds(time: string): number {
  return Math.floor(Date.parse(time) / 1000);
}
