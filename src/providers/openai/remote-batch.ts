/**
 * OpenAI's `Batch` object in the ledger's provider-neutral terms. OpenAI's statuses are the ledger's
 * vocabulary, so they map one to one.
 */
import type { Batch } from 'openai/resources/batches';
import type { RemoteBatch } from '../../types.js';

/** The name every OpenAI-compatible API goes by in the ledger. */
export const OPENAI_PROVIDER = 'openai';

export function remoteBatchOf(batch: Batch): RemoteBatch {
  const errors = (batch.errors?.data ?? []).map((e) => ({
    code: e.code ?? null,
    message: e.message ?? null,
    line: e.line ?? null,
  }));
  const c = batch.request_counts;
  return {
    id: batch.id,
    provider: OPENAI_PROVIDER,
    status: batch.status,
    rawStatus: batch.status,
    counts: c ? { total: c.total, completed: c.completed, failed: c.failed } : null,
    // A null, missing or empty file id means no file.
    outputFile: batch.output_file_id || null,
    errorFile: batch.error_file_id || null,
    errors,
    refusedForTokenLimit: batch.status === 'failed' && errors.some((e) => e.code === 'token_limit_exceeded'),
    usage: batch.usage ?? null,
    createdAt: batch.created_at ?? null,
    endedAt: batch.completed_at ?? batch.failed_at ?? batch.expired_at ?? batch.cancelled_at ?? null,
    raw: batch,
  };
}
