import { ApiError, serverError } from '../http/api-error.js';
import type { Dialect } from '../types.js';
import { createRng } from '../util/prng.js';

/**
 * `--http-fault-rate F`: that fraction of API calls is answered with a server error or a rate limit
 * before being handled, with `Retry-After` (seconds) and `retry-after-ms` headers, so clients exercise
 * their retries (the SDKs absorb them with their retry settings). OpenAI calls get 500 or 429; Anthropic
 * calls 500, 529 `overloaded_error` or 429; Gemini calls 500, 503 or 429 (each in its API's error body).
 * The sequence of draws is seeded, so a run is reproducible; each call takes two draws, whatever its API.
 * Returns a function that gives the fault for the next call, or undefined.
 */
export function httpFaults(rate: number, seed: number): (dialect: Dialect) => ApiError | undefined {
  if (!(rate > 0)) return () => undefined;
  const rng = createRng(seed, 'http-faults');
  const headers = { 'retry-after': '1', 'retry-after-ms': '20' };
  return (dialect) => {
    if (rng.next() >= rate) return undefined;
    const kind = rng.next();
    if (kind < 0.5) {
      // The other APIs' second kind of server-side refusal takes half of the server errors.
      if (kind >= 0.25 && dialect === 'anthropic') {
        return new ApiError(529, 'Overloaded (injected fault)', { type: 'overloaded_error', headers });
      }
      if (kind >= 0.25 && dialect === 'gemini') {
        return new ApiError(503, 'The model is overloaded. Please try again later. (injected fault)', {
          headers,
        });
      }
      const err = serverError(
        'The server had an error while processing your request. Sorry about that! (injected fault)',
      );
      return new ApiError(err.status, err.message, { type: err.type, headers });
    }
    return new ApiError(429, 'Rate limit reached for requests (injected fault). Please try again shortly.', {
      type: dialect === 'openai' ? 'requests' : 'rate_limit_error',
      code: 'rate_limit_exceeded',
      headers,
    });
  };
}
