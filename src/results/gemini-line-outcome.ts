/**
 * Gemini's result lines in the ledger's terms: one line of a batch's results file, `{ key, response }`
 * (a `GenerateContentResponse`, or an `EmbedContentResponse` for embeddings) or `{ key, error }` (a
 * google.rpc.Status), → the request's outcome, its extracted result and its usage. Pure: no ledger,
 * no streams, no SDK. Requests a stop left unrun have no line; collect settles them by the batch's
 * state (expired: `batch_expired`, retried; cancelled: final).
 */
import { type ResultContext, ResultLineProblem } from '../dialects/dialect.js';
import { rpcCodeName } from '../dialects/gemini.js';
import { ResultErrorCodes } from '../errors.js';
import type { LineOutcome, Usage } from '../types.js';
import {
  checkedResult,
  contentFilter,
  type ExpectedOutput,
  type Extraction,
  empty,
  parseJson,
  type ResultUsage,
  textOrJson,
  type Values,
} from './extract.js';
import type { OutputSchema } from './output-validation.js';

/**
 * The tokens a response bills (its `usageMetadata`), as the ledger's {@link Usage}: `promptTokenCount`
 * (the cached ones included) as input, `cachedContentTokenCount` as cached input,
 * `candidatesTokenCount + thoughtsTokenCount` as output (thinking is billed as output) and
 * `thoughtsTokenCount` as reasoning. Null when the response reports none.
 */
export function geminiUsage(response: unknown): Usage | null {
  const meta = isObject(response) && isObject(response.usageMetadata) ? response.usageMetadata : undefined;
  if (!meta) return null;
  const thoughts = count(meta.thoughtsTokenCount);
  return {
    inputTokens: count(meta.promptTokenCount),
    cachedInputTokens: count(meta.cachedContentTokenCount),
    cacheWriteTokens: 0,
    outputTokens: count(meta.candidatesTokenCount) + thoughts,
    reasoningTokens: thoughts,
  };
}

/** google.rpc codes another try may get past: quota, deadline, internal, unavailable. */
const RETRYABLE_RPC = new Set([4, 8, 13, 14]);

/** Finish reasons that mean the output was withheld. */
const WITHHELD = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY']);

const MAX_MESSAGE = 2000;

/**
 * One parsed results-file line → the request's outcome (its `key` is the request's custom_id):
 * - `response` → its extracted result, or the extraction's failure (`content_filter`, `invalid_json`…);
 * - `error` → `failed` with the status name as code (`RESOURCE_EXHAUSTED`), retryable for quota,
 *   deadline, internal and unavailable errors.
 */
export function geminiLineOutcome(line: unknown, ctx: ResultContext): LineOutcome | ResultLineProblem {
  if (!isObject(line)) return new ResultLineProblem('a results line must be a JSON object');
  const customId = line.key;
  if (typeof customId !== 'string') return new ResultLineProblem('the line has no key string');
  if (isObject(line.response)) {
    const extracted = extractGemini(line.response, ctx.expect, ctx.outputSchema);
    const usage = geminiUsage(line.response);
    if (extracted.ok) {
      return outcome(customId, 'succeeded', false, 200, {
        result: JSON.stringify(extracted.result) ?? 'null',
        usage,
      });
    }
    return outcome(customId, 'failed', extracted.retryable, 200, {
      error: { code: extracted.code, message: extracted.message },
      usage,
    });
  }
  if (isObject(line.error)) return errorOutcome(customId, line.error);
  return new ResultLineProblem('the line has neither a response nor an error');
}

/** A google.rpc.Status (or an HTTP-style `{ code: 429 }`) as a failed outcome. */
function errorOutcome(customId: string, error: Record<string, unknown>): LineOutcome {
  const code = typeof error.code === 'number' ? error.code : undefined;
  const http = code !== undefined && code >= 100 ? code : null;
  const name =
    typeof error.status === 'string' && error.status !== ''
      ? error.status
      : code === undefined
        ? 'error'
        : http === null
          ? rpcCodeName(code)
          : `${ResultErrorCodes.HTTP_PREFIX}${http}`;
  const retryable =
    http === null ? code !== undefined && RETRYABLE_RPC.has(code) : http === 429 || http >= 500;
  const message = typeof error.message === 'string' && error.message !== '' ? error.message : name;
  return outcome(customId, 'failed', retryable, http, { error: { code: name, message } });
}

/**
 * The result of one response: generateContent → the text of the first candidate's parts (thoughts
 * left out), parsed when JSON was asked for, or the forced function call's `args`; several candidates
 * → an array; embedContent → the vector. Checked against the output schema as every provider's is.
 */
export function extractGemini(
  response: Record<string, unknown>,
  expect: ExpectedOutput,
  outputSchema: OutputSchema | undefined,
): Extraction {
  const tokens = geminiUsage(response);
  const usage: ResultUsage = {
    input_tokens: tokens?.inputTokens ?? null,
    output_tokens: tokens?.outputTokens ?? null,
  };
  return checkedResult(responseValues(response, expect, usage), outputSchema, usage);
}

function responseValues(
  response: Record<string, unknown>,
  expect: ExpectedOutput,
  usage: ResultUsage,
): Values {
  if (isObject(response.embedding)) {
    const vector = response.embedding.values;
    return Array.isArray(vector)
      ? { ok: true, values: [vector], many: false }
      : empty('the embedding has no values', usage);
  }
  const candidates = Array.isArray(response.candidates) ? response.candidates.filter(isObject) : [];
  if (candidates.length === 0) {
    const feedback = isObject(response.promptFeedback) ? response.promptFeedback : {};
    if (typeof feedback.blockReason === 'string') return contentFilter(usage);
    return empty('the response has no candidates', usage);
  }
  const values: unknown[] = [];
  for (const candidate of candidates) {
    const value = candidateValue(candidate, expect, usage);
    if (!value.ok) return value;
    values.push(value.result);
  }
  return { ok: true, values, many: values.length > 1 };
}

function candidateValue(
  candidate: Record<string, unknown>,
  expect: ExpectedOutput,
  usage: ResultUsage,
): Extraction {
  const finish = typeof candidate.finishReason === 'string' ? candidate.finishReason : undefined;
  const content = isObject(candidate.content) ? candidate.content : {};
  const parts = Array.isArray(content.parts) ? content.parts.filter(isObject) : [];
  if (parts.length === 0 && finish !== undefined && WITHHELD.has(finish)) return contentFilter(usage);
  const calls = parts.map((part) => part.functionCall).filter(isObject);
  if (expect.kind === 'tool_call') {
    const first = calls[0];
    if (!first) return empty('the candidate has no function call', usage);
    // Gemini gives the arguments as an object; a string (from an upstream) is parsed.
    return typeof first.args === 'string'
      ? parseJson(first.args, usage, undefined, 'the function call arguments are')
      : { ok: true, result: first.args ?? {}, usage };
  }
  const texts = parts.filter((part) => part.thought !== true && typeof part.text === 'string');
  if (texts.length === 0) {
    if (calls.length > 0) {
      return {
        ok: true,
        result: calls.map((call) => ({ name: call.name, arguments: call.args ?? {} })),
        usage,
      };
    }
    return empty('the candidate has no text', usage);
  }
  const text = texts.map((part) => part.text as string).join('');
  return textOrJson(text, expect, usage, finish === 'MAX_TOKENS' ? 'max_tokens' : undefined);
}

function outcome(
  customId: string,
  state: LineOutcome['state'],
  retryable: boolean,
  statusCode: number | null,
  what: { result?: string; error?: { code: string; message: string }; usage?: Usage | null },
): LineOutcome {
  return {
    customId,
    state,
    retryable,
    statusCode,
    result: what.result ?? null,
    errorCode: what.error?.code ?? null,
    errorMessage: what.error ? clip(what.error.message) : null,
    usage: what.usage ?? null,
  };
}

function clip(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
}

/** A count as reported; missing or malformed counts are 0, as for every provider. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
