import { lastUserText, promptText } from '../../cost/prompt-text.js';
import type { TokenCounter } from '../../cost/text-tokens.js';
import { counterForModel } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { hash32 } from '../util/prng.js';
import { positiveInt, promptWords, replyText } from './reply-text.js';
import { isObject, ok, type RespondContext } from './respond-context.js';
import { instanceForSchema } from './schema-instance.js';
import { structuredText } from './structured-output.js';

/**
 * Anthropic's `/v1/messages`: a `message` with one content block. A tool forced by `tool_choice`
 * (`{ type: 'tool', name }`, or `{ type: 'any' }` for the first tool) gives a `tool_use` block whose
 * `input` is valid against the tool's `input_schema`; `output_config.format` of type `json_schema` gives
 * a text block of JSON valid against its schema; otherwise a short text cut at `max_tokens`.
 * `usage` counts tokens with the model's encoding (o200k_base for Claude, a stand-in: Anthropic's tokenizer is not public); a prompt with `cache_control` blocks reports the text up
 * to the last of them as cached, read or written (which one depends on the request, deterministically).
 */
export function respondAnthropicMessage(ctx: RespondContext): Outcome {
  const { body, rng } = ctx;
  if (typeof body.model !== 'string' || body.model === '') return invalid('model: Field required');
  const maxTokens = positiveInt(body.max_tokens);
  if (maxTokens === undefined) return invalid('max_tokens: Field required (an integer of at least 1)');
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return invalid('messages: at least one message is required');
  }
  const prompt = promptText('/v1/messages', body);
  const counter = counterForModel(body.model);
  const userText = lastUserText(body.messages) || prompt;
  const tool = forcedTool(body);
  if (tool === null) return invalid('tool_choice: names a tool that is not in tools');
  const format = isObject(body.output_config) ? body.output_config.format : undefined;

  let content: Array<Record<string, unknown>>;
  let stopReason: string;
  let outputText: string;
  if (tool) {
    const input = instanceForSchema(tool.schema, { rng, words: promptWords(userText) });
    outputText = JSON.stringify(input);
    content = [
      {
        type: 'tool_use',
        id: `toolu_${ctx.idTail.slice(0, 24)}`,
        name: tool.name,
        input,
        caller: { type: 'direct' },
      },
    ];
    stopReason = 'tool_use';
  } else if (isObject(format) && format.type === 'json_schema') {
    if (!isObject(format.schema)) return invalid('output_config.format.schema: Field required');
    outputText = structuredText(format.schema, userText, rng);
    content = [{ type: 'text', text: outputText, citations: null }];
    stopReason = 'end_turn';
  } else {
    const reply = replyText(userText, rng, counter, maxTokens);
    outputText = reply.text;
    content = [{ type: 'text', text: reply.text, citations: null }];
    stopReason = reply.truncated ? 'max_tokens' : 'end_turn';
  }

  return ok({
    id: `msg_${ctx.idTail}`,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: messageUsage(body, prompt, counter.count(outputText), ctx.idTail, counter),
  });
}

/** An `invalid_request_error` answer, as Anthropic words a body it refuses. */
function invalid(message: string): Outcome {
  return {
    kind: 'response',
    statusCode: 400,
    body: { type: 'error', error: { type: 'invalid_request_error', message }, request_id: null },
  };
}

/**
 * The tool `tool_choice` forces: `{ type: 'tool', name }` or `{ type: 'any' }` (the first tool with an
 * input schema). Undefined when no tool is forced; null when the named tool is not in `tools`.
 */
function forcedTool(body: Record<string, unknown>): { name: string; schema: unknown } | undefined | null {
  const choice = body.tool_choice;
  if (!isObject(choice) || (choice.type !== 'tool' && choice.type !== 'any')) return undefined;
  const tools = (Array.isArray(body.tools) ? body.tools : []).filter(
    (t): t is Record<string, unknown> => isObject(t) && typeof t.name === 'string',
  );
  const chosen =
    choice.type === 'tool'
      ? tools.find((t) => t.name === choice.name)
      : tools.find((t) => isObject(t.input_schema));
  if (!chosen) return null;
  return { name: chosen.name as string, schema: chosen.input_schema ?? { type: 'object', properties: {} } };
}

/**
 * Anthropic's `usage`, with the cache fields filled for prompts that mark blocks `cache_control`, so
 * a client's cost code meets cache reads and writes offline.
 */
function messageUsage(
  body: Record<string, unknown>,
  prompt: string,
  outputTokens: number,
  idTail: string,
  counter: TokenCounter,
) {
  // Tool definitions are part of the prompt Anthropic bills.
  const tools = Array.isArray(body.tools) ? body.tools.map((t) => JSON.stringify(t)).join('\n') : '';
  const inputTokens = counter.count(tools ? `${tools}\n${prompt}` : prompt);
  const cache = cachedPrefix(body);
  const cached = Math.min(inputTokens, counter.count(cache.text));
  const read = cached > 0 && hash32(idTail, 'cache') % 2 === 0;
  const written = cached > 0 && !read ? cached : 0;
  return {
    input_tokens: inputTokens - cached,
    output_tokens: outputTokens,
    cache_creation_input_tokens: written,
    cache_read_input_tokens: read ? cached : 0,
    cache_creation: {
      ephemeral_5m_input_tokens: cache.ttl === '1h' ? 0 : written,
      ephemeral_1h_input_tokens: cache.ttl === '1h' ? written : 0,
    },
    inference_geo: 'global',
    output_tokens_details: { thinking_tokens: 0 },
    server_tool_use: null,
    service_tier: 'batch',
    speed: 'standard',
  };
}

/**
 * The prompt text up to and including the last block marked `cache_control`, in the order Anthropic
 * caches a prompt (tools, system, messages), and that mark's `ttl`.
 */
function cachedPrefix(body: Record<string, unknown>): { text: string; ttl: unknown } {
  const pieces: Array<{ text: string; mark: unknown }> = [];
  const add = (block: unknown, text: string) =>
    pieces.push({ text, mark: isObject(block) ? block.cache_control : undefined });
  for (const tool of Array.isArray(body.tools) ? body.tools : []) add(tool, JSON.stringify(tool));
  if (Array.isArray(body.system))
    for (const b of body.system) add(b, isObject(b) ? String(b.text ?? '') : '');
  for (const message of Array.isArray(body.messages) ? body.messages : []) {
    const content = isObject(message) ? message.content : undefined;
    if (Array.isArray(content)) for (const b of content) add(b, isObject(b) ? String(b.text ?? '') : '');
  }
  const last = pieces.findLastIndex((p) => isObject(p.mark));
  if (last === -1) return { text: '', ttl: undefined };
  const mark = pieces[last]?.mark as Record<string, unknown>;
  return {
    text: pieces
      .slice(0, last + 1)
      .map((p) => p.text)
      .join('\n'),
    ttl: mark.ttl,
  };
}
