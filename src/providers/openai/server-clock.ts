/**
 * The API's clock as this process knows it, from the `date` header of the API's responses. Settling
 * an interrupted upload or create compares the API's own `created_at` with the API's time at the
 * intent, never with ours: a provider whose clock runs behind ours cannot hide what it created.
 *
 * A `date` header is whole seconds, floored, and was written before it arrived here, so
 * `local now + (date − local time of arrival)` is never later than the API's true time: a lower
 * bound, which is what a "created since" cut-off needs.
 */
export class ServerClock {
  private offsetMs: number | undefined;

  /** Learns the offset from a response's `date` header (ignored when missing or unparsable). */
  observe(date: string | null): void {
    const serverMs = date === null ? Number.NaN : Date.parse(date);
    if (Number.isFinite(serverMs)) this.offsetMs = serverMs - Date.now();
  }

  /** Unix seconds by the API's clock, never later than its true time; undefined before any response. */
  lowerBound(): number | undefined {
    return this.offsetMs === undefined ? undefined : Math.floor((Date.now() + this.offsetMs) / 1000);
  }
}
