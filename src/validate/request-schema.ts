/**
 * zod schemas for one Batch API request line and the bodies of the endpoints batchpipe writes, plus
 * `checkRequestLine`, the pure per-request check the prepare pipeline and `batchpipe validate` call.
 *
 * Required fields, types and ranges follow `shared/reference/openai-batch-schemas.md` (the OpenAPI spec).
 * Objects are loose: the API adds fields often, so unknown fields pass and only what is known is checked.
 * Fast-moving enums (service tiers, reasoning efforts, tool kinds) are checked as strings for the same reason.
 * Every schema is built once, at module load: the pipeline validates millions of lines.
 */
import { z } from 'zod';
import { type IssueCode, IssueCodes } from '../errors.js';
import { ENDPOINTS, type Endpoint } from '../types.js';
import { describeValue, issue, jsonType, type ValidationIssue } from './issues.js';

export { formatIssue, type ValidationIssue } from './issues.js';

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

const nonEmptyString = z.string().min(1);
const optionalString = z.string().optional();
const nullableString = z.string().nullable().optional();
const nullableBoolean = z.boolean().nullable().optional();
const nullableInt = z.int().nullable().optional();
/** `metadata`: at most 16 string pairs (keys ≤ 64 chars, values ≤ 512 chars), or null. */
const metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, 'must have at most 16 pairs')
  .nullable()
  .optional();
const temperature = z.number().min(0).max(2).nullable().optional();
const topP = z.number().min(0).max(1).nullable().optional();
const penalty = z.number().min(-2).max(2).nullable().optional();
const choiceCount = z.int().min(1).max(128).nullable().optional();
/** Seeds are int64: beyond 2^53 a JSON number is no longer a safe integer, yet still a valid seed. */
const seed = z.number().refine(Number.isInteger, 'must be an integer').nullable().optional();
const logitBias = z.record(z.string(), z.number()).nullable().optional();
const stop = z
  .union([z.string(), z.array(z.string()).min(1).max(4)])
  .nullable()
  .optional();
const looseObjects = z.array(z.looseObject({})).optional();
/** Structured-output names: `^[a-zA-Z0-9_-]{1,64}$`. */
const formatName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/);
const jsonSchemaObject = z.looseObject({});
const tokenArray = z.array(z.int()).min(1);

// ---------------------------------------------------------------------------------------------------------
// POST /v1/chat/completions (CreateChatCompletionRequest)

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string(), detail: optionalString }),
});
const audioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
});
const filePart = z.looseObject({
  type: z.literal('file'),
  file: z.looseObject({ filename: optionalString, file_data: optionalString, file_id: optionalString }),
});
const refusalPart = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });

/** `content`: a string, or a non-empty array of the parts the role accepts. */
function contentOf<P extends z.ZodType>(part: P) {
  return z.union([z.string(), z.array(part).min(1)]);
}
// A one-option discriminated union, so a wrong part type is one clear issue rather than two.
const textContent = contentOf(z.discriminatedUnion('type', [textPart]));

const chatMessage = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('system'), content: textContent, name: optionalString }),
  z.looseObject({ role: z.literal('developer'), content: textContent, name: optionalString }),
  z.looseObject({
    role: z.literal('user'),
    content: contentOf(z.discriminatedUnion('type', [textPart, imagePart, audioPart, filePart])),
    name: optionalString,
  }),
  z.looseObject({
    role: z.literal('assistant'),
    content: contentOf(z.discriminatedUnion('type', [textPart, refusalPart]))
      .nullable()
      .optional(),
    refusal: nullableString,
    name: optionalString,
    tool_calls: looseObjects,
  }),
  z.looseObject({ role: z.literal('tool'), content: textContent, tool_call_id: z.string() }),
  z.looseObject({ role: z.literal('function'), content: z.string().nullable(), name: z.string() }),
]);

const chatResponseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: formatName,
      description: optionalString,
      schema: jsonSchemaObject.optional(),
      strict: nullableBoolean,
    }),
  }),
]);

/** The body of a `/v1/chat/completions` request. */
export const chatCompletionBodySchema = z.looseObject({
  model: nonEmptyString,
  messages: z.array(chatMessage).min(1),
  temperature,
  top_p: topP,
  n: choiceCount,
  max_tokens: nullableInt,
  max_completion_tokens: nullableInt,
  frequency_penalty: penalty,
  presence_penalty: penalty,
  logprobs: nullableBoolean,
  top_logprobs: z.int().min(0).max(20).nullable().optional(),
  logit_bias: logitBias,
  response_format: chatResponseFormat.optional(),
  stop,
  seed,
  stream: nullableBoolean,
  store: nullableBoolean,
  metadata,
  user: optionalString,
  safety_identifier: z.string().max(64).nullable().optional(),
  tools: looseObjects,
  parallel_tool_calls: nullableBoolean,
  modalities: z.array(z.string()).nullable().optional(),
  reasoning_effort: nullableString,
  service_tier: nullableString,
  verbosity: nullableString,
});

// ---------------------------------------------------------------------------------------------------------
// POST /v1/embeddings (CreateEmbeddingRequest)

/** The API caps one request at 2,048 inputs and refuses empty strings. */
const MAX_INPUTS_PER_EMBEDDING_REQUEST = 2048;

/** The body of a `/v1/embeddings` request. */
export const embeddingBodySchema = z.looseObject({
  model: nonEmptyString,
  input: z.union([
    nonEmptyString,
    z.array(nonEmptyString).min(1).max(MAX_INPUTS_PER_EMBEDDING_REQUEST),
    tokenArray.max(MAX_INPUTS_PER_EMBEDDING_REQUEST),
    z.array(tokenArray).min(1).max(MAX_INPUTS_PER_EMBEDDING_REQUEST),
  ]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.int().min(1).optional(),
  user: optionalString,
});

// ---------------------------------------------------------------------------------------------------------
// POST /v1/responses (CreateResponse)

const textFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    name: formatName,
    schema: jsonSchemaObject,
    description: optionalString,
    strict: nullableBoolean,
  }),
]);

/**
 * The body of a `/v1/responses` request. The spec requires nothing, but a batch request needs a `model`
 * (one model per file) and something to answer: an `input`, or a stored `prompt` that supplies it.
 */
export const responseBodySchema = z
  .looseObject({
    model: nonEmptyString,
    input: z.union([z.string(), z.array(z.looseObject({}))]).optional(),
    instructions: nullableString,
    prompt: z.looseObject({}).nullable().optional(),
    text: z.looseObject({ format: textFormat.optional(), verbosity: nullableString }).optional(),
    temperature,
    top_p: topP,
    top_logprobs: z.int().min(0).max(20).optional(),
    max_output_tokens: z.int().min(16).nullable().optional(),
    max_tool_calls: nullableInt,
    metadata,
    safety_identifier: z.string().max(64).nullable().optional(),
    previous_response_id: nullableString,
    tools: looseObjects,
    parallel_tool_calls: nullableBoolean,
    store: nullableBoolean,
    stream: nullableBoolean,
    user: optionalString,
  })
  .check((ctx) => {
    const body = ctx.value;
    if (body.input === undefined && (body.prompt === undefined || body.prompt === null)) {
      ctx.issues.push({
        code: 'invalid_type',
        expected: 'string',
        path: ['input'],
        input: undefined,
        message: '(a string or an array of input items) unless a stored prompt is given',
      });
    }
  });

// ---------------------------------------------------------------------------------------------------------
// POST /v1/completions (CreateCompletionRequest) and POST /v1/moderations (CreateModerationRequest)

/** The body of a `/v1/completions` request. `prompt` is required, though it may be null. */
export const completionBodySchema = z.looseObject({
  model: nonEmptyString,
  prompt: z.union([z.string(), z.array(z.string()), tokenArray, z.array(tokenArray).min(1)]).nullable(),
  best_of: z.int().min(0).max(20).nullable().optional(),
  echo: nullableBoolean,
  logprobs: z.int().min(0).max(5).nullable().optional(),
  max_tokens: z.int().min(0).nullable().optional(),
  n: choiceCount,
  suffix: nullableString,
  temperature,
  top_p: topP,
  frequency_penalty: penalty,
  presence_penalty: penalty,
  logit_bias: logitBias,
  seed,
  stop,
  stream: nullableBoolean,
  user: optionalString,
});

/** The body of a `/v1/moderations` request; `model` defaults to `omni-moderation-latest`. */
export const moderationBodySchema = z.looseObject({
  input: z.union([
    z.string(),
    z.array(z.string()),
    z.array(
      z.discriminatedUnion('type', [
        textPart,
        z.looseObject({ type: z.literal('image_url'), image_url: z.looseObject({ url: z.string() }) }),
      ]),
    ),
  ]),
  model: nonEmptyString.optional(),
});

// ---------------------------------------------------------------------------------------------------------
// POST /v1/messages (Anthropic's MessageCreateParams, as a Message Batch's `params`)

const anthropicContent = z.union([z.string(), z.array(z.looseObject({ type: nonEmptyString })).min(1)]);

/** The body of an Anthropic `/v1/messages` request: `max_tokens` and at least one message required. */
export const anthropicMessageBodySchema = z.looseObject({
  model: nonEmptyString,
  max_tokens: z.int().min(1),
  messages: z.array(z.looseObject({ role: z.enum(['user', 'assistant']), content: anthropicContent })).min(1),
  system: z.union([z.string(), z.array(z.looseObject({ type: nonEmptyString }))]).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.int().min(0).optional(),
  stop_sequences: z.array(z.string()).optional(),
  tools: looseObjects,
  tool_choice: z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']) }).optional(),
  stream: z.literal(false, { error: 'streaming is not supported in a batch' }).optional(),
});

// ---------------------------------------------------------------------------------------------------------
// The request line

/** The body schema of each endpoint. */
export const bodySchemas: { readonly [E in Endpoint]: z.ZodType } = {
  '/v1/chat/completions': chatCompletionBodySchema,
  '/v1/embeddings': embeddingBodySchema,
  '/v1/responses': responseBodySchema,
  '/v1/completions': completionBodySchema,
  '/v1/moderations': moderationBodySchema,
  '/v1/messages': anthropicMessageBodySchema,
};

/** One line of a Batch API input file, with the body checked only for being an object. */
export const requestLineSchema = z.looseObject({
  custom_id: nonEmptyString,
  method: z.literal('POST'),
  url: z.enum(ENDPOINTS),
  body: z.looseObject({}),
});

/** One line per endpoint, envelope and body together, so a valid line costs a single parse. */
const lineSchemaByUrl = new Map<unknown, z.ZodType>(
  ENDPOINTS.map((url) => [url, requestLineSchema.extend({ url: z.literal(url), body: bodySchemas[url] })]),
);

/**
 * Checks one request line (already parsed from JSON): its shape, `custom_id`, `method`, `url`, and the body
 * against the endpoint's schema. No cross-line rules (see `FileRules`).
 *
 * @returns `[]` when the line is valid; otherwise its issues.
 * @example
 * checkRequestLine({ custom_id: 'a', method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: '' } });
 * // → [{ code: 'invalid_value', path: 'body.input', message: 'must not be empty' }]
 */
export function checkRequestLine(value: unknown): ValidationIssue[] {
  if (!isPlainObject(value)) {
    return [issue(IssueCodes.NOT_AN_OBJECT, '', `expected a JSON object, got ${jsonType(value)}`)];
  }
  const schema = lineSchemaByUrl.get(value.url) ?? requestLineSchema;
  const result = schema.safeParse(value);
  return result.success ? [] : fromZodIssues(result.error.issues, value);
}

/** The model of a request line's body, if it has a string model. */
export function modelOf(line: { body?: unknown }): string | undefined {
  const body = line.body;
  return isPlainObject(body) && typeof body.model === 'string' ? body.model : undefined;
}

/**
 * Number of embedding inputs a request carries: 1 for a string or a single token array, the array's length
 * for an array of strings or of token arrays; 0 for other endpoints or a body without `input`.
 */
export function embeddingInputCount(line: { url?: unknown; body?: unknown }): number {
  if (line.url !== '/v1/embeddings' || !isPlainObject(line.body)) return 0;
  const input = line.body.input;
  if (typeof input === 'string') return 1;
  if (!Array.isArray(input)) return 0;
  // `[1, 2, 3]` is one input given as tokens; `['a', 'b']` and `[[1], [2]]` are two.
  return typeof input[0] === 'number' ? 1 : input.length;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------------
// zod issues → { code, path, message }

type ZodIssue = z.core.$ZodIssue;

/** The top-level fields whose failures have their own codes. */
const ENVELOPE_CODES: Record<string, IssueCode> = {
  custom_id: IssueCodes.EMPTY_CUSTOM_ID,
  method: IssueCodes.INVALID_METHOD,
  url: IssueCodes.UNKNOWN_ENDPOINT,
};

function fromZodIssues(issues: readonly ZodIssue[], root: Record<string, unknown>): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const zodIssue of issues) convertIssue(zodIssue, [], root, out);
  return out;
}

/** Converts one zod issue (whose path is relative to `prefix`) and appends the result to `out`. */
function convertIssue(
  zodIssue: ZodIssue,
  prefix: readonly PropertyKey[],
  root: unknown,
  out: ValidationIssue[],
): void {
  const fullPath = prefix.length === 0 ? zodIssue.path : [...prefix, ...zodIssue.path];
  if (zodIssue.code === 'invalid_union' && zodIssue.errors.length > 0) {
    const branch = closestBranch(zodIssue.errors);
    if (branch !== undefined) {
      for (const inner of branch) convertIssue(inner, fullPath, root, out);
      return;
    }
  }
  const path = z.core.toDotPath(fullPath);
  const value = valueAt(root, fullPath);
  if (value === undefined) {
    out.push(issue(IssueCodes.MISSING_FIELD, path, `required${expectation(zodIssue)}`));
    return;
  }
  const code = issueCode(zodIssue, fullPath);
  out.push(issue(code, path, detail(zodIssue, value)));
}

/**
 * For a union where no option matched, the option the value was most likely meant as: the first whose
 * failure is not a plain type mismatch at the union's own level (e.g. an array that has a bad item, rather
 * than the string option), preferring the one with the fewest issues. Undefined when every option's type
 * was wrong, which is then reported as one type error.
 */
function closestBranch(branches: readonly (readonly ZodIssue[])[]): readonly ZodIssue[] | undefined {
  let best: readonly ZodIssue[] | undefined;
  for (const branch of branches) {
    const typeMismatch = branch.some((i) => i.code === 'invalid_type' && i.path.length === 0);
    if (!typeMismatch && (best === undefined || branch.length < best.length)) best = branch;
  }
  return best;
}

function issueCode(zodIssue: ZodIssue, path: readonly PropertyKey[]): IssueCode {
  const envelopeCode = path.length === 1 ? ENVELOPE_CODES[String(path[0])] : undefined;
  if (zodIssue.code === 'invalid_type') return IssueCodes.INVALID_TYPE;
  if (zodIssue.code === 'invalid_union' && zodIssue.errors.length > 0) return IssueCodes.INVALID_TYPE;
  // A wrong value (not a wrong type) of custom_id, method or url has its own code.
  return envelopeCode ?? IssueCodes.INVALID_VALUE;
}

/** What was expected and what came, for a field that is present. */
function detail(zodIssue: ZodIssue, value: unknown): string {
  switch (zodIssue.code) {
    case 'invalid_type':
      return `expected ${zodIssue.expected === 'int' ? 'an integer' : zodIssue.expected}, got ${
        zodIssue.expected === 'int' && typeof value === 'number' ? value : jsonType(value)
      }`;
    case 'invalid_union':
      if (zodIssue.errors.length === 0)
        return `must be ${oneOf(discriminatorOptions(zodIssue))}, got ${describeValue(value)}`;
      return `expected ${unionTypes(zodIssue.errors)}, got ${jsonType(value)}`;
    case 'invalid_value':
      return `must be ${oneOf(zodIssue.values)}, got ${describeValue(value)}`;
    case 'too_small':
      return sizeDetail('at least', zodIssue.origin, Number(zodIssue.minimum), zodIssue.inclusive, value);
    case 'too_big':
      return sizeDetail('at most', zodIssue.origin, Number(zodIssue.maximum), zodIssue.inclusive, value);
    case 'invalid_format':
      return `must match ${zodIssue.pattern ?? zodIssue.format}, got ${describeValue(value)}`;
    default:
      return zodIssue.message;
  }
}

function sizeDetail(
  bound: 'at least' | 'at most',
  origin: string,
  limit: number,
  inclusive: boolean | undefined,
  value: unknown,
): string {
  if (origin === 'array') return `must have ${bound} ${plural(limit, 'item')}, got ${lengthOf(value)}`;
  if (origin === 'string') {
    return limit === 1 && bound === 'at least'
      ? 'must not be empty'
      : `must be ${bound} ${plural(limit, 'character')}, got ${lengthOf(value)}`;
  }
  const op = bound === 'at least' ? (inclusive === false ? '>' : '>=') : inclusive === false ? '<' : '<=';
  return `must be ${op} ${limit}, got ${describeValue(value)}`;
}

/** For a missing field: what belongs there, when zod says. */
function expectation(zodIssue: ZodIssue): string {
  if (zodIssue.code === 'invalid_type') {
    // A custom check's own message says it best (e.g. responses' input-or-prompt rule).
    return zodIssue.message.startsWith('Invalid input')
      ? `, expected ${zodIssue.expected}`
      : ` ${zodIssue.message}`;
  }
  if (zodIssue.code === 'invalid_union') {
    return zodIssue.errors.length === 0
      ? `, expected ${oneOf(discriminatorOptions(zodIssue))}`
      : `, expected ${unionTypes(zodIssue.errors)}`;
  }
  if (zodIssue.code === 'invalid_value') return `, expected ${oneOf(zodIssue.values)}`;
  return '';
}

/** The values a discriminated union accepts, when zod names them. */
function discriminatorOptions(zodIssue: z.core.$ZodIssueInvalidUnion): readonly unknown[] {
  return 'options' in zodIssue ? (zodIssue.options ?? []) : [];
}

function unionTypes(branches: readonly (readonly ZodIssue[])[]): string {
  const types = new Set<string>();
  for (const branch of branches) {
    for (const i of branch) if (i.code === 'invalid_type' && i.path.length === 0) types.add(i.expected);
  }
  return [...types].join(' or ');
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length === 1 ? (shown[0] ?? '') : `one of ${shown.join(', ')}`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function lengthOf(value: unknown): number | string {
  return typeof value === 'string' || Array.isArray(value) ? value.length : jsonType(value);
}

/** The value at `path` inside `root`, or undefined when any step is absent. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
