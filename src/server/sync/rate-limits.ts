/**
 * `serve --rpm N --tpm N`: the synchronous endpoints' rate limits, as OpenAI enforces them. Each limit
 * is a bucket refilled continuously at N per minute that holds one second's worth (OpenAI quantizes its
 * per-minute limits: 60,000 rpm may be enforced as 1,000 requests a second), so a client that bursts is
 * refused even under its minute's budget, and one that paces itself is not. Owns its counters only.
 */

/** The headers OpenAI sends with every answer of a rate-limited endpoint, and with its 429s. */
export type RateLimitHeaders = Record<string, string>;

/** A request let through (with its headers), or refused with how long to wait. */
export type Admission =
  | { ok: true; headers: RateLimitHeaders }
  | { ok: false; headers: RateLimitHeaders; waitMs: number; limit: 'requests' | 'tokens'; message: string };

export interface RateLimits {
  /** Takes one request of `tokens` tokens now, or says why not and for how long. */
  admit(tokens: number, model: string): Admission;
}

interface Bucket {
  perMinute: number;
  capacity: number;
  level: number;
  at: number;
}

function bucket(perMinute: number, now: number): Bucket {
  const capacity = Math.max(1, perMinute / 60);
  return { perMinute, capacity, level: capacity, at: now };
}

function refill(b: Bucket, now: number): void {
  b.level = Math.min(b.capacity, b.level + ((now - b.at) / 60_000) * b.perMinute);
  b.at = now;
}

/** Milliseconds until the bucket holds `amount` (at most its capacity). */
function msUntil(b: Bucket, amount: number): number {
  const missing = Math.min(amount, b.capacity) - b.level;
  return missing <= 0 ? 0 : Math.ceil((missing / b.perMinute) * 60_000);
}

/** OpenAI's duration format of the reset headers: `1s`, `6m0s`, `120ms`. */
export function resetText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${Number(seconds.toFixed(3))}s`;
  return `${Math.floor(seconds / 60)}m${Number((seconds % 60).toFixed(3))}s`;
}

/** No limit: every request goes through, with no rate-limit headers. */
const UNLIMITED: RateLimits = { admit: () => ({ ok: true, headers: {} }) };

/**
 * The limits of `--rpm` and `--tpm` (either may be absent). A request larger than one second of tokens
 * goes when the token bucket is full, leaving it in debt, so no request is refused for ever.
 */
export function createRateLimits(
  limits: { rpm?: number | undefined; tpm?: number | undefined },
  now: () => number = Date.now,
): RateLimits {
  if (limits.rpm === undefined && limits.tpm === undefined) return UNLIMITED;
  const start = now();
  const requests = limits.rpm === undefined ? undefined : bucket(limits.rpm, start);
  const tokens = limits.tpm === undefined ? undefined : bucket(limits.tpm, start);
  const headersOf = (): RateLimitHeaders => {
    const h: RateLimitHeaders = {};
    if (requests) {
      h['x-ratelimit-limit-requests'] = String(requests.perMinute);
      h['x-ratelimit-remaining-requests'] = String(Math.max(0, Math.floor(requests.level)));
      h['x-ratelimit-reset-requests'] = resetText(msUntil(requests, requests.capacity));
    }
    if (tokens) {
      h['x-ratelimit-limit-tokens'] = String(tokens.perMinute);
      h['x-ratelimit-remaining-tokens'] = String(Math.max(0, Math.floor(tokens.level)));
      h['x-ratelimit-reset-tokens'] = resetText(msUntil(tokens, tokens.capacity));
    }
    return h;
  };
  return {
    admit(cost, model) {
      const t = now();
      if (requests) refill(requests, t);
      if (tokens) refill(tokens, t);
      const requestWait = requests ? msUntil(requests, 1) : 0;
      const tokenWait = tokens ? msUntil(tokens, cost) : 0;
      if (requestWait > 0 || tokenWait > 0) {
        const limit = requestWait >= tokenWait ? 'requests' : 'tokens';
        const waitMs = Math.max(requestWait, tokenWait);
        const headers = headersOf();
        headers['retry-after-ms'] = String(waitMs);
        headers['retry-after'] = String(Math.max(1, Math.ceil(waitMs / 1000)));
        const which = limit === 'requests' ? requests! : tokens!;
        const message =
          `Rate limit reached for ${model || 'the model'} on ${limit} per min (RPM/TPM): Limit ${which.perMinute}, ` +
          `Used ${Math.round(which.capacity - which.level)} of ${Math.floor(which.capacity)} this second. ` +
          `Please try again in ${resetText(waitMs)}.`;
        return { ok: false, headers, waitMs, limit, message };
      }
      if (requests) requests.level -= 1;
      if (tokens) tokens.level -= cost;
      return { ok: true, headers: headersOf() };
    },
  };
}
