import { promptText } from '../../cost/prompt-text.js';
import { counterForModel, requestInputTokens } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { positiveInt, replyText } from './reply-text.js';
import { isObject, missingParameter, ok, type RespondContext } from './respond-context.js';
import { JSON_OBJECT_SCHEMA, structuredText } from './structured-output.js';

/**
 * `/v1/responses`: a `response` whose `output` is one assistant message with an `output_text` part.
 * `text.format` of type `json_schema` makes that text JSON valid against `text.format.schema`.
 */
export function respondResponse(ctx: RespondContext): Outcome {
  const { body, rng } = ctx;
  if (body.input === undefined && body.prompt === undefined) {
    return missingParameter('input');
  }
  const text = isObject(body.text) ? body.text : undefined;
  const format = text && isObject(text.format) ? text.format : undefined;
  if (format?.type === 'json_schema' && !isObject(format.schema)) {
    return missingParameter('text.format.schema');
  }
  const prompt = promptText('/v1/responses', body);
  const maxTokens = positiveInt(body.max_output_tokens);
  const counter = counterForModel(String(body.model ?? ''));
  let output: string;
  let truncated = false;
  if (format?.type === 'json_schema') output = structuredText(format.schema, prompt, rng);
  else if (format?.type === 'json_object') output = structuredText(JSON_OBJECT_SCHEMA, prompt, rng);
  else ({ text: output, truncated } = replyText(prompt, rng, counter, maxTokens));

  const inputTokens = requestInputTokens('/v1/responses', body, counter);
  const outputTokens = counter.count(output);
  return ok({
    id: `resp_${ctx.idTail}`,
    object: 'response',
    created_at: ctx.now,
    status: truncated ? 'incomplete' : 'completed',
    completed_at: truncated ? null : ctx.now,
    background: false,
    error: null,
    incomplete_details: truncated ? { reason: 'max_output_tokens' } : null,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: maxTokens ?? null,
    max_tool_calls: null,
    model: body.model,
    output: [
      {
        id: `msg_${ctx.idTail}`,
        type: 'message',
        status: truncated ? 'incomplete' : 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: output, annotations: [], logprobs: [] }],
      },
    ],
    parallel_tool_calls: body.parallel_tool_calls !== false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: body.store !== false,
    temperature: typeof body.temperature === 'number' ? body.temperature : 1,
    text: text ?? { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: typeof body.top_p === 'number' ? body.top_p : 1,
    truncation: 'disabled',
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: inputTokens + outputTokens,
    },
    metadata: isObject(body.metadata) ? body.metadata : {},
  });
}
