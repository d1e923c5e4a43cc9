/**
 * Gemini's synchronous methods (`models/{model}:generateContent`, `:embedContent`: the direct path)
 * through `@google/genai`, and each answer as a line of a Gemini batch's results (`{ key, response }` or
 * `{ key, error }`), which the gemini result dialect reads as it reads a batch's. Owns those lines and
 * the call; touches the SDK only.
 *
 * The call goes through the SDK's own request method (`apiClient.request`, what each of its methods
 * calls once it has built a body), with the request's body as prepare wrote it: `models.generateContent`
 * would rebuild the body from the SDK's types (dropping what they do not know) and `models.embedContent`
 * calls `:batchEmbedContents` on the Gemini API, not the request's method. The SDK still makes the URL,
 * the key's header, the timeout and its (single) attempt. The answer is read raw: a success's text from
 * the SDK's `HttpResponse.responseInternal`, byte for byte in the line; an error's status, headers and
 * body from a copy the call's `fetch` hook (the SDK's transport option) keeps, as the SDK's ApiError
 * has no headers.
 */
import type { GoogleGenAI } from '@google/genai';
import { CUSTOM_ID_HEADER, isJsonText, notJsonMessage } from '../direct-body.js';
import { type DirectAnswer, type DirectCall, type DirectSender, ProviderError } from '../port.js';

/** The part of the SDK's request method the sender uses. */
interface SdkRequester {
  request(request: {
    path: string;
    body: string;
    httpMethod: 'POST';
    httpOptions: {
      headers: Record<string, string>;
      timeout: number;
      retryOptions: { attempts: number };
      fetch: typeof fetch;
    };
  }): Promise<{ responseInternal: Response }>;
}

/** The direct sender of a Gemini client; undefined when this version of the SDK has no request method. */
export function geminiDirectSender(
  client: GoogleGenAI,
  failure: (err: unknown) => Error,
): DirectSender | undefined {
  const requester = (client as unknown as { apiClient?: Partial<SdkRequester> }).apiClient;
  if (typeof requester?.request !== 'function') return undefined;
  const sdk = requester as SdkRequester;
  return {
    async send(call: DirectCall): Promise<DirectAnswer> {
      const request = methodCall(call);
      let refused: Response | undefined;
      const keepRefusal = async (input: string | URL | Request, init?: RequestInit) => {
        const response = await fetch(input, init);
        if (!response.ok) refused = response.clone();
        return response;
      };
      try {
        const { responseInternal: response } = await sdk.request({
          path: request.path,
          body: request.body,
          httpMethod: 'POST',
          httpOptions: {
            headers: { [CUSTOM_ID_HEADER]: call.customId },
            timeout: call.timeoutMs,
            retryOptions: { attempts: 1 },
            fetch: keepRefusal,
          },
        });
        const body = await response.text();
        const line = isJsonText(body)
          ? `{"key":${JSON.stringify(call.customId)},"response":${body}}`
          : noAnswer(call.customId, notJsonMessage(response.status, body));
        return { status: response.status, headers: response.headers, line };
      } catch (err) {
        if (!refused) throw failure(err);
        const text = await refused.text().catch(() => '');
        const status = refused.status;
        const parsed = parseError(text);
        const error = parsed ?? {
          code: status,
          message: notJsonMessage(status, text),
          ...(status === 429
            ? { status: 'RESOURCE_EXHAUSTED' }
            : status >= 500
              ? { status: status === 503 ? 'UNAVAILABLE' : 'INTERNAL' }
              : {}),
        };
        return {
          status,
          headers: refused.headers,
          line: JSON.stringify({ key: call.customId, error }),
          retryAfterMs: retryDelayMs(error),
        };
      }
    },
    noAnswerLine: noAnswer,
  };
}

/** `UNAVAILABLE` (google.rpc code 14): the result dialect tries it again. */
function noAnswer(customId: string, message: string): string {
  return JSON.stringify({ key: customId, error: { code: 14, message, status: 'UNAVAILABLE' } });
}

/**
 * The SDK path and body of a request line: `/v1beta/generateContent` with `{ model, … }` →
 * `models/{model}:generateContent` with the body less its `model` (the path names it, as a batch does).
 * The rest of the body is the text as written, cut rather than encoded again when `model` comes first
 * (as prepare writes it).
 */
export function methodCall(call: DirectCall): { path: string; body: string } {
  const method = /(generateContent|embedContent)$/.exec(call.url)?.[1];
  const parsed = JSON.parse(call.body) as Record<string, unknown>;
  if (method === undefined || typeof parsed.model !== 'string' || parsed.model === '') {
    throw new ProviderError(
      `a Gemini request needs a model and a url of generateContent or embedContent (got ${call.url})`,
      { retryable: false },
    );
  }
  const { model: _model, ...rest } = parsed;
  const lead = `{"model":${JSON.stringify(parsed.model)}`;
  let body = JSON.stringify(rest);
  if (call.body.startsWith(`${lead},`)) {
    const cut = `{${call.body.slice(lead.length + 1)}`;
    if (sameJson(cut, rest)) body = cut;
  } else if (call.body === `${lead}}`) body = '{}';
  const name = /^(models|tunedModels)\//.test(parsed.model) ? parsed.model : `models/${parsed.model}`;
  return { path: `${name}:${method}`, body };
}

function sameJson(text: string, value: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

/** The google.rpc.Status of an error body `{ error: { code, message, status, details } }`, if it is one. */
function parseError(text: string): Record<string, unknown> | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'object' && body.error !== null && !Array.isArray(body.error)
      ? (body.error as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The wait a `google.rpc.RetryInfo` in the error's details asks for (`retryDelay: "1.5s"`), in ms. */
function retryDelayMs(error: Record<string, unknown>): number | undefined {
  const details = Array.isArray(error.details) ? error.details : [];
  for (const detail of details) {
    const delay = (detail as { '@type'?: unknown; retryDelay?: unknown } | null)?.retryDelay;
    if (
      String((detail as { '@type'?: unknown })?.['@type']).endsWith('google.rpc.RetryInfo') &&
      typeof delay === 'string'
    ) {
      const seconds = /^(\d+(?:\.\d+)?)s$/.exec(delay)?.[1];
      if (seconds !== undefined) return Math.round(Number(seconds) * 1000);
    }
  }
  return undefined;
}
