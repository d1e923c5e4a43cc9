/**
 * The prompt text of each endpoint's request body: what the local server's responder answers about and
 * counts as usage, and what the client counts for Anthropic and Gemini requests (src/cost/tokens.ts), so
 * that estimate and actual agree offline. Pure; imports nothing.
 */

/** The URL the engine gives a Gemini request: `/v1beta/models/{model}:generateContent` or `:embedContent`. */
const GEMINI_URL = /^\/v1beta\/(models\/[^/:]+):(generateContent|embedContent)$/;

/** The model (`models/…`) and method of a Gemini request URL, or undefined for any other URL. */
export function geminiMethod(
  url: string,
): { model: string; method: 'generateContent' | 'embedContent' } | undefined {
  const match = GEMINI_URL.exec(url);
  return match
    ? { model: match[1] as string, method: match[2] as 'generateContent' | 'embedContent' }
    : undefined;
}

/**
 * The prompt text of a request body, per endpoint: what the built-in responder answers about (its token
 * counts come from src/cost/tokens.ts). Unknown shapes contribute nothing rather than failing.
 */
export function promptText(endpoint: string, body: Record<string, unknown>): string {
  // A request file's line names the method alone (`/v1beta/generateContent`); the engine, the model too.
  const method =
    geminiMethod(endpoint)?.method ?? /^\/v1beta\/(generateContent|embedContent)$/.exec(endpoint)?.[1];
  const gemini = method === undefined ? undefined : { method };
  if (gemini?.method === 'generateContent') {
    return [contentsText([body.systemInstruction]), contentsText(body.contents)].filter(Boolean).join('\n');
  }
  if (gemini?.method === 'embedContent') return contentsText([body.content]);
  switch (endpoint) {
    case '/v1/messages':
      return [textOf(body.system), messagesText(body.messages)].filter(Boolean).join('\n');
    case '/v1/chat/completions':
      return messagesText(body.messages);
    case '/v1/responses':
      return [textOf(body.instructions), inputItemsText(body.input)].filter(Boolean).join('\n');
    case '/v1/completions':
    case '/v1/images/generations':
    case '/v1/images/edits':
    case '/v1/videos':
      return textOf(body.prompt);
    case '/v1/embeddings':
    case '/v1/moderations':
      return inputItemsText(body.input);
    default:
      return '';
  }
}

/** The inputs of an embeddings or moderations request, one string each. */
export function inputList(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  // An array of token ids is one input; an array of strings or token arrays is many.
  if (input.every((x) => typeof x === 'number')) return [input.join(' ')];
  return input.map((x) => (Array.isArray(x) ? x.join(' ') : textOf(x)));
}

/** The text of Gemini `Content`s (`{ role, parts: [{ text }] }`), or of plain strings among them. */
export function contentsText(contents: unknown): string {
  if (!Array.isArray(contents)) return '';
  return contents
    .map((c) => (typeof c === 'string' ? c : textOf((c as { parts?: unknown } | null)?.parts)))
    .filter(Boolean)
    .join('\n');
}

/** The last user message's text, which the built-in responder replies to. */
export function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown } | null;
    if (m && m.role === 'user') return textOf(m.content);
  }
  return '';
}

function messagesText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  return messages.map((m) => textOf((m as { content?: unknown } | null)?.content)).join('\n');
}

function inputItemsText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  return input
    .map((item) => {
      if (typeof item === 'string') return item;
      if (typeof item === 'number') return String(item);
      if (Array.isArray(item)) return item.join(' ');
      const obj = item as { content?: unknown; text?: unknown } | null;
      return textOf(obj?.content ?? obj?.text);
    })
    .join('\n');
}

/** Text of a string, an array of strings, or content parts (`{ type: 'text' | 'input_text', text }`). */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return '';
  return value
    .map((part) => {
      if (typeof part === 'string') return part;
      const text = (part as { text?: unknown } | null)?.text;
      return typeof text === 'string' ? text : '';
    })
    .join('\n');
}
