/**
 * Anthropic's Messages API (`POST /v1/messages`, the direct path) through `@anthropic-ai/sdk`, and each
 * answer as a line of a Message Batch's results (`{ custom_id, result: { type: 'succeeded', message } }`
 * or `{ type: 'errored', error }`), which the anthropic result dialect reads as it reads a batch's. Owns
 * those lines; touches the SDK only.
 */
import Anthropic from '@anthropic-ai/sdk';
import { CUSTOM_ID_HEADER, DIRECT_FETCH, isJsonText, notJsonMessage } from '../direct-body.js';
import type { DirectAnswer, DirectCall, DirectSender } from '../port.js';

/**
 * The Messages API through the SDK's `post` (one attempt, `maxRetries: 0`): the body goes as prepare
 * wrote it (a string with its content-type is sent as it is), a 2xx body is read as the raw text the
 * API sent (`asResponse()`), so the message applied is byte for byte the answer; an error answer is the
 * SDK's APIError, its status, headers and error body. `failure` turns what is not an answer into the
 * provider's ProviderError.
 */
export function anthropicDirectSender(client: Anthropic, failure: (err: unknown) => Error): DirectSender {
  return {
    async send(call: DirectCall): Promise<DirectAnswer> {
      try {
        const response = await client
          .post(call.url, {
            body: call.body,
            headers: { 'content-type': 'application/json', [CUSTOM_ID_HEADER]: call.customId },
            maxRetries: 0,
            timeout: call.timeoutMs,
            fetchOptions: DIRECT_FETCH,
          })
          .asResponse();
        const body = await response.text();
        const line = isJsonText(body)
          ? `{"custom_id":${JSON.stringify(call.customId)},"result":{"type":"succeeded","message":${body}}}`
          : erroredLine(call.customId, { type: 'api_error', message: notJsonMessage(response.status, body) });
        return { status: response.status, headers: response.headers, line };
      } catch (err) {
        if (err instanceof Anthropic.APIError && err.status !== undefined && err.headers !== undefined) {
          // The SDK keeps an error body that is JSON (`{ type: 'error', error: { type, message } }`);
          // another (a proxy's HTML page) is named by the status.
          const error =
            typeof err.error === 'object' && err.error !== null
              ? err.error
              : {
                  type: 'error',
                  error: { type: errorType(err.status), message: notJsonMessage(err.status, err.message) },
                };
          return { status: err.status, headers: err.headers, line: erroredLine(call.customId, error) };
        }
        throw failure(err);
      }
    },
    // `api_error` is Anthropic's own trouble: the result dialect tries it again.
    noAnswerLine: (customId, message) => erroredLine(customId, { type: 'api_error', message }),
  };
}

/** An `errored` result line holding `error` (the API's error body, or the error object alone). */
function erroredLine(customId: string, error: object): string {
  return JSON.stringify({ custom_id: customId, result: { type: 'errored', error } });
}

/** Anthropic's error type for a status whose body said none. */
function errorType(status: number): string {
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  return status >= 500 ? 'api_error' : 'invalid_request_error';
}
