/**
 * How long to wait before trying an HTTP call again: what the server asked for (`retry-after-ms`,
 * `Retry-After`), else exponential backoff with jitter. The one rule for the local server's upstream
 * calls and batchpipe's direct path. Pure; touches nothing.
 */
const BASE_DELAY_MS = 250;
const MAX_BACKOFF_MS = 8_000;
/** A server asking for longer than this is still obeyed, but only up to it. */
export const MAX_RETRY_AFTER_MS = 120_000;

/**
 * How long to wait before retry number `attempt` (1-based): what the upstream asked for with
 * `retry-after-ms` or `Retry-After` (seconds or an HTTP date) when it did, else exponential backoff
 * with jitter.
 */
export function retryDelayMs(
  attempt: number,
  headers: { get(name: string): string | null } | undefined,
  random: () => number = Math.random,
): number {
  const asked = requestedDelayMs(headers);
  if (asked !== undefined) return Math.min(Math.max(0, asked), MAX_RETRY_AFTER_MS);
  const backoff = Math.min(BASE_DELAY_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return Math.round(backoff * (0.75 + random() * 0.25));
}

export function requestedDelayMs(
  headers: { get(name: string): string | null } | undefined,
): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms)) return ms;
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? date - Date.now() : undefined;
}

/** Statuses worth another try: rate limits and server errors (Anthropic's 529 overloaded included). */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}
