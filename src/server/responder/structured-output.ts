import type { Rng } from '../util/prng.js';
import { promptWords } from './reply-text.js';
import { instanceForSchema } from './schema-instance.js';

/**
 * The assistant text for a structured-output request: JSON text of an instance of `schema`
 * (`{}`-shaped when the request only asked for a JSON object), with strings built from the prompt's words.
 */
export function structuredText(schema: unknown, prompt: string, rng: Rng): string {
  const value = instanceForSchema(schema ?? { type: 'object' }, { rng, words: promptWords(prompt) });
  return JSON.stringify(value);
}

/** The schema a plain `json_object` request gets an instance of. */
export const JSON_OBJECT_SCHEMA = {
  type: 'object',
  properties: { answer: { type: 'string' } },
  required: ['answer'],
};
