/**
 * A per-record input-token count compiled from the same request template as prepare's encoded line:
 * the body is rebuilt as an object by the template (cheaper than parsing the encoded JSON back) and
 * counted by src/cost/tokens.ts. What counting inside prepare would cost: tokens-bench measures it
 * (docs/cost.md says why prepare does not count). Reads templates; writes nothing.
 */

import { counterForModel, requestInputTokens } from '../src/cost/tokens.js';
import { compileRequestBuilder, type RequestTemplateOptions } from '../src/transforms/request-builder.js';
import type { FieldResolver } from '../src/transforms/template.js';
import type { SourceRecord } from '../src/types.js';

/**
 * Compiles `options` into a function from a record to its request's input tokens, equal to
 * `requestInputTokens` of the request the encoder writes for that record.
 *
 * @example
 * ```ts
 * const tokensOf = compileInputTokenCounter({ model: 'gpt-4o-mini', prompt: 'Classify: {{text}}' });
 * tokensOf({ text: 'late again' }); // 3 + 3 of framing, and the tokens of `user` and of the content
 * ```
 */
export function compileInputTokenCounter(
  options: RequestTemplateOptions,
  resolve?: FieldResolver,
): (record: SourceRecord | readonly string[]) => number {
  const build = compileRequestBuilder(options, resolve);
  return function inputTokens(record) {
    const { url, body } = build(record);
    return requestInputTokens(url, body, counterForModel(typeof body.model === 'string' ? body.model : ''));
  };
}
