/**
 * Anthropic's Message Batches request dialect: one endpoint, `/v1/messages`, whose body takes the prompt as a
 * user message, `--system` as `system`, and requires `max_tokens`; results as `{ custom_id, result }`
 * lines; at most 100,000 requests and 256 MB per batch; `custom_id` of 1–64 `[A-Za-z0-9_-]`, other
 * ids sent as a digest of themselves (the ledger keeps both).
 */
import { createHash } from 'node:crypto';
import type { ExpectedOutput, OutputTemplate, RequestDialect } from './dialect.js';

/** `max_tokens` of a body template that sets none (Anthropic requires one). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;
/** The ids Anthropic takes as `custom_id`. */
export const ANTHROPIC_CUSTOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The prefix of an id batchpipe made for a user's id that Anthropic would refuse. */
const WIRE_ID_PREFIX = 'bp-';

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
  wireId(customId) {
    if (ANTHROPIC_CUSTOM_ID.test(customId)) return undefined;
    // 43 characters of base64url over SHA-256: a collision is out of reach, and the same id maps to
    // the same wire id in every process, so a file written before a crash is written alike after it.
    return WIRE_ID_PREFIX + createHash('sha256').update(customId).digest('base64url');
  },
};

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
