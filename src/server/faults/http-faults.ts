import { ApiError, serverError } from '../http/api-error.js';
import { createRng } from '../util/prng.js';

/**
 * `--http-fault-rate F`: that fraction of API calls is answered 500 or 429 before being handled, with
 * `Retry-After` (seconds) and `retry-after-ms` headers, so clients exercise their retries (the openai SDK
 * absorbs them with `maxRetries`). The sequence of draws is seeded, so a run is reproducible.
 * Returns a function that gives the fault for the next call, or undefined.
 */
export function httpFaults(rate: number, seed: number): () => ApiError | undefined {
  if (!(rate > 0)) return () => undefined;
  const rng = createRng(seed, 'http-faults');
  const headers = { 'retry-after': '1', 'retry-after-ms': '20' };
  return () => {
    if (rng.next() >= rate) return undefined;
    if (rng.next() < 0.5) {
      const err = serverError(
        'The server had an error while processing your request. Sorry about that! (injected fault)',
      );
      return new ApiError(err.status, err.message, { type: err.type, headers });
    }
    return new ApiError(429, 'Rate limit reached for requests (injected fault). Please try again shortly.', {
      type: 'requests',
      code: 'rate_limit_exceeded',
      headers,
    });
  };
}
