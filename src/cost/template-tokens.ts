/**
 * The per-record input-token count prepare's encoder needs, compiled from the same request template
 * as the encoded line: the body is rebuilt as an object by the template (cheaper than parsing the
 * encoded JSON back) and counted by tokens.ts. Reads templates; writes nothing.
 */

import { compileRequestBuilder, type RequestTemplateOptions } from '../transforms/request-builder.js';
import type { FieldResolver } from '../transforms/template.js';
import type { SourceRecord } from '../types.js';
import { counterForModel, requestInputTokens } from './tokens.js';

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
