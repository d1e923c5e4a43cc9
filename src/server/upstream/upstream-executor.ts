import { isRetryableStatus, retryDelayMs } from '../../internal/retry-delay.js';
import type { Executor, Outcome } from '../execution.js';
import { abortableSleep } from '../faults/latency.js';

/** Options for {@link createUpstreamExecutor}. */
export interface UpstreamOptions {
  /** Base URL of an OpenAI-compatible server, e.g. `http://127.0.0.1:8080/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when given. */
  apiKey?: string | undefined;
  /** Tries per request, the first included. */
  maxAttempts?: number;
  /** Per-try timeout. */
  timeoutMs?: number;
}

/**
 * Forwards each request to an upstream OpenAI-compatible server and records its answer as it came:
 * status code, `x-request-id` and JSON body. 429 and 5xx (and connection failures) are retried with
 * backoff that honours `Retry-After`; when the tries run out, the last answer is what is recorded.
 * An error body that is not JSON is recorded as an error object holding its text; a 2xx without a JSON
 * object is a non-HTTP error line (`upstream_invalid_response`).
 */
export function createUpstreamExecutor(options: UpstreamOptions): Executor {
  const maxAttempts = options.maxAttempts ?? 5;
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  return async (request, signal) => {
    const url = upstreamUrl(options.baseUrl, request.url);
    const payload = JSON.stringify(request.body);
    let last: Outcome = { kind: 'error', code: 'upstream_error', message: 'the upstream was not called' };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let headers: Headers | undefined;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
          },
          body: payload,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
        headers = response.headers;
        const text = await response.text();
        const json = parseJsonObject(text);
        if (response.ok && json === undefined) {
          // A 2xx must carry the endpoint's JSON object; anything else is no answer to record.
          return {
            kind: 'error',
            code: 'upstream_invalid_response',
            message: `The upstream answered ${response.status} with a body that is not a JSON object: ${text.slice(0, 500)}`,
          };
        }
        last = {
          kind: 'response',
          statusCode: response.status,
          requestId: response.headers.get('x-request-id') ?? undefined,
          body: json ?? wrapText(text, response.status),
        };
        if (!isRetryableStatus(response.status)) return last;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        last = {
          kind: 'error',
          code: 'upstream_error',
          message: `The upstream server could not be reached: ${describe(err)}`,
        };
      }
      if (attempt < maxAttempts) await abortableSleep(retryDelayMs(attempt, headers), signal);
    }
    return last;
  };
}

/**
 * Joins the upstream base URL and a batch request URL. A base ending in `/v1` takes the path after
 * `/v1` (`http://h/v1` + `/v1/chat/completions` → `http://h/v1/chat/completions`); any other base takes
 * the whole path.
 */
export function upstreamUrl(baseUrl: string, requestUrl: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  const path = base.endsWith('/v1') && requestUrl.startsWith('/v1/') ? requestUrl.slice(3) : requestUrl;
  return `${base}${path}`;
}

function parseJsonObject(text: string): object | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** An error answer whose body is not JSON (an HTML 502 page, say), kept as the message of an error object. */
function wrapText(text: string, status: number): object {
  return {
    error: {
      message: `The upstream answered ${status} with a body that is not JSON: ${text.slice(0, 2000)}`,
      type: 'upstream_error',
      param: null,
      code: null,
    },
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
