/**
 * The Gemini Batch API's request dialect: two endpoints, `/v1beta/generateContent` (a
 * `GenerateContentRequest`: `--prompt` as the last user turn of `contents`, `--system` as
 * `systemInstruction`, structured output through `generationConfig.responseMimeType:
 * application/json` with `responseSchema` or `responseJsonSchema`) and `/v1beta/embedContent` (an
 * `EmbedContentRequest`: `--prompt` as `content`). Request files hold batchpipe's usual lines with the
 * native body; the Gemini provider uploads them as `{ key, request }` lines, the model left to the batch
 * (one model per Gemini batch). Any string is a valid `key`. Plus what the result dialect reads from a
 * body template: the result kind and the schema asked for.
 */
import { DEFAULT_MAX_LINES } from '../validate/file-limits.js';
import type { ExpectedOutput, OutputTemplate, RequestDialect } from './dialect.js';

/** Gemini's limit on one uploaded file (the Files API's). */
const GEMINI_MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;

export const GEMINI_DIALECT: RequestDialect = {
  name: 'gemini',
  endpoints: ['/v1beta/generateContent', '/v1beta/embedContent'],
  systemEndpoints: ['/v1beta/generateContent'],
  // Gemini caps a batch's file at 2 GB and names no count; files roll at OpenAI's 50,000 requests, a
  // size that uploads, runs and retries in pieces.
  limits: { maxLines: DEFAULT_MAX_LINES, maxBytes: GEMINI_MAX_FILE_BYTES },

  placePrompt(endpoint, body, prompt, system) {
    if (endpoint === '/v1beta/embedContent') {
      body.content = { parts: [{ text: prompt }] };
      return;
    }
    if (system !== undefined) body.systemInstruction = { parts: [{ text: system }] };
    const earlier = Array.isArray(body.contents) ? body.contents : [];
    body.contents = [...earlier, { role: 'user', parts: [{ text: prompt }] }];
  },
  completeBody() {},
  wireId: () => undefined,
};

/**
 * JSON when `generationConfig.responseMimeType` is `application/json`, a forced function call's `args`
 * when `toolConfig.functionCallingConfig.mode` is `ANY`, else text.
 */
export function geminiExpectedOutput(template: OutputTemplate): ExpectedOutput {
  const body = isObject(template.body) ? template.body : {};
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  if (config.responseMimeType === 'application/json') return { kind: 'json', list: false };
  const calling = isObject(body.toolConfig) ? body.toolConfig.functionCallingConfig : undefined;
  if (isObject(calling) && calling.mode === 'ANY') return { kind: 'tool_call', list: false };
  return { kind: 'text', list: false };
}

/**
 * The JSON Schema the body asks for: `responseJsonSchema` as it is, or `responseSchema` (Gemini's
 * OpenAPI subset: upper-case types, `nullable`, counts as strings) read as JSON Schema.
 */
export function geminiRequestedSchema(template: OutputTemplate): unknown {
  const body = isObject(template.body) ? template.body : {};
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  if (config.responseJsonSchema !== undefined) return config.responseJsonSchema;
  return config.responseSchema === undefined ? undefined : openApiToJsonSchema(config.responseSchema);
}

/** Gemini's `Schema` (an OpenAPI 3.0 subset) as JSON Schema. */
export function openApiToJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(openApiToJsonSchema);
  if (!isObject(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'nullable' || key === 'propertyOrdering' || key === 'format') continue;
    if (key === 'type' && typeof value === 'string') out.type = value.toLowerCase();
    else if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, openApiToJsonSchema(v)]));
    } else if (/^(min|max)(Items|Length|Properties)$/.test(key) && typeof value === 'string') {
      out[key] = Number(value);
    } else out[key] = openApiToJsonSchema(value);
  }
  if (schema.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

const RPC_CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** google.rpc.Code number → its name (`3` → `INVALID_ARGUMENT`). */
export function rpcCodeName(code: number): string {
  return RPC_CODE_NAMES[code] ?? `rpc_${code}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
