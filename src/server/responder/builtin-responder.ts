import { createHash } from 'node:crypto';
import { geminiMethod } from '../../cost/prompt-text.js';
import { type Executor, errorResponse, type Outcome } from '../execution.js';
import { createClock, type ServerClock } from '../util/clock.js';
import { createRng, hexHash } from '../util/prng.js';
import { respondAnthropicMessage } from './anthropic-messages.js';
import { respondChatCompletion } from './chat-completions.js';
import { respondCompletion } from './completions.js';
import { respondEmbeddings } from './embeddings.js';
import { respondEmbedContent, respondGenerateContent } from './gemini-content.js';
import { respondImages, respondVideo } from './media.js';
import { respondModeration } from './moderations.js';
import type { RespondContext } from './respond-context.js';
import { respondResponse } from './responses.js';

/**
 * The deterministic built-in model: answers every supported endpoint in its own response shape, the
 * OpenAI endpoints (images and videos as placeholders), Anthropic's `/v1/messages` and Gemini's `generateContent` and `embedContent`.
 * The answer depends only on the seed, the url and the body (equal requests get equal answers);
 * response ids also depend on the batch and custom_id so they stay unique.
 */
export function createBuiltinResponder(seed: number, clock: ServerClock = createClock()): Executor {
  return async (request) =>
    respond(seed, request.url, request.body, hexHash(request.batchId, request.customId), clock.nowSeconds());
}

/** The pure core of the built-in responder. */
export function respond(
  seed: number,
  url: string,
  body: Record<string, unknown>,
  idTail: string,
  now: number = Math.floor(Date.now() / 1000),
): Outcome {
  const ctx: RespondContext = {
    body,
    rng: createRng(seed, url, bodyHash(body)),
    idTail,
    now,
  };
  const gemini = geminiMethod(url);
  if (gemini?.method === 'generateContent') return respondGenerateContent(ctx, gemini.model);
  if (gemini?.method === 'embedContent') return respondEmbedContent(ctx, seed, gemini.model);
  switch (url) {
    case '/v1/messages':
      return respondAnthropicMessage(ctx);
    case '/v1/chat/completions':
      return respondChatCompletion(ctx);
    case '/v1/responses':
      return respondResponse(ctx);
    case '/v1/completions':
      return respondCompletion(ctx);
    case '/v1/embeddings':
      return respondEmbeddings(ctx, seed);
    case '/v1/moderations':
      return respondModeration(ctx);
    case '/v1/images/generations':
    case '/v1/images/edits':
      return respondImages(ctx, url);
    case '/v1/videos':
      return respondVideo(ctx);
    default:
      return errorResponse(404, `Invalid URL (POST ${url})`, 'invalid_request_error');
  }
}

/** A hash of the body for seeding; native, since bodies can be long and this runs per request. */
function bodyHash(body: Record<string, unknown>): number {
  return createHash('sha1').update(JSON.stringify(body)).digest().readUInt32LE(0);
}
