import type { StallSeconds } from './faults/stall.js';

/** Options of {@link startLocalServer}. Every fault and limit is off unless given. */
export interface LocalServerOptions {
  /** Directory for the server's state and files; created if missing. A restarted server continues its batches. */
  dataDir: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; 127.0.0.1 by default. */
  host?: string;
  /** When set, only this bearer key is accepted (401 otherwise); by default any key is. Never logged. */
  apiKey?: string;
  /** Seed of the built-in responder and the fault draws (default 0). */
  seed?: number;
  /** Seconds a batch may run before it expires (default 86400, i.e. `24h`). */
  completionWindowSeconds?: number;
  /** Fraction (0–1) of requests answered with a 500 or 429 inside the output. */
  failRate?: number;
  /** Fraction (0–1) of API calls answered 500 or 429 with Retry-After (uploads excepted). */
  httpFaultRate?: number;
  /** Fraction (0–1) of synchronous `service_tier: "flex"` calls refused 429 `resource_unavailable` (no capacity). */
  flexUnavailable?: number;
  /** Tokens queued across a model's unfinished batches above which a new batch fails `token_limit_exceeded`. */
  enqueuedTokenLimit?: number;
  /** Milliseconds each request takes (0.5×–1.5×, deterministic per request). */
  latencyMs?: number;
  /** Seconds the server's clock runs ahead of the real one (negative: behind): timestamps, deadlines, the `date` header. */
  clockSkewSeconds?: number;
  /** The first N downloads of `batch_output` files are cut short at a line boundary (half their lines). */
  truncateDownloads?: number;
  /** The first N `POST /v1/files` and `POST /v1/batches` calls take effect, then lose their response. */
  loseCreateResponses?: number;
  /** The first N batches retrieved as `completed` show `output_file_id: null` that once (successes reported all the same). */
  nullOutputFiles?: number;
  /** A batch whose input holds N or more requests fails validation naming line N. */
  failValidationLine?: number;
  /** Seconds every batch is held in `validating`, `in_progress` or `finalizing` before it moves on (`--stall`). */
  stall?: StallSeconds;
  /** Base URL of an OpenAI-compatible server to forward requests to, instead of the built-in responder. */
  upstream?: string;
  /** Bearer key for the upstream. Never logged. */
  upstreamApiKey?: string;
  /** Requests running at once across all batches (default 16). */
  concurrency?: number;
  /** Requests per minute the synchronous endpoints take (`--rpm`); above it they answer 429 in each API's shape (OpenAI's `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`, Gemini's `RESOURCE_EXHAUSTED`). */
  rpm?: number;
  /** Tokens per minute (input plus the most output a request may bill) the synchronous endpoints take (`--tpm`). */
  tpm?: number;
  /** Largest accepted upload in bytes (default 512 MB, OpenAI's limit). */
  maxUploadBytes?: number;
  /** Connections open at once (default 1000); one more is closed as soon as it is accepted. */
  maxConnections?: number;
  /** Seconds a client has to send a request's headers (default 60, or the request timeout if shorter). */
  headersTimeoutSeconds?: number;
  /**
   * Seconds a client has to send a whole request, body included (default 300: a 512 MB upload
   * needs 1.7 MB/s); a request still incomplete then is answered 408 and its connection closed.
   */
  requestTimeoutSeconds?: number;
  /** Receives one line per lifecycle event (no secrets). Silent by default. */
  log?: (line: string) => void;
}

/** The options with every default filled in and checked. */
export interface ResolvedOptions {
  dataDir: string;
  port: number;
  host: string;
  apiKey: string | undefined;
  seed: number;
  completionWindowMs: number;
  failRate: number;
  httpFaultRate: number;
  flexUnavailable: number;
  enqueuedTokenLimit: number | undefined;
  latencyMs: number;
  clockSkewSeconds: number;
  truncateDownloads: number;
  loseCreateResponses: number;
  nullOutputFiles: number;
  failValidationLine: number | undefined;
  stall: StallSeconds;
  upstream: string | undefined;
  upstreamApiKey: string | undefined;
  concurrency: number;
  rpm: number | undefined;
  tpm: number | undefined;
  maxUploadBytes: number;
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = '127.0.0.1';
const DAY_SECONDS = 86_400;
const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_HEADERS_TIMEOUT_SECONDS = 60;
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 300;

/** Fills in defaults and rejects values that make no sense, with a message naming the option. */
export function resolveOptions(options: LocalServerOptions): ResolvedOptions {
  const fraction = (name: string, value: number | undefined) => {
    const v = value ?? 0;
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be a number from 0 to 1, got ${value}`);
    return v;
  };
  const atLeast = (name: string, value: number | undefined, min: number, fallback: number) => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v < min)
      throw new RangeError(`${name} must be a number of at least ${min}, got ${value}`);
    return v;
  };
  if (!options.dataDir) throw new TypeError('dataDir is required');
  if (options.upstream !== undefined) {
    const url = new URL(options.upstream); // Throws on a malformed URL.
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`upstream must be an http(s) URL`);
  }
  const count = (name: string, value: number | undefined) => {
    const v = value ?? 0;
    if (!Number.isInteger(v) || v < 0)
      throw new RangeError(`${name} must be a whole number of at least 0, got ${value}`);
    return v;
  };
  const skew = options.clockSkewSeconds ?? 0;
  if (!Number.isFinite(skew)) throw new RangeError(`clockSkewSeconds must be a number, got ${skew}`);
  const port = atLeast('port', options.port, 0, 0);
  if (!Number.isInteger(port) || port > 65_535)
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  const timeoutMs = (name: string, value: number | undefined, fallback: number) =>
    Math.round(atLeast(name, value, 0.001, fallback) * 1000);
  const requestTimeoutMs = timeoutMs(
    'requestTimeoutSeconds',
    options.requestTimeoutSeconds,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
  );
  const headersTimeoutMs = timeoutMs(
    'headersTimeoutSeconds',
    options.headersTimeoutSeconds,
    Math.min(DEFAULT_HEADERS_TIMEOUT_SECONDS, requestTimeoutMs / 1000),
  );
  // Node refuses a headers timeout longer than the request's (the request includes its headers).
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new RangeError(
      `headersTimeoutSeconds (${headersTimeoutMs / 1000}) must not be more than requestTimeoutSeconds (${requestTimeoutMs / 1000})`,
    );
  }
  return {
    dataDir: options.dataDir,
    port,
    host: options.host ?? DEFAULT_HOST,
    apiKey: options.apiKey,
    seed: Math.trunc(options.seed ?? 0),
    completionWindowMs: Math.round(
      atLeast('completionWindowSeconds', options.completionWindowSeconds, 0.001, DAY_SECONDS) * 1000,
    ),
    failRate: fraction('failRate', options.failRate),
    httpFaultRate: fraction('httpFaultRate', options.httpFaultRate),
    flexUnavailable: fraction('flexUnavailable', options.flexUnavailable),
    enqueuedTokenLimit:
      options.enqueuedTokenLimit === undefined
        ? undefined
        : atLeast('enqueuedTokenLimit', options.enqueuedTokenLimit, 0, 0),
    latencyMs: atLeast('latencyMs', options.latencyMs, 0, 0),
    clockSkewSeconds: skew,
    truncateDownloads: count('truncateDownloads', options.truncateDownloads),
    loseCreateResponses: count('loseCreateResponses', options.loseCreateResponses),
    nullOutputFiles: count('nullOutputFiles', options.nullOutputFiles),
    failValidationLine:
      options.failValidationLine === undefined
        ? undefined
        : Math.trunc(atLeast('failValidationLine', options.failValidationLine, 1, 1)),
    stall: Object.fromEntries(
      Object.entries(options.stall ?? {}).map(([status, s]) => [status, atLeast(`stall.${status}`, s, 0, 0)]),
    ),
    upstream: options.upstream,
    upstreamApiKey: options.upstreamApiKey,
    concurrency: Math.trunc(atLeast('concurrency', options.concurrency, 1, 16)),
    rpm: options.rpm === undefined ? undefined : atLeast('rpm', options.rpm, 1, 1),
    tpm: options.tpm === undefined ? undefined : atLeast('tpm', options.tpm, 1, 1),
    maxUploadBytes: Math.trunc(atLeast('maxUploadBytes', options.maxUploadBytes, 1, MAX_UPLOAD_BYTES)),
    maxConnections: Math.trunc(atLeast('maxConnections', options.maxConnections, 1, DEFAULT_MAX_CONNECTIONS)),
    headersTimeoutMs,
    requestTimeoutMs,
    log: options.log ?? (() => {}),
  };
}

/** The upstream URL with any credentials masked, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = '***';
      parsed.password = '';
    }
    return parsed.toString();
  } catch {
    return '(invalid URL)';
  }
}
