/**
 * How an engine batch looks through Anthropic's Message Batches API: the `message_batch` object, and
 * each line of its output and error files as a result line. Typed with the Anthropic SDK's own types,
 * so a shape the SDK does not expect fails to compile. Pure: reads nothing but its arguments.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { StoredBatch } from '../../store/server-store.js';
import { CANCELLED_CODE, EXPIRED_CODE, type OutputLine, TERMINAL_STATUSES } from '../../types.js';
import { rfc3339 } from '../../util/clock.js';
import { anthropicBatchId } from '../../util/ids.js';

export type MessageBatch = Anthropic.Messages.MessageBatch;
export type ResultLine = Anthropic.Messages.MessageBatchIndividualResponse;

/**
 * The `message_batch` object. `request_counts` moves only at the end, as Anthropic's does: every request
 * counts as `processing` until the batch has ended. `results_url` is absolute, on `origin`.
 */
export function messageBatchView(stored: StoredBatch, origin: string): MessageBatch {
  const { batch, internals } = stored;
  const id = anthropicBatchId(batch.id);
  const total = internals.requestCount ?? batch.request_counts.total;
  const ended = TERMINAL_STATUSES.has(batch.status);
  const endedAt = batch.completed_at ?? batch.expired_at ?? batch.cancelled_at ?? batch.failed_at;
  const expired = internals.unrun?.expired ?? 0;
  const canceled = internals.unrun?.cancelled ?? 0;
  // A batch the engine failed ran nothing: each request ends errored.
  const failed = batch.status === 'failed';
  return {
    id,
    type: 'message_batch',
    processing_status: ended ? 'ended' : batch.status === 'cancelling' ? 'canceling' : 'in_progress',
    request_counts: ended
      ? {
          processing: 0,
          succeeded: failed ? 0 : batch.request_counts.completed,
          errored: failed ? total : batch.request_counts.failed - expired - canceled,
          canceled,
          expired,
        }
      : { processing: total, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
    created_at: rfc3339(batch.created_at),
    expires_at: rfc3339(batch.expires_at),
    ended_at: ended && endedAt !== null ? rfc3339(endedAt) : null,
    cancel_initiated_at: batch.cancelling_at === null ? null : rfc3339(batch.cancelling_at),
    archived_at: null,
    results_url: ended ? `${origin}/v1/messages/batches/${id}/results` : null,
  };
}

/**
 * A line of the output or error file as a result line: a 2xx response `succeeded` with its message,
 * another response `errored` with its Anthropic error body, a request the window or a cancel left unrun
 * `expired` or `canceled`, any other failure `errored` as an `api_error`.
 */
export function resultLine(line: OutputLine): ResultLine {
  const customId = line.custom_id;
  const { response, error } = line;
  if (response && response.status_code >= 200 && response.status_code < 300) {
    return {
      custom_id: customId,
      result: { type: 'succeeded', message: response.body as Anthropic.Message },
    };
  }
  if (error?.code === EXPIRED_CODE) return { custom_id: customId, result: { type: 'expired' } };
  if (error?.code === CANCELLED_CODE) return { custom_id: customId, result: { type: 'canceled' } };
  const body = response?.body as { error?: { type?: unknown; message?: unknown } } | undefined;
  const type = typeof body?.error?.type === 'string' ? body.error.type : 'api_error';
  const message =
    typeof body?.error?.message === 'string'
      ? body.error.message
      : (error?.message ?? `The request failed with status ${response?.status_code ?? 'unknown'}.`);
  return erroredLine(customId, type, message, response?.request_id ?? null);
}

/** An `errored` result line. */
export function erroredLine(
  customId: string,
  type: string,
  message: string,
  requestId: string | null,
): ResultLine {
  return {
    custom_id: customId,
    result: {
      type: 'errored',
      error: {
        type: 'error',
        error: { type, message } as Anthropic.ErrorObject,
        request_id: requestId,
      },
    },
  };
}
