/**
 * The outcome of one line of an OpenAI Batch API output or error file (the OpenAI dialect's result
 * reader), and whether it may change a request: pure functions, no ledger and no streams
 * (`applyResultLines` is the adapter; other providers' lines are read by their dialects).
 */
import { openAiResponseUsage } from '../cost/usage.js';
import { type ProviderName, type ResultContext, ResultLineProblem } from '../dialects/dialect.js';
import { ResultErrorCodes } from '../errors.js';
import type { LineOutcome, Usage } from '../types.js';
import { extractResult } from './extract.js';

export { ResultLineProblem } from '../dialects/dialect.js';

/** What reading a result file needs: the run's provider (whose dialect reads the lines; default openai). */
export interface OutcomeContext extends ResultContext {
  provider?: ProviderName | undefined;
}

/** Error codes of error-file lines without a response that end in a state other than `failed`. */
const STATE_OF_ERROR: Record<string, LineOutcome['state']> = {
  batch_expired: 'expired',
  batch_cancelled: 'cancelled',
};

/** Error codes of error-file lines without a response that are worth another attempt. */
const RETRYABLE_ERRORS = new Set(['batch_expired', 'server_error', 'rate_limit_exceeded']);

const MAX_MESSAGE = 2000;

/**
 * Reads one parsed output/error-file line (`{ id, custom_id, response, error }`):
 * - a 2xx `response` → its extracted result, or the extraction's failure (`refusal`, `invalid_output`…);
 * - a non-2xx `response` → `failed` with `body.error`'s code and message (`http_<status>` without one);
 * - `response: null` and `error` → `failed` with its code (`batch_expired` → `expired`).
 */
export function lineOutcome(line: unknown, ctx: ResultContext): LineOutcome | ResultLineProblem {
  if (!isObject(line)) return new ResultLineProblem('an output line must be a JSON object');
  const customId = line.custom_id;
  if (typeof customId !== 'string') {
    return new ResultLineProblem('the line has no custom_id string');
  }
  const response = line.response;
  if (isObject(response)) {
    const status = response.status_code;
    if (typeof status !== 'number') return new ResultLineProblem('response.status_code must be a number');
    if (status >= 200 && status < 300) return responseOutcome(customId, status, response.body, ctx);
    return httpFailure(customId, status, response.body);
  }
  if (isObject(line.error)) {
    const code = typeof line.error.code === 'string' ? line.error.code : 'error';
    const message = typeof line.error.message === 'string' ? line.error.message : code;
    return {
      customId,
      state: STATE_OF_ERROR[code] ?? 'failed',
      retryable: RETRYABLE_ERRORS.has(code),
      statusCode: null,
      result: null,
      errorCode: code,
      errorMessage: clip(message),
      usage: null,
    };
  }
  return new ResultLineProblem('the line has neither a response nor an error');
}

/**
 * A 2xx response body's outcome: its extracted result, or why extraction failed (with the tokens
 * spent, read by `usageOf`: OpenAI's usage by default).
 */
export function responseOutcome(
  customId: string,
  status: number,
  body: unknown,
  ctx: ResultContext,
  usageOf: (body: unknown) => Usage | null = openAiResponseUsage,
): LineOutcome {
  const usage = usageOf(body);
  const extracted = extractResult(ctx.endpoint, body, { expect: ctx.expect, outputSchema: ctx.outputSchema });
  if (extracted.ok) {
    return {
      customId,
      state: 'succeeded',
      retryable: false,
      statusCode: status,
      result: JSON.stringify(extracted.result) ?? 'null',
      errorCode: null,
      errorMessage: null,
      usage,
    };
  }
  return {
    customId,
    state: 'failed',
    retryable: extracted.retryable,
    statusCode: status,
    result: null,
    errorCode: extracted.code,
    errorMessage: clip(extracted.message),
    usage,
  };
}

function httpFailure(customId: string, status: number, body: unknown): LineOutcome {
  const error = isObject(body) && isObject(body.error) ? body.error : undefined;
  const code =
    (typeof error?.code === 'string' && error.code) ||
    (typeof error?.type === 'string' && error.type) ||
    `${ResultErrorCodes.HTTP_PREFIX}${status}`;
  let message: string;
  if (typeof error?.message === 'string' && error.message !== '') message = error.message;
  else if (body === undefined || body === null) message = `HTTP ${status}`;
  else message = `HTTP ${status}: ${JSON.stringify(body)}`;
  return {
    customId,
    state: 'failed',
    retryable: status === 429 || status >= 500,
    statusCode: status,
    result: null,
    errorCode: code,
    errorMessage: clip(message),
    usage: null,
  };
}

/** A message cut to what the ledger keeps. */
export function clip(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
