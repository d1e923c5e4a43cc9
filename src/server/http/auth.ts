import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Dialect } from '../types.js';
import { ApiError, invalidRequest } from './api-error.js';

/** Throws the ApiError a request's API answers when it is not authorised. */
export type Authorize = (req: IncomingMessage, dialect: Dialect, query: URLSearchParams) => void;

/**
 * Each API's key check, answered as that API answers it. Without `apiKey` configured, any key is
 * accepted, but a key must still be there. The key is never echoed or logged.
 * - OpenAI: `Authorization: Bearer KEY`; none → 401, another → 401 `invalid_api_key`.
 * - Anthropic: `x-api-key: KEY` or `Authorization: Bearer KEY` (the SDK sends its `apiKey` as the
 *   latter); none or another → 401 `authentication_error`; and an `anthropic-version` header → else 400.
 * - Gemini: `x-goog-api-key: KEY` or `?key=KEY`; none → 403 `PERMISSION_DENIED`, another → 400
 *   `INVALID_ARGUMENT`, as Google answers.
 */
export function createAuth(apiKey: string | undefined): Authorize {
  const expected = apiKey === undefined ? undefined : Buffer.from(apiKey);
  const matches = (given: string) => {
    if (expected === undefined) return true;
    const bytes = Buffer.from(given);
    return bytes.length === expected.length && timingSafeEqual(bytes, expected);
  };
  const bearer = (req: IncomingMessage) => /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  return (req, dialect, query) => {
    if (dialect === 'anthropic') {
      const header = req.headers['x-api-key'];
      const key = (typeof header === 'string' && header !== '' ? header : undefined) ?? bearer(req);
      if (key === undefined) throw new ApiError(401, 'x-api-key header is required');
      if (!matches(key)) throw new ApiError(401, 'invalid x-api-key');
      if (!req.headers['anthropic-version']) throw invalidRequest('anthropic-version: header is required');
      return;
    }
    if (dialect === 'gemini') {
      const header = req.headers['x-goog-api-key'];
      const key = (typeof header === 'string' && header !== '' ? header : undefined) ?? query.get('key');
      if (!key) {
        throw new ApiError(
          403,
          "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        );
      }
      if (!matches(key)) throw invalidRequest('API key not valid. Please pass a valid API key.');
      return;
    }
    // Azure OpenAI clients send the key as `api-key` instead.
    const azureKey = req.headers['api-key'];
    const key = bearer(req) ?? (typeof azureKey === 'string' && azureKey !== '' ? azureKey : undefined);
    if (key === undefined) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      );
    }
    if (!matches(key)) throw new ApiError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' });
  };
}
