/**
 * The synchronous endpoints: OpenAI's `POST /v1/chat/completions`, `/v1/embeddings` and `/v1/responses`,
 * Anthropic's `POST /v1/messages`, Gemini's `POST /v1beta/models/{model}:generateContent` and
 * `:embedContent`. Each call is answered at once by the same executor that runs batch lines (the
 * built-in responder or `--upstream`, with `--fail-rate` and `--latency`), within `--rpm` / `--tpm`
 * (refused otherwise, in the API's own shape: OpenAI's 429 with `x-ratelimit-*` headers, Anthropic's
 * `rate_limit_error` with `anthropic-ratelimit-*` and `retry-after`, Gemini's `RESOURCE_EXHAUSTED` with
 * a `RetryInfo`), and logged (sync-log.ts). Owns the sync routes; touches neither batches nor files.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { counterForModel, outputTokenBound, requestInputTokens } from '../../cost/tokens.js';
import type { ApiContext, Handler } from '../api/api-context.js';
import type { Outcome } from '../execution.js';
import { invalidRequest } from '../http/api-error.js';
import { readJsonBody } from '../http/read-json-body.js';
import { sendJson } from '../http/respond.js';
import type { Dialect } from '../types.js';
import { isObject } from '../util/is-object.js';
import {
  type Admission,
  anthropicRateHeaders,
  openAIRateHeaders,
  type RateLimitHeaders,
  resetText,
} from './rate-limits.js';

/** The OpenAI endpoints answered synchronously. */
export const SYNC_PATHS = ['/v1/chat/completions', '/v1/embeddings', '/v1/responses'] as const;

/** The header batchpipe's direct path names each request's custom_id in (for the log). */
const CLIENT_ID_HEADER = 'x-batchpipe-custom-id';

/** A call to answer: its API, the path it came on, the executor's url and the request file's url. */
interface SyncCall {
  dialect: Dialect;
  /** The path as logged, e.g. `/v1beta/models/gemini-2.5-flash:generateContent`. */
  path: string;
  /** The url the executor (and the built-in responder) answers, as the batch engine hands it. */
  url: string;
  /** The url of a request file's line for the same request, which token counting knows. */
  countedAs: string;
  model: string;
  body: Record<string, unknown>;
}

/** The handler of one of OpenAI's synchronous endpoints. */
export function syncEndpoint(url: (typeof SYNC_PATHS)[number]): Handler {
  return async (ctx, req, res) => {
    const body = await readJsonBody(req, { maxBytes: MAX_BODY_BYTES });
    const model = typeof body.model === 'string' ? body.model : '';
    await answerCall(ctx, req, res, { dialect: 'openai', path: url, url, countedAs: url, model, body });
  };
}

/** Anthropic's Messages API, `POST /v1/messages`. */
export const anthropicMessages: Handler = async (ctx, req, res) => {
  const body = await readJsonBody(req, { maxBytes: MAX_BODY_BYTES });
  const model = typeof body.model === 'string' ? body.model : '';
  const path = '/v1/messages';
  await answerCall(ctx, req, res, { dialect: 'anthropic', path, url: path, countedAs: path, model, body });
};

/** Gemini's `POST /v1beta/models/{model}:generateContent` or `:embedContent` (the model from the path). */
export function geminiContent(method: 'generateContent' | 'embedContent'): Handler {
  return async (ctx, req, res, params) => {
    const model = params[0] ?? '';
    if (!/^[A-Za-z0-9._-]+$/.test(model)) throw invalidRequest(`* model: invalid model name ${model}`);
    const body = await readJsonBody(req, { maxBytes: MAX_BODY_BYTES });
    const path = `/v1beta/models/${model}:${method}`;
    const countedAs = `/v1beta/${method}`;
    await answerCall(ctx, req, res, { dialect: 'gemini', path, url: path, countedAs, model, body });
  };
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

async function answerCall(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  call: SyncCall,
): Promise<void> {
  const { sync } = ctx;
  const { dialect, body, model } = call;
  const clientId = headerValue(req, CLIENT_ID_HEADER);
  const tier = dialect === 'openai' && typeof body.service_tier === 'string' ? body.service_tier : null;
  const requestId = String(res.getHeader('request-id') ?? res.getHeader('x-request-id') ?? '');
  // Logged before the answer goes out, so whoever reads the log after an answer finds its line.
  const answer = (status: number, payload: unknown, headers: RateLimitHeaders) => {
    sync.log.record({
      at: Date.now(),
      path: call.path,
      status,
      model,
      client_id: clientId,
      service_tier: tier,
    });
    sendJson(res, status, payload, headers);
  };
  // A flex call refused for capacity is not a rate limit: it spends nothing of --rpm / --tpm.
  const capacity = sync.flexRefusal(tier);
  if (capacity) {
    answer(429, { error: capacity }, {});
    return;
  }
  const tokens = sync.countsTokens ? requestTokens(call) : 0;
  const admission = sync.limits.admit(tokens);
  const headers = rateHeaders(dialect, admission);
  if (!admission.ok) {
    answer(429, refusal(dialect, admission, model, requestId), headers);
    return;
  }
  const stop = new AbortController();
  res.once('close', () => stop.abort(new Error('the client went away')));
  let outcome: Outcome;
  try {
    outcome = await sync.executor(
      // Each call is its own draw of --fail-rate (as a retry in a new batch is), whatever its custom_id.
      { batchId: `sync_${requestId}`, customId: clientId ?? requestId, url: call.url, body },
      stop.signal,
    );
  } catch (err) {
    if (stop.signal.aborted) return; // nobody to answer
    ctx.log(`POST ${call.path}: ${err instanceof Error ? err.message : String(err)}`);
    outcome = {
      kind: 'error',
      code: 'server_error',
      message: 'The server had an error while processing your request.',
    };
  }
  if (outcome.kind === 'error') {
    answer(500, serverFault(dialect, outcome, requestId), headers);
    return;
  }
  const ok = outcome.statusCode < 300;
  // A flex request is answered on the flex tier, as OpenAI's answer says.
  const payload =
    tier !== null && ok && isObject(outcome.body) ? { ...outcome.body, service_tier: tier } : outcome.body;
  answer(outcome.statusCode, payload, headers);
}

function rateHeaders(dialect: Dialect, admission: Admission): RateLimitHeaders {
  if (dialect === 'openai') return openAIRateHeaders(admission);
  if (dialect === 'anthropic') return anthropicRateHeaders(admission);
  // Gemini sends no rate-limit headers; its 429 says how long to wait in the body.
  return {};
}

/** A 429's body in the API's own shape. */
function refusal(
  dialect: Dialect,
  admission: Extract<Admission, { ok: false }>,
  model: string,
  requestId: string,
): unknown {
  const { limit, waitMs } = admission;
  const perMinute = admission.states[limit]?.perMinute ?? 0;
  const used = `used ${admission.used} of ${admission.capacity} this second`;
  switch (dialect) {
    case 'anthropic':
      return {
        type: 'error',
        error: {
          type: 'rate_limit_error',
          message: `This request would exceed the rate limit of ${perMinute} ${limit === 'requests' ? 'requests' : 'tokens'} per minute for ${model || 'the model'} (${used}). Please try again in ${resetText(waitMs)}.`,
        },
        request_id: requestId,
      };
    case 'gemini': {
      const metric = limit === 'requests' ? 'generate_content_requests' : 'generate_content_tokens';
      return {
        error: {
          code: 429,
          message: `You exceeded your current quota: ${perMinute} ${limit} per minute for ${model} (${used}). Please retry in ${resetText(waitMs)}.`,
          status: 'RESOURCE_EXHAUSTED',
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
              violations: [
                {
                  quotaMetric: `generativelanguage.googleapis.com/${metric}`,
                  quotaId: `${limit === 'requests' ? 'GenerateRequests' : 'GenerateContentInputTokens'}PerMinutePerProjectPerModel`,
                  quotaDimensions: { model },
                  quotaValue: String(perMinute),
                },
              ],
            },
            // google.protobuf.Duration in JSON: seconds with a fraction, then `s`.
            {
              '@type': 'type.googleapis.com/google.rpc.RetryInfo',
              retryDelay: `${Number((waitMs / 1000).toFixed(3))}s`,
            },
          ],
        },
      };
    }
    default:
      return {
        error: {
          message:
            `Rate limit reached for ${model || 'the model'} on ${limit} per min (RPM/TPM): Limit ${perMinute}, ` +
            `Used ${admission.used} of ${admission.capacity} this second. Please try again in ${resetText(waitMs)}.`,
          type: limit,
          param: null,
          code: 'rate_limit_exceeded',
        },
      };
  }
}

/** A 500 for a call the executor could not answer, in the API's own shape. */
function serverFault(
  dialect: Dialect,
  outcome: Extract<Outcome, { kind: 'error' }>,
  requestId: string,
): unknown {
  switch (dialect) {
    case 'anthropic':
      return { type: 'error', error: { type: 'api_error', message: outcome.message }, request_id: requestId };
    case 'gemini':
      return { error: { code: 500, message: outcome.message, status: 'INTERNAL' } };
    default:
      return { error: { message: outcome.message, type: 'server_error', param: null, code: outcome.code } };
  }
}

/** What `--tpm` counts for a request: its input tokens and the most output it may be billed for. */
function requestTokens(call: SyncCall): number {
  const counter = counterForModel(call.model);
  return (
    requestInputTokens(call.countedAs, call.body, counter) +
    (outputTokenBound(call.countedAs, call.body).tokens ?? 0)
  );
}

function headerValue(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' && value !== '' ? value : null;
}
