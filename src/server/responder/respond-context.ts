import { errorResponse, type Outcome } from '../execution.js';
import type { Rng } from '../util/prng.js';

/** What an endpoint's responder gets: the request body and deterministic randomness for it. */
export interface RespondContext {
  body: Record<string, unknown>;
  /** Seeded from the server seed and the request (custom_id and body), so answers repeat exactly. */
  rng: Rng;
  /** 32 hex characters, stable for the request: the tail of response ids. */
  idTail: string;
  /** Unix seconds for `created`. */
  now: number;
}

/** The shape of a JSON schema response format, wherever the endpoint keeps it. */
export interface JsonSchemaFormat {
  schema: unknown;
}

export { isObject } from '../util/is-object.js';

/** A 200 response with `body`. */
export function ok(body: unknown): Outcome {
  return { kind: 'response', statusCode: 200, body };
}

/** The 400 OpenAI answers when a required body field is missing. */
export function missingParameter(param: string): Outcome {
  return errorResponse(
    400,
    `Missing required parameter: '${param}'.`,
    'invalid_request_error',
    'missing_required_parameter',
    param,
  );
}

/** `usage` of chat and text completions (`CompletionUsage`), details zeroed. */
export function completionUsage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}
