/**
 * Paces the direct path's calls under a provider's rate limits, so it slows before it is refused:
 * requests and tokens per minute, from `--rpm` / `--tpm` or learned from the rate-limit headers of each
 * answer (OpenAI's `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`; the lower of flag and header), are spaced evenly (a call may start once the previous ones' share
 * of the minute has passed); an answer that says nothing remains holds every call until its reset; a
 * 429 holds every call for the wait it asked for. Owns its clocks only; pure of I/O but for sleeping.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PaceLimits {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

/** OpenAI's reset durations (`1s`, `6m0s`, `120ms`, `1h2m3.5s`) in ms; undefined when unreadable. */
export function parseResetMs(text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * units[m[2]!]!;
    matched += m[0];
  }
  return matched === text.trim() ? total : undefined;
}

/** The times of the last second, `now` added when `add`; pruned only when long, to stay cheap per call. */
function lastSecond(times: number[], now: number, add: boolean): number[] {
  if (add) times.push(now);
  if (!add || times.length > 4096) return times.filter((at) => at > now - 1000);
  return times;
}

/** Milliseconds from `now` to an RFC 3339 time (Anthropic's resets); undefined when unreadable. */
function msUntilTime(text: string | null, now: number): number | undefined {
  if (text === null || text === '') return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

function positive(text: string | null): number | undefined {
  const n = Number(text);
  return text !== null && text !== '' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Calls are spaced 2% wider than the limit allows: the network's jitter can bring two calls closer
 * together than they were sent, and a limit enforced per second (as OpenAI's are) would refuse one.
 */
const MARGIN = 1.02;
/**
 * A call that starts late (a timer fires late on a busy machine) may take the time it lost back, up to
 * this much: without it, every late wake-up is throughput lost for good. A quarter of a second stays
 * well inside a limit enforced per second.
 */
const CATCH_UP_MS = 250;

export class RatePacer {
  readonly #given: PaceLimits;
  #learned: PaceLimits = {};
  /** When the next call may start by the requests-per-minute spacing, and by the tokens one. */
  #nextByRequests = 0;
  #nextByTokens = 0;
  /** No call starts before this (a 429's wait, or an exhausted limit's reset). */
  #holdUntil = 0;
  /**
   * The pace found by refusals, for an API that tells no limit (Gemini sends no rate-limit headers):
   * requests per minute, undefined until the first 429. Cut on a refusal, raised slowly by successes.
   */
  #foundRpm: number | undefined;
  #lastCut = Number.NEGATIVE_INFINITY;
  /** When the last second's calls started, and when its successful ones answered (for the first cut). */
  #started: number[] = [];
  #recent: number[] = [];
  readonly #now: () => number;

  constructor(limits: PaceLimits, now: () => number = Date.now) {
    this.#given = limits;
    this.#now = now;
  }

  /** The limits in force: the flags', or the API's where lower (or where no flag set one). */
  get limits(): PaceLimits {
    const lower = (a: number | undefined, b: number | undefined) =>
      a === undefined ? b : b === undefined ? a : Math.min(a, b);
    return {
      rpm: lower(lower(this.#given.rpm, this.#learned.rpm), this.#foundRpm),
      tpm: lower(this.#given.tpm, this.#learned.tpm),
    };
  }

  /**
   * Takes an answer's status into the pace found by refusals, when neither a flag nor the API's headers
   * say the limit (additive increase, multiplicative decrease, as TCP finds a link's rate): the first
   * 429 sets the pace to the successes of the last second (at least half the calls started in it),
   * each later one (at most one a second: a
   * burst of refusals is one signal) cuts it by a fifth, and each success raises it by about 5% a
   * second. Without it, every call held by a 429 would start again at once when the hold ends, and
   * most would be refused again.
   */
  /** Whether the pace is still to be found from refusals (no limit known, none found yet). */
  get #finding(): boolean {
    return this.#foundRpm === undefined && this.#given.rpm === undefined && this.#learned.rpm === undefined;
  }

  noteStatus(status: number): void {
    if (this.#given.rpm !== undefined || this.#learned.rpm !== undefined) return;
    const now = this.#now();
    if (status === 429) {
      if (now - this.#lastCut < 1000) return;
      this.#lastCut = now;
      if (this.#foundRpm === undefined) {
        // What got through, or half of what was tried when little got through yet (a run that starts
        // refused would otherwise start at one call a second and take a minute to come back).
        const succeeded = lastSecond(this.#recent, now, false).length;
        const started = lastSecond(this.#started, now, false).length;
        this.#foundRpm = Math.max(1, succeeded, started / 2) * 60;
        this.#recent = [];
        this.#started = [];
      } else this.#foundRpm = Math.max(1, this.#foundRpm * 0.8);
    } else if (status < 300) {
      if (this.#foundRpm === undefined) this.#recent = lastSecond(this.#recent, now, true);
      else this.#foundRpm += 3;
    }
  }

  /** Whether tokens are paced (then callers count each request's tokens). */
  get countsTokens(): boolean {
    return this.limits.tpm !== undefined;
  }

  /** Waits until a call of `tokens` tokens may start within the limits, and books its place. */
  async take(tokens: number): Promise<void> {
    for (;;) {
      const now = this.#now();
      const { rpm, tpm } = this.limits;
      const at = Math.max(now, this.#holdUntil, rpm ? this.#nextByRequests : 0, tpm ? this.#nextByTokens : 0);
      if (at <= now) {
        if (this.#finding) this.#started = lastSecond(this.#started, now, true);
        const since = now - CATCH_UP_MS;
        if (rpm) this.#nextByRequests = Math.max(this.#nextByRequests, since) + (60_000 * MARGIN) / rpm;
        if (tpm) this.#nextByTokens = Math.max(this.#nextByTokens, since) + (60_000 * MARGIN * tokens) / tpm;
        return;
      }
      // Woken to look again: a learned limit or a hold may have changed meanwhile.
      await sleep(Math.min(at - now, 1000));
    }
  }

  /**
   * Reads an answer's rate-limit headers, OpenAI's (`x-ratelimit-*`, resets as durations) or
   * Anthropic's (`anthropic-ratelimit-*`, resets as RFC 3339 times): the limits, and a hold when one is spent.
   */
  learn(headers: { get(name: string): string | null }): void {
    const rpm =
      positive(headers.get('x-ratelimit-limit-requests')) ??
      positive(headers.get('anthropic-ratelimit-requests-limit'));
    const tpm =
      positive(headers.get('x-ratelimit-limit-tokens')) ??
      positive(headers.get('anthropic-ratelimit-tokens-limit'));
    if (rpm !== undefined) this.#learned.rpm = rpm;
    if (tpm !== undefined) this.#learned.tpm = tpm;
    // Nothing left: wait for the reset, or for one call's share of the minute when that comes first
    // (the reset is when the whole limit is back, and one call needs only its own share).
    const { rpm: limit } = this.limits;
    for (const kind of ['requests', 'tokens'] as const) {
      const spent =
        headers.get(`x-ratelimit-remaining-${kind}`) === '0' ||
        headers.get(`anthropic-ratelimit-${kind}-remaining`) === '0';
      if (!spent) continue;
      const reset =
        parseResetMs(headers.get(`x-ratelimit-reset-${kind}`)) ??
        msUntilTime(headers.get(`anthropic-ratelimit-${kind}-reset`), this.#now());
      if (reset === undefined) continue;
      this.hold(kind === 'requests' && limit ? Math.min(reset, 60_000 / limit) : reset);
    }
  }

  /** Holds every call for `ms` (a 429 asked for it). */
  hold(ms: number): void {
    this.#holdUntil = Math.max(this.#holdUntil, this.#now() + ms);
  }
}
