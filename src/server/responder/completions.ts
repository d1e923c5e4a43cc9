import { promptText } from '../../cost/prompt-text.js';
import { counterForModel, requestInputTokens } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { positiveInt, replyText } from './reply-text.js';
import { completionUsage, ok, type RespondContext } from './respond-context.js';

/** `/v1/completions`: a `text_completion` with one choice per `n`. */
export function respondCompletion(ctx: RespondContext): Outcome {
  const { body, rng } = ctx;
  const prompt = promptText('/v1/completions', body);
  const maxTokens = positiveInt(body.max_tokens) ?? 16;
  const n = positiveInt(body.n) ?? 1;
  const counter = counterForModel(String(body.model ?? ''));
  let completionTokens = 0;
  const choices = Array.from({ length: n }, (_, index) => {
    const reply = replyText(prompt, rng, counter, maxTokens, ' ');
    completionTokens += counter.count(reply.text);
    return {
      text: reply.text,
      index,
      logprobs: null,
      finish_reason: reply.truncated ? 'length' : 'stop',
    };
  });
  return ok({
    id: `cmpl-${ctx.idTail}`,
    object: 'text_completion',
    created: ctx.now,
    model: body.model,
    choices,
    usage: completionUsage(requestInputTokens('/v1/completions', body, counter), completionTokens),
    system_fingerprint: 'fp_batchpipe_local',
  });
}
