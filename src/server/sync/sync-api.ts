/**
 * The synchronous endpoints, `POST /v1/chat/completions`, `/v1/embeddings` and `/v1/responses`: each call
 * is answered at once by the same executor that runs batch lines (the built-in responder or `--upstream`,
 * with `--fail-rate` and `--latency`), within `--rpm` / `--tpm` (429 with OpenAI's rate-limit headers
 * otherwise), and logged (sync-log.ts). Owns the sync routes; touches neither batches nor files.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { counterForModel, outputTokenBound, requestInputTokens } from '../../cost/tokens.js';
import type { ApiContext, Handler } from '../api/api-context.js';
import type { Outcome } from '../execution.js';
import { readJsonBody } from '../http/read-json-body.js';
import { sendJson } from '../http/respond.js';
import { isObject } from '../util/is-object.js';

/** The OpenAI endpoints answered synchronously. */
export const SYNC_PATHS = ['/v1/chat/completions', '/v1/embeddings', '/v1/responses'] as const;

/** The header batchpipe's direct path names each request's custom_id in (for the log). */
const CLIENT_ID_HEADER = 'x-batchpipe-custom-id';

/** The handler of one synchronous endpoint. */
export function syncEndpoint(url: (typeof SYNC_PATHS)[number]): Handler {
  return async (ctx: ApiContext, req: IncomingMessage, res: ServerResponse) => {
    const { sync } = ctx;
    const body = await readJsonBody(req, { maxBytes: 16 * 1024 * 1024 });
    const model = typeof body.model === 'string' ? body.model : '';
    const clientId = headerValue(req, CLIENT_ID_HEADER);
    const tier = typeof body.service_tier === 'string' ? body.service_tier : null;
    // Logged before the answer goes out, so whoever reads the log after an answer finds its line.
    const answer = (status: number, payload: unknown, headers: Record<string, string>) => {
      sync.log.record({ at: Date.now(), path: url, status, model, client_id: clientId, service_tier: tier });
      sendJson(res, status, payload, headers);
    };
    // A flex call refused for capacity is not a rate limit: it spends nothing of --rpm / --tpm.
    const refusal = sync.flexRefusal(tier);
    if (refusal) {
      answer(429, { error: refusal }, {});
      return;
    }
    const tokens = sync.countsTokens ? requestTokens(url, body, model) : 0;
    const admission = sync.limits.admit(tokens, model);
    if (!admission.ok) {
      const error = {
        message: admission.message,
        type: admission.limit,
        param: null,
        code: 'rate_limit_exceeded',
      };
      answer(429, { error }, admission.headers);
      return;
    }
    const stop = new AbortController();
    res.once('close', () => stop.abort(new Error('the client went away')));
    const requestId = String(res.getHeader('x-request-id') ?? '');
    let outcome: Outcome;
    try {
      outcome = await sync.executor(
        // Each call is its own draw of --fail-rate (as a retry in a new batch is), whatever its custom_id.
        { batchId: `sync_${requestId}`, customId: clientId ?? requestId, url, body },
        stop.signal,
      );
    } catch (err) {
      if (stop.signal.aborted) return; // nobody to answer
      ctx.log(`POST ${url}: ${err instanceof Error ? err.message : String(err)}`);
      outcome = {
        kind: 'error',
        code: 'server_error',
        message: 'The server had an error while processing your request.',
      };
    }
    if (outcome.kind === 'error') {
      const error = { message: outcome.message, type: 'server_error', param: null, code: outcome.code };
      answer(500, { error }, admission.headers);
      return;
    }
    const ok = outcome.statusCode < 300;
    // A flex request is answered on the flex tier, as OpenAI's answer says.
    const body_ =
      tier !== null && ok && isObject(outcome.body) ? { ...outcome.body, service_tier: tier } : outcome.body;
    answer(outcome.statusCode, body_, admission.headers);
  };
}

/** What `--tpm` counts for a request: its input tokens and the most output it may be billed for. */
function requestTokens(url: string, body: Record<string, unknown>, model: string): number {
  return requestInputTokens(url, body, counterForModel(model)) + (outputTokenBound(url, body).tokens ?? 0);
}

function headerValue(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' && value !== '' ? value : null;
}
