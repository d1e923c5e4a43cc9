import { type Executor, errorResponse, type Outcome } from '../execution.js';
import { unitHash } from '../util/prng.js';

/**
 * `--fail-rate F`: that fraction of requests is answered, inside the output, with an error instead of
 * being executed, in the request's API: a 500 `server_error` or a 429 `rate_limit_exceeded` (OpenAI), a
 * 500 `api_error` or a 529 `overloaded_error` (Anthropic), a 500 `INTERNAL` or a 429
 * `RESOURCE_EXHAUSTED` (Gemini). Which requests fail depends only on the seed, the batch and the
 * custom_id: stable across restarts, yet a retry in a new batch gets a fresh draw.
 */
export function withFailRate(inner: Executor, failRate: number, seed: number): Executor {
  if (!(failRate > 0)) return inner;
  return async (request, signal) => {
    const draw = unitHash(seed, 'fail', request.batchId, request.customId);
    if (draw >= failRate) return inner(request, signal);
    const serverError = unitHash(seed, 'fail-kind', request.batchId, request.customId) < 0.5;
    if (request.url === '/v1/messages') return anthropicFailure(serverError);
    if (request.url.startsWith('/v1beta/')) return geminiFailure(serverError);
    return injectedFailure(serverError, String(request.body.model ?? ''));
  };
}

function anthropicFailure(serverError: boolean): Outcome {
  const [statusCode, type, message] = serverError
    ? [500, 'api_error', "Internal server error (injected by the local server's --fail-rate)."]
    : [529, 'overloaded_error', "Overloaded (injected by the local server's --fail-rate)."];
  return {
    kind: 'response',
    statusCode,
    body: { type: 'error', error: { type, message }, request_id: null },
  };
}

function geminiFailure(serverError: boolean): Outcome {
  const [code, status, message] = serverError
    ? [500, 'INTERNAL', "An internal error has occurred (injected by the local server's --fail-rate)."]
    : [
        429,
        'RESOURCE_EXHAUSTED',
        "Resource has been exhausted (injected by the local server's --fail-rate).",
      ];
  return { kind: 'response', statusCode: code, body: { error: { code, message, status } } };
}

function injectedFailure(serverError: boolean, model: string): Outcome {
  if (serverError) {
    return errorResponse(
      500,
      'The server had an error while processing your request. Sorry about that!',
      'server_error',
    );
  }
  return errorResponse(
    429,
    `Rate limit reached for ${model || 'this model'} (injected by the local server's --fail-rate).`,
    'requests',
    'rate_limit_exceeded',
  );
}
