import type { TokenCounter } from '../../cost/text-tokens.js';
import type { Rng } from '../util/prng.js';

const OPENERS = ['Noted', 'In short', 'Summary', 'Answer', 'Local reply'];
const STOP_WORDS = new Set(
  'the and for with that this from have your you are was were will what which about into their there them then than they been also just more some such only very can not but all any its our out'.split(
    ' ',
  ),
);

/** Only the start of a long prompt is mined for words: a reply needs a handful, and this runs per request. */
const SCAN_CHARS = 600;

/** Distinct words of a prompt's start, longest first (ties in order of appearance), for replies and JSON strings. */
export function promptWords(prompt: string, limit = 24): string[] {
  const seen = new Set<string>();
  const words: string[] = [];
  for (const match of prompt
    .slice(0, SCAN_CHARS)
    .toLowerCase()
    .matchAll(/[\p{L}\p{N}][\p{L}\p{N}'-]{2,}/gu)) {
    const word = match[0];
    if (STOP_WORDS.has(word) || seen.has(word)) continue;
    seen.add(word);
    words.push(word);
  }
  return words
    .map((word, index) => ({ word, index }))
    .sort((a, b) => b.word.length - a.word.length || a.index - b.index)
    .slice(0, limit)
    .map((w) => w.word);
}

/** A reply and whether it was cut at the token budget. */
export interface ReplyText {
  text: string;
  truncated: boolean;
}

/**
 * A short deterministic reply derived from the prompt, e.g. `Summary: baggage, delayed, crew.`, after
 * `lead`, cut to its first `maxTokens` tokens (in the model's encoding, `counter`) when given.
 */
export function replyText(
  prompt: string,
  rng: Rng,
  counter: TokenCounter,
  maxTokens?: number,
  lead = '',
): ReplyText {
  const words = promptWords(prompt);
  const picked: string[] = [];
  const count = Math.min(words.length, rng.int(3, 6));
  const pool = [...words];
  for (let i = 0; i < count && pool.length > 0; i++)
    picked.push(pool.splice(rng.int(0, pool.length - 1), 1)[0] as string);
  const text = `${lead}${rng.pick(OPENERS)}: ${picked.length > 0 ? picked.join(', ') : 'nothing to go on'}.`;
  if (maxTokens !== undefined && maxTokens > 0 && counter.count(text) > maxTokens) {
    return { text: counter.prefixWithin(text, maxTokens), truncated: true };
  }
  return { text, truncated: false };
}

/** A positive integer option of a request body (e.g. `max_tokens`), or undefined. */
export function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}
