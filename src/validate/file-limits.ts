/**
 * The Batch API's limits per request file, as plain constants: the dialects read them without loading
 * the request schema (and zod with it) that the file rules need. Touches nothing.
 */

/** The API's defaults: 50,000 requests and 200 MB per file. */
export const DEFAULT_MAX_LINES = 50_000;
export const DEFAULT_MAX_BYTES = 209_715_200;
