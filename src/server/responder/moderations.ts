import { inputList } from '../../cost/prompt-text.js';
import type { Outcome } from '../execution.js';
import { missingParameter, ok, type RespondContext } from './respond-context.js';

const CATEGORIES = [
  'hate',
  'hate/threatening',
  'harassment',
  'harassment/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;

/** `/v1/moderations`: one unflagged result per input, with small deterministic scores. */
export function respondModeration(ctx: RespondContext): Outcome {
  const { body, rng } = ctx;
  const inputs = inputList(body.input);
  if (body.input === undefined || inputs.length === 0) {
    return missingParameter('input');
  }
  const results = inputs.map(() => {
    const categories: Record<string, boolean> = {};
    const scores: Record<string, number> = {};
    const applied: Record<string, string[]> = {};
    for (const category of CATEGORIES) {
      categories[category] = false;
      scores[category] = Math.round(rng.next() * 1e6) / 1e8;
      applied[category] = ['text'];
    }
    return { flagged: false, categories, category_scores: scores, category_applied_input_types: applied };
  });
  return ok({
    id: `modr-${ctx.idTail}`,
    model: typeof body.model === 'string' ? body.model : 'omni-moderation-latest',
    results,
  });
}
