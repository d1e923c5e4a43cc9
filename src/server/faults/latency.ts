import type { Executor } from '../execution.js';
import { unitHash } from '../util/prng.js';

/**
 * `--latency MS`: each request takes between 0.5× and 1.5× MS (deterministic per request), so
 * completions interleave as a real backend's do. Aborting the signal ends the wait at once.
 */
export function withLatency(inner: Executor, latencyMs: number, seed: number): Executor {
  if (!(latencyMs > 0)) return inner;
  return async (request, signal) => {
    const factor = 0.5 + unitHash(seed, 'latency', request.batchId, request.customId);
    await abortableSleep(Math.round(latencyMs * factor), signal);
    return inner(request, signal);
  };
}

/** Sleeps `ms`, rejecting with the signal's reason as soon as it aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
