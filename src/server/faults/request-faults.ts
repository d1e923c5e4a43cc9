import { type Executor, errorResponse, type Outcome } from '../execution.js';
import { unitHash } from '../util/prng.js';

/**
 * `--fail-rate F`: that fraction of requests is answered, inside the output, with a 500 `server_error`
 * or a 429 `rate_limit_exceeded` instead of being executed. Which requests fail depends only on the seed,
 * the batch and the custom_id: stable across restarts, yet a retry in a new batch gets a fresh draw.
 */
export function withFailRate(inner: Executor, failRate: number, seed: number): Executor {
  if (!(failRate > 0)) return inner;
  return async (request, signal) => {
    const draw = unitHash(seed, 'fail', request.batchId, request.customId);
    if (draw >= failRate) return inner(request, signal);
    return injectedFailure(
      unitHash(seed, 'fail-kind', request.batchId, request.customId) < 0.5,
      String(request.body.model ?? ''),
    );
  };
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
