/**
 * `serve --rpm N --tpm N`: the synchronous endpoints' rate limits, as OpenAI enforces them. Each limit
 * is a bucket refilled continuously at N per minute that holds one second's worth (OpenAI quantizes its
 * per-minute limits: 60,000 rpm may be enforced as 1,000 requests a second), so a client that bursts is
 * refused even under its minute's budget, and one that paces itself is not. The state of each limit is
 * told in the headers of the API called: OpenAI's `x-ratelimit-*` (reset as a duration), Anthropic's
 * `anthropic-ratelimit-*` (reset as an RFC 3339 time); Gemini sends none (its 429 body says how long
 * to wait: sync-api.ts). Owns its counters only.
 */

/** Response headers. */
export type RateLimitHeaders = Record<string, string>;

/** Where one limit stands after a call: its size, what is left, and when it is full again. */
export interface LimitState {
  perMinute: number;
  remaining: number;
  resetMs: number;
}

/** The limits that are set (`--rpm`, `--tpm`), as they stand. */
export interface LimitStates {
  requests?: LimitState | undefined;
  tokens?: LimitState | undefined;
}

/** A request let through, or refused with which limit, how long to wait, and what was used of it. */
export type Admission =
  | { ok: true; states: LimitStates }
  | {
      ok: false;
      states: LimitStates;
      waitMs: number;
      limit: 'requests' | 'tokens';
      /** Of the refusing limit: used this second, out of its one-second capacity. */
      used: number;
      capacity: number;
    };

export interface RateLimits {
  /** Takes one request of `tokens` tokens now, or says why not and for how long. */
  admit(tokens: number): Admission;
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

function stateOf(b: Bucket | undefined): LimitState | undefined {
  if (!b) return undefined;
  return {
    perMinute: b.perMinute,
    remaining: Math.max(0, Math.floor(b.level)),
    resetMs: msUntil(b, b.capacity),
  };
}

/** OpenAI's duration format of the reset headers: `1s`, `6m0s`, `120ms`. */
export function resetText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${Number(seconds.toFixed(3))}s`;
  return `${Math.floor(seconds / 60)}m${Number((seconds % 60).toFixed(3))}s`;
}

/** No limit: every request goes through, with no rate-limit headers. */
const UNLIMITED: RateLimits = { admit: () => ({ ok: true, states: {} }) };

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
  const states = (): LimitStates => ({ requests: stateOf(requests), tokens: stateOf(tokens) });
  return {
    admit(cost) {
      const t = now();
      if (requests) refill(requests, t);
      if (tokens) refill(tokens, t);
      const requestWait = requests ? msUntil(requests, 1) : 0;
      const tokenWait = tokens ? msUntil(tokens, cost) : 0;
      if (requestWait > 0 || tokenWait > 0) {
        const limit = requestWait >= tokenWait ? 'requests' : 'tokens';
        const which = limit === 'requests' ? requests! : tokens!;
        return {
          ok: false,
          states: states(),
          waitMs: Math.max(requestWait, tokenWait),
          limit,
          used: Math.round(which.capacity - which.level),
          capacity: Math.floor(which.capacity),
        };
      }
      if (requests) requests.level -= 1;
      if (tokens) tokens.level -= cost;
      return { ok: true, states: states() };
    },
  };
}

/** `retry-after` in whole seconds (at least 1), as the HTTP header takes it. */
export function retryAfterSeconds(waitMs: number): string {
  return String(Math.max(1, Math.ceil(waitMs / 1000)));
}

/** OpenAI's headers: `x-ratelimit-*` on every answer, `retry-after-ms` and `retry-after` on a 429. */
export function openAIRateHeaders(admission: Admission): RateLimitHeaders {
  const h: RateLimitHeaders = {};
  const { requests, tokens } = admission.states;
  if (requests) {
    h['x-ratelimit-limit-requests'] = String(requests.perMinute);
    h['x-ratelimit-remaining-requests'] = String(requests.remaining);
    h['x-ratelimit-reset-requests'] = resetText(requests.resetMs);
  }
  if (tokens) {
    h['x-ratelimit-limit-tokens'] = String(tokens.perMinute);
    h['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    h['x-ratelimit-reset-tokens'] = resetText(tokens.resetMs);
  }
  if (!admission.ok) {
    h['retry-after-ms'] = String(admission.waitMs);
    h['retry-after'] = retryAfterSeconds(admission.waitMs);
  }
  return h;
}

/**
 * Anthropic's headers: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` on every answer
 * (the reset an RFC 3339 time), `retry-after` (seconds) on a 429, as Anthropic sends them.
 */
export function anthropicRateHeaders(admission: Admission, now: number = Date.now()): RateLimitHeaders {
  const h: RateLimitHeaders = {};
  for (const [name, state] of Object.entries(admission.states)) {
    if (!state) continue;
    h[`anthropic-ratelimit-${name}-limit`] = String(state.perMinute);
    h[`anthropic-ratelimit-${name}-remaining`] = String(state.remaining);
    h[`anthropic-ratelimit-${name}-reset`] = new Date(now + state.resetMs).toISOString();
  }
  if (!admission.ok) h['retry-after'] = retryAfterSeconds(admission.waitMs);
  return h;
}
