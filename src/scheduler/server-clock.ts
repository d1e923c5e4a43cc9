import type OpenAI from 'openai';
import type { APIPromise } from 'openai/core/api-promise';
import type { Backend } from '../backends/backend.js';
import { apiError } from './remote-calls.js';

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

const clocks = new WeakMap<OpenAI, ServerClock>();

/** The clock of the API a backend talks to (one per SDK client). */
export function serverClock(backend: Backend): ServerClock {
  let clock = clocks.get(backend.client);
  if (!clock) {
    clock = new ServerClock();
    clocks.set(backend.client, clock);
  }
  return clock;
}

/** Awaits an SDK call, reading the API's clock from its response on the way. */
export async function observed<T>(backend: Backend, call: APIPromise<T>): Promise<T> {
  const { data, response } = await call.withResponse();
  serverClock(backend).observe(response.headers.get('date'));
  return data;
}

/**
 * The API's time now (a lower bound, unix seconds), asking the API when this process has not heard
 * from it yet (`what` names the call it is for); undefined when the API sends no `date` header (settling then lists everything).
 */
export async function serverNow(backend: Backend, what: string): Promise<number | undefined> {
  const clock = serverClock(backend);
  if (clock.lowerBound() === undefined) {
    try {
      await observed(backend, backend.client.batches.list({ limit: 1 }));
    } catch (err) {
      throw apiError(backend, `reading the API's clock for ${what}`, err);
    }
  }
  return clock.lowerBound();
}
