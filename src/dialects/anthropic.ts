/**
 * Anthropic's Message Batches request dialect: one endpoint, `/v1/messages`, whose body takes the prompt as a
 * user message, `--system` as `system`, and requires `max_tokens`; results as `{ custom_id, result }`
 * lines; at most 100,000 requests and 256 MB per batch; `custom_id` of 1–64 `[A-Za-z0-9_-]`.
 *
 * An id Anthropic would refuse (a space, a dot, 65+ characters) is sent as a wire id made from it:
 * `bp-` and its UTF-8 bytes in base64url when that fits in 64 characters (read back from the id
 * alone), else `bh-` and its SHA-256 in base64url (read back by hashing the ledger's ids). A valid id
 * that starts with either prefix is encoded too, so a wire id never stands for two ids.
 */
import { createHash } from 'node:crypto';
import type { ExpectedOutput, OutputTemplate, RequestDialect } from './dialect.js';

/** `max_tokens` of a body template that sets none (Anthropic requires one). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;
/** The ids Anthropic takes as `custom_id`. */
export const ANTHROPIC_CUSTOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Wire ids that carry the user's id (base64url), and those that carry its SHA-256. */
const ENCODED_PREFIX = 'bp-';
const HASHED_PREFIX = 'bh-';
/** The longest id, in UTF-8 bytes, whose base64url fits in a custom_id after its prefix. */
const MAX_ENCODED_BYTES = 45;

export const ANTHROPIC_DIALECT: RequestDialect = {
  name: 'anthropic',
  endpoints: ['/v1/messages'],
  systemEndpoints: ['/v1/messages'],
  limits: { maxLines: 100_000, maxBytes: 256 * 1024 * 1024 },

  placePrompt(_endpoint, body, prompt, system) {
    const earlier = Array.isArray(body.messages) ? body.messages : [];
    body.messages = [...earlier, { role: 'user', content: prompt }];
    if (system !== undefined) body.system = system;
  },
  completeBody(_endpoint, body) {
    body.max_tokens ??= ANTHROPIC_DEFAULT_MAX_TOKENS;
  },
  wireId: anthropicWireId,
};

/** The custom_id Anthropic is sent for `customId`; undefined when it takes the id as it is. */
export function anthropicWireId(customId: string): string | undefined {
  const reserved = customId.startsWith(ENCODED_PREFIX) || customId.startsWith(HASHED_PREFIX);
  if (ANTHROPIC_CUSTOM_ID.test(customId) && !reserved) return undefined;
  const bytes = Buffer.from(customId, 'utf8');
  if (bytes.length <= MAX_ENCODED_BYTES) return ENCODED_PREFIX + bytes.toString('base64url');
  // 43 characters of SHA-256: no collision within reach, and the same in every process, so a file
  // written again after a crash carries the same ids.
  return HASHED_PREFIX + createHash('sha256').update(customId).digest('base64url');
}

/**
 * The user's id of a custom_id read back: a plain id is itself, a `bp-` id decodes, a `bh-` id is
 * looked up by `hashed` (the ledger's ids that were hashed), else undefined.
 */
export function anthropicUserId(
  wireId: string,
  hashed: ((wireId: string) => string | undefined) | undefined,
): string | undefined {
  if (wireId.startsWith(ENCODED_PREFIX)) {
    return Buffer.from(wireId.slice(ENCODED_PREFIX.length), 'base64url').toString('utf8');
  }
  if (wireId.startsWith(HASHED_PREFIX)) return hashed?.(wireId);
  return wireId;
}

/** Whether ids of `bytes` UTF-8 bytes and more may be sent hashed (shorter ones never are). */
export const ANTHROPIC_HASHED_MIN_BYTES = MAX_ENCODED_BYTES + 1;

/** A forced tool's input, or a JSON-schema `output_config.format`'s JSON, else text. */
export function anthropicExpectedOutput(template: OutputTemplate): ExpectedOutput {
  const body = isObject(template.body) ? template.body : {};
  if (forcedTool(body)) return { kind: 'tool_call', list: false };
  const format = isObject(body.output_config) ? body.output_config.format : undefined;
  if (isObject(format) && format.type === 'json_schema') return { kind: 'json', list: false };
  return { kind: 'text', list: false };
}

/** The forced tool's `input_schema`, or the JSON-schema format's schema. */
export function anthropicRequestedSchema(template: OutputTemplate): unknown {
  const body = isObject(template.body) ? template.body : {};
  const tool = forcedTool(body);
  if (tool) return tool.input_schema;
  const format = isObject(body.output_config) ? body.output_config.format : undefined;
  return isObject(format) && format.type === 'json_schema' ? format.schema : undefined;
}

/** The tool `tool_choice` forces: the one it names, or the first for `{ type: 'any' }`. */
function forcedTool(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const choice = isObject(body.tool_choice) ? body.tool_choice : undefined;
  if (choice?.type === 'any') return tools[0];
  if (choice?.type === 'tool') return tools.find((t) => t.name === choice.name);
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
