/**
 * The server's clock: the real one shifted by `--clock-skew` seconds. Every timestamp the API shows
 * (`created_at`, `expires_at`, …), every deadline and the HTTP `date` header come from it, so a skewed
 * server looks to a client exactly like a provider whose clock differs from the client's.
 */
export interface ServerClock {
  /** Milliseconds since the epoch, by the server's clock. */
  nowMs(): number;
  /** Unix seconds, as every timestamp of the API. */
  nowSeconds(): number;
  /** The current time as an HTTP `date` header value. */
  httpDate(): string;
}

export function createClock(skewSeconds = 0): ServerClock {
  const skewMs = Math.round(skewSeconds * 1000);
  const nowMs = () => Date.now() + skewMs;
  return {
    nowMs,
    nowSeconds: () => Math.floor(nowMs() / 1000),
    httpDate: () => new Date(nowMs()).toUTCString(),
  };
}

/** Unix seconds as an RFC 3339 timestamp (`2026-11-03T09:30:00Z`), as Anthropic and Google show times. */
export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
