/**
 * `serve --flex-unavailable F`: that fraction of synchronous calls asking for `service_tier: "flex"` is
 * refused as OpenAI refuses flex work it has no capacity for: `429` with the error code
 * `resource_unavailable` (not a rate limit: no rate-limit headers, and the call is not counted against
 * `--rpm` / `--tpm`). OpenAI does not bill these; a client should back off and try again, or fall back to
 * the default tier. The draws are a seeded sequence, one per flex call, so a run is reproducible.
 * Owns the draw and the error's shape only.
 */
import { createRng } from '../util/prng.js';

/** The error code of OpenAI's flex capacity refusal (`429 Resource Unavailable`). */
export const RESOURCE_UNAVAILABLE = 'resource_unavailable';

/** The error object of a refused flex call (the body is `{ error }`). */
export interface FlexRefusal {
  message: string;
  type: string;
  param: null;
  code: typeof RESOURCE_UNAVAILABLE;
}

/**
 * Returns a function that says, for each synchronous call, whether it is refused for capacity (the
 * error object to answer 429 with) or not (undefined). Calls on other tiers draw nothing.
 */
export function flexUnavailable(
  rate: number,
  seed: number,
): (serviceTier: string | null) => FlexRefusal | undefined {
  if (!(rate > 0)) return () => undefined;
  const rng = createRng(seed, 'flex-unavailable');
  return (serviceTier) => {
    if (serviceTier !== 'flex' || rng.next() >= rate) return undefined;
    return {
      message:
        'Resource unavailable: flex processing has no capacity for this request right now (injected by the ' +
        "local server's --flex-unavailable). Try again later, or use the default service tier.",
      type: RESOURCE_UNAVAILABLE,
      param: null,
      code: RESOURCE_UNAVAILABLE,
    };
  };
}
