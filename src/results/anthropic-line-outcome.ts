/**
 * The outcome of one line of an Anthropic Message Batch's results (`{ custom_id, result: { type,
 * message | error } }`), in the ledger's terms, under the user's id: the Anthropic dialect's result
 * reader. Pure.
 */
import { anthropicMessageUsage } from '../cost/usage.js';
import { anthropicUserId } from '../dialects/anthropic.js';
import { type ResultContext, ResultLineProblem } from '../dialects/dialect.js';
import type { LineOutcome } from '../types.js';
import { clip, responseOutcome } from './line-outcome.js';

/**
 * Anthropic's error types that are worth another attempt: its own trouble (`api_error`, `overloaded_error`)
 * and rate limits. Anything else (`invalid_request_error`, `request_too_large`, …) fails for good.
 */
const RETRYABLE_TYPES = new Set(['api_error', 'overloaded_error', 'rate_limit_error', 'timeout_error']);

/**
 * - `succeeded` → the message's extracted result (its text, parsed JSON or the forced tool's input),
 *   or the extraction's failure, with usage;
 * - `errored` → `failed` with the error's type as the code (retryable for api, overload and rate errors);
 * - `canceled` → `cancelled` (`batch_cancelled`); `expired` → `expired` (`batch_expired`, retryable).
 */
export function anthropicLineOutcome(line: unknown, ctx: ResultContext): LineOutcome | ResultLineProblem {
  if (!isObject(line)) return new ResultLineProblem('a result line must be a JSON object');
  if (typeof line.custom_id !== 'string') return new ResultLineProblem('the line has no custom_id string');
  // A wire id not found among the ledger's ids stays as it came: the line counts as unknown.
  const customId = anthropicUserId(line.custom_id, ctx.hashedIds) ?? line.custom_id;
  const result = line.result;
  if (!isObject(result)) return new ResultLineProblem('the line has no result object');
  switch (result.type) {
    case 'succeeded':
      if (!isObject(result.message)) return new ResultLineProblem('a succeeded result has no message');
      return responseOutcome(customId, 200, result.message, ctx, anthropicMessageUsage);
    case 'errored': {
      const body = isObject(result.error) ? result.error : {};
      const error = isObject(body.error) ? body.error : body;
      const type = typeof error.type === 'string' ? error.type : 'api_error';
      const message = typeof error.message === 'string' && error.message !== '' ? error.message : type;
      return unrun(customId, 'failed', type, message, RETRYABLE_TYPES.has(type));
    }
    case 'canceled':
      return unrun(
        customId,
        'cancelled',
        'batch_cancelled',
        'the batch was canceled before this request ran',
        false,
      );
    case 'expired':
      return unrun(customId, 'expired', 'batch_expired', 'the batch expired before this request ran', true);
    default:
      return new ResultLineProblem(`unknown result type ${JSON.stringify(result.type)}`);
  }
}

function unrun(
  customId: string,
  state: LineOutcome['state'],
  code: string,
  message: string,
  retryable: boolean,
): LineOutcome {
  return {
    customId,
    state,
    retryable,
    statusCode: null,
    result: null,
    errorCode: code,
    errorMessage: clip(message),
    usage: null,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
