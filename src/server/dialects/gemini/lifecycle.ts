import type { DialectLifecycle } from '../../engine/dialect-lifecycle.js';
import type { GeminiBatchInternals } from '../../types.js';
import type { FileKeeper } from '../engine-batch.js';
import { convertInputFile } from './batch-input.js';
import { writeBatchResults } from './batch-results.js';

/**
 * A Gemini batch in the engine: a file-sourced batch's `{ key, request }` lines are converted while it
 * validates, every request runs on the model its URL names, the model's enqueued tokens count against
 * `--enqueued-token-limit`, and when it ends its results are written in the order of its requests.
 * Gemini sets no limit on the number of requests; its file limit (2 GB) is the Files API's.
 */
export function geminiLifecycle(ctx: FileKeeper): DialectLifecycle {
  return {
    limits: {
      maxRequests: Number.POSITIVE_INFINITY,
      maxBytes: Number.POSITIVE_INFINITY,
      maxEmbeddingInputs: Number.POSITIVE_INFINITY,
      maxErrors: 100,
    },
    models: (stored) => ({ fixed: (stored.internals.gemini as GeminiBatchInternals).model }),
    injectsLineErrors: false,
    countsEnqueuedTokens: true,
    recordsCancelled: false,
    prepareInput: (stored) => convertInputFile(ctx, stored),
    finish: (stored, journal, _status, now) => writeBatchResults(ctx, stored, journal, now),
  };
}
