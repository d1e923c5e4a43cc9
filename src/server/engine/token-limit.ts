import type { BatchError } from '../types.js';

/**
 * `--enqueued-token-limit N`: a batch whose input tokens (as billed, src/cost/tokens.ts), added to those of the model's other
 * unfinished batches, would exceed N fails validation with `token_limit_exceeded`, as OpenAI's
 * per-model enqueued-token limit does. Returns the error, or undefined when the batch fits.
 */
export function checkEnqueuedTokens(
  model: string,
  batchTokens: number,
  queuedTokens: number,
  limit: number | undefined,
): BatchError | undefined {
  if (limit === undefined || queuedTokens + batchTokens <= limit) return undefined;
  return {
    code: 'token_limit_exceeded',
    message:
      `Enqueued token limit reached for ${model} in organization org-local. Limit: ${limit.toLocaleString('en-US')} ` +
      `enqueued tokens (this batch: about ${batchTokens.toLocaleString('en-US')}, already queued: ` +
      `${queuedTokens.toLocaleString('en-US')}). Please try again once some in_progress batches have been completed.`,
    param: null,
    line: null,
  };
}
