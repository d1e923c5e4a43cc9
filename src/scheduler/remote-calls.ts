import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import type { Backend } from '../backends/backend.js';
import { BatchpipeError, ErrorCodes } from '../errors.js';

/** Whether a failed API call may succeed if tried again (rate limits, server errors, the network). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof OpenAI.APIConnectionError) return true;
  if (err instanceof OpenAI.APIError) return err.status === 429 || (err.status ?? 0) >= 500;
  return false;
}

/** A failed API call as a BatchpipeError, with any secret removed from the message. */
export function apiError(backend: Backend, what: string, err: unknown): BatchpipeError {
  const detail = err instanceof Error ? err.message : String(err);
  return new BatchpipeError(ErrorCodes.API, backend.redact(`${what} failed: ${detail}`), { cause: err });
}

/**
 * Runs a call that creates something remotely, at most `tries` times. The SDK's own retries are off
 * for these calls: a retry after a lost response could create a second file or batch. Instead,
 * before each new try, `landed` asks the API whether the previous try took effect after all.
 */
export async function createOnce<T>(
  backend: Backend,
  what: string,
  create: () => Promise<T>,
  landed: () => Promise<T | undefined>,
  tries = 6,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if (!isRetryable(err) || attempt >= tries) throw apiError(backend, what, err);
      await sleep(Math.min(30_000, 500 * 2 ** (attempt - 1)));
      const found = await landed();
      if (found !== undefined) return found;
    }
  }
}
