import type { Outcome } from '../execution.js';
import { type BatchUsage, CANCELLED_CODE, EXPIRED_CODE, type OutputLine } from '../types.js';
import { batchRequestId, lineRequestId } from '../util/ids.js';

/** An output line and which file it belongs to. */
export interface PlacedLine {
  line: OutputLine;
  /** True for the output file (a 2xx response), false for the error file. */
  ok: boolean;
}

/** Builds the output- or error-file line for a request's outcome. */
export function placeOutcome(batchId: string, customId: string, outcome: Outcome): PlacedLine {
  const id = batchRequestId(batchId, customId);
  if (outcome.kind === 'error') {
    return {
      line: {
        id,
        custom_id: customId,
        response: null,
        error: { code: outcome.code, message: outcome.message },
      },
      ok: false,
    };
  }
  const response = {
    status_code: outcome.statusCode,
    request_id: outcome.requestId ?? lineRequestId(batchId, customId),
    body: outcome.body,
  };
  return {
    line: { id, custom_id: customId, response, error: null },
    ok: outcome.statusCode >= 200 && outcome.statusCode < 300,
  };
}

/** The line written for a request the completion window closed on before it ran. */
export function expiredLine(batchId: string, customId: string): OutputLine {
  return {
    id: batchRequestId(batchId, customId),
    custom_id: customId,
    response: null,
    error: {
      code: EXPIRED_CODE,
      message: 'This request could not be executed before the completion window expired.',
    },
  };
}

/** The line written, where the API reports them (Anthropic), for a request a cancel stopped before it ran. */
export function cancelledLine(batchId: string, customId: string): OutputLine {
  return {
    id: batchRequestId(batchId, customId),
    custom_id: customId,
    response: null,
    error: { code: CANCELLED_CODE, message: 'The batch was cancelled before this request ran.' },
  };
}

/**
 * Adds the token usage of a response body to a batch's totals. Reads both usage shapes:
 * `prompt_tokens`/`completion_tokens` (chat, completions, embeddings) and `input_tokens`/`output_tokens`
 * (responses).
 */
export function addUsage(total: BatchUsage, body: unknown): void {
  const usage = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (typeof usage !== 'object' || usage === null) return;
  const input = num(usage.input_tokens) ?? num(usage.prompt_tokens) ?? 0;
  const output = num(usage.output_tokens) ?? num(usage.completion_tokens) ?? 0;
  const inputDetails = (usage.input_tokens_details ?? usage.prompt_tokens_details) as
    | Record<string, unknown>
    | undefined;
  const outputDetails = (usage.output_tokens_details ?? usage.completion_tokens_details) as
    | Record<string, unknown>
    | undefined;
  total.input_tokens += input;
  total.output_tokens += output;
  total.total_tokens += input + output;
  total.input_tokens_details.cached_tokens += num(inputDetails?.cached_tokens) ?? 0;
  total.output_tokens_details.reasoning_tokens += num(outputDetails?.reasoning_tokens) ?? 0;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
