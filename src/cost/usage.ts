/**
 * OpenAI's `usage` objects (chat and text completions, responses, embeddings) read into the
 * provider-neutral {@link Usage} of src/types.ts. Pure functions; the apply path (line-outcome.ts)
 * and `actualCost` read usage through here. Other providers map theirs onto the same type.
 */
import type { Usage } from '../types.js';

/**
 * The tokens an OpenAI `usage` object bills: `prompt_tokens` / `input_tokens`, their details'
 * `cached_tokens` and `cache_write_tokens`, `completion_tokens` / `output_tokens` (which include the
 * details' `reasoning_tokens`). Missing or malformed counts are 0.
 *
 * @example
 * ```ts
 * openAiUsage({ prompt_tokens: 1200, prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens: 80 });
 * // → { inputTokens: 1200, cachedInputTokens: 1024, cacheWriteTokens: 0, outputTokens: 80, reasoningTokens: 0 }
 * ```
 */
export function openAiUsage(usage: unknown): Usage {
  const u = isObject(usage) ? usage : {};
  const inputDetails = objectAt(u, 'prompt_tokens_details') ?? objectAt(u, 'input_tokens_details');
  const outputDetails = objectAt(u, 'completion_tokens_details') ?? objectAt(u, 'output_tokens_details');
  return {
    inputTokens: count(u.prompt_tokens) ?? count(u.input_tokens) ?? 0,
    cachedInputTokens: count(inputDetails?.cached_tokens) ?? 0,
    cacheWriteTokens: count(inputDetails?.cache_write_tokens) ?? 0,
    outputTokens: count(u.completion_tokens) ?? count(u.output_tokens) ?? 0,
    reasoningTokens: count(outputDetails?.reasoning_tokens) ?? 0,
  };
}

/** The usage of an OpenAI response body, or null when it reports none (moderations). */
export function openAiResponseUsage(body: unknown): Usage | null {
  return isObject(body) && isObject(body.usage) ? openAiUsage(body.usage) : null;
}

/**
 * The tokens an Anthropic `usage` object bills: `input_tokens` counts only the uncached input, so
 * the cache reads (`cache_read_input_tokens`) and writes (`cache_creation_input_tokens`) are added to
 * it and kept apart as well.
 *
 * @example
 * ```ts
 * anthropicUsage({ input_tokens: 20, cache_read_input_tokens: 1000, cache_creation_input_tokens: 0, output_tokens: 80 });
 * // → { inputTokens: 1020, cachedInputTokens: 1000, cacheWriteTokens: 0, outputTokens: 80, reasoningTokens: 0 }
 * ```
 */
export function anthropicUsage(usage: unknown): Usage {
  const u = isObject(usage) ? usage : {};
  const cachedInputTokens = count(u.cache_read_input_tokens) ?? 0;
  const cacheWriteTokens = count(u.cache_creation_input_tokens) ?? 0;
  return {
    inputTokens: (count(u.input_tokens) ?? 0) + cachedInputTokens + cacheWriteTokens,
    cachedInputTokens,
    cacheWriteTokens,
    outputTokens: count(u.output_tokens) ?? 0,
    reasoningTokens: 0,
  };
}

/** The usage of an Anthropic message, or null when it reports none. */
export function anthropicMessageUsage(message: unknown): Usage | null {
  return isObject(message) && isObject(message.usage) ? anthropicUsage(message.usage) : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectAt(value: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = value[key];
  return isObject(v) ? v : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}
