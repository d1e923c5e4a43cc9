import { lastUserText, promptText } from '../../cost/prompt-text.js';
import { counterForModel, requestInputTokens } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { positiveInt, replyText } from './reply-text.js';
import { completionUsage, isObject, missingParameter, ok, type RespondContext } from './respond-context.js';
import { JSON_OBJECT_SCHEMA, structuredText } from './structured-output.js';

/**
 * `/v1/chat/completions`: a `chat.completion` with one assistant message per choice (`n`). With
 * `response_format: { type: 'json_schema' }` the content is JSON valid against the schema; with a
 * required or named function tool, the message is a tool call whose arguments fit the tool's parameters.
 */
export function respondChatCompletion(ctx: RespondContext): Outcome {
  const { body, rng } = ctx;
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return missingParameter('messages');
  }
  const format = isObject(body.response_format) ? body.response_format : undefined;
  if (format?.type === 'json_schema' && !isObject(format.json_schema)) {
    return missingParameter('response_format.json_schema');
  }
  const prompt = promptText('/v1/chat/completions', body);
  const userText = lastUserText(body.messages) || prompt;
  const maxTokens = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens);
  const tool = forcedTool(body);
  const n = positiveInt(body.n) ?? 1;
  const counter = counterForModel(String(body.model ?? ''));

  let completionTokens = 0;
  const choices = Array.from({ length: n }, (_, index) => {
    if (tool) {
      const args = structuredText(tool.parameters, userText, rng);
      completionTokens += counter.count(args);
      const call = {
        id: `call_${ctx.idTail.slice(0, 24)}${index}`,
        type: 'function',
        function: { name: tool.name, arguments: args },
      };
      return {
        index,
        message: { role: 'assistant', content: null, refusal: null, tool_calls: [call], annotations: [] },
        logprobs: null,
        finish_reason: 'tool_calls',
      };
    }
    let content: string;
    let finish = 'stop';
    if (format?.type === 'json_schema' && isObject(format.json_schema)) {
      content = structuredText(format.json_schema.schema, userText, rng);
    } else if (format?.type === 'json_object') {
      content = structuredText(JSON_OBJECT_SCHEMA, userText, rng);
    } else {
      const reply = replyText(userText, rng, counter, maxTokens);
      content = reply.text;
      if (reply.truncated) finish = 'length';
    }
    completionTokens += counter.count(content);
    return {
      index,
      message: { role: 'assistant', content, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: finish,
    };
  });

  return ok({
    id: `chatcmpl-${ctx.idTail}`,
    object: 'chat.completion',
    created: ctx.now,
    model: body.model,
    choices,
    usage: completionUsage(requestInputTokens('/v1/chat/completions', body, counter), completionTokens),
    service_tier: 'default',
    system_fingerprint: 'fp_batchpipe_local',
  });
}

/** The function tool the request forces (`tool_choice: 'required'` or a named function), if any. */
function forcedTool(body: Record<string, unknown>): { name: string; parameters: unknown } | undefined {
  if (!Array.isArray(body.tools)) return undefined;
  const functions = body.tools
    .map((t) => (isObject(t) && t.type === 'function' && isObject(t.function) ? t.function : undefined))
    .filter((f): f is Record<string, unknown> => f !== undefined && typeof f.name === 'string');
  const choice = body.tool_choice;
  let chosen: Record<string, unknown> | undefined;
  if (choice === 'required') chosen = functions[0];
  else if (isObject(choice) && isObject(choice.function)) {
    const name = choice.function.name;
    chosen = functions.find((f) => f.name === name);
  }
  return chosen
    ? { name: chosen.name as string, parameters: chosen.parameters ?? { type: 'object', properties: {} } }
    : undefined;
}
