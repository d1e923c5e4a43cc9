/**
 * The Batch API's per-file limits as numbers. Owns only these constants and imports nothing, so the
 * request dialects (and through them prepare's encode workers) can know them without loading the
 * request schemas that file-rules.ts checks lines against (zod, kept out of the workers).
 */

/** The API's defaults: 50,000 requests and 200 MB per file, 50,000 embedding inputs per batch. */
export const DEFAULT_MAX_LINES = 50_000;
export const DEFAULT_MAX_BYTES = 209_715_200;
export const DEFAULT_MAX_EMBEDDING_INPUTS = 50_000;
