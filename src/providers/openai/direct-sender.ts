/**
 * OpenAI's synchronous endpoints (the direct path) through the `openai` SDK, and each answer as a line of
 * OpenAI's batch output file (`{ id, custom_id, response: { status_code, request_id, body }, error }`),
 * which the openai result dialect reads as it reads a batch's. Owns those lines; touches the SDK only.
 */
import OpenAI from 'openai';
import { CUSTOM_ID_HEADER, DIRECT_FETCH, isJsonText, notJsonMessage } from '../direct-body.js';
import type { DirectAnswer, DirectCall, DirectSender } from '../port.js';

/**
 * The synchronous endpoints through the SDK (`client.post`, one attempt): a 2xx body is read as the raw
 * text the API sent, so the result applied is byte for byte the answer; an error answer is the SDK's
 * APIError, its status, headers and error object. `failure` turns what is not an answer into the
 * provider's ProviderError.
 */
export function openAIDirectSender(client: OpenAI, failure: (err: unknown) => Error): DirectSender {
  return {
    async send(call: DirectCall): Promise<DirectAnswer> {
      const path = call.url.startsWith('/v1/') ? call.url.slice(3) : call.url;
      try {
        const response = await client
          .post(path, {
            // A string with its content-type goes as it is: the request's bytes as prepare encoded them.
            body: call.body,
            headers: { 'content-type': 'application/json', [CUSTOM_ID_HEADER]: call.customId },
            maxRetries: 0,
            timeout: call.timeoutMs,
            fetchOptions: DIRECT_FETCH,
          })
          .asResponse();
        const body = await response.text();
        const requestId = response.headers.get('x-request-id');
        return {
          status: response.status,
          headers: response.headers,
          line: answerLine(call.customId, response.status, body, requestId),
        };
      } catch (err) {
        if (err instanceof OpenAI.APIError && err.status !== undefined && err.headers !== undefined) {
          const error = err.error ?? { message: err.message, type: null, param: null, code: null };
          return {
            status: err.status,
            headers: err.headers,
            line: answerLine(call.customId, err.status, JSON.stringify({ error }), err.requestID ?? null),
            capacityRefused: err.status === 429 && isCapacityRefusal(error),
          };
        }
        throw failure(err);
      }
    },
    noAnswerLine: (customId, message) => failureLine(customId, 'server_error', message),
  };
}

/**
 * The output line of one answered call: its body exactly as the API sent it when it is JSON; an
 * error page that is not JSON becomes an error object holding its text; a 2xx that is not JSON is no
 * answer (a `server_error` line, tried again).
 */
export function answerLine(customId: string, status: number, body: string, requestId: string | null): string {
  const ok = status >= 200 && status < 300;
  if (!isJsonText(body)) {
    const message = notJsonMessage(status, body);
    if (ok) return failureLine(customId, 'server_error', message);
    body = JSON.stringify({ error: { message, type: 'invalid_response', param: null, code: null } });
  }
  const id = JSON.stringify(customId);
  return `{"id":null,"custom_id":${id},"response":{"status_code":${status},"request_id":${JSON.stringify(requestId ?? '')},"body":${body}},"error":null}`;
}

/** An error line: a call that got no answer (`server_error` is tried again, as a batch's would be). */
function failureLine(customId: string, code: string, message: string): string {
  return JSON.stringify({ id: null, custom_id: customId, response: null, error: { code, message } });
}

/** The error code of a flex call refused for capacity (`429 Resource Unavailable`). */
const RESOURCE_UNAVAILABLE = 'resource_unavailable';

/** Whether a 429's error object says the tier has no capacity now, rather than a rate limit. */
function isCapacityRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, type } = error as { code?: unknown; type?: unknown };
  return code === RESOURCE_UNAVAILABLE || type === RESOURCE_UNAVAILABLE;
}
