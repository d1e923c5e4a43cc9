/**
 * Input and output tokens of Batch API requests, counted as OpenAI bills them: which encoding a model
 * uses, the text of each endpoint's body, and the framing chat messages add. Pure functions over
 * request bodies (text-tokens.ts does the counting of text); prepare's encode threads, `estimate` and
 * the local server's responder all count through here, so their figures agree to the token.
 */
import { promptText } from './prompt-text.js';
import { type EncodingName, type TokenCounter, tokenCounter } from './text-tokens.js';

/** The encoding a model's text is billed in; `guessed` when the model is not one we know. */
export interface ModelEncoding {
  encoding: EncodingName;
  guessed: boolean;
}

/**
 * Model name prefixes and their encodings, after tiktoken's `model.py` (dated snapshots and fine-tunes,
 * `ft:gpt-4o-mini-2024-07-18:org::id`, share their base model's). Longer prefixes first where they overlap.
 */
const ENCODING_BY_PREFIX: readonly [string, EncodingName][] = [
  ['gpt-4o', 'o200k_base'],
  ['chatgpt-4o', 'o200k_base'],
  ['gpt-4.1', 'o200k_base'],
  ['gpt-4.5', 'o200k_base'],
  ['gpt-5', 'o200k_base'],
  ['o1', 'o200k_base'],
  ['o3', 'o200k_base'],
  ['o4', 'o200k_base'],
  ['omni-moderation', 'o200k_base'],
  ['gpt-4', 'cl100k_base'],
  ['gpt-3.5-turbo', 'cl100k_base'],
  ['gpt-35-turbo', 'cl100k_base'],
  ['text-embedding-3-', 'cl100k_base'],
  ['text-embedding-ada-002', 'cl100k_base'],
  ['davinci-002', 'cl100k_base'],
  ['babbage-002', 'cl100k_base'],
];

/**
 * The encoding of `model`. An unknown model gets o200k_base, the encoding of every current OpenAI
 * model, with `guessed: true` so callers can say the count is an assumption.
 *
 * @example
 * ```ts
 * encodingForModel('gpt-4o-mini-2024-07-18'); // { encoding: 'o200k_base', guessed: false }
 * encodingForModel('text-embedding-3-small'); // { encoding: 'cl100k_base', guessed: false }
 * ```
 */
export function encodingForModel(model: string): ModelEncoding {
  const base = model.startsWith('ft:') ? model.slice(3) : model;
  for (const [prefix, encoding] of ENCODING_BY_PREFIX) {
    if (base === prefix || (base.startsWith(prefix) && isNameBoundary(base, prefix))) {
      return { encoding, guessed: false };
    }
  }
  return { encoding: 'o200k_base', guessed: true };
}

/** `o1` names `o1-mini` and `gpt-5` names `gpt-5.2`, but `o1` does not name `o100`. */
function isNameBoundary(name: string, prefix: string): boolean {
  const next = name[prefix.length];
  return prefix.endsWith('-') || next === '-' || next === '.' || next === ':';
}

const countersByModel = new Map<string, TokenCounter>();

/** The token counter for `model`'s encoding (see encodingForModel), remembered per model. */
export function counterForModel(model: string): TokenCounter {
  let counter = countersByModel.get(model);
  if (!counter) {
    counter = tokenCounter(encodingForModel(model).encoding);
    countersByModel.set(model, counter);
  }
  return counter;
}

/**
 * OpenAI's published rule for chat messages (openai-cookbook, "How to count tokens with tiktoken",
 * checked against the API's `prompt_tokens` for gpt-3.5-turbo, gpt-4, gpt-4o and gpt-4o-mini):
 * every message costs 3 tokens besides its values, a `name` 1 more, and the reply is primed with 3.
 */
export const CHAT_TOKENS_PER_MESSAGE = 3;
export const CHAT_TOKENS_PER_NAME = 1;
export const CHAT_REPLY_PRIMING_TOKENS = 3;

/**
 * Input tokens of a request `body` for endpoint `url`, as the API bills them:
 * - `/v1/chat/completions`: each message's string values (role, content, name, …) plus the framing
 *   above; array content counts its text parts.
 * - `/v1/responses`: `instructions` as a system message and `input` (a string is one user message) as
 *   chat messages, with the same framing (OpenAI publishes no separate rule).
 * - `/v1/embeddings`, `/v1/completions` (`prompt`, `suffix`), `/v1/moderations`: the text of each input;
 *   an input given as token ids counts its ids.
 * Parts no published rule covers (tool definitions, JSON schemas of structured outputs, images, audio,
 * files) are left out; with `uncounted`, their names are added to it so a caller can say so.
 */
export function requestInputTokens(
  url: string,
  body: Record<string, unknown>,
  counter: TokenCounter,
  uncounted?: Set<string>,
): number {
  switch (url) {
    case '/v1/chat/completions':
      noteStructuredParts(body, uncounted);
      return chatTokens(body.messages, counter, uncounted);
    case '/v1/responses':
      noteStructuredParts(body, uncounted);
      return responsesTokens(body, counter, uncounted);
    case '/v1/completions':
      return (
        promptTokens(body.prompt, counter) +
        (typeof body.suffix === 'string' ? counter.count(body.suffix) : 0)
      );
    case '/v1/embeddings':
      return promptTokens(body.input, counter);
    case '/v1/moderations':
      return moderationTokens(body.input, counter, uncounted);
    case '/v1/messages':
    case '/v1beta/generateContent':
    case '/v1beta/embedContent':
      // Anthropic and Gemini publish no tokenizer: their prompt text, in the model's stand-in encoding
      // (as the local server counts it); the provider's own count may differ (docs/cost.md).
      uncounted?.add(`exact tokens of ${url} (stand-in tokenizer)`);
      return counter.count(promptText(url, body));
    default:
      uncounted?.add(`body of ${url}`);
      return 0;
  }
}

function chatTokens(messages: unknown, counter: TokenCounter, uncounted?: Set<string>): number {
  let tokens = CHAT_REPLY_PRIMING_TOKENS;
  if (!Array.isArray(messages)) return tokens;
  for (const message of messages) {
    if (!isObject(message)) continue;
    tokens += CHAT_TOKENS_PER_MESSAGE;
    for (const key of Object.keys(message)) {
      const value = message[key];
      if (typeof value === 'string') {
        tokens += counter.count(value);
        if (key === 'name') tokens += CHAT_TOKENS_PER_NAME;
      } else if (key === 'content' && Array.isArray(value)) {
        tokens += contentPartsTokens(value, counter, uncounted, 'messages[].content');
      } else if (value !== null && value !== undefined) {
        uncounted?.add(`messages[].${key}`);
      }
    }
  }
  return tokens;
}

function responsesTokens(
  body: Record<string, unknown>,
  counter: TokenCounter,
  uncounted?: Set<string>,
): number {
  let tokens = CHAT_REPLY_PRIMING_TOKENS;
  const message = (role: string, content: unknown) => {
    tokens += CHAT_TOKENS_PER_MESSAGE + counter.count(role);
    if (typeof content === 'string') tokens += counter.count(content);
    else if (Array.isArray(content))
      tokens += contentPartsTokens(content, counter, uncounted, 'input[].content');
  };
  if (typeof body.instructions === 'string') message('system', body.instructions);
  const input = body.input;
  if (typeof input === 'string') message('user', input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (
        isObject(item) &&
        typeof item.role === 'string' &&
        (item.type === undefined || item.type === 'message')
      ) {
        message(item.role, item.content);
      } else {
        uncounted?.add(`input[] of type ${isObject(item) ? String(item.type) : typeof item}`);
      }
    }
  }
  return tokens;
}

/** Text parts (`text`, `input_text`) of a content array; other parts are noted as uncounted. */
function contentPartsTokens(
  parts: unknown[],
  counter: TokenCounter,
  uncounted: Set<string> | undefined,
  at: string,
) {
  let tokens = 0;
  for (const part of parts) {
    if (typeof part === 'string') tokens += counter.count(part);
    else if (isObject(part) && typeof part.text === 'string') tokens += counter.count(part.text);
    else uncounted?.add(`${at}[] of type ${isObject(part) ? String(part.type) : typeof part}`);
  }
  return tokens;
}

/** A prompt or embeddings input: a string, token ids, or an array of either. */
function promptTokens(input: unknown, counter: TokenCounter): number {
  if (typeof input === 'string') return counter.count(input);
  if (!Array.isArray(input)) return 0;
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += counter.count(item);
    else if (typeof item === 'number') tokens += 1;
    else if (Array.isArray(item)) tokens += item.length;
  }
  return tokens;
}

function moderationTokens(input: unknown, counter: TokenCounter, uncounted?: Set<string>): number {
  if (Array.isArray(input) && input.some(isObject)) {
    return contentPartsTokens(input, counter, uncounted, 'input');
  }
  return promptTokens(input, counter);
}

/** Tool definitions and structured-output schemas are billed as input, by a rule OpenAI does not publish. */
function noteStructuredParts(body: Record<string, unknown>, uncounted?: Set<string>): void {
  if (!uncounted) return;
  if (Array.isArray(body.tools) && body.tools.length > 0) uncounted.add('tools');
  if (Array.isArray(body.functions) && body.functions.length > 0) uncounted.add('functions');
  const format = isObject(body.response_format) ? body.response_format : undefined;
  if (format?.type === 'json_schema') uncounted.add('response_format.json_schema');
  const text = isObject(body.text) && isObject(body.text.format) ? body.text.format : undefined;
  if (text?.type === 'json_schema') uncounted.add('text.format.schema');
}

/** Where an upper bound on a request's output tokens came from. */
export type OutputBoundSource =
  | 'max_completion_tokens'
  | 'max_tokens'
  | 'max_output_tokens'
  | 'generationConfig.maxOutputTokens'
  | 'default max_tokens of /v1/completions'
  | 'no output'
  | 'none';

/** The output tokens a request may be billed for at most, and which field says so. */
export interface OutputBound {
  /** Undefined when the request sets no limit (a caller needs an assumption then, e.g. `--expect-output-tokens`). */
  tokens: number | undefined;
  from: OutputBoundSource;
}

/**
 * The most output tokens a request can be billed for: its limit times the choices it asks for
 * (`n`; `best_of` for completions). Reasoning tokens count against these limits and bill as output.
 *
 * @example
 * ```ts
 * outputTokenBound('/v1/chat/completions', { max_tokens: 50, n: 2 }); // { tokens: 100, from: 'max_tokens' }
 * ```
 */
export function outputTokenBound(url: string, body: Record<string, unknown>): OutputBound {
  const choices = positiveInt(body.n) ?? 1;
  switch (url) {
    case '/v1/chat/completions': {
      const max = positiveInt(body.max_completion_tokens);
      if (max !== undefined) return { tokens: max * choices, from: 'max_completion_tokens' };
      const legacy = positiveInt(body.max_tokens);
      if (legacy !== undefined) return { tokens: legacy * choices, from: 'max_tokens' };
      return { tokens: undefined, from: 'none' };
    }
    case '/v1/responses': {
      const max = positiveInt(body.max_output_tokens);
      return max === undefined
        ? { tokens: undefined, from: 'none' }
        : { tokens: max, from: 'max_output_tokens' };
    }
    case '/v1/completions': {
      // The API's default max_tokens for completions is 16; best_of completions are all billed.
      const generated = Math.max(choices, positiveInt(body.best_of) ?? 1);
      const max = positiveInt(body.max_tokens);
      return max === undefined
        ? { tokens: 16 * generated, from: 'default max_tokens of /v1/completions' }
        : { tokens: max * generated, from: 'max_tokens' };
    }
    case '/v1/embeddings':
    case '/v1/moderations':
    case '/v1beta/embedContent':
      return { tokens: 0, from: 'no output' };
    case '/v1/messages': {
      // Anthropic requires max_tokens on every request.
      const max = positiveInt(body.max_tokens);
      return max === undefined ? { tokens: undefined, from: 'none' } : { tokens: max, from: 'max_tokens' };
    }
    case '/v1beta/generateContent': {
      const config = isObject(body.generationConfig) ? body.generationConfig : {};
      const max = positiveInt(config.maxOutputTokens);
      const candidates = positiveInt(config.candidateCount) ?? 1;
      return max === undefined
        ? { tokens: undefined, from: 'none' }
        : { tokens: max * candidates, from: 'generationConfig.maxOutputTokens' };
    }
    default:
      return { tokens: undefined, from: 'none' };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}
