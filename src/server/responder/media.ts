/**
 * Placeholder answers for OpenAI's image and video batch endpoints: objects of the published shapes
 * (`ImagesResponse`, `VideoResource`) holding a 1×1 PNG, so that clients can run such batches
 * offline. Owns only these two shapes; counts tokens with the shared prompt-text module.
 */
import { promptText } from '../../cost/prompt-text.js';
import { counterForModel } from '../../cost/tokens.js';
import type { Outcome } from '../execution.js';
import { positiveInt } from './reply-text.js';
import { missingParameter, ok, type RespondContext } from './respond-context.js';

/** A transparent 1×1 PNG: the smallest image every decoder accepts. */
const PLACEHOLDER_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

/** Output tokens OpenAI bills for one low-quality square image. */
const IMAGE_OUTPUT_TOKENS = 272;

/** `/v1/images/generations` and `/v1/images/edits`: `n` placeholder images with token usage. */
export function respondImages(ctx: RespondContext, url: string): Outcome {
  const { body } = ctx;
  if (typeof body.prompt !== 'string' || body.prompt.length === 0) return missingParameter('prompt');
  const n = positiveInt(body.n) ?? 1;
  const inputTokens = counterForModel(String(body.model ?? '')).count(promptText(url, body));
  const outputTokens = n * IMAGE_OUTPUT_TOKENS;
  return ok({
    created: ctx.now,
    data: Array.from({ length: n }, () => ({ b64_json: PLACEHOLDER_PNG })),
    background: 'opaque',
    output_format: 'png',
    size: '1024x1024',
    quality: 'low',
    usage: {
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      total_tokens: inputTokens + outputTokens,
      input_tokens_details: { text_tokens: inputTokens, image_tokens: 0 },
      output_tokens_details: { image_tokens: outputTokens, text_tokens: 0 },
    },
  });
}

/** `/v1/videos`: the video job, already completed (the placeholder has no content to download). */
export function respondVideo(ctx: RespondContext): Outcome {
  const { body } = ctx;
  if (typeof body.prompt !== 'string' || body.prompt.length === 0) return missingParameter('prompt');
  return ok({
    id: `video_${ctx.idTail}`,
    object: 'video',
    model: typeof body.model === 'string' ? body.model : 'sora-2',
    status: 'completed',
    progress: 100,
    created_at: ctx.now,
    completed_at: ctx.now,
    expires_at: ctx.now + 24 * 3600,
    prompt: body.prompt,
    size: typeof body.size === 'string' ? body.size : '720x1280',
    seconds: typeof body.seconds === 'string' ? body.seconds : '4',
    remixed_from_video_id: null,
    error: null,
  });
}
