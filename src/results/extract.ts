/**
 * Result extraction: what the user wants out of one response body, per endpoint. Pure functions, no
 * ledger and no streams: `applyResultLines` calls them once per output line.
 */
import type { ExpectedOutput, OutputTemplate } from '../dialects/dialect.js';
import { ResultErrorCodes } from '../errors.js';
import { formatZodPath, type OutputSchema, validateOutput } from './output-validation.js';

/** Tokens a response reports; `null` where the endpoint reports none (moderations). */
export interface ResultUsage {
  input_tokens: number | null;
  output_tokens: number | null;
}

/** A result the user can have. `result` is any JSON value (text, parsed object, vector…). */
export interface ExtractedResult {
  ok: true;
  result: unknown;
  usage: ResultUsage;
}

/** Why a 2xx response still gave no usable result. */
export interface ExtractionFailure {
  ok: false;
  /** One of {@link ResultErrorCodes} (stable, snake_case). */
  code: string;
  message: string;
  /** Where in the result, for `invalid_output` (e.g. `topics[0]`). */
  path?: string;
  /** True when sending the request again may well succeed. */
  retryable: boolean;
  /** Tokens were still spent (and billed) on a refusal or a bad output. */
  usage?: ResultUsage;
}

export type Extraction = ExtractedResult | ExtractionFailure;

export type { ExpectedOutput, OutputTemplate } from '../dialects/dialect.js';

export const TEXT_OUTPUT: ExpectedOutput = { kind: 'text', list: false };

/** Reads {@link ExpectedOutput} from the run's body template. */
export function expectedOutput(template: OutputTemplate): ExpectedOutput {
  const body = isObject(template.body) ? template.body : {};
  const list = Array.isArray(body.input);
  let format: unknown;
  if (template.endpoint === '/v1/chat/completions') format = body.response_format;
  else if (template.endpoint === '/v1/responses' && isObject(body.text)) format = body.text.format;
  if (isObject(format) && (format.type === 'json_schema' || format.type === 'json_object')) {
    return { kind: 'json', list };
  }
  if (forcesTool(body)) return { kind: 'tool_call', list };
  return { kind: 'text', list };
}

/** The JSON Schema the request body itself asks the model to follow, if any. */
export function requestedSchema(template: OutputTemplate): unknown {
  const body = isObject(template.body) ? template.body : {};
  if (template.endpoint === '/v1/chat/completions' && isObject(body.response_format)) {
    const format = body.response_format;
    if (format.type === 'json_schema' && isObject(format.json_schema)) return format.json_schema.schema;
  }
  if (template.endpoint === '/v1/responses' && isObject(body.text) && isObject(body.text.format)) {
    const format = body.text.format;
    if (format.type === 'json_schema') return format.schema;
  }
  return undefined;
}

export interface ExtractOptions {
  /** What the run asked for (see {@link expectedOutput}); plain text by default. */
  expect?: ExpectedOutput | undefined;
  /** Validates the result (each element, for list inputs and `n > 1`). */
  outputSchema?: OutputSchema | undefined;
}

/**
 * The result of one 2xx response body: chat → the message content (or the parsed object / tool
 * arguments); responses → the output text (or parsed object); embeddings → the vector (vectors for a
 * list input); moderations → the result (results for a list input); completions → the text. `n > 1`
 * gives an array, one element per choice.
 *
 * @example
 * extractResult('/v1/chat/completions', body, { expect: { kind: 'json', list: false }, outputSchema })
 * // → { ok: true, result: { sentiment: 'negative', topics: ['delay'] }, usage: { input_tokens: 31, output_tokens: 12 } }
 */
export function extractResult(endpoint: string, body: unknown, options: ExtractOptions = {}): Extraction {
  const expect = options.expect ?? TEXT_OUTPUT;
  if (!isObject(body)) return empty(`the response body is ${body === null ? 'null' : typeof body}`, NO_USAGE);
  const usage = usageOf(body);
  let values: Extraction | { ok: true; values: unknown[]; many: boolean };
  switch (endpoint) {
    case '/v1/chat/completions':
      values = chatValues(body, expect, usage);
      break;
    case '/v1/responses':
      values = responsesValues(body, expect, usage);
      break;
    case '/v1/embeddings':
      values = embeddingValues(body, expect, usage);
      break;
    case '/v1/moderations':
      values = listValues(body.results, 'results', expect, usage);
      break;
    case '/v1/completions':
      values = completionValues(body, usage);
      break;
    case '/v1/messages':
      values = messageValues(body, expect, usage);
      break;
    default:
      // An endpoint batchpipe does not know: keep the body as the result rather than lose it.
      return { ok: true, result: body, usage };
  }
  if (!values.ok) return values;
  if ('result' in values) return values;
  if (options.outputSchema) {
    for (let i = 0; i < values.values.length; i++) {
      const checked = validateOutput(options.outputSchema, values.values[i]);
      if (!checked.ok) {
        const path = formatZodPath(values.many ? [i, ...checked.issue.path] : checked.issue.path);
        return {
          ok: false,
          code: ResultErrorCodes.INVALID_OUTPUT,
          message: `the output does not match the output schema: ${path === '' ? '' : `${path}: `}${checked.issue.message}`,
          path,
          retryable: true,
          usage,
        };
      }
      values.values[i] = checked.value;
    }
  }
  return { ok: true, result: values.many ? values.values : values.values[0], usage };
}

type Values = Extraction | { ok: true; values: unknown[]; many: boolean };

function chatValues(body: Record<string, unknown>, expect: ExpectedOutput, usage: ResultUsage): Values {
  const choices = Array.isArray(body.choices) ? body.choices : [];
  if (choices.length === 0) return empty('the chat completion has no choices', usage);
  const values: unknown[] = [];
  for (const choice of choices) {
    const message = isObject(choice) && isObject(choice.message) ? choice.message : undefined;
    if (!message) return empty('a choice has no message', usage);
    if (typeof message.refusal === 'string' && message.refusal !== '') {
      return refusal(message.refusal, usage);
    }
    const finish = isObject(choice) ? choice.finish_reason : undefined;
    if (finish === 'content_filter' && (message.content === null || message.content === undefined)) {
      return contentFilter(usage);
    }
    const toolCalls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
    if (expect.kind === 'tool_call' || (typeof message.content !== 'string' && toolCalls.length > 0)) {
      const value = chatToolValue(toolCalls, expect, usage);
      if (!value.ok) return value;
      values.push(value.result);
      continue;
    }
    if (typeof message.content !== 'string') return empty('the message has no content', usage);
    const value = textOrJson(message.content, expect, usage, finish === 'length' ? 'max_tokens' : undefined);
    if (!value.ok) return value;
    values.push(value.result);
  }
  return { ok: true, values, many: values.length > 1 };
}

/** Forced tool: the first call's parsed arguments. Otherwise (tools chosen freely): every call. */
function chatToolValue(toolCalls: unknown[], expect: ExpectedOutput, usage: ResultUsage): Extraction {
  const calls = toolCalls.filter(isObject).map((call) => (isObject(call.function) ? call.function : {}));
  if (expect.kind === 'tool_call') {
    const first = calls[0];
    if (!first || typeof first.arguments !== 'string') return empty('the message has no tool call', usage);
    return parseJson(first.arguments, usage, undefined, 'the tool call arguments are');
  }
  return {
    ok: true,
    result: calls.map((call) => ({ name: call.name, arguments: tryParse(call.arguments) })),
    usage,
  };
}

function responsesValues(body: Record<string, unknown>, expect: ExpectedOutput, usage: ResultUsage): Values {
  if (body.status === 'failed') {
    const error = isObject(body.error) ? body.error : {};
    const code = typeof error.code === 'string' ? error.code : ResultErrorCodes.RESPONSE_FAILED;
    return {
      ok: false,
      code,
      message: typeof error.message === 'string' ? error.message : 'the response failed',
      retryable: code === 'server_error' || code === 'rate_limit_exceeded',
      usage,
    };
  }
  const output = Array.isArray(body.output) ? body.output.filter(isObject) : [];
  if (expect.kind === 'tool_call') {
    const call = output.find((item) => item.type === 'function_call');
    if (!call || typeof call.arguments !== 'string') return empty('the response has no function call', usage);
    const parsed = parseJson(call.arguments, usage, undefined, 'the function call arguments are');
    return parsed.ok ? { ok: true, values: [parsed.result], many: false } : parsed;
  }
  let text: string | undefined;
  for (const item of output) {
    if (item.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (!isObject(part)) continue;
      if (part.type === 'refusal') return refusal(String(part.refusal ?? ''), usage);
      if (part.type === 'output_text' && typeof part.text === 'string') text = (text ?? '') + part.text;
    }
  }
  if (text === undefined) return empty('the response has no output text', usage);
  const incomplete = isObject(body.incomplete_details) ? body.incomplete_details.reason : undefined;
  const value = textOrJson(text, expect, usage, typeof incomplete === 'string' ? incomplete : undefined);
  return value.ok ? { ok: true, values: [value.result], many: false } : value;
}

/**
 * An Anthropic message: the forced tool's `input` (already an object), or its text blocks joined (the
 * parsed object when JSON was asked for). `stop_reason: refusal` is the model's refusal.
 */
function messageValues(body: Record<string, unknown>, expect: ExpectedOutput, usage: ResultUsage): Values {
  const blocks = Array.isArray(body.content) ? body.content.filter(isObject) : [];
  if (body.stop_reason === 'refusal') {
    const said = blocks.map((b) => (typeof b.text === 'string' ? b.text : '')).join('');
    return refusal(said, usage);
  }
  if (expect.kind === 'tool_call') {
    const call = blocks.find((b) => b.type === 'tool_use');
    if (!call || !('input' in call)) return empty('the message has no tool_use block', usage);
    return { ok: true, values: [call.input], many: false };
  }
  const texts = blocks.filter((b) => b.type === 'text' && typeof b.text === 'string');
  if (texts.length === 0) return empty('the message has no text', usage);
  const text = texts.map((b) => b.text as string).join('');
  const cutOffBy = body.stop_reason === 'max_tokens' ? 'max_tokens' : undefined;
  const value = textOrJson(text, expect, usage, cutOffBy);
  return value.ok ? { ok: true, values: [value.result], many: false } : value;
}

function embeddingValues(body: Record<string, unknown>, expect: ExpectedOutput, usage: ResultUsage): Values {
  if (!Array.isArray(body.data)) return empty('the embedding list has no data', usage);
  const items = body.data
    .filter(isObject)
    .sort((a, b) => Number(a.index ?? 0) - Number(b.index ?? 0))
    .map((item) => item.embedding);
  return listValues(items, 'data', expect, usage);
}

/** One result per input: the array for a list input, its only element otherwise. */
function listValues(items: unknown, what: string, expect: ExpectedOutput, usage: ResultUsage): Values {
  if (!Array.isArray(items) || items.length === 0) return empty(`the response has no ${what}`, usage);
  if (expect.list) return { ok: true, values: items, many: true };
  return { ok: true, values: items.length === 1 ? items : [items], many: false };
}

function completionValues(body: Record<string, unknown>, usage: ResultUsage): Values {
  const choices = Array.isArray(body.choices) ? body.choices.filter(isObject) : [];
  if (choices.length === 0) return empty('the completion has no choices', usage);
  const values: unknown[] = [];
  for (const choice of choices) {
    if (choice.finish_reason === 'content_filter' && !choice.text) return contentFilter(usage);
    if (typeof choice.text !== 'string') return empty('a choice has no text', usage);
    values.push(choice.text);
  }
  return { ok: true, values, many: values.length > 1 };
}

function textOrJson(
  text: string,
  expect: ExpectedOutput,
  usage: ResultUsage,
  cutOffBy: string | undefined,
): Extraction {
  if (expect.kind === 'text') return { ok: true, result: text, usage };
  return parseJson(text, usage, cutOffBy, 'the output is');
}

function parseJson(text: string, usage: ResultUsage, cutOffBy: string | undefined, what: string): Extraction {
  try {
    return { ok: true, result: JSON.parse(text), usage };
  } catch (err) {
    const why = cutOffBy ? ` (cut off by ${cutOffBy})` : '';
    return {
      ok: false,
      code: ResultErrorCodes.INVALID_JSON,
      message: `${what} not valid JSON${why}: ${(err as Error).message}`,
      retryable: true,
      usage,
    };
  }
}

function tryParse(text: unknown): unknown {
  if (typeof text !== 'string') return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function refusal(text: string, usage: ResultUsage): ExtractionFailure {
  return {
    ok: false,
    code: ResultErrorCodes.REFUSAL,
    message: text || 'the model refused',
    retryable: false,
    usage,
  };
}

function contentFilter(usage: ResultUsage): ExtractionFailure {
  return {
    ok: false,
    code: ResultErrorCodes.CONTENT_FILTER,
    message: 'the output was withheld by the content filter',
    retryable: false,
    usage,
  };
}

function empty(message: string, usage: ResultUsage): ExtractionFailure {
  return { ok: false, code: ResultErrorCodes.EMPTY_RESPONSE, message, retryable: true, usage };
}

const NO_USAGE: ResultUsage = { input_tokens: null, output_tokens: null };

/**
 * Both usage shapes: `prompt_tokens`/`completion_tokens` and `input_tokens`/`output_tokens`. Input
 * counts every prompt token, as OpenAI's does: Anthropic reports the tokens written to and read from
 * its prompt cache beside `input_tokens`, so they are added to it.
 */
export function usageOf(body: unknown): ResultUsage {
  const usage = isObject(body) && isObject(body.usage) ? body.usage : undefined;
  if (!usage) return NO_USAGE;
  const uncached = count(usage.input_tokens);
  const cached =
    (count(usage.cache_creation_input_tokens) ?? 0) + (count(usage.cache_read_input_tokens) ?? 0);
  const input = (uncached === null ? null : uncached + cached) ?? count(usage.prompt_tokens);
  const output = count(usage.output_tokens) ?? count(usage.completion_tokens);
  // Embeddings report only prompt tokens: they produce none.
  return { input_tokens: input, output_tokens: output ?? (input === null ? null : 0) };
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function forcesTool(body: Record<string, unknown>): boolean {
  if (!Array.isArray(body.tools) || body.tools.length === 0) return false;
  const choice = body.tool_choice;
  return (
    choice === 'required' ||
    (isObject(choice) && (isObject(choice.function) || typeof choice.name === 'string'))
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
