import type { DialectLifecycle } from '../../engine/dialect-lifecycle.js';
import { MAX_BATCH_BYTES, MAX_BATCH_REQUESTS } from './batch-requests.js';

/**
 * An Anthropic batch in the engine: its requests were checked at creation (so the engine's checks only
 * count them), each may name its own model, no enqueued-token queue applies, and a cancel gives every
 * request that never ran a line, which the results show as `canceled`.
 */
export const ANTHROPIC_LIFECYCLE: DialectLifecycle = {
  limits: {
    maxRequests: MAX_BATCH_REQUESTS,
    // The engine's form adds a few dozen bytes a request to the body's.
    maxBytes: MAX_BATCH_BYTES + 64 * MAX_BATCH_REQUESTS,
    maxEmbeddingInputs: Number.POSITIVE_INFINITY,
    maxErrors: 100,
  },
  models: 'any',
  injectsLineErrors: false,
  countsEnqueuedTokens: false,
  recordsCancelled: true,
};
